"""TensorBoard: event files under ``<folder>/tensorboard`` of the folder the command writes (a run, a track,
a compare folder; a gate writes under the candidate run's). Metrics are scalars at their step, the config
and samples are text (JSON and a Markdown table), read back by TensorBoard or its ``EventAccumulator``."""

from __future__ import annotations

import json
from typing import Any

from alignbench.integrations.trackers import Tracker, TrackerContext, tracker_error

TABLE_ROWS = 200  # samples shown in one text summary


def _cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows[:TABLE_ROWS]]
    if len(rows) > TABLE_ROWS:
        lines.append(f"\n({len(rows) - TABLE_ROWS} more rows not shown)")
    return "\n".join(lines)


class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def __init__(self, ctx: TrackerContext) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = ctx.folder / "tensorboard"
        try:
            self.writer = SummaryWriter(log_dir=str(self.logdir))
        except OSError as exc:
            raise tracker_error(self.name, exc) from None

    def log_config(self, config: dict[str, Any]) -> None:
        self.writer.add_text("alignbench/config", "```json\n" + json.dumps(config, indent=2, default=str) + "\n```", 0)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, float(v), global_step=int(step or 0))

    def log_table(self, key: str, rows: list[dict[str, Any]], step: int | None = None) -> None:
        self.writer.add_text(key, markdown_table(rows), int(step or 0))

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def open_tracker(ctx: TrackerContext) -> Tracker:
    return TensorBoardTracker(ctx)
