"""``replay:PATH``: serve stored responses from a JSONL file, for judging saved outputs and CI.

Each line has ``response`` and a key: ``sample_id`` (optionally with ``task``) or ``prompt``
(a string, or a chat conversation matched by its last user turn). A run's own samples.jsonl works.
A request with no stored response is an error that names the task and sample.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from alignbench.backends.base import Backend, BackendOptions
from alignbench.errors import UsageError
from alignbench.jsonl import iter_objects
from alignbench.registry import backends
from alignbench.types import FINISH_REASONS, Generation, GenerationRequest, prompt_text


def _stored(row: dict[str, Any]) -> Generation:
    """The stored response with the accounting a samples.jsonl line carries (tokens_in/out, finish_reason)."""
    count = lambda k: row[k] if isinstance(row.get(k), int) and not isinstance(row.get(k), bool) else None  # noqa: E731
    reason = row.get("finish_reason")
    return Generation(text=row["response"], num_tokens=count("tokens_out"), tokens_in=count("tokens_in"),
                      finish_reason=reason if reason in FINISH_REASONS else None)


@backends.register("replay")
class ReplayBackend(Backend):
    """stored responses from a JSONL file, matched by (task, sample_id), sample_id or prompt"""

    name = "replay"
    cacheable = False  # the answer depends on (task, sample id), not only on the prompt; reading the file is the cache

    def __init__(self, target: str, options: BackendOptions | None = None) -> None:
        super().__init__(target, options)
        self.path = Path(target).expanduser()
        try:
            raw = self.path.read_bytes()
            text = raw.decode("utf-8-sig")
        except OSError as exc:
            raise UsageError(f"replay file {self.path}: cannot read ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            raise UsageError(f"replay file {self.path}: not UTF-8 text") from None
        self._hash = hashlib.sha256(raw).hexdigest()[:16]
        self.by_task_id: dict[tuple[str, str], Generation] = {}
        self.by_id: dict[str, Generation] = {}
        self.by_prompt: dict[str, Generation] = {}
        for n, row in iter_objects(text, f"replay file {self.path}"):
            if not isinstance(row.get("response"), str):
                raise UsageError(f"replay file {self.path}: line {n}: needs a string field 'response'")
            if row.get("sample_id") is None and row.get("prompt") is None:
                raise UsageError(f"replay file {self.path}: line {n}: needs 'sample_id' or 'prompt'")
            gen = _stored(row)
            if row.get("sample_id") is not None:
                sid = str(row["sample_id"])
                if row.get("task"):
                    self.by_task_id[(str(row["task"]), sid)] = gen
                self.by_id.setdefault(sid, gen)
            if row.get("prompt") is not None:
                self.by_prompt.setdefault(prompt_text(row["prompt"]).strip(), gen)

    def fingerprint(self) -> dict[str, Any]:
        return {"id": f"replay:{self.path.name}", "hash": self._hash}

    def _lookup(self, r: GenerationRequest) -> Generation:
        if r.sample_id is not None:
            if r.task and (r.task, r.sample_id) in self.by_task_id:
                return self.by_task_id[(r.task, r.sample_id)]
            if not self.by_task_id and r.sample_id in self.by_id:
                return self.by_id[r.sample_id]
        text = prompt_text(r.prompt).strip()
        if text in self.by_prompt:
            return self.by_prompt[text]
        raise UsageError(f"replay file {self.path}: no response for task {r.task!r} sample {r.sample_id!r}")

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        return [replace(self._lookup(r)) for r in requests]
