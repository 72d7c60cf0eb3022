"""MLflow: one MLflow run per alignbench run, track or compare, through ``MlflowClient`` (no global active run).

The tracking store is MLflow's own setting (``MLFLOW_TRACKING_URI``); the experiment is
``MLFLOW_EXPERIMENT_NAME`` (default ``alignbench``). Metrics are logged at their step, the config as
flattened params plus ``alignbench/config.json``, samples as a JSON table artifact (``log_table``).
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from alignbench.integrations.trackers import Tracker, TrackerContext, tracker_error

PARAM_LIMIT = 500  # characters of a param value (MLflow stores up to 6000; long lists are in config.json)
BATCH = 900  # metrics per log_batch call (MLflow takes at most 1000)
_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


def _flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        text = json.dumps(obj, default=str) if not isinstance(obj, str) else obj
        out[_KEY.sub("_", prefix[:-1])[:250]] = text[:PARAM_LIMIT]
    return out


class MlflowTracker(Tracker):
    name = "mlflow"

    def __init__(self, ctx: TrackerContext) -> None:
        from mlflow import MlflowClient

        try:
            self.client = MlflowClient()
            exp_name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "alignbench"
            exp = self.client.get_experiment_by_name(exp_name)
            exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(exp_name)
            tags = {"alignbench.kind": ctx.kind} | ({"alignbench.group": ctx.group} if ctx.group else {})
            self.run_id = self.client.create_run(exp_id, run_name=ctx.name, tags=tags).info.run_id
        except Exception as exc:  # noqa: BLE001 - an unreachable server, a store MLflow refuses: one line
            raise tracker_error(self.name, exc) from None

    def log_config(self, config: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in _flatten(config).items() if k]
        for start in range(0, len(params), 90):
            self.client.log_batch(self.run_id, params=params[start:start + 90])
        self.client.log_dict(self.run_id, config, "alignbench/config.json")

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, int(step or 0)) for k, v in metrics.items()]
        for start in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, metrics=items[start:start + BATCH])

    def log_table(self, key: str, rows: list[dict[str, Any]], step: int | None = None) -> None:
        import pandas as pd

        name = key if step is None else f"{key}_step_{int(step)}"
        self.client.log_table(self.run_id, data=pd.DataFrame(rows), artifact_file=f"{name}.json")

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def open_tracker(ctx: TrackerContext) -> Tracker:
    return MlflowTracker(ctx)
