"""Reading drift and token-shift results (``drift.json``, ``token_shift.json``) for the report.

Both files are read loosely, by shape rather than by exact layout, so the report keeps working as the
drift command grows:

- a **paired comparison** is any object with ``delta`` and at least one of ``b01``/``b10``/``p_value``/``test``
  (``alignbench.stats.paired.PairedDelta.as_dict()``, as ``alignbench drift`` writes per task, metric and
  category); its label is the path of keys leading to it, without the ``tasks``/``metrics`` levels
  (``harmful_rate/harmful_rate``, ``harmful_rate/harmful_rate [cyber]`` for a ``by_category`` entry,
  ``... (unpaired)`` under ``task_metrics``). ``b01`` counts samples that went 0 -> 1 from run A to run B
  (e.g. refused -> answered for harmful_rate), ``b10`` the reverse.
- a **flip list** is a list under a key containing ``flip`` (sample ids or records); its length is shown.
- a **token-shift profile** is any object with ``unshifted``, ``marginal`` and ``shifted`` (shares or
  counts, normalised to shares; or metric records ``{"value", "ci_low", "ci_high"}`` as
  ``alignbench drift`` writes them), with a per-position KL: a numeric list under a key containing
  ``kl``, or the mean over ``samples: [{"positions": [...], "kl": [...]}]`` by answer position; and
  ``top_shifted_tokens`` when given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class DriftEntry:
    label: str
    category: str | None
    n: int | None
    a: float | None
    b: float | None
    delta: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    test: str | None
    b01: int | None
    b10: int | None


@dataclass
class TokenShiftProfile:
    label: str
    shares: dict[str, float]  # unshifted / marginal / shifted, summing to 1
    kl: list[float] | None  # per-position KL, if given
    ci: dict[str, tuple[float, float]] | None = None  # share CIs, when the file has them
    top_tokens: list[dict[str, Any]] | None = None  # [{"token", "count", "share_of_shifted"}]


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _walk(data: Any, path: tuple[str, ...] = ()):
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _walk(v, path + (str(k),))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            if isinstance(v, (dict, list)):
                yield from _walk(v, path + (str(i),))


def _label(path: tuple[str, ...]) -> tuple[str, str | None]:
    parts, category, unpaired = list(path), None, False
    if len(parts) >= 2 and parts[-2].startswith("by_"):
        category = parts[-1]
        parts = parts[:-2]
    if "task_metrics" in parts:
        unpaired = True
    parts = [p for p in parts if p not in ("tasks", "metrics", "task_metrics")]
    label = "/".join(parts) + (f" [{category}]" if category else "") + (" (unpaired)" if unpaired else "")
    return label, category


def drift_entries(data: Any) -> list[DriftEntry]:
    out = []
    for path, d in _walk(data):
        if isinstance(d, dict) and _num(d.get("delta")) is not None and any(k in d for k in ("b01", "b10", "p_value", "test")):
            label, category = _label(path)
            label = label or str(d.get("metric") or "delta")
            b01, b10 = d.get("b01"), d.get("b10")
            n = d.get("n", d.get("n_b"))
            out.append(DriftEntry(label, category, int(n) if _num(n) is not None else None, _num(d.get("a")), _num(d.get("b")), float(d["delta"]),
                                  _num(d.get("ci_low")), _num(d.get("ci_high")), _num(d.get("p_value")), d.get("test"),
                                  int(b01) if _num(b01) is not None else None, int(b10) if _num(b10) is not None else None))
    return out


def flip_lists(data: Any) -> list[tuple[str, int]]:
    """(label, length) of every flip list."""
    return [("/".join(path), len(v)) for path, v in _walk(data) if path and "flip" in path[-1].lower() and isinstance(v, list)]


SHIFT_KEYS = ("unshifted", "marginal", "shifted")


def _share(x: Any) -> float | None:
    return _num(x.get("value")) if isinstance(x, dict) else _num(x)


def _kl_list(d: dict[str, Any]) -> list[float] | None:
    for k, v in d.items():
        if "kl" in str(k).lower() and isinstance(v, list) and v and all(_num(x) is not None for x in v):
            return [float(x) for x in v]
    samples = d.get("samples")
    if isinstance(samples, list):
        sums: dict[int, float] = {}
        counts: dict[int, int] = {}
        for smp in samples:
            if not isinstance(smp, dict) or not isinstance(smp.get("kl"), list):
                continue
            positions = smp.get("positions") if isinstance(smp.get("positions"), list) else range(len(smp["kl"]))
            for pos, kl in zip(positions, smp["kl"]):
                if _num(kl) is not None and _num(pos) is not None:
                    sums[int(pos)] = sums.get(int(pos), 0.0) + float(kl)
                    counts[int(pos)] = counts.get(int(pos), 0) + 1
        if sums:
            return [sums[i] / counts[i] if i in sums else float("nan") for i in range(max(sums) + 1)]
    return None


def token_shift_profiles(data: Any) -> list[TokenShiftProfile]:
    """Every profile in ``data``; the per-position KL is taken from the profile, else from the top level."""
    out = []
    for path, d in _walk(data):
        if not isinstance(d, dict) or not all(_share(d.get(k)) is not None for k in SHIFT_KEYS):
            continue
        vals = {k: float(_share(d[k])) for k in SHIFT_KEYS}  # type: ignore[arg-type]
        total = sum(vals.values())
        records = all(isinstance(d[k], dict) for k in SHIFT_KEYS)
        shares = vals if records else {k: (v / total if total else 0.0) for k, v in vals.items()}
        ci = None
        if records and all(_num(d[k].get("ci_low")) is not None and _num(d[k].get("ci_high")) is not None for k in SHIFT_KEYS):
            ci = {k: (float(d[k]["ci_low"]), float(d[k]["ci_high"])) for k in SHIFT_KEYS}
        kl = _kl_list(d)
        if kl is None and isinstance(data, dict) and path:
            if len(path) == 2 and path[0] == "by_task" and isinstance(data.get("samples"), list):  # this task's samples
                kl = _kl_list({"samples": [x for x in data["samples"] if isinstance(x, dict) and x.get("task") == path[1]]})
            elif len(path) == 1:  # a sibling of the profile
                kl = _kl_list({k: v for k, v in data.items() if k != path[0]})
        top = d.get("top_shifted_tokens")
        top = [t for t in top if isinstance(t, dict)] if isinstance(top, list) else None
        label = "/".join(p for p in path if p not in ("by_task", "token_shift")) or "token shift"
        out.append(TokenShiftProfile(label, shares, kl, ci, top or None))
    return out
