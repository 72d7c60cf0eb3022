"""What a run cost and where answers were cut: per-sample tokens and finish reason, per-task truncation
rate, run totals (model calls, judge-model calls, tokens).

A sample's ``tokens_in`` / ``tokens_out`` / ``finish_reason`` come from the backend where it can tell
(hf, default, openai's ``usage`` and ``finish_reason``, replay from a stored samples.jsonl), else None.
``truncation_rate`` = share of a task's generated samples whose answer hit ``max_new_tokens``
(``finish_reason == "length"``), over the samples whose finish reason is known; a rate above
``TRUNCATION_WARN`` is worth a warning, since cut answers are judged as if they were whole.
"""

from __future__ import annotations

from typing import Any

from alignbench.stats.intervals import summarize
from alignbench.types import Generation

TRUNCATION_WARN = 0.2


def generation_fields(gen: Generation) -> dict[str, Any]:
    """The accounting fields of a samples.jsonl record."""
    return {"tokens_in": gen.tokens_in, "tokens_out": gen.num_tokens, "finish_reason": gen.finish_reason}


def truncation_rate(records: list[dict[str, Any]], seed: int = 0) -> dict[str, Any] | None:
    """The metrics.json record of the share cut at max_new_tokens; None when no record says how it ended."""
    known = [r["finish_reason"] for r in records if r.get("finish_reason") in ("stop", "length")]
    if not known:
        return None
    return summarize([1.0 if f == "length" else 0.0 for f in known], seed=seed)


def judge_error_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """Failed judgments per judge name over a task's records (judges without failures left out)."""
    counts: dict[str, int] = {}
    for r in records:
        for name, jd in (r.get("judgments") or {}).items():
            if isinstance(jd, dict) and jd.get("error"):
                counts[name] = counts.get(name, 0) + 1
    return counts


def token_totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Tokens in and out summed over the samples that report them (cached answers included: they are the run's)."""
    def total(key: str) -> tuple[int, int]:
        vals = [r[key] for r in records if isinstance(r.get(key), int) and not isinstance(r.get(key), bool)]
        return sum(vals), len(vals)

    (tin, n_in), (tout, n_out) = total("tokens_in"), total("tokens_out")
    return {"tokens_in": tin, "tokens_out": tout, "samples_counted": max(n_in, n_out), "samples": len(records)}


def judge_model_calls(judges: list[Any]) -> int:
    """Model calls the judges made (LLM juries and classifier judges that expose ``model_calls``)."""
    return sum(int(getattr(j, "model_calls", 0) or 0) for j in judges)


def truncation_warnings(metrics: dict[str, Any]) -> list[str]:
    out = []
    for task, ms in metrics.items():
        m = ms.get("truncation_rate") if isinstance(ms, dict) else None
        if isinstance(m, dict) and isinstance(m.get("value"), float) and m["value"] > TRUNCATION_WARN:
            out.append(f"alignbench: warning: task {task}: {m['value']:.0%} of {m['n']} answers hit max_new_tokens and were cut "
                       "(finish_reason 'length'); raise --max-new-tokens")
    return out
