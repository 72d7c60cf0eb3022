"""What run.json records about where a run came from: versions, git commit, platform."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

from alignbench import __version__
from alignbench.paths import REPO_ROOT
from alignbench.redact import is_secret_name, scrub_text


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    if not (REPO_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict[str, Any]:
    return {
        "alignbench": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "lm_eval": package_version("lm-eval") or package_version("lm_eval"),
        "datasets": package_version("datasets"),
    }


def scrub(obj: Any) -> Any:
    """Replace the values of secret-looking keys (api_key, token, ...) with "***", and scrub every URL in a text
    value (``alignbench.redact.scrub_url``: no ``user:password@``, no secret-looking query values)."""
    if isinstance(obj, dict):
        return {k: ("***" if is_secret_name(k) and v else scrub(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub(v) for v in obj]
    if isinstance(obj, str):
        return scrub_text(obj)
    return obj


def scrub_argv(argv: list[str]) -> list[str]:
    """The command line with secret-looking ``k=v`` model args masked and every URL scrubbed."""
    out = []
    for a in argv:
        parts = []
        for kv in a.split(","):
            k, sep, v = kv.partition("=")
            parts.append(f"{k}=***" if sep and is_secret_name(k.lstrip("-")) else kv)
        out.append(scrub_text(",".join(parts)))
    return out
