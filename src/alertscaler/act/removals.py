"""Members alertscaler removes on purpose, the acting part: what providers report (``StoreDepartures``, the
``providers.base.Departures`` a scale action's request carries, built by ``act.executing``), what
``/api/v1/targets`` leaves out (``removed_ids``, called by ``api``), and what a heal does with signals about
them (``split_removed``: ``act.heal_intake`` and ``act.healing``).

The sequence a provider with discovery or a pool follows for a scale-in victim (``local``, ``linode``): it is
reported ``leaving`` (a ``removing`` row, committed before anything else: from then on it is out of
``/api/v1/targets`` on every replica), taken out of its pool, kept running for the group's ``drain`` (long
enough for Prometheus to drop the target: no ``up == 0`` sample is ever written for it), stopped, reported
``gone`` (``removed``). A heal ``replace`` records the member it replaced the same way, after the fact.
Heal alerts naming a remembered member never heal: the first is recorded as ONE ``removed_member`` decision,
later ones (repeats, resolved) are dropped silently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from alertscaler.model.errors import StoreError, TemporaryProviderError
from alertscaler.model.groups import Member
from alertscaler.model.removals import RemovedMember, find_removed
from alertscaler.store.base import StateStore, Tx

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreDepartures:
    """``providers.base.Departures`` of one group, kept in the store (each call its own short transaction). A drain
    is waited on ``halt``: set when the service stops (``Executor.halt``), it ends the wait at once."""

    store: StateStore
    group: str
    clock: Callable[[], datetime]
    halt: threading.Event = field(default_factory=threading.Event)

    def wait(self, seconds: float) -> bool:
        return not self.halt.wait(seconds)

    def leaving(self, members: Sequence[Member], why: str) -> None:
        if not members:
            return
        with _temporary("recording the members leaving"):
            self.store.add_removing(self.group, [(m.id, m.address) for m in members], why, self.clock())
        log.info("group=%s leaving discovery (%s): %s", self.group, why, ", ".join(m.id for m in members))

    def gone(self, member_ids: Sequence[str]) -> None:
        if member_ids:
            with _temporary("recording the members removed"):
                self.store.mark_removed(self.group, member_ids, self.clock())

    def kept(self, member_ids: Sequence[str]) -> None:
        """A removal abandoned: the members stay in the group (and may be healed again)."""
        with _temporary("forgetting an abandoned removal"):
            self.store.forget_removing(self.group, member_ids)


@contextmanager
def _temporary(doing: str) -> Iterator[None]:
    """A store failure while a provider removes members fails its call temporarily: the action is retried, and
    the provider (which converges) carries on where it stopped."""
    try:
        yield
    except StoreError as exc:
        raise TemporaryProviderError(f"{doing}: {exc}") from exc


def removed_ids(store: StateStore, now: datetime) -> dict[str, frozenset[str]]:
    """Per group, the ids of the members remembered as removed: ``/api/v1/targets`` leaves them out."""
    out: dict[str, set[str]] = {}
    for member in store.removed_members(now):
        out.setdefault(member.group, set()).add(member.member_id)
    return {group: frozenset(ids) for group, ids in out.items()}


@dataclass
class RemovedSplit:
    """Heal signals (or alerts) of one group sorted by whether they name a removed member: ``removed`` maps
    the removed member's id to the items naming it."""

    kept: list[int] = field(default_factory=list)                 # positions of the others
    removed: dict[str, list[int]] = field(default_factory=dict)   # member id -> positions

def split_removed(keys: Sequence[tuple[str, datetime | None]], removed: Sequence[RemovedMember],
                  live: Sequence[Member] = ()) -> RemovedSplit:
    """Which of ``keys`` (a signal's member key and when its alert started) name a removed member. A key that
    names a current member that is not being removed (``live``: a new member at a reused address) is kept."""
    split = RemovedSplit()
    removed_list = list(removed)
    leaving = {m.member_id for m in removed_list}
    for i, (key, started) in enumerate(keys):
        member = find_removed(removed_list, key, started) if removed_list else None
        if member is not None and not _names_another(key, member, live, leaving):
            split.removed.setdefault(member.member_id, []).append(i)
        else:
            split.kept.append(i)
    return split


def _names_another(key: str, member: RemovedMember, live: Sequence[Member], leaving: set[str]) -> bool:
    """Does ``key`` name a current member other than the removed one (and not itself leaving)?"""
    return any(m.id not in leaving and m.id != member.member_id and key in (m.id, m.address) for m in live)


def removed_message(member: RemovedMember) -> str:
    """The message of a member's one ``removed_member`` decision."""
    stage = "being removed" if member.removed_at is None else "removed"
    return (f"heal alert for {member.member_id}, {stage} by alertscaler ({member.why}) since "
            f"{member.since.isoformat(timespec='seconds')}: dropped, never healed (later alerts about it are "
            "dropped without a decision)")


def claim_reports(tx: Tx, group: str, split: RemovedSplit, now: datetime) -> list[str]:
    """The removed members of ``split`` whose one ``removed_member`` decision is still to be recorded (claimed
    now, in ``tx``: recorded in the same transaction)."""
    return tx.mark_removed_reported(group, list(split.removed), now) if split.removed else []
