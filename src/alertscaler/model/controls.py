"""What operators say about groups during an incident: a pause (one group's, or every group's) and a hold
(a manual scale's size, kept from policies until it ends). Values only, no clock of their own: whether a
pause holds is asked with a time passed in.

Stored by ``store`` (table ``pauses``; the hold is ``group_states.held_until``), applied by
``act.recording.gate`` to every decision, shown by ``api`` and ``cli``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

EVERY_GROUP = "*"  # the scope of a global pause (group names cannot be "*")


@dataclass(frozen=True)
class Pause:
    """A pause of ``scope`` (a group, or ``EVERY_GROUP``) from ``since`` until ``until`` (None: until resumed)."""

    scope: str
    since: datetime
    until: datetime | None
    reason: str

    def holds(self, now: datetime) -> bool:
        """An expired pause is simply over."""
        return self.until is None or now < self.until

    @property
    def global_(self) -> bool:
        return self.scope == EVERY_GROUP

    def describe(self) -> str:
        who = "every group paused" if self.global_ else "paused"
        until = f" until {self.until.isoformat(timespec='seconds')}" if self.until else " until resumed"
        why = f" ({self.reason})" if self.reason else ""
        return f"{who}{until}{why}"


def pause_of(pauses: Iterable[Pause], group: str, now: datetime) -> Pause | None:
    """The pause that holds for ``group`` at ``now``: its own, else the global one (None: not paused)."""
    found = {p.scope: p for p in pauses if p.holds(now)}
    return found.get(group) or found.get(EVERY_GROUP)
