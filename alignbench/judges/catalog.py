"""Named judges from YAML (``judges/*.yaml``): the names tasks and ``--judges`` refer to."""

from __future__ import annotations

import hashlib
import inspect
from functools import lru_cache
from pathlib import Path

from alignbench.config import JudgeConfig, load_config, load_named_configs
from alignbench.errors import UsageError
from alignbench.judges.base import Judge
from alignbench.judges.learned import is_judge_folder
from alignbench.paths import judge_dirs
from alignbench.registry import did_you_mean, judge_kinds
from alignbench.validity import register_folder


class JudgeCatalog:
    def __init__(self, dirs: list[Path]) -> None:
        self.judges: dict[str, JudgeConfig] = load_named_configs(JudgeConfig, dirs, "judge")

    def config(self, name: str) -> JudgeConfig:
        if name in self.judges:
            return self.judges[name]
        if name.endswith((".yaml", ".yml")) and Path(name).is_file():
            return load_config(JudgeConfig, name)
        if is_judge_folder(name):  # a trained judge (alignbench judge-train)
            folder = Path(name).expanduser().resolve()
            register_folder(folder.name, folder)
            return JudgeConfig(name=folder.name, kind="embedding_clf", params={"path": str(folder)}, source=str(folder / "weights.npz"))
        raise UsageError(f"unknown judge {name!r}{did_you_mean(name, list(self.judges))}")

    def build(self, name: str) -> Judge:
        cfg = self.config(name)
        cls = judge_kinds.get(cfg.kind)
        params = dict(cfg.params)
        if "base_dir" in inspect.signature(cls.__init__).parameters and cfg.source:
            params.setdefault("base_dir", str(Path(cfg.source).parent))  # for templates next to the YAML
        try:
            judge = cls(name=cfg.name, **params)
        except TypeError as exc:
            raise UsageError(f"{cfg.source}: field 'params': {exc}") from None
        judge.definition = cfg  # the YAML it was built from (a --judges FILE.yaml is not in the catalog by name)
        return judge


@lru_cache(maxsize=1)
def builtin_judges() -> JudgeCatalog:
    return JudgeCatalog(judge_dirs())


def judge_version_hash(cfg: JudgeConfig) -> str:
    src = Path(cfg.source) if cfg.source else None
    blob = src.read_bytes() if src and src.is_file() else cfg.model_dump_json().encode()
    return hashlib.sha256(blob).hexdigest()[:16]
