"""Secrets kept out of everything alignbench records or prints (DESIGN §8), in one place.

* ``is_secret_name``: a setting whose name says it holds a secret (``api_key``, ``hfToken``, ``password``).
* ``scrub_url``: a URL without its ``user:password@`` part and with the values of secret-looking query
  parameters (``?api-key=...``, ``&token=...``, ``&sig=...``) replaced by ``***``.
* ``scrub_text``: every URL in a text scrubbed as ``scrub_url`` does (commands, error messages, logs).
* ``redact``: the exact values of known secrets (an API key) cut out of a text, e.g. a model's response that
  echoes its request's Authorization header, before it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

SECRET_MARKERS = ("key", "token", "secret", "password", "passwd", "authorization", "credential")
URL_SECRET_MARKERS = SECRET_MARKERS + ("sig", "signature", "auth")  # query parameters: also signed URLs (?sig=, X-Amz-Signature)
MASK = "***"

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_PARAM = re.compile(r"(^|[&;])([^=&;#]*)=([^&;#]*)")


def _words(name: object) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name)).lower()) if w]


def is_secret_name(name: object, markers: tuple[str, ...] = SECRET_MARKERS) -> bool:
    """Whether a setting's name says it holds a secret: its last word (``api_key``, ``hfToken``) ends in a
    marker. Counts such as ``max_new_tokens`` are not secrets, so run.json keeps them."""
    words = _words(name)
    return bool(words) and words[-1].endswith(markers)


def scrub_url(url: str) -> str:
    """``url`` without ``user:password@`` and with secret-looking query values masked; other URLs come back as given."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not a URL after all (a bad port, brackets): mask anything between :// and @ by hand
        return re.sub(r"(://)[^/@\s]*@", r"\1", url)
    netloc = parts.netloc
    if "@" in netloc:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{port}" if port else host
    query = _PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}" if m.group(3) and is_secret_name(m.group(2), URL_SECRET_MARKERS)
                       else m.group(0), parts.query)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def scrub_text(text: str) -> str:
    """``text`` with every URL in it scrubbed (``scrub_url``)."""
    return _URL.sub(lambda m: scrub_url(m.group(0)), text) if "://" in text else text


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with each of ``secrets`` (exact values, at least 4 characters) replaced by ``***``."""
    for s in secrets:
        if s and len(s) >= 4 and s in text:
            text = text.replace(s, MASK)
    return text


__all__ = ["SECRET_MARKERS", "MASK", "is_secret_name", "scrub_url", "scrub_text", "redact"]
