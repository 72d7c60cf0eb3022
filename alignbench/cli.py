"""``alignbench`` command line: dispatches to the subcommands in ``alignbench.commands``.

Exit codes (DESIGN §3): 0 success, 1 a gate or check failed, 2 bad usage or input, 3 a backend
failed beyond its retries. Errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from typing import NoReturn

from alignbench import __version__
from alignbench.errors import AlignbenchError
from alignbench.redact import scrub_text
from alignbench.registry import commands


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (argparse prints the whole usage)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="alignbench", description="Alignment evaluation harness.")
    parser.add_argument("--version", action="version", version=f"alignbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in commands.names():
        cmd = commands.get(name)
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        cmd.add_arguments(p)
        p.set_defaults(_command=cmd)
    return parser


def _attach_dash_values(argv: list[str]) -> list[str]:
    """``--shard -1/3`` -> ``--shard=-1/3``: argparse takes a value starting with ``-`` for an option and
    says "expected one argument"; attached, the option's own check gives the real reason."""
    out: list[str] = []
    for a in argv:
        if out and re.match(r"-\d", a) and out[-1].startswith("--") and "=" not in out[-1] and out[-1] != "--":
            out[-1] = f"{out[-1]}={a}"
        else:
            out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = _attach_dash_values(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # the command as given (sys.argv is another program's when main() is called in-process)
    debug = getattr(args, "debug", False)
    try:
        return int(args._command().run(args) or 0)
    except AlignbenchError as exc:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"alignbench: error: {scrub_text(str(exc))}\n")  # no URL credentials in what is printed
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("alignbench: interrupted\n")
        return 130
    except Exception as exc:  # a bug: still one line unless --debug
        if debug:
            traceback.print_exc()
        first = scrub_text(str(exc).splitlines()[0]) if str(exc) else ""
        sys.stderr.write(f"alignbench: internal error: {exc.__class__.__name__}: {first} (rerun with --debug for the traceback)\n")
        return 1


def entry() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    entry()
