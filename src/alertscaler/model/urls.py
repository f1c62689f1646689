"""The one check of an HTTP(S) base URL given in the policy file or on the command line (``prometheus.url``,
``server.public_url``, ``--prometheus``): scheme http or https, a host, a valid port, no spaces.

Pure (``urllib.parse`` only). Called by ``config.sections`` validators, so that ``alertscaler check`` reports a
bad URL with its path, and by ``prometheus.client.PrometheusClient`` (a URL from elsewhere, e.g. a CLI option).
"""

from __future__ import annotations

from urllib.parse import urlsplit


def http_url(value: str, example: str = "http://127.0.0.1:9090") -> str:
    """``value`` unchanged when it is an http:// or https:// URL with a host; ``ValueError`` saying why not."""
    shown = repr(value) if "@" not in value else "a URL with credentials"  # a password is never echoed
    expected = f"must be an http:// or https:// URL with a host, like {example}"
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"{expected}, got {shown}")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number 0..65535
    except ValueError as exc:
        raise ValueError(f"{expected}, got {shown} ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{expected}, got {shown}")
    if port == 0:
        raise ValueError(f"{expected}, got {shown} (port 0)")
    return value


def shown_url(value: str) -> str:
    """``value`` fit to show in logs, errors, the API and the store's listings: without credentials
    (``user:password@``), and with the query and fragment cut to ``?...`` (a signed URL's signature, a token)."""
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "a URL that cannot be parsed"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    tail = "?..." if parts.query or parts.fragment else ""
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"
