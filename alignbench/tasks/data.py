"""Rows from a task's data source, mapped into ``Sample`` records.

Sources, in order of precedence: a path given on the CLI (``--data-files TASK=PATH``), the YAML's
``data_files`` (relative to the YAML file, which must stay inside its folder: a path that leaves it, ``../``,
an absolute path or a link, reads only with ``--trust-task-code``, unless it is one of alignbench's own data
files), the YAML's ``hub`` id.
``--data-files TASK=hub`` skips the YAML's local files and loads its ``hub`` id. A folder stands for
the data files under it (sorted). ``dataset.loader`` replaces the file/hub reading for layouts that
need more than rows (fields at the top of a JSON file, several hub configs).
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from alignbench.config import TaskConfig
from alignbench.errors import UsageError
from alignbench.hub import require_hub
from alignbench.paths import is_shipped
from alignbench.jsonl import iter_objects
from alignbench.tasks.task_code import task_function
from alignbench.types import GenerationParams, Sample

Row = dict[str, Any]
_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


HUB_OVERRIDE = "hub"  # --data-files TASK=hub: load the task's hub id even if the YAML names local files


def resolve_data_paths(cfg: TaskConfig, override: str | None = None, trust: bool = False) -> list[Path]:
    """The local files a task reads (empty when it loads from the hub). A task file may name data outside its own
    folder (``../x``, ``/abs/x``, a link out) only when ``trust`` (``--trust-task-code``): a shared task file must
    not read any file on the machine by being evaluated."""
    if override == HUB_OVERRIDE:
        if not cfg.dataset.hub:
            raise UsageError(f"--data-files {cfg.name}=hub: task {cfg.name!r} names no hub dataset (dataset.hub)")
        return []
    base: Path | None = None
    if override:
        paths = [Path(p).expanduser() for p in override.split(";")]
    else:
        files = cfg.dataset.data_files
        if not files:
            return []
        base = Path(cfg.source).resolve().parent if cfg.source else Path.cwd()
        paths = []
        for f in [files] if isinstance(files, str) else files:
            if not f or "\x00" in f:
                raise UsageError(f"{cfg.source}: field 'dataset.data_files': {f!r} is not a file name")
            p = Path(f).expanduser()
            p = p if p.is_absolute() else (base / p).resolve()
            if base not in p.resolve().parents and not is_shipped(p) and not trust:  # alignbench's own data sets are public
                raise UsageError(f"{cfg.source}: field 'dataset.data_files': {f!r} points outside the task's folder; name the "
                                 f"data with --data-files {cfg.name}=PATH, or pass --trust-task-code if you trust this task file")
            paths.append(p)
    for p in paths:
        try:
            found = p.is_file()
        except (OSError, ValueError) as exc:  # name too long, embedded NUL, ...
            raise UsageError(f"task {cfg.name!r}: data file {str(p)[:200]!r}: {exc.__class__.__name__}: {exc}") from None
        if not found and not p.is_dir():
            raise UsageError(f"task {cfg.name!r}: data file {p} not found")
    return _expand_folders(cfg, paths, None if trust else base)


def _expand_folders(cfg: TaskConfig, paths: list[Path], base: Path | None) -> list[Path]:
    """Each folder -> the data files under it, sorted; files found in a task's own folder must stay in it."""
    out: list[Path] = []
    for p in paths:
        if not p.is_dir():
            out.append(p)
            continue
        found = sorted(f for f in p.rglob("*") if f.is_file() and any(s.lower() in _FORMATS for s in f.suffixes))
        if not found:
            raise UsageError(f"task {cfg.name!r}: folder {p} holds no {'/'.join(s[1:] for s in _FORMATS)} files")
        if base is not None and base in p.resolve().parents and any(base not in f.resolve().parents for f in found):
            raise UsageError(f"{cfg.source}: field 'dataset.data_files': folder {p} links outside the task's folder")
        out.extend(found)
    return out


def _format_of(path: Path, declared: str | None) -> str:
    if declared:
        return declared
    suffixes = [s for s in path.suffixes if s != ".gz"]
    fmt = _FORMATS.get(suffixes[-1].lower()) if suffixes else None
    if not fmt:
        raise UsageError(f"{path}: cannot tell the data format from the extension; set dataset.format (csv, json, jsonl, parquet, tsv)")
    return fmt


def read_rows(path: Path, fmt: str | None = None, encoding: str = "utf-8") -> list[Row]:
    """Read a local csv/tsv/json/jsonl/parquet file (optionally .gz, text in ``encoding``) into a list of dicts."""
    import pandas as pd

    fmt = _format_of(path, fmt)
    try:
        if fmt == "parquet":  # a missing value is None, as in every other format (pandas gives NaN, which JSON cannot hold)
            df = pd.read_parquet(path)
            return df.astype(object).where(df.notna(), None).to_dict("records")
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        try:
            text = raw.decode("utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding)
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: not {encoding} text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                             "name the file's encoding in the task YAML's dataset block, e.g. 'encoding: latin-1'") from None
        if fmt in ("csv", "tsv"):
            df = pd.read_csv(io.StringIO(text), sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False)
            return df.to_dict("records")
        if fmt == "jsonl":
            return [row for _, row in iter_objects(text, str(path))]
        data = json.loads(text)
    except UsageError:
        raise
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg})") from None
    except Exception as exc:  # pandas/pyarrow parse errors, bad encodings
        raise UsageError(f"{path}: cannot read as {fmt} ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(data, dict):  # {"examples": [...]} or {"data": [...]}: the first list of records
        lists = [v for v in data.values() if isinstance(v, list)]
        if not lists:
            raise UsageError(f"{path}: JSON object holds no list of records")
        data = lists[0]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise UsageError(f"{path}: expected a list of JSON objects")
    return data


def _load_hub(cfg: TaskConfig) -> list[Row]:
    ds = cfg.dataset
    try:
        local = Path(ds.hub).exists()  # datasets.load_dataset would read a local folder of that name
    except (OSError, ValueError):
        local = False
    if local:
        raise UsageError(f"{cfg.source or cfg.name}: field 'dataset.hub': {ds.hub!r} is a local path; name local data in dataset.data_files")
    require_hub("dataset", ds.hub, f"pass --data-files {cfg.name}=PATH")
    try:
        import datasets

        loaded = datasets.load_dataset(ds.hub, ds.name, split=ds.split)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise UsageError(f"task {cfg.name!r}: cannot load hub dataset {ds.hub!r} ({first[:200]}); offline, pass --data-files {cfg.name}=PATH") from None
    return [dict(r) for r in loaded]


def load_rows(cfg: TaskConfig, override: str | None = None, trust_code: bool = False) -> list[Row]:
    """The task's rows; ``trust_code`` lets ``dataset.loader`` name code outside alignbench's hooks and
    the task's folder (``alignbench.tasks.task_code``)."""
    paths = resolve_data_paths(cfg, override, trust_code)
    if cfg.dataset.loader and (paths or cfg.dataset.hub):
        loaded = task_function(cfg.dataset.loader, cfg, "dataset.loader", trust_code)(cfg, paths)
        if not isinstance(loaded, list) or not all(isinstance(r, dict) for r in loaded):
            raise UsageError(f"{cfg.source or cfg.name}: field 'dataset.loader': {cfg.dataset.loader!r} did not return a list of rows")
        return loaded
    if paths:
        rows: list[Row] = []
        for p in paths:
            rows.extend(read_rows(p, cfg.dataset.format, cfg.dataset.encoding))
        return rows
    if cfg.dataset.hub:
        return _load_hub(cfg)
    raise UsageError(f"task {cfg.name!r}: no data source; set dataset.hub or dataset.data_files, or pass --data-files {cfg.name}=PATH")


def _keep(row: Row, filt: dict[str, Any]) -> bool:
    for col, want in filt.items():
        have = row.get(col)
        if isinstance(want, list):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


def _as_list(value: Any, where: str) -> list[str] | None:
    """A column holding one string or a list of them (references, choices)."""
    if value is None:
        return None
    if isinstance(value, (str, int, float, bool)):
        return [str(value)]
    if isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and not isinstance(value, dict)):  # parquet gives arrays
        items = value.tolist() if hasattr(value, "tolist") else value
        if isinstance(items, list) and all(isinstance(v, (str, int, float, bool)) for v in items):
            return [str(v) for v in items]
    raise UsageError(f"{where}: expected a string or a list of strings, got {_short(value)}")


def _short(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _prompt_value(value: Any, where: str) -> Any:
    """A prompt cell: a string, or a chat conversation (list of {"role", "content"} messages)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        raise UsageError(f"{where}: expected a prompt string or a list of chat messages, got {_short(value)}")
    if isinstance(value, (int, float)):
        return str(value)
    if hasattr(value, "tolist"):  # parquet gives arrays
        value = value.tolist()
    if isinstance(value, list) and value and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    ):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    raise UsageError(f"{where}: expected a prompt string or a list of chat messages ({{role, content}}), got {_short(value)}")


def _pick_columns(cfg: TaskConfig, columns: set[str], source: str) -> dict[str, str]:
    """Sample field -> the column to read, choosing the first present of each field's alternatives."""
    ds = cfg.dataset
    mapping: dict[str, str | list[str]] = {"prompt": "prompt", **ds.columns}
    picked: dict[str, str] = {}
    missing: list[str] = []
    for fld, cols in mapping.items():
        alts = [cols] if isinstance(cols, str) else list(cols)
        have = [c for c in alts if c in columns]
        if have:
            picked[fld] = have[0]
        elif not (fld == "prompt" and cfg.prompt.template):
            missing.append(" or ".join(alts))
    missing += [c for c in list(ds.meta_columns) + list(ds.filter) if c not in columns]
    if missing:
        raise UsageError(f"{source}: missing column(s) {missing} for task {cfg.name!r}; columns are {sorted(columns)}")
    return picked


def rows_to_samples(cfg: TaskConfig, rows: list[Row], source: str) -> list[Sample]:
    """Map columns per ``dataset.columns`` (defaults: prompt; id falls back to the row index)."""
    ds = cfg.dataset
    cols = _pick_columns(cfg, set(rows[0]) if rows else set(), source) if rows else {}
    template = None
    if cfg.prompt.template:
        import jinja2
        from jinja2.sandbox import SandboxedEnvironment

        # sandboxed: a task YAML from elsewhere can format prompts, not reach Python internals
        env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
        try:
            template = env.from_string(cfg.prompt.template)
        except jinja2.TemplateSyntaxError as exc:
            raise UsageError(f"{cfg.source}: field 'prompt.template': {exc.message}") from None
    samples: list[Sample] = []
    seen: set[str] = set()
    required = [cols[f] for f in ("id", "prompt") if f in cols and not (f == "prompt" and template is not None)]
    required += list(ds.meta_columns)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UsageError(f"{source}: record {i + 1}: expected an object with named columns, got {type(row).__name__}")
        if not _keep(row, ds.filter):
            continue
        where = f"{source}: record {i + 1}"
        absent = [c for c in required if c not in row]
        if absent:
            raise UsageError(f"{where}: missing column(s) {absent} for task {cfg.name!r}")
        if "id" in cols:
            if row[cols["id"]] is None or isinstance(row[cols["id"]], (dict, list)):
                raise UsageError(f"{where}: column {cols['id']!r}: expected a sample id, got {_short(row[cols['id']])}")
            sid = str(row[cols["id"]])
        else:
            sid = str(i)
        if sid in seen:
            raise UsageError(f"{source}: duplicate sample id {sid!r} in task {cfg.name!r}")
        seen.add(sid)
        fields = {f: row.get(c) for f, c in cols.items()}
        if template is not None:
            try:
                prompt: Any = template.render(**{**{str(k): v for k, v in row.items()}, **fields})
            except Exception as exc:
                raise UsageError(f"{cfg.source}: field 'prompt.template': {str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__} ({where})") from None
        else:
            prompt = _prompt_value(fields["prompt"], f"{where}: column {cols['prompt']!r}")
        meta = {c: row[c] for c in ds.meta_columns}
        meta.update(ds.constants)
        category = fields.get("category", meta.get("category"))
        samples.append(
            Sample(
                id=sid,
                prompt=prompt,
                category=None if category in (None, "") else str(category),
                references=_as_list(fields.get("references"), f"{where}: column {cols.get('references')!r}"),
                choices=_as_list(fields.get("choices"), f"{where}: column {cols.get('choices')!r}"),
                target=fields.get("target"),
                meta=meta,
            )
        )
    return samples


def load_samples_for(cfg: TaskConfig, override: str | None = None, trust_code: bool = False) -> list[Sample]:
    """All samples of a task, in data order (``trust_code``: see ``load_rows``)."""
    # the hook is checked before any data is read
    hook = task_function(cfg.dataset.hook, cfg, "dataset.hook", trust_code) if cfg.dataset.hook else None
    rows = load_rows(cfg, override, trust_code)
    paths = resolve_data_paths(cfg, override, trust_code)
    source = str(paths[0]) if paths else f"hub dataset {cfg.dataset.hub!r}"
    samples = hook(rows, cfg) if hook is not None else rows_to_samples(cfg, rows, source)
    if not samples:
        raise UsageError(f"task {cfg.name!r}: {source} yielded no samples")
    return samples


SAMPLE_GENERATION_FIELDS = {"temperature": float, "top_p": float, "seed": int, "max_new_tokens": int}


def sample_params(params: GenerationParams, sample: Sample, task: str) -> GenerationParams:
    """The decoding of one sample: the task's, with the sample's ``meta.generation`` fields on top.

    ``meta.generation`` = ``{temperature, top_p, seed, max_new_tokens}`` (any subset) lets a data set
    vary decoding per sample, e.g. the drift family's decoding perturbation (same prompt at T=0.7).
    """
    over = sample.meta.get("generation") if isinstance(sample.meta, dict) else None
    if not over:
        return params
    where = f"task {task!r}: sample {sample.id!r}: meta.generation"
    if not isinstance(over, dict) or set(over) - set(SAMPLE_GENERATION_FIELDS):
        raise UsageError(f"{where}: expected an object with keys among {sorted(SAMPLE_GENERATION_FIELDS)}, got {str(over)[:60]!r}")
    fields: dict[str, Any] = {}
    for key, value in over.items():
        kind = SAMPLE_GENERATION_FIELDS[key]
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or (kind is int and not float(value).is_integer())):
            raise UsageError(f"{where}: {key!r} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        fields[key] = kind(value)
    bad = (fields.get("temperature", 0.0) < 0 or not 0 < fields.get("top_p", 1.0) <= 1 or fields.get("max_new_tokens", 1) < 1)
    if bad:
        raise UsageError(f"{where}: out of range ({fields}); need temperature >= 0, 0 < top_p <= 1, max_new_tokens >= 1")
    return replace(params, **fields)
