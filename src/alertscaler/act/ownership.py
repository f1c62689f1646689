"""This process as one replica of several sharing a store: its id, its heartbeat and the groups it drives.

``Ownership.beat`` (the engine's heartbeat loop, every ``store.heartbeat_interval``) renews the replica and
the leases of its running actions in the store (``StateStore.heartbeat``) and re-balances the groups over
the live replicas (``StateStore.balance_groups``). ``drives(group)`` is what every loop asks before it
acts on a group (re-evaluation timer, tracking, schedules, heal judging, the group's worker, recovery): it
holds only while the last successful heartbeat's lease runs — a replica that cannot reach the store, or
was paused longer than its lease, stops driving before a peer may take its groups over. ``lease(now)`` is
what a claim holds. Built by ``service.build_engine``; used by ``act.engine``, ``act.queueing``,
``act.executing`` and ``act.lifecycle``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alertscaler.store.base import Lease, StateStore
from alertscaler.store.replicas import new_replica_id

log = logging.getLogger(__name__)

#: ``drives(group, now)``: does this replica drive the group at ``now``? (what each loop asks)
Drives = Callable[[str, datetime], bool]


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, owned by someone else
        return True
    return True


def drives_all(group: str, now: datetime) -> bool:
    """One replica alone (no ``Ownership`` wired): it drives every group."""
    return True


@dataclass
class Ownership:
    """``lease`` / ``interval`` in seconds (``store.lease``, ``store.heartbeat_interval``)."""

    lease_s: float = 30.0
    interval_s: float = 10.0
    replica: str = field(default_factory=new_replica_id)
    owned: frozenset[str] = frozenset()
    valid_until: datetime | None = None
    renewed: frozenset[int] = frozenset()  # actions whose lease the last heartbeat renewed
    retired: bool = False  # stopping: a late heartbeat keeps the leases but drives nothing
    local_peers: bool = False  # every replica runs on this machine (SQLite): a gone pid is a dead replica
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def lease(self, now: datetime) -> Lease:
        return Lease(self.replica, now + timedelta(seconds=self.lease_s))

    def drives(self, group: str, now: datetime) -> bool:
        """Is this replica the one driving ``group`` at ``now``?"""
        with self._lock:
            return group in self.owned and self.valid_until is not None and now < self.valid_until

    def claims(self, group: str, now: datetime) -> Lease | None:
        """The lease to claim a new action of ``group`` with, or None (another replica drives the group: the
        action is left pending for it)."""
        return self.lease(now) if self.drives(group, now) else None

    def beat(self, store: StateStore, groups: Sequence[str], now: datetime) -> frozenset[str]:
        """Heartbeat, then re-balance. Returns the groups gained since the last beat (to recover)."""
        lease = self.lease(now)
        renewed = store.heartbeat(self.replica, now, lease.until)
        owned = store.balance_groups(self.replica, groups, now)
        with self._lock:
            if self.retired:
                owned = frozenset()
            gained = owned - self.owned
            lost = self.owned - owned
            self.owned, self.valid_until, self.renewed = owned, lease.until, renewed
        if gained or lost:
            log.info("replica %s drives %d group(s) (+%d, -%d)", self.replica, len(owned), len(gained), len(lost))
        return gained

    def hand_back_dead_local(self, store: StateStore, now: datetime) -> list[str]:
        """Replicas of this machine whose process no longer exists (its pid is gone): hand their actions and
        groups back now instead of waiting for their lease — a restart after a ``kill -9`` of the only
        replica recovers at once. Used only when ``local_peers`` (a SQLite store: its replicas share this
        machine); a pid that exists (even reused by another process) is left to its lease. Returns them."""
        if not self.local_peers:
            return []
        host = self.replica.rsplit(":", 2)[0]
        dead = []
        for peer in store.live_replicas(now):
            parts = peer.id.rsplit(":", 2)
            if peer.id == self.replica or len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
                continue
            if not _pid_exists(int(parts[1])):
                store.leave(peer.id, now)
                dead.append(peer.id)
        if dead:
            log.warning("replica(s) %s of this machine are gone (no such process): their actions and groups are "
                        "taken over now", ", ".join(dead))
        return dead

    def retire(self) -> None:
        """Drive nothing more from now on (a stop begins): no loop or worker of this replica starts anything."""
        with self._lock:
            self.owned, self.valid_until, self.retired = frozenset(), None, True

    def leave(self, store: StateStore, now: datetime) -> list[int]:
        """A clean stop: drive nothing more, hand the running actions and the groups back at once."""
        self.retire()
        handed = store.leave(self.replica, now)
        if handed:
            log.warning("replica %s stopped: action(s) %s handed back to the other replicas", self.replica,
                        ", ".join(map(str, handed)))
        return handed
