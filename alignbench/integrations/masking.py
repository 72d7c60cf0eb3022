"""Nothing secret reaches a tracker: secret-named config keys are scrubbed (``alignbench.run.provenance.scrub``),
and every string sent goes through ``alignbench.redact`` (the values of secret-named environment variables such as
``OPENAI_API_KEY``, ``HF_TOKEN``, ``WANDB_API_KEY`` cut out; URLs without their credentials and secret query
values), with ``Bearer``/``Basic``/``token`` header values and ``sk-...`` keys replaced by ``***`` as well."""

from __future__ import annotations

import os
import re
from typing import Any

from alignbench.redact import MASK, is_secret_name, redact, scrub_text
from alignbench.run.provenance import scrub

_HEADER = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}")
_SK = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}")


def secret_values() -> list[str]:
    """The values of secret-named environment variables (longest first)."""
    return sorted({v for k, v in os.environ.items() if is_secret_name(k) and len(v) >= 6}, key=len, reverse=True)


def mask_text(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with secret environment values, credentials in URLs, header credentials and ``sk-`` keys replaced by ``***``."""
    text = scrub_text(redact(text, secret_values() if secrets is None else secrets))
    return _SK.sub(MASK, _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text))


def masked(obj: Any, secrets: list[str] | None = None) -> Any:
    """``obj`` (JSON-like) with secret-named keys scrubbed and every string masked."""
    secrets = secret_values() if secrets is None else secrets
    obj = scrub(obj)
    if isinstance(obj, dict):
        return {str(k): masked(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [masked(v, secrets) for v in obj]
    if isinstance(obj, str):
        return mask_text(obj, secrets)
    return obj


__all__ = ["mask_text", "masked", "secret_values"]
