"""The documentation cannot rot: the site builds with ``mkdocs build --strict``, every ``alignbench`` command
line in a ``bash`` block of the README and the docs parses with the real CLI parser, and the examples that
show their output (the README's tour, the worked task / judge / backend of the architecture page) are run
and must print what the page says.

A page shows a command's output as a ``text`` block right after the ``bash`` block that holds the command.
"""

from __future__ import annotations

import ast
import contextlib
import io
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from alignbench.cli import _attach_dash_values, build_parser

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
CHECKED_PAGES = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md"))]
# the pages every other page and the README link to (the nav of mkdocs.yml names them too)
REQUIRED_PAGES = ["index", "getting-started", "tasks", "judges", "backends", "results", "compare", "drift", "honesty",
                  "compression", "performance", "robustness", "architecture", "trace", "tracking"]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`]*)$")
TITLE = re.compile(r'title="([^"]+)"')
ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
OPERATORS = {"|", "||", "&&", ";", "&", "(", ")"}


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the block's first content line
    lang: str
    title: str | None
    text: str


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order."""
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m.group(1), m.group(2).strip()
        title = TITLE.search(info)
        start = i + 1
        j = start
        while j < len(lines) and not (lines[j].strip().startswith(fence[0] * len(fence)) and set(lines[j].strip()) == {fence[0]}):
            j += 1
        out.append(Block(path, start + 1, info.split()[0] if info else "", title.group(1) if title else None,
                         "\n".join(lines[start:j])))
        i = j + 1
    return out


def command_lines(block: Block) -> list[tuple[int, str]]:
    """(line number, command) for each shell command of a block, ``\\`` line continuations joined."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    first = 0
    for n, raw in enumerate(block.text.splitlines(), block.line):
        if not pending:
            first = n
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        pending.append(raw)
        command = " ".join(p.strip() for p in pending).strip()
        pending = []
        if command:
            out.append((first, command))
    return out


def alignbench_argvs(command: str) -> list[list[str]]:
    """The argument lists of every ``alignbench`` invocation in one shell command: comments dropped, env
    assignments before the program skipped, pipes / ``&&`` / ``;`` split, redirections dropped, a quoted
    ``alignbench ...`` argument (``sbatch --wrap "alignbench merge ..."``) checked too. A ``$VAR`` stands for a
    value the page cannot know and is read as ``0``."""
    lex = shlex.shlex(command, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    tokens = list(lex)
    segments: list[list[str]] = [[]]
    skip_next = False
    for k, tok in enumerate(tokens):
        if skip_next:
            skip_next = False
        elif tok in OPERATORS:
            segments.append([])
        elif set(tok) <= set("<>&") and ("<" in tok or ">" in tok):
            skip_next = True  # a redirection and its target
            if segments[-1] and segments[-1][-1].isdigit():
                segments[-1].pop()  # the descriptor of 2> ...
        else:
            segments[-1].append(tok)
    found: list[list[str]] = []
    for seg in segments:
        words = list(seg)
        while words and ENV_ASSIGNMENT.match(words[0]):
            words.pop(0)
        if words and words[0] == "alignbench":
            found.append([VARIABLE.sub("0", w) for w in words[1:]])
            words = words[1:]
        for w in words:
            if w.startswith("alignbench "):
                found.extend(alignbench_argvs(w))
    return found


def parse_error(argv: list[str]) -> str | None:
    """None when the CLI's parser accepts ``argv``, else what it printed (a usage error is SystemExit 2)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(_attach_dash_values(argv))
        except SystemExit as exc:
            if exc.code not in (0, None):  # --help / --version exit 0
                return err.getvalue().strip() or f"exit {exc.code}"
    return None


def check_commands(paths: list[Path]) -> tuple[int, list[str]]:
    """How many alignbench command lines the ``bash`` blocks of ``paths`` hold, and one message per line that does not parse."""
    checked, failures = 0, []
    for path in paths:
        for block in blocks(path):
            if block.lang not in ("bash", "sh", "shell", "console"):
                continue
            for line, command in command_lines(block):
                where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                try:
                    argvs = alignbench_argvs(command)
                except ValueError as exc:  # unbalanced quotes
                    failures.append(f"{where}:{line}: cannot split `{command}`: {exc}")
                    continue
                for argv in argvs:
                    checked += 1
                    why = parse_error(argv)
                    if why is not None:
                        failures.append(f"{where}:{line}: `alignbench {shlex.join(argv)}` does not parse: {why}")
    return checked, failures


def outputs(path: Path) -> list[tuple[Block, str, Block]]:
    """(bash block, its one command, the text block after it) for every command whose output a page shows."""
    bs = blocks(path)
    pairs = []
    for a, b in itertools.pairwise(bs):
        if a.lang == "bash" and b.lang == "text":
            cmds = command_lines(a)
            assert len(cmds) == 1, f"{path}:{a.line}: a bash block followed by its output holds one command, not {len(cmds)}"
            pairs.append((a, cmds[0][1], b))
    return pairs


DRIVER = r"""
import contextlib, io, json, sys
spec = json.load(sys.stdin)
import alignbench.backends, alignbench.judges
for name in ("backends", "judges"):
    if spec.get(name):
        getattr(alignbench, name).__path__.append(spec[name])  # as if the page's module were in the package folder
from alignbench.cli import main
results = []
for argv in spec["commands"]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    results.append({"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()})
json.dump(results, sys.stdout)
"""


def run_commands(commands: list[list[str]], cwd: Path, cache: Path, backends: Path | None = None,
                 judges: Path | None = None) -> list[dict]:
    """Run CLI commands one after another in a fresh process (so no registration leaks into this one)."""
    env = {**os.environ, "ALIGNBENCH_CACHE_DIR": str(cache), "ALIGNBENCH_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    spec = {"commands": commands, "backends": str(backends) if backends else None, "judges": str(judges) if judges else None}
    r = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(spec), capture_output=True, text=True, cwd=cwd,
                       env=env, timeout=240, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def check_outputs(pairs: list[tuple[Block, str, Block]], results: list[dict]) -> None:
    for (block, command, shown), res in zip(pairs, results):
        where = f"{block.path.relative_to(REPO)}:{block.line}"
        assert res["rc"] in (0, 1), f"{where}: `{command}` exited {res['rc']}: {res['stderr'][-2000:]}"
        expected = shown.text.strip()
        printed = res["stdout"].strip() or res["stderr"].strip()  # a command that prints only a note shows that note
        assert printed == expected, f"{where}: `{command}` printed\n{printed}\nbut the page shows\n{expected}"


# (a) the site ----------------------------------------------------------------------------------------------


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    if subprocess.run([sys.executable, "-c", "import mkdocs, material"], capture_output=True, check=False).returncode != 0:
        pytest.fail('mkdocs is not installed: pip install -e ".[test]" (or ".[docs]")')
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=120, check=False)


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    r = mkdocs_build(REPO / "mkdocs.yml", tmp_path / "site")
    assert r.returncode == 0, r.stdout + r.stderr
    for page in REQUIRED_PAGES:
        assert (tmp_path / "site" / ("" if page == "index" else page) / "index.html").is_file(), page


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    with (tmp_path / "docs" / "index.md").open("a", encoding="utf-8") as f:
        f.write("\nSee [the judges](judges.md#no-such-section) and [a page](no-such-page.md).\n")
    r = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert r.returncode != 0
    assert "no-such-section" in r.stdout + r.stderr and "no-such-page.md" in r.stdout + r.stderr


def test_the_readme_links_only_to_pages_that_exist() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    missing = [t for t in targets if not t.startswith(("http://", "https://")) and not (REPO / t).exists()]
    assert targets and missing == []


def test_the_readme_is_a_front_door() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = 'pip install torch==2.13.0 && pip install -e ".[test]" && python -m pytest -q -n 2'
    main_job = "pip install torch==2.13.0 && pip install -e . && alignbench eval --model default --tasks harmful_rate"
    assert test_command in ci  # .ci/run runs the README's test command, byte for byte
    head = "\n".join(text.splitlines()[:30])
    assert f"```bash\n{main_job}\n```" in head and f"```bash\n{test_command}\n```" in head


PATH_IN_CODE = re.compile(r"`((?:alignbench|tests|benchmarks|tasks|judges|examples|notebooks|scripts|docs)/[^`\s]*[^`\s.,:;])`")
NAME_IN_CODE = re.compile(r"`(alignbench(?:\.[A-Za-z_]\w*)+)")
PLACEHOLDER = re.compile(r"[*<]|\b[A-Z]{2,}\b(?!\.md)")  # a glob or a NAME to fill in, not a file


def module_names(path: Path) -> set[str]:
    """The names a module defines or imports at its top level, and those its ``__all__`` promises (read, not imported)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in getattr(node, "targets", [])):
                names.update(ast.literal_eval(node.value))
    return names


def resolves(name: str) -> bool:
    """Whether a dotted name a page shows is a module of the package, or a name one defines."""
    parts = name.split(".")
    for k in range(len(parts), 1, -1):
        base = REPO.joinpath(*parts[:k])
        source = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if source.is_file():
            return k == len(parts) or parts[k] in module_names(source)
    return False


def test_every_module_and_file_the_docs_name_exists() -> None:
    missing = []
    for page in CHECKED_PAGES:
        text = page.read_text(encoding="utf-8")
        missing += [f"{page.relative_to(REPO)}: {p}" for p in PATH_IN_CODE.findall(text) if not PLACEHOLDER.search(p) and not (REPO / p).exists()]
        missing += [f"{page.relative_to(REPO)}: {n}" for n in NAME_IN_CODE.findall(text) if not resolves(n)]
    assert missing == [], "the docs name modules or files that do not exist (moved?):\n" + "\n".join(missing)


def test_a_moved_module_is_caught() -> None:
    assert resolves("alignbench.stats.ratings") and resolves("alignbench.results.load_compare") and resolves("alignbench.records.files.RunDir")
    assert not resolves("alignbench.ratings") and not resolves("alignbench.stats.jury_agreement.no_such_function")
    assert PLACEHOLDER.search("judges/cards/NAME.json") and not PLACEHOLDER.search("tasks/drift/README.md")


# (b) every command line shown parses ---------------------------------------------------------------------


def test_every_command_line_in_the_docs_parses() -> None:
    checked, failures = check_commands(CHECKED_PAGES)
    assert failures == [], "command lines the CLI does not accept:\n" + "\n".join(failures)
    assert checked >= 40, f"only {checked} alignbench command lines found: the extraction is broken"


def test_a_wrong_command_line_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n"
                    "```bash\n"
                    "alignbench eval --model dummy --tasks harmful_rate --limit 5   # fine\n"
                    "ALIGNBENCH_JURY_MODELS=openai:a OPENAI_BASE_URL=http://x/v1 \\\n"
                    "    alignbench eval --model dummy --tasks hhh_rubric --limt 5 | tee log.txt\n"
                    "sbatch --wrap \"alignbench merge shards/shard-* --outptu results\"\n"
                    "alignbench eval --model hf:x --tasks t --shard $SLURM_ARRAY_TASK_ID/8 2>&1 > out.txt && alignbench gate --rules g.yaml\n"
                    "```\n"
                    "\n```text\nalignbench eval --no-such-flag   (not a bash block: not checked)\n```\n", encoding="utf-8")
    checked, failures = check_commands([page])
    assert checked == 5
    assert len(failures) == 3, failures
    assert failures[0].startswith(f"{page}:5: `alignbench eval --model dummy --tasks hhh_rubric --limt 5`")
    assert "unrecognized arguments: --limt 5" in failures[0]
    assert failures[1].startswith(f"{page}:7: `alignbench merge 'shards/shard-*' --outptu results`")
    assert failures[2].startswith(f"{page}:8: `alignbench gate --rules g.yaml`") and "--candidate" in failures[2]


def test_the_command_splitter() -> None:
    assert alignbench_argvs("alignbench list tasks   # every task") == [["list", "tasks"]]
    assert alignbench_argvs("A=1 B='x y' alignbench report r1 r2 --out - | less") == [["report", "r1", "r2", "--out", "-"]]
    assert alignbench_argvs('vllm serve M --port 8000') == []
    assert alignbench_argvs('alignbench eval --data-files "a=x.csv,b=y.csv" 2>/dev/null') == [["eval", "--data-files", "a=x.csv,b=y.csv"]]


# (c) the examples run and print what the pages show --------------------------------------------------------


def in_section(path: Path, heading: str, block: Block) -> bool:
    """Whether ``block`` lies under the ``## heading`` of ``path`` (before the next ``## ``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"## {heading}") + 1
    end = next((i + 1 for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines) + 1)
    return start < block.line < end


def test_the_worked_task_judge_and_backend_run_as_shown(tmp_path: Path) -> None:
    page = DOCS / "architecture.md"
    sections = ("Add a task", "Add a judge", "Add a backend")
    work, plugins = tmp_path / "work", tmp_path / "plugins"
    files = {b.title: b.text + "\n" for b in blocks(page) if b.title and any(in_section(page, h, b) for h in sections)}
    pairs = [p for p in outputs(page) if any(in_section(page, h, p[0]) for h in sections)]
    assert set(files) == {"support_refusals.jsonl", "support_refusals.yaml", "alignbench/judges/word_limit.py",
                          "within_12_words.yaml", "alignbench/backends/parrot.py"}
    assert len(pairs) == 3
    for title, text in files.items():  # the page's modules go into folders the driver adds to the packages
        dest = plugins / Path(title).relative_to("alignbench") if title.startswith("alignbench/") else work / title
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
    extra = [["list", "backends"], ["eval", "--model", "parrot", "--model-args", "prefx=Q:", "--tasks", "support_refusals.yaml"]]
    results = run_commands([alignbench_argvs(cmd)[0] for _, cmd, _ in pairs] + extra, work, tmp_path / "cache",
                           backends=plugins / "backends", judges=plugins / "judges")
    check_outputs(pairs, results[: len(pairs)])
    assert [r["rc"] for r in results[: len(pairs)]] == [0, 0, 0]
    # the second run was served by the cache, as the page says; the backend is listed with its docstring
    assert "(model calls: 0)" in results[1]["stderr"] and "(model calls: 6)" in results[2]["stderr"]
    assert "parrot\trepeats the user's last message" in results[3]["stdout"]
    typo = results[4]
    assert typo["rc"] == 2
    assert typo["stderr"].strip() == "alignbench: error: --model-args: backend 'parrot' has no option 'prefx'; did you mean 'prefix'?"
    assert (work / "results" / "support-parrot" / "metrics.json").is_file()


def test_the_readme_tour_prints_what_it_shows(tmp_path: Path) -> None:
    """The tour's stand-in runs (the dummy model) and everything over them; the main job (minutes of CPU) and
    compare (a reward model this machine does not have) are only parsed."""
    pairs = [(b, c, o) for b, c, o in outputs(REPO / "README.md") if "--model default" not in c and not c.startswith("alignbench compare")]
    stand_ins = [cmd for block in blocks(REPO / "README.md") if block.lang == "bash"
                 for _, cmd in command_lines(block) if "--model dummy" in cmd]
    assert len(stand_ins) == 2 and [c.split()[1] for _, c, _ in pairs] == ["report", "gate", "drift"]
    shutil.copytree(DOCS / "examples", tmp_path / "docs" / "examples")
    results = run_commands([alignbench_argvs(c)[0] for c in stand_ins] + [alignbench_argvs(c)[0] for _, c, _ in pairs],
                           tmp_path, tmp_path / "cache")
    assert [r["rc"] for r in results[:2]] == [0, 0]
    check_outputs(pairs, results[2:])
    assert [r["rc"] for r in results[2:]] == [0, 1, 0]  # the gate fails, as the tour says
    assert (tmp_path / "report.html").is_file()


def page_layers(text: str) -> list[list[str]]:
    """The units of each row of the architecture page's layer table, lowest first."""
    table = text[text.index("\n## Layers\n") : text.index("\n## ", text.index("\n## Layers\n") + 1)]
    rows = [line.split("|") for line in table.splitlines() if re.match(r"\| \d+ \|", line)]
    return [re.findall(r"`([A-Za-z_]+)`", row[2]) for row in rows]


def test_the_architecture_page_shows_the_layers_of_the_import_test() -> None:
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from test_architecture import LAYERS
    finally:
        sys.path.remove(str(REPO / "tests"))
    shown = page_layers((DOCS / "architecture.md").read_text(encoding="utf-8"))
    assert shown == LAYERS, "docs/architecture.md's layer table differs from LAYERS in tests/test_architecture.py"
    assert page_layers("\n## Layers\n\n| 1 | `a`, `b` | x |\n| 2 | `c` | y |\n\n## Next\n") == [["a", "b"], ["c"]]
