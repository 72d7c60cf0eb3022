"""Failing fast when a Hugging Face Hub model or dataset cannot be fetched.

Without a network, transformers and datasets retry for up to a minute and print a screen of retry
warnings before they give up. Before either is asked for a hub id, ``require_hub`` decides in a few
seconds: with an offline variable set (``HF_HUB_OFFLINE=1`` ...) the libraries read their local cache
and fail fast themselves; otherwise a quick connection to the Hub's host tells whether it is
reachable, and if not the caller gets a one-line usage error at once.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from urllib.parse import urlparse

from alignbench.errors import UsageError

OFFLINE_VARS = {"model": ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"), "dataset": ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
PROBE_TIMEOUT_S = 3.0


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@lru_cache(maxsize=4)
def hub_unreachable(endpoint: str) -> str | None:
    """Why the Hub at ``endpoint`` cannot be reached (None when a TCP connection opens, or a proxy is set)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # the proxy decides; a direct probe would say nothing
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc.__class__.__name__}"
    return None


def _cached(kind: str, repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    filename = "config.json" if kind == "model" else "README.md"
    try:
        found = try_to_load_from_cache(repo_id, filename, repo_type=kind)
    except Exception:  # noqa: BLE001 - an id the cache cannot even look up: let the library say why
        return False
    return isinstance(found, str)


def require_hub(kind: str, repo_id: str, flag: str) -> None:
    """Raise a one-line UsageError now if the hub ``kind`` (model|dataset) ``repo_id`` cannot be fetched.

    ``flag`` is what the user can pass instead (e.g. ``--data-files TASK=PATH``).
    """
    if any(_truthy(os.environ.get(v)) for v in OFFLINE_VARS[kind]):
        return  # offline mode: the library reads its cache without network retries
    why = hub_unreachable(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    if why is None:
        return
    offline_var = OFFLINE_VARS[kind][-1]
    if _cached(kind, repo_id):
        raise UsageError(f"hub {kind} {repo_id!r}: the Hugging Face Hub is unreachable ({why}); it is in the local cache: "
                         f"set {offline_var}=1 to load it from there, or {flag}")
    raise UsageError(f"hub {kind} {repo_id!r}: the Hugging Face Hub is unreachable ({why}) and it is not in the local cache; {flag}")
