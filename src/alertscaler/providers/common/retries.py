"""When a failed cloud API call is worth retrying, and after how long: the one HTTP-status classifier of the
providers, and ``Retry-After`` as cloud APIs send it (delta-seconds or an HTTP date) → seconds to wait.

Each family keeps its own SDK exception mapping (``openstack.auth.translate``, ``linode.client.translate``,
``kubernetes.provider.translate``): it reads the status, the header and the text out of its SDK's exception,
then asks ``classify`` which error that is, under its family's ``RetryPolicy``, and raises it ``from`` the SDK's
exception. The policies differ on purpose (kept as they were before this module existed):

- OpenStack: 408, 409, 425, 429, 500, 502, 503, 504 are retried (a 501 is not); ``Retry-After: 0`` → the
  default delay;
- Linode: 408, 429 and every 5xx are retried (409 is a real conflict there);
- Kubernetes: OpenStack's list and every 5xx; ``Retry-After: 0`` is honoured, and the ``Status`` body's
  ``retryAfterSeconds`` is the hint when there is no header.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from datetime import UTC

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError

#: Seconds to wait before retrying when the API gives no hint.
DEFAULT_DELAY = 5.0


@dataclass(frozen=True)
class RetryPolicy:
    """Which HTTP statuses a family retries and with what delay when the API names none."""

    statuses: frozenset[int]
    every_5xx: bool = False  # every status >= 500 is retried too
    default_delay: float = DEFAULT_DELAY
    zero_is_no_hint: bool = False  # ``Retry-After: 0`` counts as no hint (the default delay), not "now"

    def retries(self, status: int) -> bool:
        return status in self.statuses or (self.every_5xx and status >= 500)


def classify(status: int, message: str, policy: RetryPolicy, *, retry_after: str | None = None,
             hint: float | None = None, now: float | None = None) -> TemporaryProviderError | PermanentProviderError:
    """The error for an HTTP ``status`` answer (``message`` is its whole text): temporary when ``policy`` retries
    the status, with the delay of the ``Retry-After`` header, else ``hint`` (a delay the body gave), else the
    policy's default; permanent otherwise. The caller raises it ``from`` the SDK's exception."""
    if not policy.retries(status):
        return PermanentProviderError(message)
    delay = retry_after_seconds(retry_after, now)
    if delay is None or (policy.zero_is_no_hint and delay == 0):
        delay = hint
    if delay is None or (policy.zero_is_no_hint and delay == 0):
        delay = policy.default_delay
    return TemporaryProviderError(message, delay=delay)


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
