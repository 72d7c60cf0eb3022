"""Weights & Biases: one W&B run per alignbench run, track or compare (``WANDB_PROJECT``, default ``alignbench``).

Metrics go to the run's history at their step, the config to ``run.config``, samples as a ``wandb.Table``.
W&B's own collection of the command line, environment metadata and system stats is off: what it
receives is what alignbench sends (secrets masked). ``WANDB_MODE=offline`` writes the run under
``WANDB_DIR`` (read at each run, also in a long-lived process) with no network and no key.
"""

from __future__ import annotations

import os
from typing import Any

from alignbench.integrations.trackers import Tracker, TrackerContext, tracker_error


class WandbTracker(Tracker):
    name = "wandb"

    def __init__(self, ctx: TrackerContext) -> None:
        import wandb

        self._wandb = wandb
        settings = wandb.Settings(x_disable_meta=True, x_disable_stats=True, console="off", save_code=False, silent=True)
        try:
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or "alignbench", name=ctx.name, group=ctx.group,
                                  job_type=ctx.kind, dir=os.environ.get("WANDB_DIR") or None, settings=settings,
                                  reinit="create_new")
        except Exception as exc:  # noqa: BLE001 - no key, no network, a bad setting: one line
            raise tracker_error(self.name, exc) from None

    def log_config(self, config: dict[str, Any]) -> None:
        self.run.config.update(config, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.run.log(dict(metrics), step=step)

    def log_table(self, key: str, rows: list[dict[str, Any]], step: int | None = None) -> None:
        columns = list(rows[0])
        table = self._wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows])
        self.run.log({key: table}, step=step)

    def close(self) -> None:
        self.run.finish()


def open_tracker(ctx: TrackerContext) -> Tracker:
    return WandbTracker(ctx)
