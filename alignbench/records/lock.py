"""One writer per output (DESIGN §8): a run folder, a judged file, a compare folder.

A process that writes an output first takes an exclusive, non-blocking OS lock (``flock``) on the lock
file ``.NAME.lock`` beside it (``results/.RUN_ID.lock`` for the run folder ``results/RUN_ID``,
``.judged.jsonl.lock`` for ``judged.jsonl``), and writes its pid there. It holds the lock until it is
done; the OS releases it when the process ends in any way, so a killed writer never leaves a lock that
blocks the next one (the file stays, the lock does not). A second writer of the same output is refused
at once with a one-line error naming the holder's pid. Readers (report, gate, the results loaders) never
take the lock.

Within one process the lock is re-entrant: a sharded run holds its merged run's lock while merge writes
that folder.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alignbench.errors import UsageError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_HELD: dict[Path, tuple[int, int]] = {}  # lock file -> (file descriptor, holders in this process)
_GUARD = threading.Lock()


def lock_path(output: str | Path) -> Path:
    """The lock file of an output: ``.NAME.lock`` in the output's folder."""
    out = Path(output).expanduser().absolute()
    return out.parent / f".{out.name}.lock"


def _try_lock(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    import msvcrt  # pragma: no cover

    try:  # pragma: no cover
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # pragma: no cover
        return False
    return True  # pragma: no cover


def holder(path: Path) -> str:
    """The pid written in a lock file, or ``unknown``."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


def acquire(output: str | Path, what: str) -> Path:
    """Take the lock of ``output`` (``what`` names it in the error: "run folder", "--output"); returns the lock file.

    Creates the output's parent folder if needed. A held lock is a UsageError (exit 2) naming the holder's pid."""
    path = lock_path(output)
    with _GUARD:
        if path in _HELD:
            fd, count = _HELD[path]
            _HELD[path] = (fd, count + 1)
            return path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UsageError(f"cannot write the {what} {output} (its lock file {path}: {exc.strerror or exc})") from None
        if not _try_lock(fd):
            os.close(fd)
            raise UsageError(f"{what} {output} is being written by another alignbench process (pid {holder(path)}); "
                             f"one writer at a time: wait for it to finish or stop it (lock file {path})")
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[path] = (fd, 1)
        return path


def release(output: str | Path) -> None:
    """Give back a lock taken with ``acquire`` (the last holder in this process unlocks it)."""
    path = lock_path(output)
    with _GUARD:
        if path not in _HELD:
            return
        fd, count = _HELD[path]
        if count > 1:
            _HELD[path] = (fd, count - 1)
            return
        del _HELD[path]
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def writing(output: str | Path, what: str) -> Iterator[Path]:
    """``with writing(folder, "run folder"):`` hold the lock of ``folder`` for the block."""
    path = acquire(output, what)
    try:
        yield path
    finally:
        release(output)


__all__ = ["acquire", "release", "writing", "lock_path", "holder"]
