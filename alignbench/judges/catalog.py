"""Named judges from YAML (``judges/*.yaml``): the names tasks and ``--judges`` refer to."""

from __future__ import annotations

import hashlib
import inspect
from functools import lru_cache
from pathlib import Path
from typing import Any

from alignbench.config import JudgeConfig, load_config, load_named_configs
from alignbench.errors import UsageError
from alignbench.judges.base import Judge
from alignbench.judges.learned import is_judge_folder, load_folder, weights_file
from alignbench.paths import judge_dirs
from alignbench.registry import did_you_mean, judge_kinds
from alignbench.trust.cards import register_folder


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
            # its weights are its version: a judge retrained into the folder is another judge to --resume
            return JudgeConfig(name=folder.name, kind="embedding_clf", params={"path": str(folder)}, source=str(weights_file(folder)))
        folder = Path(name).expanduser()
        if folder.is_dir() and ((folder / "judge.json").is_file() or weights_file(folder) is not None):
            load_folder(folder)  # a judge folder missing a file: says which
        raise UsageError(f"unknown judge {name!r}{did_you_mean(name, list(self.judges))}")

    def build(self, name: str, model: str | None = None, model_args: dict[str, Any] | None = None, cache: bool | str = True) -> Judge:
        """The judge named ``name``; ``model`` / ``model_args`` (from ``--judge-model``/``--judge-model-args``)
        replace its judge model(s) and add backend options; ``cache=False`` (``--no-cache``) keeps a judge that
        caches its judge-model calls from reading or writing any cache, a path (``--cache PATH``) has it use that file
        (unless its YAML says ``cache: false``)."""
        cfg = self.config(name)
        cls = judge_kinds.get(cfg.kind)
        params = dict(cfg.params)
        if model is not None or model_args:
            params.update(judge_model_params(cls, cfg, model, model_args or {}))
        if "cache" in _init_params(cls) and (cache is False or (isinstance(cache, str) and params.get("cache", True) is not False)):
            params["cache"] = cache
        check_params(cls, cfg)
        if "base_dir" in inspect.signature(cls.__init__).parameters and cfg.source:
            params.setdefault("base_dir", str(Path(cfg.source).parent))  # for templates next to the YAML
        try:
            judge = cls(name=cfg.name, **params)
        except TypeError as exc:
            raise UsageError(f"{cfg.source}: field 'params': {exc}") from None
        judge.definition = cfg  # the YAML it was built from (a --judges FILE.yaml is not in the catalog by name)
        return judge


def _init_params(cls: type) -> set[str]:
    """The named keyword parameters of ``cls.__init__`` and of every ``__init__`` up its MRO (a judge
    passes the ones it does not name on to its base class, where Judge keeps the rest)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            for p in inspect.signature(vars(klass)["__init__"]).parameters.values():
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                    names.add(p.name)
    return names


def check_params(cls: type, cfg: JudgeConfig) -> None:
    """A judge YAML's ``params`` that its kind does not take are a one-line error with the close names,
    so a typo (``max_ngram_ordr``) never silently leaves a default in place."""
    accepted = _init_params(cls) - {"name"}
    for key in cfg.params:
        if key not in accepted:
            raise UsageError(f"{cfg.source or cfg.name}: field 'params.{key}': unknown param of judge kind {cfg.kind!r}"
                             f"{did_you_mean(key, sorted(accepted - {'base_dir'}))}")


def judge_model_params(cls: type, cfg: JudgeConfig, model: str | None, model_args: dict[str, Any]) -> dict[str, Any]:
    """The params that point a judge at another judge model: ``model`` (one backend spec) or, for a
    jury, ``models``; the YAML's environment-variable fallback no longer applies."""
    accepted = _init_params(cls)
    out: dict[str, Any] = {}
    if model is not None:
        if "models" in accepted:
            out.update(models=[model], models_env=None)
        elif "model" in accepted:
            out["model"] = model
            if "model_env" in accepted:
                out["model_env"] = None
        else:
            raise UsageError(f"--judge-model {cfg.name}=...: judge {cfg.name!r} (kind {cfg.kind}) runs no judge model")
    if model_args:
        if "model_args" not in accepted:
            raise UsageError(f"--judge-model-args: judge {cfg.name!r} (kind {cfg.kind}) takes no backend options")
        out["model_args"] = {**(cfg.params.get("model_args") or {}), **model_args}
    return out


def judge_model_overrides(name: str, models: dict[str, str], model_args: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``build()`` keywords of judge ``name`` from ``--judge-model`` / ``--judge-model-args`` values."""
    model = models.get(name)
    args = {**(model_args.get("", {}) if model is not None else {}), **model_args.get(name, {})}
    return {"model": model, "model_args": args or None}


def check_judge_model_names(catalog: "JudgeCatalog", models: dict[str, str], model_args: dict[str, dict[str, Any]],
                            running: list[str]) -> None:
    """Every judge named by ``--judge-model`` / ``--judge-model-args`` exists and is run (one-line UsageError)."""
    for flag, names in (("--judge-model", list(models)), ("--judge-model-args", [k for k in model_args if k])):
        for n in names:
            try:
                catalog.config(n)
            except UsageError as exc:
                raise UsageError(f"{flag}: {exc}") from None
            if n not in running:
                raise UsageError(f"{flag}: judge {n!r} is not run here (running: {', '.join(running) or 'none'})")
    if model_args.get("") and not models:
        raise UsageError("--judge-model-args without a JUDGE: prefix applies to the judges of --judge-model, and none is given")


@lru_cache(maxsize=1)
def builtin_judges() -> JudgeCatalog:
    return JudgeCatalog(judge_dirs())


def judge_version_hash(cfg: JudgeConfig) -> str:
    src = Path(cfg.source) if cfg.source else None
    blob = src.read_bytes() if src and src.is_file() else cfg.model_dump_json().encode()
    return hashlib.sha256(blob).hexdigest()[:16]
