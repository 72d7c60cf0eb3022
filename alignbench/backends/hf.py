"""``hf``: a transformers causal LM from the Hugging Face hub or a local folder (or a GGUF file).

Generation is batched with left padding; requests are sorted by prompt length (longest first)
so a batch wastes little on padding, and results come back in the order of the requests. A chat
prompt (list of messages) goes through the tokenizer's chat template when it has one.
Log-likelihoods follow lm-evaluation-harness exactly (see ``alignbench.backends._loglik``); a
prompt prefix shared by several requests (a task's few-shot preamble, the context of a question's
choices) is run once and its key/value cache reused (``alignbench.backends._prefix``).

``--model-args``: ``dtype`` (auto|float32|bfloat16|float16; auto = float32 on CPU, the
checkpoint's dtype on GPU), ``device`` (cpu|cuda|cuda:N|mps|auto; default cuda when available),
``gguf_file`` (a GGUF file inside TARGET, or pass the .gguf path as TARGET), ``trust_remote_code``,
``revision``, ``max_length`` (context window; default from the model config), ``chat_template``
(true/false: force use or non-use of the tokenizer's chat template), ``shared_prefix`` (default
true; false scores every log-likelihood request in full).

A request with ``GenerationParams.logprobs = k`` also gets the k most likely tokens at each generated
position (the model's own next-token distribution, before any sampling) in ``Generation.token_logprobs``.
"""

from __future__ import annotations

import gc
import json
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from alignbench.backends._hf_decoding import RowSampler, StopStrings, TopLogprobs, cut_at_stop
from alignbench.backends._hf_scoring import HFScoring
from alignbench.backends._loglik import TokenLogprobs, file_digest, request_seed
from alignbench.backends._prefix import PrefixScorer
from alignbench.backends.base import Backend, BackendOptions
from alignbench.errors import BackendError, UsageError
from alignbench.hub import require_hub
from alignbench.registry import backends
from alignbench.types import Generation, GenerationRequest, Message, Prompt

__all__ = ["HFBackend", "TokenLogprobs", "render_plain_chat"]

_DTYPES = ("auto", "float32", "bfloat16", "float16")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")


def render_plain_chat(messages: list[Message]) -> str:
    """A conversation as ``role: content`` lines ending in ``assistant:`` (models without a template)."""
    return "".join(f"{m.get('role', 'user')}: {m.get('content', '')}\n" for m in messages) + "assistant:"


def _merge_system(messages: list[Message]) -> list[Message]:
    """Fold system messages into the first user turn, for templates that reject the system role."""
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    rest = [dict(m) for m in messages if m.get("role") != "system"]
    if not system:
        return rest
    for m in rest:
        if m.get("role") == "user":
            m["content"] = f"{system}\n\n{m['content']}"
            return rest
    return [{"role": "user", "content": system}] + rest


def _looks_like_path(target: str) -> bool:
    return target.startswith(("/", ".", "~", "\\")) or target.endswith(".gguf") or target.count("/") > 1 or not _HUB_ID.match(target)


@backends.register("hf")
class HFBackend(HFScoring, Backend):
    """transformers model: hf:HUB_ID_OR_PATH (dtype, device, gguf_file, trust_remote_code, revision, max_length, chat_template)"""

    name = "hf"
    supports_loglikelihood = True

    def __init__(self, target: str, options: BackendOptions | None = None, dtype: str = "auto", device: str | None = None,
                 gguf_file: str | None = None, trust_remote_code: bool = False, revision: str | None = None,
                 max_length: int | None = None, chat_template: bool | None = None, shared_prefix: bool = True) -> None:
        target, gguf_file = self._resolve_target(target, gguf_file)
        super().__init__(target, options, dtype=dtype, device=device, gguf_file=gguf_file,
                         trust_remote_code=trust_remote_code, revision=revision, max_length=max_length,
                         chat_template=chat_template)
        import torch

        self._torch = torch
        self.gguf_file = gguf_file
        self.revision = None if revision is None else str(revision)
        self.device = self._resolve_device(device)
        self.dtype_name = self._resolve_dtype(dtype)
        tokenizer, model = self._load(bool(trust_remote_code))
        self._setup(tokenizer, model, chat_template, max_length, shared_prefix)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, options: BackendOptions | None = None, name: str | None = None,
                   fingerprint: dict[str, Any] | None = None, chat_template: bool | None = None, max_length: int | None = None,
                   shared_prefix: bool = True) -> "HFBackend":
        """The backend around a model and tokenizer already in memory (e.g. a model being trained): nothing is
        loaded or copied, and the model stays where it is. The model is put in eval mode (the caller restores
        its training mode); ``close`` drops the reference only. ``fingerprint`` (``{"id", "hash"}``) names this
        state of the weights; by default it hashes the config and a sum per parameter."""
        import torch

        self = cls.__new__(cls)
        target = name or str(getattr(model, "name_or_path", "") or "in-memory")
        Backend.__init__(self, target, options, chat_template=chat_template, max_length=max_length)
        self._torch = torch
        self.gguf_file = None
        self.revision = None
        self.device = str(model.device)
        self.dtype_name = str(model.dtype).removeprefix("torch.")
        self._setup(tokenizer, model, chat_template, max_length, shared_prefix)
        self._fingerprint = dict(fingerprint) if fingerprint else self._memory_fingerprint()
        return self

    def _memory_fingerprint(self) -> dict[str, Any]:
        import hashlib

        cfg = self.model.config.to_dict()
        cfg.pop("transformers_version", None)
        h = hashlib.sha256(f"dtype={self.dtype_name}\n{json.dumps(cfg, sort_keys=True, default=str)}".encode())
        with self._torch.no_grad():
            for pname, p in self.model.named_parameters():
                h.update(f"{pname}{tuple(p.shape)}{float(p.detach().float().sum()):.9g}".encode())
        return {"id": f"hf:{self.target}", "hash": h.hexdigest()[:16]}

    def _setup(self, tokenizer: Any, model: Any, chat_template: bool | None, max_length: int | None, shared_prefix: bool) -> None:
        """Everything but loading: chat template, context length, padding, EOS and batch size."""
        target = self.target
        self.tokenizer, self.model = tokenizer, model
        self.model.eval()
        tok = self.tokenizer
        if chat_template is True and not tok.chat_template:
            raise UsageError(f"--model-args chat_template=true: the tokenizer of {target!r} has no chat template")
        self.use_chat_template = bool(tok.chat_template) if chat_template is None else bool(chat_template)
        if max_length is not None and (not isinstance(max_length, int) or max_length < 2):
            raise UsageError(f"--model-args max_length={max_length!r}: expected an integer >= 2")
        self.max_length = int(max_length) if max_length else self._default_max_length()
        self.pad_id = self._pad_id()
        eos = self.model.generation_config.eos_token_id if self.model.generation_config is not None else None
        eos = eos if eos is not None else tok.eos_token_id
        self.eos_ids: list[int] = [e for e in (eos if isinstance(eos, list) else [eos]) if e is not None]
        self.prefix_token_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        bs = self.options.batch_size
        self._auto_batch = bs == "auto" or bs is None
        if self._auto_batch:
            self.batch_size = 64 if self.device.startswith("cuda") or self.device == "auto" else 16
        else:
            try:
                self.batch_size = int(bs)
            except (TypeError, ValueError):
                raise UsageError(f"--batch-size {bs!r}: expected a positive integer or 'auto'") from None
            if self.batch_size < 1:
                raise UsageError(f"--batch-size {bs!r}: expected a positive integer or 'auto'")
        self.preferred_chunk = self.batch_size * 4
        self._fingerprint: dict[str, Any] | None = None
        self.shared_prefix = bool(shared_prefix)  # run shared prompt prefixes once when scoring (see _prefix)
        self._prefix: PrefixScorer | None = None
        self._prefix_verified = False

    # loading ------------------------------------------------------------------------------------
    @staticmethod
    def _resolve_target(target: str, gguf_file: str | None) -> tuple[str, str | None]:
        path = Path(target).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            if gguf_file and gguf_file != path.name:
                raise UsageError(f"--model hf:{target} is a GGUF file, but --model-args gguf_file={gguf_file} names another")
            return str(path.parent), path.name
        if path.exists():
            if not path.is_dir():
                raise UsageError(f"--model hf:{target}: not a model folder (expected a folder with config.json, or a .gguf file)")
            if gguf_file and not (path / gguf_file).is_file():
                raise UsageError(f"--model-args gguf_file={gguf_file}: no such file in {path}")
            return str(path), gguf_file
        if _looks_like_path(target):
            raise UsageError(f"--model hf:{target}: no such file or folder (pass a local model folder or a hub id like org/name)")
        require_hub("model", target, "pass a local model folder: --model hf:PATH")
        return target, gguf_file

    def _resolve_device(self, device: str | None) -> str:
        torch = self._torch
        if device is None:
            return "cuda" if torch.cuda.is_available() else "cpu"
        device = str(device)
        if not re.fullmatch(r"cpu|auto|mps|cuda(:\d+)?", device):
            raise UsageError(f"--model-args device={device!r}: expected cpu, cuda, cuda:N, mps or auto")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"--model-args device={device}: CUDA is not available on this machine; use device=cpu")
        return device

    def _resolve_dtype(self, dtype: str) -> str:
        dtype = str(dtype)
        if dtype not in _DTYPES:
            raise UsageError(f"--model-args dtype={dtype!r}: expected one of {', '.join(_DTYPES)}")
        if dtype == "auto" and self.device == "cpu":
            return "float32"  # half precision on CPU is slow and imprecise
        return dtype

    def _load(self, trust_remote_code: bool) -> tuple[Any, Any]:
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if self.revision:
            kw["revision"] = self.revision
        if self.gguf_file:
            kw["gguf_file"] = self.gguf_file
        mkw: dict[str, Any] = dict(kw)
        dtype = self.dtype_name if self.dtype_name == "auto" else getattr(self._torch, self.dtype_name)
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        mkw["dtype" if (major, minor) >= (4, 56) else "torch_dtype"] = dtype
        if self.device == "auto":
            mkw["device_map"] = "auto"
        where = self.target + (f" ({self.gguf_file})" if self.gguf_file else "")
        hint = "" if Path(self.target).exists() else "; pass a local path"
        try:
            tok = AutoTokenizer.from_pretrained(self.target, **kw)
            model = AutoModelForCausalLM.from_pretrained(self.target, **mkw)
        except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
            msg = (" ".join(str(exc).split()) or exc.__class__.__name__)[:300].rstrip(". ")
            raise UsageError(f"cannot load model {where}: {msg}{hint}") from None
        if self.device != "auto":
            model.to(self.device)
        return tok, model

    def _default_max_length(self) -> int:
        cfg = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx"):
            v = getattr(cfg, attr, None)
            if isinstance(v, int) and v > 0:
                return v
        ml = getattr(self.tokenizer, "model_max_length", None)
        return ml if isinstance(ml, int) and 0 < ml < 1_000_000 else 2048

    def _pad_id(self) -> int:
        tok = self.tokenizer
        for cand in (tok.pad_token_id, tok.eos_token_id, getattr(self.model.config, "pad_token_id", None)):
            if isinstance(cand, int):
                return cand
        return 0

    @property
    def input_device(self) -> Any:
        return self.model.device

    # prompts ------------------------------------------------------------------------------------
    def _encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """Token ids of ``text``; the tokenizer's default special tokens, but never a second BOS."""
        tok = self.tokenizer
        if add_special_tokens is None:
            bos = tok.bos_token
            add_special_tokens = not (bos and text.startswith(bos))
        return list(tok(text, add_special_tokens=add_special_tokens)["input_ids"])

    def render_prompt(self, prompt: Prompt, system_prompt: str | None = None) -> tuple[str, bool]:
        """The text sent to the model and whether the tokenizer may add its special tokens.

        A chat-templated prompt already holds every special token the template wants (BOS
        included), so it is encoded without adding any, as ``apply_chat_template`` does.
        """
        if isinstance(prompt, str):
            text = f"{system_prompt}\n\n{prompt}" if system_prompt else prompt
            bos = self.tokenizer.bos_token
            return text, not (bos and text.startswith(bos))
        messages = [dict(m) for m in prompt]
        if system_prompt and not any(m.get("role") == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": system_prompt})
        if not self.use_chat_template:
            return render_plain_chat(messages), True
        from jinja2 import TemplateError

        try:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except TemplateError:
            if not any(m.get("role") == "system" for m in messages):
                raise
            text = self.tokenizer.apply_chat_template(_merge_system(messages), tokenize=False, add_generation_prompt=True)
        return str(text), False

    def encode_prompt(self, prompt: Prompt, system_prompt: str | None = None) -> list[int]:
        """The token ids a generation request sends to the model (chat template applied)."""
        text, special = self.render_prompt(prompt, system_prompt)
        return self._encode(text, special)

    # batching -----------------------------------------------------------------------------------
    def _in_batches(self, items: list[Any], fn: Any) -> list[Any]:
        """``fn`` over consecutive batches of ``items``; with ``--batch-size auto`` an out-of-memory
        error halves the batch size and retries."""
        torch = self._torch
        out: list[Any] = []
        start = 0
        while start < len(items):
            batch = items[start:start + self.batch_size]
            try:
                out.extend(fn(batch))
            except torch.cuda.OutOfMemoryError:
                if not self._auto_batch or self.batch_size == 1:
                    raise BackendError(f"hf:{self.target}: out of GPU memory at batch size {self.batch_size}; "
                                       "pass a smaller --batch-size") from None
                gc.collect()
                torch.cuda.empty_cache()
                self.batch_size = max(1, self.batch_size // 2)
                continue
            start += len(batch)
        return out

    # generation ---------------------------------------------------------------------------------
    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        out: list[Generation | None] = [None] * len(requests)
        groups: dict[tuple[int, tuple[str, ...]], list[int]] = defaultdict(list)
        for i, r in enumerate(requests):
            groups[(int(r.params.max_new_tokens), tuple(r.params.stop))].append(i)
        for (max_new, stop), idxs in groups.items():
            keep = max(1, self.max_length - max_new)
            ids = {i: self.encode_prompt(requests[i].prompt, requests[i].system_prompt)[-keep:] for i in idxs}
            order = sorted(idxs, key=lambda i: -len(ids[i]))

            def run(batch: list[int], max_new: int = max_new, stop: tuple[str, ...] = stop) -> list[tuple[int, Generation]]:
                gens = self._generate_batch([ids[i] for i in batch], [requests[i] for i in batch], max_new, stop)
                return list(zip(batch, gens))

            for i, g in self._in_batches(order, run):
                out[i] = g
        return [g for g in out if g is not None]

    def _generate_batch(self, prompts: list[list[int]], reqs: list[GenerationRequest], max_new: int,
                        stop: tuple[str, ...]) -> list[Generation]:
        torch = self._torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], dtype=torch.long)
        processors = LogitsProcessorList()
        top_k = max(int(r.params.logprobs) for r in reqs)
        recorder = TopLogprobs(top_k) if top_k > 0 else None
        if recorder is not None:  # first, so it sees the model's own distribution
            processors.append(recorder)
        if any(r.params.temperature > 0 for r in reqs):
            seeds = [request_seed(r.params.seed, r.prompt, r.system_prompt) for r in reqs]
            processors.append(RowSampler([r.params.temperature for r in reqs], [r.params.top_p for r in reqs], seeds))
        criteria = StoppingCriteriaList([StopStrings(self.tokenizer, stop, width)]) if stop else StoppingCriteriaList()
        cfg = GenerationConfig(max_new_tokens=max_new, do_sample=False, num_beams=1, eos_token_id=self.eos_ids or None,
                               pad_token_id=self.pad_id)
        t0 = time.perf_counter()
        with torch.inference_mode():
            seqs = self.model.generate(input_ids=input_ids.to(self.input_device), attention_mask=mask.to(self.input_device),
                                       generation_config=cfg, logits_processor=processors, stopping_criteria=criteria)
        per = (time.perf_counter() - t0) / len(prompts)
        eos = set(self.eos_ids)
        gens = []
        for b, (prompt, row) in enumerate(zip(prompts, seqs[:, width:].tolist())):
            # the text ends at the first EOS; a row stopped early by a stop string is padded instead, so
            # trailing pads go too (a pad the model generated mid-text stays, as lm-eval keeps it)
            n = next((k for k, t in enumerate(row) if t in eos), len(row))
            while n and row[n - 1] == self.pad_id:
                n -= 1
            text = self.tokenizer.decode(row[:n], skip_special_tokens=True)
            lps = recorder.tokens(self.tokenizer, b, row[:n], reqs[b].params.logprobs) if recorder and reqs[b].params.logprobs else None
            cut = cut_at_stop(text, stop)
            ended = n < len(row) and row[n] in eos or cut != text or n < max_new
            gens.append(Generation(text=cut, latency_s=per, num_tokens=n, tokens_in=len(prompt),  # EOS not counted
                                   finish_reason="stop" if ended else "length", token_logprobs=lps))
        return gens

    # provenance ---------------------------------------------------------------------------------
    def _model_dir(self) -> Path | None:
        if Path(self.target).is_dir():
            return Path(self.target)
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.target, revision=self.revision, local_files_only=True))
        except Exception:  # noqa: BLE001 - not in the local cache: fingerprint from the config alone
            return None

    def fingerprint(self) -> dict[str, Any]:
        """``{"id": "hf:TARGET", "hash": ...}``: sha256 of config.json, the weight files (name, size,
        first/last MiB), the GGUF file and the dtype. Moving a model folder keeps its hash."""
        if self._fingerprint is None:
            import hashlib

            folder = self._model_dir()
            parts: list[str] = [f"dtype={self.dtype_name}"]
            cfg_file = folder / "config.json" if folder else None
            if cfg_file is not None and cfg_file.is_file() and not self.gguf_file:
                parts.append(cfg_file.read_text(encoding="utf-8"))
            else:
                cfg = self.model.config.to_dict()
                cfg.pop("transformers_version", None)
                parts.append(json.dumps(cfg, sort_keys=True, default=str))
            if folder is not None:
                if self.gguf_file:
                    parts.append(file_digest(folder / self.gguf_file))
                else:
                    for f in sorted(folder.iterdir()):
                        if f.is_file() and (f.name.endswith(_WEIGHT_SUFFIXES) or f.name.endswith(".index.json")):
                            parts.append(file_digest(f))
            digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
            tid = self.target + (f"/{self.gguf_file}" if self.gguf_file else "")
            self._fingerprint = {"id": f"hf:{tid}", "hash": digest}
        return dict(self._fingerprint)

    def close(self) -> None:
        torch = self._torch
        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
