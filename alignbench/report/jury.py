"""Agreement of an LLM jury in the report: for every judge column whose ``raw`` values are jury
verdicts (and for every aspect of a multi-aspect rubric), Fleiss' kappa over the samples every juror
labelled, how many samples that is, the unanimous share, the majority labels, and how many verdicts
failed to parse or to run. The items x jurors table is ``alignbench.stats.jury_agreement.verdict_table``,
the same one metrics.json's jury agreement reads; Fleiss' kappa comes from ``alignbench.stats.agreement``
(tested equal to statsmodels).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from alignbench.stats import agreement
from alignbench.stats.jury_agreement import VerdictTable, aspects_of, verdict_table, verdicts_of

__all__ = ["fleiss_kappa", "jury_agreement_table", "verdicts_of"]


def fleiss_kappa(ratings: list[list[Any]]) -> float:
    """Fleiss' kappa of items x raters labels (NaN when only one label occurs: kappa is undefined)."""
    return agreement.fleiss_kappa(ratings=[[str(x) for x in row] for row in ratings])


def _row(t: VerdictTable) -> dict[str, Any]:
    complete = [[str(x) for x in row] for row in t.complete]
    kappa = fleiss_kappa(complete) if len(t.jurors) >= 2 and complete else float("nan")
    unanimous = float(np.mean([len(set(row)) == 1 for row in complete])) if complete else float("nan")
    majority = Counter(Counter(row).most_common(1)[0][0] for row in complete)
    return {"jurors": ", ".join(t.jurors), "samples": len(t.rows), "fully rated": len(complete), "fleiss_kappa": kappa,
            "unanimous": unanimous, "majority labels": ", ".join(f"{k}: {n}" for k, n in majority.most_common()),
            "parse failures": t.parse_failures, "backend errors": t.backend_errors}


def jury_agreement_table(samples: pd.DataFrame) -> pd.DataFrame:
    """Rows (run, task, judge[:aspect]) of every jury judge: jurors, samples, Fleiss' kappa, unanimous share, failures."""
    rows = []
    for col in [c for c in samples.columns if c.startswith("judge.") and c.endswith(".raw")]:
        judge = col[len("judge."):-len(".raw")]
        for (run, task), df in samples.groupby(["run", "task"], sort=False):
            raws = [raw for raw in df[col] if verdicts_of(raw) is not None]
            if not raws:
                continue
            common = {"run": run, "task": task}
            aspects = aspects_of(raws)
            if not aspects:
                rows.append({**common, "judge": judge, **_row(verdict_table(raws))})
            for a in aspects:
                rows.append({**common, "judge": f"{judge}:{a}", **_row(verdict_table(raws, a))})
    cols = ["run", "task", "judge", "jurors", "samples", "fully rated", "fleiss_kappa", "unanimous", "parse failures",
            "backend errors", "majority labels"]
    return pd.DataFrame(rows, columns=cols)
