"""Exceptions that map onto the CLI's exit codes (DESIGN §3).

0 success, 1 a gate or check failed (the command returns 1 itself), 2 bad usage or bad input, 3 a
backend failed beyond retries.
Library code raises these with a one-line, specific message; the CLI prints the message and exits.
"""

from __future__ import annotations


class AlignbenchError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 2


class UsageError(AlignbenchError):
    """Bad usage or bad input: unknown names, malformed YAML, missing files or columns."""

    exit_code = 2


class BackendError(AlignbenchError):
    """A model backend failed beyond its retries (unreachable server, exhausted retries)."""

    exit_code = 3

