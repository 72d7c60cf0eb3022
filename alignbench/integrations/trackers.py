"""Experiment trackers (``--log wandb|mlflow|tensorboard[,...]``, ``log=`` on the callback): one small interface.

A tracker receives a run's configuration once, metrics (with their CI bounds) at a step, and tables of
samples. Each tracker is one module (``wandb_tracker``, ``mlflow_tracker``, ``tensorboard_tracker``) whose
package is an extra (``pip install "alignbench[wandb]"``); a missing one is a usage error naming the pip
command, raised before any work starts (``check_trackers``). Each is configured the way its library is:

- wandb: ``WANDB_PROJECT`` (default ``alignbench``), ``WANDB_ENTITY``, ``WANDB_MODE`` (``offline`` writes
  the run under ``WANDB_DIR`` for ``wandb sync`` later), ``WANDB_API_KEY`` read by wandb itself;
- mlflow: ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_NAME`` (default ``alignbench``);
- tensorboard: event files in the folder the command writes (``<folder>/tensorboard``).

Nothing secret is sent: configs are scrubbed of secret-named keys and every string sent has the values of
secret-named environment variables (``OPENAI_API_KEY``, ``HF_TOKEN``, ...) masked (``alignbench.integrations.masking``).
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignbench.errors import UsageError
from alignbench.integrations.masking import mask_text
from alignbench.registry import did_you_mean

#: tracker name -> (module, the package it imports, the extra that installs it)
TRACKERS: dict[str, tuple[str, str, str]] = {
    "wandb": ("alignbench.integrations.wandb_tracker", "wandb", "wandb"),
    "mlflow": ("alignbench.integrations.mlflow_tracker", "mlflow", "mlflow"),
    "tensorboard": ("alignbench.integrations.tensorboard_tracker", "tensorboard", "tensorboard"),
}


@dataclass(frozen=True)
class TrackerContext:
    """Where and under what name a command's results go."""

    name: str  # the tracker run's name: the run id, track id, compare id, gate candidate
    kind: str  # eval | track | compare | gate | training
    folder: Path  # the folder the command writes (file-based trackers write under it)
    group: str | None = None  # runs that belong together (a track's id)


class Tracker(ABC):
    """One tracker run. Steps are integers (a checkpoint's training step); ``None`` lets the tracker count."""

    name: str

    @abstractmethod
    def log_config(self, config: dict[str, Any]) -> None:
        """The run's settings and model fingerprint, once."""

    @abstractmethod
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Scalars keyed ``alignbench/<task>/<metric>`` (and ``..._ci_low``, ``..._ci_high``)."""

    @abstractmethod
    def log_table(self, key: str, rows: list[dict[str, Any]], step: int | None = None) -> None:
        """Rows with the same columns (samples): a W&B Table, an MLflow artifact, TensorBoard text."""

    @abstractmethod
    def close(self) -> None:
        """Finish the run and flush what is buffered."""


def parse_log(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"wandb,mlflow"`` (or a list) -> tracker names in order, each once; an unknown name is a UsageError."""
    if not value:
        return []
    parts = value.split(",") if isinstance(value, str) else [p for v in value for p in str(v).split(",")]
    names = list(dict.fromkeys(p.strip().lower() for p in parts if p.strip()))
    for n in names:
        if n not in TRACKERS:
            raise UsageError(f"--log {n!r}: not a tracker{did_you_mean(n, list(TRACKERS))}")
    return names


def check_trackers(names: list[str]) -> None:
    """Each tracker's package is importable, else a one-line UsageError with the pip command (before any work)."""
    for n in names:
        package, extra = TRACKERS[n][1], TRACKERS[n][2]
        if importlib.util.find_spec(package) is None:
            raise UsageError(f"--log {n}: the {package} package is not installed; pip install \"alignbench[{extra}]\"")


def open_tracker(name: str, ctx: TrackerContext) -> Tracker:
    check_trackers([name])
    module = importlib.import_module(TRACKERS[name][0])
    return module.open_tracker(ctx)


class Trackers:
    """Several trackers as one; a context manager that closes them all."""

    def __init__(self, names: list[str], ctx: TrackerContext) -> None:
        check_trackers(names)
        self.items: list[Tracker] = []
        try:
            for n in names:
                self.items.append(open_tracker(n, ctx))
        except BaseException:
            self.close()
            raise

    def __bool__(self) -> bool:
        return bool(self.items)

    def log_config(self, config: dict[str, Any]) -> None:
        for t in self.items:
            t.log_config(config)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if metrics:
            for t in self.items:
                t.log_metrics(metrics, step)

    def log_table(self, key: str, rows: list[dict[str, Any]], step: int | None = None) -> None:
        if rows:
            for t in self.items:
                t.log_table(key, rows, step)

    def close(self) -> None:
        items, self.items = self.items, []
        for t in items:
            t.close()

    def __enter__(self) -> Trackers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tracker_error(name: str, exc: BaseException) -> UsageError:
    """A tracker library's failure as a one-line UsageError (its first line, secrets masked)."""
    first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    return UsageError(f"--log {name}: {mask_text(first)[:300]}")


__all__ = ["TRACKERS", "Tracker", "TrackerContext", "Trackers", "check_trackers", "open_tracker", "parse_log", "tracker_error"]
