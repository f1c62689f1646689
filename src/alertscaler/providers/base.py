"""Provider Protocols and the values passed across them. Called by ``act.executing`` and ``api``.

A provider instance serves ONE group. Methods are synchronous (they run in worker threads) and raise
only ``TemporaryProviderError`` / ``PermanentProviderError`` for failures: each provider translates its
SDK's errors once, here at the boundary.

Optional abilities are separate Protocols checked with ``isinstance`` (e.g. ``Healer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from alertscaler.model.groups import GroupStatus, Member


@dataclass(frozen=True)
class ScaleRequest:
    """Bring the group to ``desired``. ``notification`` is the raw webhook body that caused the decision
    (None for timer or manual decisions), ``alerts`` the alerts it was about."""

    group: str
    from_capacity: int
    desired: int
    action_id: int
    decision_id: int
    notification: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)


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

    def status(self) -> GroupStatus:
        """Current size and members, as the provider sees them now."""

    def scale(self, request: ScaleRequest) -> str:
        """Bring the group to ``request.desired``; return a short human-readable result."""

    def members(self) -> list[Member]: ...

    def close(self) -> None:
        """Release resources. Instances keep running (they belong to the group, not the process)."""


@runtime_checkable
class Healer(Protocol):
    def heal(self, member_id: str) -> str:
        """Replace or repair one member."""
