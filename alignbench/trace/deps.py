"""The optional packages of ``alignbench trace`` (the ``trace`` extra), with a one-line install hint when missing."""

from __future__ import annotations

from importlib import metadata

from alignbench.errors import UsageError

INSTALL_HINT = "pip install 'alignbench[trace]'"


def require_infini_gram() -> None:
    """Raise a ``UsageError`` (exit 2) saying how to install infini-gram when it cannot be imported."""
    try:
        import infini_gram.engine  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"tracing needs the infini-gram package (its suffix-array engine; Linux x86_64, Python 3.11+), which "
                         f"is not installed ({exc.__class__.__name__}); install it with: {INSTALL_HINT}") from None


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
