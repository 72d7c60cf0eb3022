"""The checkpoints a track evaluates: folders given by the user (or a quoted glob track expands itself),
each with its training step, in step order.

A folder's step is ``global_step`` of its ``trainer_state.json`` (what transformers' Trainer saves), else
the number its name ends with (``checkpoint-500``, ``step_500``, ``500``). A folder must hold a model
(``config.json`` or a ``.gguf`` file). No checkpoint, two with the same step, a folder that is not a model
or whose step cannot be told: a one-line UsageError.
"""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass
from pathlib import Path

from alignbench.errors import UsageError

_GLOB = re.compile(r"[*?\[]")
_TRAILING_NUMBER = re.compile(r"(\d+)$")
TRAINER_STATE = "trainer_state.json"


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path

    @property
    def run_id(self) -> str:
        return f"step-{self.step}"


def is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file() or any(path.glob("*.gguf"))


def step_of(path: Path) -> int:
    """The training step of a checkpoint folder (trainer_state.json's global_step, else the number ending its name)."""
    state = path / TRAINER_STATE
    if state.is_file():
        try:
            step = json.loads(state.read_text(encoding="utf-8")).get("global_step")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            raise UsageError(f"{state}: not a readable trainer state (JSON object with global_step)") from None
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
            return step
        raise UsageError(f"{state}: global_step is {step!r}, not a step number")
    m = _TRAILING_NUMBER.search(path.name)
    if m is None:
        raise UsageError(f"checkpoint {path}: cannot tell its step (no {TRAINER_STATE}, no number ending its name such as checkpoint-500)")
    return int(m.group(1))


def expand(args: list[str]) -> list[Path]:
    """Folders named by ``args``: a path, or a glob pattern (its matching folders, sorted); each once."""
    out: list[Path] = []
    for a in args:
        if _GLOB.search(a) and not Path(a).expanduser().exists():
            matches = [Path(m) for m in sorted(glob.glob(str(Path(a).expanduser()))) if Path(m).is_dir()]
            if not matches:
                raise UsageError(f"checkpoint pattern {a!r} matches no folder")
            out += matches
        else:
            p = Path(a).expanduser()
            if not p.exists():
                raise UsageError(f"checkpoint {a}: no such folder")
            if not p.is_dir():
                raise UsageError(f"checkpoint {a}: not a folder (expected a model folder such as out/checkpoint-500)")
            out.append(p)
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]  # type: ignore[func-returns-value]


def find_checkpoints(args: list[str], every: int | None = None) -> list[Checkpoint]:
    """The checkpoints in step order; ``every``: only those whose step is a multiple of it."""
    if not args:
        raise UsageError("track: give at least one checkpoint folder (or a quoted glob such as \"out/checkpoint-*\")")
    found: dict[int, Checkpoint] = {}
    for path in expand(args):
        if not is_model_folder(path):
            raise UsageError(f"checkpoint {path}: not a model folder (no config.json or .gguf file)")
        step = step_of(path)
        if step in found:
            raise UsageError(f"checkpoints {found[step].path} and {path} both have step {step}; give one of them")
        found[step] = Checkpoint(step, path)
    out = [found[s] for s in sorted(found)]
    if every is not None:
        out = [c for c in out if c.step % every == 0]
        if not out:
            raise UsageError(f"--every {every}: no checkpoint step is a multiple of {every} (steps: {sorted(found)})")
    return out


__all__ = ["TRAINER_STATE", "Checkpoint", "expand", "find_checkpoints", "is_model_folder", "step_of"]
