"""Waiting until deleted cloud resources are really gone: one loop for every provider that deletes servers or
Linodes and must not report a scale-in done while they still exist. Used by ``providers.linode.provider`` and
``providers.openstack.nova.provider``; time and sleep are passed in (their tests run on a fake clock).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import TypeVar

from alertscaler.model.durations import format_duration
from alertscaler.model.errors import TemporaryProviderError
from alertscaler.providers.common.retries import DEFAULT_DELAY

K = TypeVar("K", bound=Hashable)


def await_gone(pending: Mapping[K, str], exists: Callable[[K], bool], *, timeout: float, poll: float,
               clock: Callable[[], float], sleep: Callable[[float], None], what: str) -> None:
    """Poll ``exists(id)`` for every id of ``pending`` (id -> name) until none exists; after ``timeout`` seconds
    raise ``TemporaryProviderError`` naming those left (``what``: e.g. "web: Linodes")."""
    left = dict(pending)
    deadline = clock() + timeout
    while left:
        for key in list(left):
            if not exists(key):
                del left[key]
        remaining = deadline - clock()
        if not left:
            return
        if remaining <= 0:
            raise TemporaryProviderError(f"{what} not gone {format_duration(timeout)} after DELETE: "
                                         + ", ".join(sorted(left.values())), delay=DEFAULT_DELAY)
        sleep(min(poll, remaining))
