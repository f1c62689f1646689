"""Provider Protocols and the values passed across them. Called by ``act.executing`` and ``api``.

A provider instance serves ONE group. Methods are synchronous (they run in worker threads) and raise
only ``TemporaryProviderError`` / ``PermanentProviderError`` for failures: each provider family translates its
SDK's errors (``providers.common.retries`` classifies HTTP statuses), and ``registry.create`` wraps every
provider in one error boundary (``boundary``) that turns anything else into ``PermanentProviderError``.

Optional abilities are separate Protocols checked with ``isinstance`` (e.g. ``Healer``), listed in
``OPTIONAL_ABILITIES``. Every provider sets ``adopts_size`` (True when the cloud decides the size itself:
Heat's scaling policies): at start, alertscaler's desired capacity then follows the provider instead of being
converged to.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from alertscaler.model.groups import GroupStatus, Member


@runtime_checkable
class Departures(Protocol):
    """Where a provider says which members it takes out of the group on purpose (a scale-in's victims), so that
    alertscaler drops them from ``/api/v1/targets`` and never heals them (``act.removals`` keeps them in the
    store). The order a provider with discovery or a pool follows: ``leaving`` (before anything else), out of
    its pool, ``wait`` the request's ``drain``, stop, ``gone``. Blocking; a failure to record raises
    ``TemporaryProviderError`` (the action is retried; a provider that converges carries on where it stopped)."""

    def leaving(self, members: Sequence[Member], why: str) -> None:
        """``members`` leave discovery now (durably recorded before this returns)."""

    def gone(self, member_ids: Sequence[str]) -> None:
        """The members are stopped (deleted)."""

    def wait(self, seconds: float) -> bool:
        """Wait out a drain. False when alertscaler began to stop meanwhile: the provider then raises
        ``TemporaryProviderError``, leaving the members out of the group, and the next run finishes them."""


class NoDepartures:
    """Nobody listens (a provider used outside the service: tests, tools)."""

    def leaving(self, members: Sequence[Member], why: str) -> None:
        return None

    def gone(self, member_ids: Sequence[str]) -> None:
        return None

    def wait(self, seconds: float) -> bool:
        time.sleep(seconds)
        return True


NO_DEPARTURES: Departures = NoDepartures()


@dataclass(frozen=True)
class ScaleRequest:
    """Bring the group to ``desired``. ``notification`` is the raw webhook body that caused the decision
    (None for timer or manual decisions), ``alerts`` the alerts it was about. ``exact`` is True when the
    decision set an exact capacity (an ``exact_capacity`` policy or a manual scale) rather than a step.

    ``drain`` (seconds) and ``departures`` are for a scale-in (set by ``act.executing``): a member chosen for
    removal is reported ``leaving`` and taken out of discovery and the provider's pool, kept running for
    ``drain``, then stopped and reported ``gone`` (``Departures``)."""

    group: str
    from_capacity: int
    desired: int
    action_id: int
    decision_id: int
    notification: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    exact: bool = False
    drain: float = 0.0
    departures: Departures = field(default=NO_DEPARTURES, compare=False, repr=False)


@dataclass(frozen=True)
class ProviderContext:
    """What every provider gets at construction: its group and a directory of its own for state."""

    group: str
    state_dir: Path


@runtime_checkable
class Provider(Protocol):
    #: True when ``scale(desired)`` converges (re-running it after a crash is safe): an interrupted action is
    #: then resumed; otherwise it is reconciled against ``status()``.
    idempotent: bool
    #: True when the cloud decides the size itself (Heat's scaling policies in ``signal`` mode): at start,
    #: alertscaler's desired capacity then follows ``status()`` instead of being converged to. False elsewhere.
    adopts_size: bool

    def status(self) -> GroupStatus:
        """Current size and members, as the provider sees them now."""

    def scale(self, request: ScaleRequest) -> str:
        """Bring the group to ``request.desired``; return a short human-readable result."""

    def members(self) -> list[Member]: ...

    def close(self) -> None:
        """Release resources. Instances keep running (they belong to the group, not the process)."""


@runtime_checkable
class Healer(Protocol):
    """Heal action ``replace``."""

    def heal(self, member_id: str) -> str:
        """Replace one member: its replacement is created (and healthy) BEFORE the member is removed, so the
        group never has fewer members than before. Returns a short result naming the replacement.
        ``PermanentProviderError`` when ``member_id`` is not a member of this group."""


@runtime_checkable
class Rebooter(Protocol):
    """Heal action ``reboot``."""

    def reboot(self, member_id: str) -> str:
        """Restart one member in place (same id); return when it is running again."""


@runtime_checkable
class Quarantiner(Protocol):
    """Heal action ``quarantine``."""

    def quarantine(self, member_id: str) -> str:
        """Take one member out of the group without destroying it: from then on it is not counted in
        ``status()``/``members()``, not listed as a target, out of any load balancer — but left running for
        inspection. The caller then restores the group's size with ``scale``."""


@dataclass(frozen=True)
class Settled:
    """What an action interrupted by the death of the service really did, as far as the provider can tell.
    ``state``: ``succeeded`` (verified against the real size), ``failed`` (verified: nothing changed),
    ``unknown`` (it ran, and its effect cannot be verified), ``not_started`` (it provably never ran: safe to
    run it now, at most once)."""

    state: str
    message: str


@runtime_checkable
class Settler(Protocol):
    """Interrupted actions can be settled: the provider finds what an action left behind by a dead process
    (e.g. a command still running in its own session), waits for it or stops it, and verifies the outcome.
    Called by ``act.lifecycle`` at recovery BEFORE any reconcile of the group."""

    def settle(self, action_id: int, from_capacity: int, desired: int) -> Settled: ...


#: heal action name -> the Protocol a provider must implement for it
HEAL_ABILITIES: dict[str, type] = {"replace": Healer, "reboot": Rebooter, "quarantine": Quarantiner}

#: every optional ability -> the method that implements it. The registry's error boundary (``boundary``) keeps
#: exactly the abilities the wrapped provider has (and declares): a new ability Protocol is listed here.
OPTIONAL_ABILITIES: dict[type, str] = {Healer: "heal", Rebooter: "reboot", Quarantiner: "quarantine",
                                       Settler: "settle"}
