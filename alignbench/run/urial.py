"""URIAL: a base model aligned in context (Lin et al. 2023, Re-Align/URIAL), the drift family's baseline.

``--system-prompt urial`` (or ``urial:NAME``) runs each prompt as the authors do with a base model
(``src/vllm_infer/vllm_urial.py`` and ``src/adapt_utils.py``, mode ``urial``, commit 01928f8):

* the model input is the URIAL prompt file, then ``\\n# Query:\\n```{query}```\\n\\n# Answer:\\n```\\n``;
  ``query`` is the task's prompt as plain text (no chat template, no system message);
* generation stops at ``# Query`` (not kept), and the answer has every ````` replaced by a space
  and trailing whitespace removed.

``NAME`` is one of the authors' prompt files bundled under ``tasks/drift/urial/`` or a path to a
prompt file of the same shape. ``urial`` alone is ``inst_1k_v4.help`` ("no refusal": a system
instruction and three stylistic examples), ``urial:inst_1k_v4`` their "safer" prompt (one example is a
refusal). Both are the files of their main branch (commit b3d6f52), the files their script downloads
at run time (``src/legacy/vllm_infer/vllm_urial.py``, ``load_urial_prompt``); the same two files as
they were at commit 4c4d740 are bundled as ``inst_1k_v4.help.4c4d740`` and ``inst_1k_v4.4c4d740``
(what ``urial`` used before). Commits and sha256 digests: ``tasks/drift/urial/SOURCE``.
"""

from __future__ import annotations

import hashlib

from dataclasses import dataclass
from pathlib import Path

from alignbench.errors import UsageError
from alignbench.paths import task_dirs

DEFAULT_PROMPT = "inst_1k_v4.help"
STOP = ("# Query",)


@dataclass(frozen=True)
class Urial:
    name: str
    prefix: str

    @property
    def digest(self) -> str:
        """sha256 of the prompt file's text: run.json records it, and a resume must use the same prompt."""
        return hashlib.sha256(self.prefix.encode("utf-8")).hexdigest()

    def wrap(self, query: str) -> str:
        return f"{self.prefix}\n# Query:\n```{query}```\n\n# Answer:\n```\n"

    @staticmethod
    def clean(answer: str) -> str:
        return answer.replace("```", " ").rstrip()


def is_urial(spec: str | None) -> bool:
    return spec is not None and (spec == "urial" or spec.startswith("urial:"))


def bundled_prompts() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for d in task_dirs():
        for f in sorted((d / "drift" / "urial").glob("*.txt")):
            out.setdefault(f.name[: -len(".txt")], f)
    return out


def load_urial(spec: str) -> Urial:
    """``urial`` | ``urial:NAME`` (a bundled prompt) | ``urial:PATH`` -> the prompt to wrap queries in."""
    name = spec.partition(":")[2] or DEFAULT_PROMPT
    known = bundled_prompts()
    path = known.get(name) or Path(name).expanduser()
    if not path.is_file():
        raise UsageError(f"--system-prompt {spec}: no URIAL prompt {name!r}; bundled: {', '.join(sorted(known)) or 'none'}, "
                         "or give urial:PATH to a prompt file")
    try:
        return Urial(name, path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--system-prompt {spec}: cannot read {path} ({exc.__class__.__name__})") from None
