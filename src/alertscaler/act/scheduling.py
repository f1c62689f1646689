"""Schedules, the acting part: when a group's schedule window opens or closes, record it and move the
group into the bounds now in force; a window's ``desired`` is applied once per opening.

Called by ``act.engine`` on the re-evaluation timer (in a thread). ``decide.schedules`` says which windows
are open and what they do to min/max; every decision path (alerts, tracking, manual, start-up) asks
``GroupConfig.bounds_at(now)``, so a window's bounds hold for all of them while it is open.

A transition is one decision (policy ``schedule``, trigger ``schedule``, reason ``scheduled`` when the size
changes, ``no_change`` when it does not). That a window's ``desired`` was applied is kept in the decision's
message (``[name@opened-at]``), so a restart inside the window does not apply it again — and a restart
after a window opened while alertscaler was down still applies it. Cooldown clocks are not touched.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime

from alertscaler.act.ownership import Drives, drives_all
from alertscaler.act.recording import About, Recorded, record
from alertscaler.config import GroupConfig, PolicyFile
from alertscaler.decide.approvals import open_freeze
from alertscaler.decide.schedules import ActiveWindow, active_windows, effective_bounds, scheduled_desired
from alertscaler.model.decisions import Outcome, Reason, Trigger, Verdict
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import Bounds
from alertscaler.store.base import StateStore

log = logging.getLogger(__name__)

SCHEDULE_POLICY = "schedule"  # the ``policy`` of schedule decisions


class Scheduler:
    def __init__(self, policy: PolicyFile, store: StateStore) -> None:
        self.groups = {name: g for name, g in policy.groups.items() if g.schedule is not None}
        self.store = store
        self._open: dict[str, dict[str, ActiveWindow]] = {}  # group -> key -> the open windows last seen
        self._applied: set[str] = set()                     # keys of openings whose desired was applied
        self._gated: dict[str, int] = {}  # group -> the size a paused / held decision last said (said once)
        self._frozen: dict[str, tuple[int, datetime]] = {}  # group -> (the size a change freeze stopped, its end)
        self.drives: Drives = drives_all  # several replicas: the engine sets its replica's (act.ownership)

    def carry_from(self, old: Scheduler, groups: Collection[str]) -> None:
        """A reload (``act.reloading``): ``groups``, which it left unchanged, keep the windows ``old`` saw open
        (no new "window open" decision); openings already applied stay applied."""
        self._applied |= old._applied
        for name in groups:
            if name in self.groups and name in old._open:
                self._open[name] = old._open[name]
            if name in self.groups and name in old._gated:
                self._gated[name] = old._gated[name]
            if name in self.groups and name in old._frozen:
                self._frozen[name] = old._frozen[name]

    def run(self, now: datetime) -> list[Recorded]:
        out: list[Recorded] = []
        for name, group in self.groups.items():
            if not self.drives(name, now):
                continue
            assert group.schedule is not None
            active = active_windows(group.schedule, now)
            opened = {a.key: a for a in active}
            bounds = effective_bounds(group.bounds, active)
            pick = scheduled_desired(active)
            if pick is not None and pick[0].key not in self._applied and self._was_applied(name, pick[0]):
                self._applied.add(pick[0].key)
            fresh = pick if pick is not None and pick[0].key not in self._applied else None
            state = self.store.get_group_state(name) or GroupState(name, group.initial_desired)
            wanted = bounds.clamp(fresh[1] if fresh else state.desired)
            frozen = self._frozen.get(name)
            if opened.keys() == self._open.get(name, {}).keys() and fresh is None and (
                    wanted == state.desired or self._gated.get(name) == wanted
                    or (frozen is not None and frozen[0] == wanted and now < frozen[1])):
                self._open[name] = opened
                continue
            done = self._record(name, group, bounds, opened, fresh, now)
            if any(r.reason in (Reason.PAUSED, Reason.HELD) for r in done):
                self._gated[name] = wanted
            else:
                self._gated.pop(name, None)
            freeze = open_freeze(group.change_freeze, now)  # said once; moved once the freeze has ended
            if freeze is not None and any(r.reason is Reason.CHANGE_FREEZE for r in done):
                self._frozen[name] = (wanted, freeze.closes_at)
            else:
                self._frozen.pop(name, None)
            out.extend(done)
            self._open[name] = opened
            if fresh is not None:
                self._applied.add(fresh[0].key)
        return out

    def _was_applied(self, name: str, window: ActiveWindow) -> bool:
        """Is there a schedule decision for this opening (a restart inside the window)?"""
        marker = f"[{window.key}]"
        return any(d.policy == SCHEDULE_POLICY and marker in d.message
                   for d in self.store.list_decisions(group=name, since=window.opened_at, limit=500))

    def _record(self, name: str, group: GroupConfig, bounds: Bounds, opened: dict[str, ActiveWindow],
                fresh: tuple[ActiveWindow, int] | None, now: datetime) -> list[Recorded]:
        before = self._open.get(name)
        with self.store.transaction() as tx:
            state = tx.lock_group(name, group.initial_desired)
            if fresh is not None and self._was_applied(name, fresh[0]):
                fresh = None  # another replica applied it while we waited for the group's lock
            wanted = bounds.clamp(fresh[1] if fresh else state.desired)
            parts = _transitions(before, opened, group)
            parts.append(f"bounds {bounds.min_size}..{bounds.max_size}")
            if fresh is not None:
                parts.append(f"desired {fresh[1]} from window {fresh[0].window.name} [{fresh[0].key}]")
            change = f"scale {state.desired} -> {wanted}" if wanted != state.desired else f"size {wanted} kept"
            message = f"{'; '.join(parts)}: {change}"
            verdict = Verdict(Outcome.ACTED if wanted != state.desired else Outcome.SKIPPED,
                              Reason.SCHEDULED if wanted != state.desired else Reason.NO_CHANGE,
                              state.desired, wanted, message)
            return [record(tx, About(name, SCHEDULE_POLICY, Trigger.SCHEDULE, group), verdict, now, state=state)]


def _transitions(before: dict[str, ActiveWindow] | None, now_open: dict[str, ActiveWindow],
                 group: GroupConfig) -> list[str]:
    """What changed since the last look, in words (the first look after a start lists what is open)."""
    zone = group.schedule.timezone if group.schedule is not None else "UTC"
    parts = []
    for key, a in now_open.items():
        if before is None or key not in before:
            until = a.closes_at.astimezone(group.schedule.zone if group.schedule else None)
            verb = "open" if before is None else "opened"
            parts.append(f"window {a.window.name} {verb} (until {until:%Y-%m-%d %H:%M} {zone})")
    for key, a in (before or {}).items():
        if key not in now_open:
            parts.append(f"window {a.window.name} closed")
    return parts or ["schedule"]
