"""Members alertscaler removes on purpose, as values: a scale-in's victims and members a heal replaced.

A removed member is remembered from the moment it leaves discovery (``removing``: out of ``/api/v1/targets``,
out of the load balancer's pool, still running while it drains) through its stop (``removed``) and for
``REMEMBER`` after, so that a heal alert naming it — Prometheus saw it go down because it was meant to go — is
recognised and dropped (one ``removed_member`` decision at most, ``reported_at``) instead of healed. A removal
that never completes is forgotten ``REMEMBER`` after it began.

``RemovedMember.named_by`` says whether a heal signal's key names it: by member id always (ids are not reused
by a provider that reports removals; a heal records a replaced member only when its id is gone), by address
only for an alert that started while the member was still there or just after (``ADDRESS_SLACK``): a later
alert at the same address is about a new member that took it. Pure: used by ``store``, ``act.removals``,
``act.heal_intake`` and ``act.healing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

#: how long a removed member is remembered after it was stopped (alerts about it are dropped this long)
REMEMBER = timedelta(hours=3)
#: an alert naming a removed member's ADDRESS is about it only if it started no later than this after the stop
ADDRESS_SLACK = timedelta(minutes=2)
#: Prometheus' discovery manager hands new target sets to the scrape manager at most this often (``updatert``),
#: and the scrape manager applies them at most this often (its ``reloader`` ticker): 5 s each
PROMETHEUS_SD_THROTTLE = 5.0
PROMETHEUS_SCRAPE_RELOAD = 5.0


class RemovalState(str, Enum):
    REMOVING = "removing"   # out of discovery and pools, draining; not stopped yet
    REMOVED = "removed"     # stopped / deleted


@dataclass(frozen=True)
class RemovedMember:
    """One member of ``group`` alertscaler took out on purpose (``why``: "scale-in to 2", "replaced by x")."""

    group: str
    member_id: str
    address: str | None
    state: RemovalState
    why: str
    since: datetime                      # left discovery
    removed_at: datetime | None = None   # stopped
    reported_at: datetime | None = None  # its one ``removed_member`` decision

    @property
    def last_seen(self) -> datetime:
        """When the member was last there: its stop, or (still removing) when it started leaving."""
        return self.removed_at or self.since

    def remembered(self, now: datetime) -> bool:
        """Still remembered at ``now``: stopped (or, still removing, started leaving) less than ``REMEMBER``
        ago. A removal that never ends (its provider call failing for good) is forgotten as well."""
        return now - self.last_seen < REMEMBER

    def named_by(self, key: str, started_at: datetime | None = None) -> bool:
        """Does a heal signal keyed ``key`` (a member id or address), about an alert that started at
        ``started_at`` (None: unknown, taken as now-ish and so only an id matches a stopped member), name this
        member?"""
        if key == self.member_id:
            return True
        if self.address is None or key != self.address:
            return False
        if self.state is RemovalState.REMOVING:
            return True
        return started_at is not None and started_at <= self.last_seen + ADDRESS_SLACK


def find_removed(removed: list[RemovedMember], key: str, started_at: datetime | None = None) -> RemovedMember | None:
    """The removed member a heal signal's key names (by id first, then by address), or None."""
    for member in removed:
        if member.member_id == key:
            return member
    for member in removed:
        if member.named_by(key, started_at):
            return member
    return None


def discovery_lag(refresh_interval: float, scrape_interval: float) -> float:
    """Seconds until Prometheus has stopped scraping a target that left service discovery, at worst: the SD
    refresh, the discovery manager's throttle, the scrape manager's reload ticker, and one scrape interval for a
    scrape already under way."""
    return refresh_interval + PROMETHEUS_SD_THROTTLE + PROMETHEUS_SCRAPE_RELOAD + scrape_interval

