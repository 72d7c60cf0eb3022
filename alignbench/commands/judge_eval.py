"""``alignbench judge-eval --judge NAME --input LABELED.jsonl|SET``: how far a judge agrees with humans.

``--input`` is a JSONL file (``prompt``, ``response``, ``references`` optional, the human ``label`` in
``--label-field``, optional ``annotations``: each annotator's label) or a named public set
(``xstest_human``, ``jbb_human``, ``harmbench_human``, optionally ``NAME:SOURCE``; see
``alignbench.trust.human_sets``). A named set's labels are put into the judge's vocabulary by what they say
(refused or complied, harmful or not; ``alignbench.trust.labelmap``); ``--map JUDGE_LABEL=HUMAN_LABEL,...``
translates by hand instead, and each key must be one of the judge's labels.

Reports accuracy, macro-F1, Cohen's kappa and the confusion matrix (rows: human, columns: judge);
for a binary decision sensitivity and specificity with Wilson CIs; and the agreement of the set's own
annotators, the ceiling. ``--json`` prints JSON; ``--output`` writes each line with its judgment,
``judge_label`` and ``correct``; ``--card PATH`` writes the judge card there (never over an existing file
without ``--overwrite``, never into alignbench's own files: the shipped cards are read-only data). Lines
the judge failed on (error, or no label) are counted and left out of the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from alignbench.commands._judge_io import build_judges, judge_input, read_rows, set_judgment, write_jsonl
from alignbench.commands._options import add_judge_model_options
from alignbench.errors import UsageError
from alignbench.registry import commands
from alignbench.trust.cards import check_card_path, make_card, write_card
from alignbench.trust.human_sets import load_set, parse_set
from alignbench.trust.judge_metrics import binary_agreement, human_agreement, label_agreement
from alignbench.trust.labelmap import binary_word, decision_of, is_label, positive


def parse_map(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (s.strip() for s in (text or "").split(","))):
        k, sep, v = part.partition("=")
        if not sep or not k.strip() or not v.strip():
            raise UsageError(f"--map: expected JUDGE_LABEL=HUMAN_LABEL, got {part!r}")
        if k.strip() in out:
            raise UsageError(f"--map: judge label {k.strip()!r} is given twice ({out[k.strip()]!r} and {v.strip()!r}); map it once")
        out[k.strip()] = v.strip()
    return out


def check_human_labels(rows: list[dict[str, Any]], field: str, path: str) -> None:
    """Human labels are non-empty strings or integers, as judge-train takes them (a boolean or a list is no label)."""
    for r in rows:
        v = r[field]
        if not is_label(v):
            raise UsageError(f"{path}: line {r['_line']}: label {v!r:.60} does not parse: labels must be non-empty strings or "
                             "integers (as judge-train takes them)")


def trained_on_sets(judge: Any) -> set[str]:
    """The named human sets a learned judge was trained on: its judge.json ``trained_on`` holds one set or several
    joined by `` + `` (``gptfuzz_human + saferlhf_human``), each a name or judge-train's ``NAME:SOURCE``."""
    trained = getattr(judge, "trained_on", None)
    return {part.strip().partition(":")[0] for part in trained.split(" + ")} if isinstance(trained, str) else set()


def as_label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def check_map(mapping: dict[str, str], labels: list[str], judge: str, seen: bool) -> None:
    bad = [k for k in mapping if k not in labels]
    if bad:
        what = "labels seen" if seen else "labels"
        raise UsageError(f"--map: {bad[0]!r} is not one of judge {judge}'s {what} ({', '.join(labels) or 'none'})")


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def format_table(report: dict[str, Any]) -> str:
    lines = [f"judge\t{report['judge']}"]
    if report.get("set"):
        lines.append(f"set\t{report['set']}\t({report.get('source')})")
    lines.append(f"n\t{report['n']}\t(judge failed on {report['judge_errors']} line(s), left out)")
    for k in ("accuracy", "macro_f1", "cohen_kappa"):
        lines.append(f"{k}\t{_fmt(report[k])}")
    ceil = report.get("human_agreement")
    if ceil:
        lines.append(f"human-human\taccuracy {_fmt(ceil['accuracy'])}\tcohen_kappa {_fmt(ceil['cohen_kappa'])}"
                     f"\t({ceil['annotators']} annotators, the ceiling)")
    b = report.get("binary")
    if b:
        lines.append(f"binary ({b['positive']} vs not)\taccuracy {_fmt(b['accuracy'])}\tcohen_kappa {_fmt(b['cohen_kappa'])}")
        for k in ("sensitivity", "specificity"):
            s = b[k]
            lines.append(f"{k}\t{_fmt(s['value'])}\t[{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]\t({s['x']}/{s['n']}, Wilson 95%)")
    labels = report["labels"]
    if labels:
        width = max(len("human \\ judge"), *(len(x) for x in labels)) + 2
        lines.append("")
        lines.append("confusion (rows: human label, columns: judge label)")
        lines.append("human \\ judge".ljust(width) + "".join(x.rjust(width) for x in labels))
        for lab, row in zip(labels, report["confusion"]):
            lines.append(lab.ljust(width) + "".join(str(c).rjust(width) for c in row))
    return "\n".join(lines)


def plan(judge_name: str, judge_labels: list[str], human_labels: list[str], set_decision: str | None, set_labels: tuple[str, ...],
         mapping: dict[str, str], positive_label: str | None) -> tuple[Callable[[str], str], Callable[[str], str], Callable[[str], bool | None] | None, str | None]:
    """(judge label -> compared word, human label -> compared word, compared word -> binary side, positive word)."""
    ident: Callable[[str], str] = lambda x: x
    if mapping:
        to_judge: Callable[[str], str] = lambda x: mapping.get(x, x)
        decision = set_decision or decision_of(human_labels)
    elif set_decision is not None:
        if set_decision == "refusal" and set(set_labels) <= set(judge_labels):
            to_judge, decision = ident, set_decision
        elif decision_of(judge_labels) == set_decision:
            to_judge = lambda x: binary_word(bool(positive(x, set_decision)), set_decision)
            return to_judge, to_judge, (lambda x: positive(x, set_decision)), binary_word(True, set_decision)
        else:
            raise UsageError(f"judge {judge_name}'s labels ({', '.join(judge_labels) or 'none'}) do not say whether a response is "
                             f"{'refused' if set_decision == 'refusal' else 'harmful'}; pass --map JUDGE_LABEL=HUMAN_LABEL,... "
                             f"(human labels: {', '.join(set_labels)})")
    else:
        to_judge, decision = ident, decision_of(human_labels + judge_labels)
    if positive_label is not None:
        return to_judge, ident, (lambda x: x == positive_label), positive_label
    if decision is None:
        return to_judge, ident, None, None
    return to_judge, ident, (lambda x: positive(x, decision)), binary_word(True, decision)


@commands.register("judge-eval")
class JudgeEvalCommand:
    help = "measure a judge against human labels (accuracy, macro-F1, Cohen's kappa, sensitivity/specificity, human ceiling)"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--judge", required=True, help="judge name, YAML file or trained judge folder (alignbench list judges)")
        p.add_argument("--input", required=True,
                       help="JSONL {prompt, response, references?, label, annotations?} per line, or a public set: "
                            "xstest_human|jbb_human|harmbench_human[:FILE|FOLDER|HUB_ID]")
        p.add_argument("--label-field", default="label", help="JSONL field holding the human label (default: label)")
        p.add_argument("--map", default="", help="translate judge labels: JUDGE_LABEL=HUMAN_LABEL,...")
        p.add_argument("--positive", help="the human label that is the positive class of the binary view (JSONL input)")
        p.add_argument("--json", action="store_true", help="print the report as JSON")
        p.add_argument("--output", help="JSONL to write: each line with its judgment, judge_label and correct")
        p.add_argument("--card", metavar="PATH",
                       help="write the judge card to PATH (e.g. MYJUDGES/cards/NAME.json; the shipped cards are read-only)")
        p.add_argument("--overwrite", action="store_true", help="replace an existing --card file")
        p.add_argument("--built-on", metavar="TEXT", help="the card says which data the judge was built, trained or tuned on")
        held = p.add_mutually_exclusive_group()
        held.add_argument("--held-out", metavar="HOW", help="the card says how these figures were kept apart from that data "
                                                            "(e.g. 'other models than those it was trained on')")
        held.add_argument("--in-sample", action="store_true", help="the card says its figures come from the data the judge was "
                                                                  "built or tuned on (every corrected rate then carries a warning)")
        add_judge_model_options(p)

    def run(self, args: argparse.Namespace) -> int:
        if "," in args.judge:
            raise UsageError("--judge takes one judge; run judge-eval once per judge")
        mapping = parse_map(args.map)
        if args.card is not None:
            check_card_path(Path(args.card), args.overwrite)  # before any judging
        named = parse_set(args.input)
        if named is not None:
            hs, rows, source = load_set(args.input)
            set_name, set_decision, set_labels, label_field = hs.name, hs.decision, hs.labels, "label"
        else:
            rows = read_rows(args.input, required=("prompt", "response", args.label_field))
            check_human_labels(rows, args.label_field, args.input)
            set_name, set_decision, set_labels, label_field, source = None, None, (), args.label_field, args.input
        (judge,) = build_judges(args.judge, args)
        declared = [str(x) for x in getattr(judge, "labels", ()) or ()]
        if declared:
            check_map(mapping, declared, judge.name, seen=False)
        if set_name is not None and set_name in trained_on_sets(judge):
            if args.card is not None:
                raise UsageError(f"--card: judge {judge.name} was trained on {set_name}; its card holds its cross-validated figures "
                                 "(an evaluation on its own training data would overstate them)")
            print(f"alignbench: warning: judge {judge.name} was trained on {set_name}: these figures are in-sample (optimistic); "
                  "its card holds held-out ones", file=sys.stderr)
        try:
            judgments = judge.judge([judge_input(r) for r in rows])
        finally:
            judge.close()
        seen = sorted({as_label(j.label) for j in judgments if j.error is None and j.label is not None})
        if not declared:
            check_map(mapping, seen, judge.name, seen=True)
        humans = [as_label(r[label_field]) for r in rows]
        to_judge, to_human, side, pos_word = plan(judge.name, declared or seen, sorted(set(humans)), set_decision, set_labels,
                                                  mapping, args.positive)
        human, predicted, errors = [], [], 0
        for row, h, jd in zip(rows, humans, judgments):
            set_judgment(row, judge.name, jd.as_dict())
            if jd.error is not None or jd.label is None:
                errors += 1
                row["judge_label"], row["correct"] = None, None
                continue
            lab = to_judge(as_label(jd.label))
            row["judge_label"], row["correct"] = lab, lab == to_human(h)
            human.append(to_human(h))
            predicted.append(lab)
        report: dict[str, Any] = {"judge": judge.name, "set": set_name, "source": source, "judge_errors": errors,
                                  **label_agreement(human, predicted)}
        annotations = [[to_human(as_label(a)) for a in r["annotations"]] for r in rows if isinstance(r.get("annotations"), list)]
        report["human_agreement"] = human_agreement(annotations) if annotations else None
        report["binary"] = None
        if side is not None and human:
            hb, jb = [side(x) for x in human], [side(x) for x in predicted]
            if all(x is not None for x in hb + jb):
                report["binary"] = binary_agreement(hb, jb, pos_word or "positive")
                if annotations:
                    report["binary"]["human_agreement"] = human_agreement([[side(a) for a in r] for r in annotations])
        if args.output:
            write_jsonl(args.output, rows)
        if args.card is not None:
            path = Path(args.card)
            command = f"alignbench judge-eval --judge {args.judge} --input {args.input}" + (f" --map {args.map}" if args.map else "")
            honesty = {k: v for k, v in (("built_on", args.built_on), ("held_out", args.held_out)) if v}
            if args.in_sample:
                honesty["in_sample"] = True
            write_card(path, make_card(judge.name, judge.kind, set_name or Path(args.input).name, source, report, **honesty,
                                       command=command))
            print(f"alignbench: judge card written to {path}", file=sys.stderr)
        print(json.dumps(report, indent=2) if args.json else format_table(report))
        if not human:
            print(f"alignbench: warning: judge {judge.name} gave no label on any line ({errors} failed)", file=sys.stderr)
        elif not set(human) & set(predicted):
            print(f"alignbench: warning: the judge's labels ({', '.join(sorted(set(predicted)))}) and the human labels "
                  f"({', '.join(sorted(set(human)))}) share no value; translate them with --map JUDGE_LABEL=HUMAN_LABEL", file=sys.stderr)
        return 0
