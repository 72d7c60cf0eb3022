"""The settings of one evaluation: what ``alignbench eval`` was asked (``EvalConfig``) and each task made
ready to run (``PreparedTask``). Evaluate and its helpers (task setup, the run folder, run.json) all
read these, so they live apart from all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignbench.config import TaskConfig
from alignbench.judges.base import Judge
from alignbench.scorers.base import Scorer
from alignbench.types import Sample


@dataclass
class EvalConfig:
    model: str
    tasks: str
    model_args: dict[str, Any] = field(default_factory=dict)
    judges: list[str] = field(default_factory=list)
    limit: int | None = None
    output: str = "results"
    run_id: str | None = None
    seed: int = 0
    batch_size: int | str = "auto"
    concurrency: int = 8
    max_new_tokens: int | None = None
    temperature: float | None = None
    system_prompt: str | None = None
    cache: str | None = None  # path; None -> default path
    no_cache: bool = False
    resume: bool = False
    shard: tuple[int, int] | None = None
    data_files: dict[str, str] = field(default_factory=dict)
    reference_run: str | None = None  # run folder of the unaligned model (honesty scorer's known/unknown)
    urial: str | None = None  # "urial" | "urial:NAME": URIAL in-context alignment (alignbench.run.urial)
    harm_judge: str | None = None  # scorer_args harm_judge / refusal_judge of the tasks whose scorer takes them
    refusal_judge: str | None = None
    judge_models: dict[str, str] = field(default_factory=dict)  # --judge-model JUDGE=SPEC
    judge_model_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # --judge-model-args; "" = all of judge_models
    command: list[str] = field(default_factory=list)
    epochs: int = 1  # generations per prompt (alignbench.records.epochs)
    reducer: str = "mean"  # how a prompt's epochs reduce: mean | any | at_least_K
    trust_task_code: bool = False  # task hooks/loaders outside alignbench's own and the task's folder may run


@dataclass
class PreparedTask:
    cfg: TaskConfig
    samples: list[Sample]
    judges: list[Judge]
    scorer: Scorer
    data_paths: list[Path]
