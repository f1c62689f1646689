"""``Retry-After`` as cloud APIs send it (delta-seconds or an HTTP date) → seconds to wait. One parser for
every provider that translates an HTTP 429 / 503 into ``TemporaryProviderError(delay=)``: called by
``openstack_auth``, ``linode_client`` and ``kubernetes``.
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait (never negative); None when the header is absent or unreadable. ``now``: Unix time
    for an HTTP date (default the current time)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
