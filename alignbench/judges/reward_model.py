"""Reward models as judges (kind ``reward_model``): a scalar reward per (prompt, response).

A reward model is a transformers sequence-classification model (``AutoModelForSequenceClassification``)
of the kind RewardBench ranks: Skywork-Reward (V1/V2), ArmoRM, FsfairX, GRM, ... It runs in-process
on the hf stack. Its input is the conversation, the prompt's messages (a string prompt is one user
turn) followed by the response as the assistant turn, rendered with the model's own chat template
without a generation prompt and tokenised without adding special tokens again (the template already
holds the BOS token). This is the usage the models' cards give: Skywork-Reward's
``apply_chat_template(conv, tokenize=True)`` (V2 renders to text, strips the duplicate BOS and
tokenises, the same ids), ArmoRM's ``apply_chat_template(messages)``. A tokenizer without a chat
template gets the (prompt, response) text pair, as the OpenAssistant DeBERTa reward models expect.

The reward is ``output.score`` where the model returns one (ArmoRM's custom head), else
``logits[:, label_index]`` (a Bradley-Terry head has one logit; ``label_index`` picks one of several).

Batched: inputs are sorted by length and right-padded; the model pools the last token that is not
its pad token, so a padded batch gives each response the same reward as a forward pass on it alone.
A model that names no pad token is padded with a token id absent from the batch for the same reason.
An input longer than ``max_length`` is an error for that item (truncating would score another text).

Params: ``model`` (hub id, local folder, ``package:...``, optionally prefixed ``hf:``), ``model_env``
(an environment variable that, when set, replaces ``model``), ``device`` (auto), ``dtype`` (auto: the
model's own on a GPU, float32 on CPU), ``batch_size`` (8), ``max_length`` (the model's), ``label_index``
(0), ``chat_template`` (None: when the tokenizer has one), ``trust_remote_code`` (false; ArmoRM needs
it), ``tie_margin`` (0.0: how close two rewards must be for ``alignbench compare`` to call a tie),
``cache`` (true: rewards are kept in the generation cache under the model's fingerprint, so judging a
response again costs no forward pass).

Judgment: ``score`` = the reward, ``label`` None, ``raw`` = ``{"reward": r, "tokens": n}``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from alignbench.backends.cache import cache_setting
from alignbench.errors import UsageError
from alignbench.judges._resources import quiet_loading, resolve_device, resolve_model
from alignbench.judges.base import Judge
from alignbench.registry import judge_kinds
from alignbench.types import JudgeInput, Judgment

_DTYPES = ("auto", "float32", "float16", "bfloat16")


def conversation(it: JudgeInput) -> list[dict[str, str]]:
    """The prompt's messages followed by the response as the assistant's turn."""
    prompt = it.prompt if isinstance(it.prompt, list) else [{"role": "user", "content": str(it.prompt)}]
    return [{"role": str(m.get("role", "user")), "content": str(m.get("content", ""))} for m in prompt] + \
        [{"role": "assistant", "content": it.response or ""}]


def model_fingerprint(spec: str, revision: str | None = None) -> str:
    """A hash naming the model's weights: a local folder's config and file names/sizes, else hub id + revision."""
    path = Path(spec)
    h = hashlib.sha256()
    if path.is_dir():
        for f in sorted(path.rglob("*")):
            if f.is_file():
                h.update(f"{f.relative_to(path)}:{f.stat().st_size}\n".encode())
        cfg = path / "config.json"
        if cfg.is_file():
            h.update(cfg.read_bytes())
    else:
        h.update(f"{spec}@{revision or 'main'}".encode())
    return h.hexdigest()[:32]


@judge_kinds.register("reward_model")
class RewardModelJudge(Judge):
    kind = "reward_model"
    pairwise_by_score = True  # alignbench compare turns reward differences into wins

    def __init__(self, name: str | None = None, model: str | None = None, model_env: str | None = None, device: str = "auto",
                 dtype: str = "auto", batch_size: int = 8, max_length: int | None = None, label_index: int = 0,
                 chat_template: bool | None = None, trust_remote_code: bool = False, revision: str | None = None,
                 tie_margin: float = 0.0, cache: bool | str = True, **params: Any) -> None:
        super().__init__(name, **params)
        env = os.environ.get(model_env, "").strip() if model_env else ""
        spec = env or model
        if not spec:
            hint = f"set {model_env}=PATH or " if model_env else ""
            raise UsageError(f"judge {self.name!r} has no reward model: {hint}pass --judge-model {self.name}=PATH")
        self.model_spec = str(spec)[3:] if str(spec).startswith("hf:") else str(spec)
        prefix = self.model_spec.split(":", 1)[0]
        if ":" in self.model_spec and prefix not in ("package",) and not Path(self.model_spec).exists() and "/" not in prefix:
            raise UsageError(f"judge {self.name!r}: reward models run in-process on the hf stack; {spec!r} is a {prefix} backend spec "
                             "(pass a local model folder or a hub id)")
        if dtype not in _DTYPES:
            raise TypeError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        if float(tie_margin) < 0:
            raise TypeError(f"tie_margin must be >= 0, got {tie_margin!r}")
        self.device = resolve_device(device)
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self.max_length = None if max_length is None else int(max_length)
        self.label_index = int(label_index)
        self.chat_template = chat_template
        self.trust_remote_code = bool(trust_remote_code)
        self.revision = revision
        self.tie_margin = float(tie_margin)
        self.cache = cache_setting(cache)
        self.model_calls = 0  # responses that went through the model (cache hits not counted)
        self._tok: Any = None
        self._model: Any = None
        self._store: Any = None
        self._memo: dict[str, float] = {}  # rewards scored in this process, by input: an input is scored once
        self._fp: str | None = None

    # loading ------------------------------------------------------------------------------------
    def load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = resolve_model(self.model_spec, f"judge {self.name!r} model")
        if not Path(path).exists():
            if path.startswith(("/", ".", "~")) or path.count("/") > 1:
                raise UsageError(f"judge {self.name!r}: reward model {path!r} does not exist (pass a local model folder)")
            from alignbench.hub import require_hub

            require_hub("model", path, f"pass a local model folder: --judge-model {self.name}=PATH")
        kw: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        if self.revision:
            kw["revision"] = self.revision
        dtype = "auto" if self.dtype == "auto" and self.device != "cpu" else getattr(torch, "float32" if self.dtype == "auto" else self.dtype)
        try:
            with quiet_loading():
                tok = AutoTokenizer.from_pretrained(path, **kw)
                model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype, **kw)
        except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
            msg = (" ".join(str(exc).split()) or exc.__class__.__name__)[:300].rstrip(". ")
            raise UsageError(f"judge {self.name!r}: cannot load reward model {path}: {msg}") from None
        if self.chat_template is True and not tok.chat_template:
            raise UsageError(f"judge {self.name!r}: chat_template: true, but the tokenizer of {path} has no chat template")
        self._tok, self._model = tok, model.to(self.device).eval()
        self._fp = model_fingerprint(path, self.revision)
        if self.max_length is None:
            n = getattr(model.config, "max_position_embeddings", None)
            self.max_length = int(n) if isinstance(n, int) and n > 0 else 4096
        if self.cache:
            from alignbench.backends.cache import GenerationCache, cache_file

            self._store = GenerationCache(cache_file(self.cache))

    # inputs -------------------------------------------------------------------------------------
    def encode(self, it: JudgeInput) -> list[int]:
        """The token ids the model reads for one (prompt, response)."""
        self.load()
        tok = self._tok
        use_template = bool(tok.chat_template) if self.chat_template is None else self.chat_template
        if use_template:
            text = tok.apply_chat_template(conversation(it), tokenize=False)
            return list(tok(text, add_special_tokens=False)["input_ids"])
        prompt = conversation(it)[-2]["content"] if isinstance(it.prompt, list) else str(it.prompt)
        return list(tok(prompt, it.response or "")["input_ids"])

    def _key(self, ids: list[int]) -> str:
        from alignbench.backends.cache import GenerationCache

        return GenerationCache.key(self._fp or "", "reward", {"ids": hashlib.sha256(json.dumps(ids).encode()).hexdigest(),
                                                              "label_index": self.label_index, "dtype": self.dtype})

    # scoring ------------------------------------------------------------------------------------
    def rewards(self, ids: list[list[int]]) -> list[float]:
        """Rewards of tokenised inputs: one forward pass per batch of similar lengths."""
        import torch

        model = self._model
        pad = model.config.pad_token_id
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list[float] = [0.0] * len(ids)
        for start in range(0, len(order), self.batch_size):
            batch = [ids[i] for i in order[start:start + self.batch_size]]
            width = max(len(x) for x in batch)
            fill = pad
            if fill is None:  # pool the true last token: pad with an id no input of the batch holds
                used = {t for x in batch for t in x}
                fill = next(t for t in range(model.config.vocab_size) if t not in used)
                model.config.pad_token_id = fill
            try:
                input_ids = torch.tensor([x + [fill] * (width - len(x)) for x in batch], device=self.device)
                mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in batch], device=self.device)
                with torch.no_grad():
                    res = model(input_ids=input_ids, attention_mask=mask)
            finally:
                model.config.pad_token_id = pad
            score = getattr(res, "score", None)
            values = score if score is not None else res.logits[:, self.label_index]
            for i, v in zip(order[start:start + self.batch_size], values.reshape(len(batch), -1)[:, 0].float().cpu().tolist()):
                out[i] = float(v)
        self.model_calls += len(ids)
        return out

    def judge_batch(self, items: list[JudgeInput]) -> list[Judgment]:
        self.load()
        encoded = [self.encode(it) for it in items]
        results: list[Judgment | None] = [None] * len(items)
        todo: list[int] = []
        for i, ids in enumerate(encoded):
            if len(ids) > (self.max_length or 0):
                results[i] = Judgment(error=f"input is {len(ids)} tokens, more than the reward model's max_length {self.max_length}")
            else:
                todo.append(i)
        keys = {i: self._key(encoded[i]) for i in todo}
        hits = {k: self._memo[k] for k in keys.values() if k in self._memo}  # scored before by this judge
        if self._store is not None:
            hits.update(self._store.get_many([k for k in dict.fromkeys(keys.values()) if k not in hits]))
        miss = list(dict.fromkeys(keys[i] for i in todo if keys[i] not in hits))  # each distinct input scored once
        first = {}
        for i in todo:
            first.setdefault(keys[i], i)
        fresh = dict(zip(miss, self.rewards([encoded[first[k]] for k in miss]))) if miss else {}
        if self._store is not None and fresh:
            self._store.put_many(fresh)
        self._memo.update(fresh)
        for i in todo:
            r = fresh[keys[i]] if keys[i] in fresh else float(hits[keys[i]])
            results[i] = Judgment(score=r, raw={"reward": r, "tokens": len(encoded[i])})
        return [r if r is not None else Judgment(error="not scored") for r in results]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self._store = None
        self._model = self._tok = None
