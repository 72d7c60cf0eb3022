"""YAML loading and schema validation for task and judge definitions.

Every definition is a pydantic model with ``extra="forbid"``: an unknown or mistyped key is an error
that names the file and the field, never a silent default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alignbench.errors import UsageError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)  # NaN/inf would make run.json invalid JSON


class DatasetSpec(Strict):
    hub: str | None = None  # Hugging Face dataset id, loaded with datasets.load_dataset
    name: str | None = None  # hub config name
    split: str = "train"
    data_files: Union[str, list[str], None] = None  # local csv/json/jsonl/parquet (relative to the YAML file)
    format: Literal["csv", "json", "jsonl", "parquet", "tsv"] | None = None
    encoding: str = "utf-8"  # text encoding of local csv/tsv/json/jsonl files (a UTF-8 byte-order mark is skipped)
    columns: dict[str, Union[str, list[str]]] = Field(default_factory=dict)  # sample field -> column (or alternatives, first present wins)
    meta_columns: list[str] = Field(default_factory=list)  # columns copied into Sample.meta
    constants: dict[str, Any] = Field(default_factory=dict)  # fixed meta values (e.g. label: harmful)
    filter: dict[str, Any] = Field(default_factory=dict)  # keep rows whose column equals the value (or is in the list)
    hook: str | None = None  # "module:function" (rows, TaskConfig) -> list[Sample], where YAML cannot say it
    loader: str | None = None  # "module:function" (TaskConfig, paths) -> rows: reads files/hub itself (file-level fields, several hub configs); paths=[] means the hub

    @field_validator("hub")
    @classmethod
    def _hub_id(cls, v: str | None) -> str | None:
        # "name" or "owner/name": a hub id, never a path (local data goes in data_files, which stays in the task's folder)
        if v is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?", v):
            raise ValueError(f"{v!r} is not a Hugging Face dataset id (NAME or OWNER/NAME); put local files in data_files")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown text encoding {v!r} (e.g. utf-8, latin-1, cp1252, utf-16)") from None
        return v

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, v: dict[str, Any]) -> dict[str, Any]:
        allowed = {"id", "prompt", "category", "references", "choices", "target"}
        bad = sorted(set(v) - allowed)
        if bad:
            raise ValueError(f"unknown sample field(s) {bad}; allowed: {sorted(allowed)}")
        return v


class PromptSpec(Strict):
    template: str | None = None  # Jinja2 over the row's columns; default: the mapped prompt column
    system: str | None = None
    chat: bool = True  # send as a chat conversation (chat template / chat endpoint)


class GenerationSpec(Strict):
    max_new_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list)


class TaskConfig(Strict):
    name: str
    version: int | str = 1
    description: str = ""
    family: str | None = None
    group: list[str] = Field(default_factory=list)
    dataset: DatasetSpec
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    output_type: Literal["generate", "multiple_choice"] = "generate"
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    judges: list[str] = Field(default_factory=list)
    scorer: str | None = None
    scorer_args: dict[str, Any] = Field(default_factory=dict)
    cluster: str | None = None  # sample field or meta column grouping samples that are not independent (CIs resample them)
    source: str | None = Field(default=None, exclude=True)  # the YAML file it came from

    @field_validator("group", mode="before")
    @classmethod
    def _group_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class JudgeConfig(Strict):
    name: str
    kind: str
    description: str = ""
    version: int | str = 1
    params: dict[str, Any] = Field(default_factory=dict)
    source: str | None = Field(default=None, exclude=True)


def read_yaml(path: str | Path) -> Any:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{p}: cannot read ({exc.__class__.__name__}: {exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{p}:{where} malformed YAML: {problem}") from None


def _near(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """``; did you mean 'x'?`` for an unknown field at ``loc``, from the fields of the model that holds it."""
    from alignbench.registry import did_you_mean

    holder: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = holder.model_fields.get(part) if isinstance(holder, type) and issubclass(holder, BaseModel) else None
        if field is None:
            return ""
        inner = [a for a in (getattr(field.annotation, "__args__", None) or (field.annotation,))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner:
            return ""
        holder = inner[0]
    if not (isinstance(holder, type) and issubclass(holder, BaseModel)):
        return ""
    return did_you_mean(str(loc[-1]), list(holder.model_fields))


def validate(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` against ``model``; on failure raise a one-line error naming file and field."""
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = "unknown field" + _near(model, err["loc"]) if err["type"] == "extra_forbidden" else err["msg"]
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise UsageError(f"{source}: field '{field}': {msg}{more}") from None


def load_config(model: type[M], path: str | Path) -> M:
    cfg = validate(model, read_yaml(path), str(path))
    cfg.source = str(path)  # type: ignore[attr-defined]
    return cfg


def load_named_configs(model: type[M], dirs: list[Path], what: str) -> dict[str, M]:
    """Every ``*.yaml`` under ``dirs`` validated as ``model``, by its ``name``; a name defined twice is an error."""
    out: dict[str, M] = {}
    for d in dirs:
        for path in sorted(d.rglob("*.yaml")):
            cfg = load_config(model, path)
            name = cfg.name  # type: ignore[attr-defined]
            if name in out:
                raise UsageError(f"{path}: {what} name {name!r} already defined in {out[name].source}")  # type: ignore[attr-defined]
            out[name] = cfg
    return out
