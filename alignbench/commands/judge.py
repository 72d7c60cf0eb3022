"""``alignbench judge --judges NAMES --input FILE.jsonl --output FILE.jsonl``: judge stored responses.

The output repeats every input line with ``judgments`` added (``{judge: {label, score, raw, error}}``,
merged into any ``judgments`` the line already had). A summary - per judge: mean score, samples
scored, errors - goes to stderr. A judge that fails on a sample records the error in that sample's
judgment; the command still exits 0 (the summary counts them).

Lines are judged in chunks; each finished chunk is appended and flushed to ``OUTPUT.partial``, which
becomes OUTPUT when every line is done. A killed run loses at most the chunk in flight: ``--resume``
keeps the lines already in ``OUTPUT.partial`` (after checking they are the input's first lines) and
judges only the rest. An existing OUTPUT, or an ``OUTPUT.partial`` left by an interrupted run, is never
replaced silently: it is refused unless ``--overwrite`` (start again) or ``--resume`` (keep its lines, judge
the rest), and OUTPUT may not be the input file. One process writes OUTPUT at a time (the lock file
``.OUTPUT.lock`` beside it, ``alignbench.records.lock``): a second is refused with the first one's pid.
"""

from __future__ import annotations

import argparse
import math
import sys

from alignbench.commands._judge_io import ProgressFile, build_judges, judge_input, read_rows, set_judgment
from alignbench.commands._options import add_judge_model_options
from alignbench.records import lock
from alignbench.registry import commands

CHUNK = 64  # lines judged (by every judge) between two flushes of OUTPUT.partial


@commands.register("judge")
class JudgeCommand:
    help = "run judges on stored responses (JSONL with prompt, response, references)"

    @staticmethod
    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--judges", required=True, help="judge names or YAML files, comma-separated (alignbench list judges)")
        p.add_argument("--input", required=True, help="JSONL: one {prompt, response, references?, ...} object per line")
        p.add_argument("--output", required=True, help="JSONL to write: the input lines with 'judgments' added")
        again = p.add_mutually_exclusive_group()
        again.add_argument("--resume", action="store_true", help="keep the lines already judged (in OUTPUT.partial or OUTPUT), judge the rest")
        again.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT (by default it is refused)")
        add_judge_model_options(p)

    def run(self, args: argparse.Namespace) -> int:
        progress = ProgressFile(args.output)
        progress.check(args.input, resume=args.resume, overwrite=args.overwrite)
        with lock.writing(args.output, "--output"):  # one writer per output: a second is refused with this one's pid
            progress.check(args.input, resume=args.resume, overwrite=args.overwrite)  # as it is now that it is ours
            return self._judge(args, progress)

    def _judge(self, args: argparse.Namespace, progress: ProgressFile) -> int:
        rows = read_rows(args.input)
        judges = build_judges(args.judges, args)  # unknown names fail before any model loads
        done = progress.resume(rows, [j.name for j in judges]) if args.resume else progress.start()
        try:
            for start in range(done, len(rows), CHUNK):
                chunk = rows[start:start + CHUNK]
                inputs = [judge_input(r) for r in chunk]
                for j in judges:
                    for row, jd in zip(chunk, j.judge(inputs)):
                        set_judgment(row, j.name, jd.as_dict())
                progress.append(chunk)
        finally:
            for j in judges:
                j.close()
        progress.finish()
        for j in judges:
            scores = [r["judgments"][j.name]["score"] for r in rows if r["judgments"][j.name]["error"] is None]
            nums = [float(s) for s in scores if isinstance(s, (int, float)) and not math.isnan(float(s))]
            errors = sum(r["judgments"][j.name]["error"] is not None for r in rows)
            mean = f"{sum(nums) / len(nums):.4f}" if nums else "n/a"
            print(f"{j.name}\tmean_score={mean}\tn={len(nums)}\terrors={errors}", file=sys.stderr)
        print(f"alignbench: {len(rows)} line(s) judged by {len(judges)} judge(s), written to {args.output}", file=sys.stderr)
        return 0
