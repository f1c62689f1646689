"""Alerts that STAY firing keep producing steps, at most one per cooldown, until resolved or at a bound.

Alertmanager only re-sends a firing alert every ``repeat_interval`` (and those re-sends are duplicates by
design), so alertscaler re-evaluates its active alerts on its own timer. A skip is recorded once, when its
reason changes (no "cooldown" row every tick). A firing alert not confirmed (re-sent) for
``alert_stale_after`` stops stepping and is dropped with reason ``stale``.

A checked policy (``guard`` / ``size_by``) is decided here only: its alerts come in with reason ``checking``,
``act.processing`` returns a ``CheckDue`` for them and ``act.engine`` runs their pass at once (``check_route``,
in a thread); the live check runs before the write transaction, and a still-firing alert whose check said no
is checked again every ``check_interval``.
After a crash the ``checking`` alerts are still there: the timer decides them.

Called by ``act.engine`` every ``server.reevaluate_interval``. Verdicts are recorded by ``act.recording``.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from alertscaler.act.checking import Checker
from alertscaler.act.ownership import Drives, drives_all
from alertscaler.act.recording import (
    MAX_ALERTS_PER_DECISION,
    About,
    Evidence,
    Recorded,
    effective,
    gate_of,
    record,
    record_skip,
)
from alertscaler.config import GroupConfig, PolicyFile
from alertscaler.decide.evaluator import evaluate_step
from alertscaler.model.decisions import Reason, Trigger
from alertscaler.model.errors import PrometheusUnavailable
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import Direction, LiveCheck, StepPolicy
from alertscaler.store.base import AlertRoute, StateStore, StoredNotification, Tx

log = logging.getLogger(__name__)


class Reevaluator:
    def __init__(self, policy: PolicyFile, store: StateStore, checker: Checker | None = None) -> None:
        self.policy = policy
        self.store = store
        self.checker = checker
        self.drives: Drives = drives_all  # several replicas: the engine sets its replica's (act.ownership)
        self._next_check: dict[tuple[str, str], datetime] = {}
        self._checking: set[tuple[str, str]] = set()  # routes whose check runs (timer and engine threads)
        self._lock = threading.Lock()

    def check_route(self, name: str, policy: str, now: datetime,
                    stored: StoredNotification | None = None) -> list[Recorded]:
        """The pass of one checked route right after its alerts came in (``stored``: their notification)."""
        recorded: list[Recorded] = []
        for route in self.store.active_alert_routes():
            if (route.group, route.policy) == (name, policy):
                self._route(route, now, recorded, stored)
        return recorded

    def run(self, now: datetime) -> list[Recorded]:
        """One pass over every route with active alerts. Costs one aggregate query when nothing is due
        (cooldown running, skip already recorded): alerts are read only for a decision, at most
        ``MAX_ALERTS_PER_DECISION`` of them, and the write transaction is taken only then."""
        recorded: list[Recorded] = []
        for route in self.store.active_alert_routes():
            if self.drives(route.group, now) or route.group not in self.policy.groups:
                self._route(route, now, recorded)
        return recorded

    def _route(self, route: AlertRoute, now: datetime, recorded: list[Recorded],
               stored: StoredNotification | None = None) -> None:
        stale_after = timedelta(seconds=self.policy.server.alert_stale_after)
        group = self.policy.groups.get(route.group)
        direction = Direction(route.policy) if route.policy in Direction._value2member_map_ else None
        step = None
        if group is not None and direction is not None:
            step = group.scale_out if direction is Direction.SCALE_OUT else group.scale_in
        if group is None or direction is None or step is None:
            with self.store.transaction() as tx:  # the policy file no longer has this group/policy
                dropped = tx.drop_route(route.group, route.policy)
            log.info("dropped %d active alert(s) of removed policy %s.%s", dropped, route.group, route.policy)
            return
        stale = now - route.oldest_seen_at > stale_after
        if step.checked:
            self._checked(route, group, step, direction, now, stale, recorded, stored)
            return
        if not stale and not self._due(route, group, step, direction, now):
            return
        with self.store.transaction() as tx:
            self._pass(tx, route.group, route.policy, group, step, direction, now, stale_after, recorded)

    def _checked(self, route: AlertRoute, group: GroupConfig, step: StepPolicy, direction: Direction,
                 now: datetime, stale: bool, recorded: list[Recorded], stored: StoredNotification | None) -> None:
        """A checked route: due when it has unchecked alerts or its ``check_interval`` has passed (and no
        cooldown runs); then check live, outside any transaction, and decide with what was found."""
        key = (route.group, route.policy)
        unchecked = route.reasons.get(Reason.CHECKING.value, 0) > 0
        state = self.store.get_group_state(route.group) or GroupState(route.group, group.initial_desired)
        cooling = evaluate_step(state, step, direction, group.bounds_at(now), now).reason is Reason.COOLDOWN
        due = not cooling and (unchecked or now >= self._next_check.get(key, now))
        if cooling and unchecked:  # like an unchecked policy: the cooldown skip is recorded now, no query
            with self.store.transaction() as tx:
                self._pass(tx, route.group, route.policy, group, step, direction, now,
                           timedelta(seconds=self.policy.server.alert_stale_after), recorded, stored=stored,
                           record_cooldown=True)
            return
        if not due and not stale:
            return
        live: LiveCheck | None = None
        if due:
            with self._lock:
                if key in self._checking:
                    return  # the other thread is checking it right now
                self._checking.add(key)
            try:
                live = self._live(step, f"group={route.group} policy={route.policy}")
            finally:
                with self._lock:
                    self._checking.discard(key)
            self._next_check[key] = now + timedelta(seconds=step.check_interval)
        stale_after = timedelta(seconds=self.policy.server.alert_stale_after)
        with self.store.transaction() as tx:
            self._pass(tx, route.group, route.policy, group, step, direction, now, stale_after, recorded,
                       live=live, stored=stored, decide=due)

    def _live(self, step: StepPolicy, where: str) -> LiveCheck:
        if self.checker is None:
            return LiveCheck(error=str(PrometheusUnavailable("no Prometheus client for live checks")))
        return self.checker.check(step, where)

    def _due(self, route: AlertRoute, group: GroupConfig, step: StepPolicy, direction: Direction,
             now: datetime) -> bool:
        """Could a pass record anything? Read-only: the pass re-checks under the group's lock."""
        state = self.store.get_group_state(route.group) or GroupState(route.group, group.initial_desired)
        verdict = evaluate_step(state, step, direction, group.bounds_at(now), now)
        if verdict.reason is Reason.COOLDOWN:
            return False
        gate = gate_of(self.store.pauses(), About(route.group, route.policy, Trigger.TIMER, group), state, now)
        seen = effective(verdict, group, gate)
        return seen.acted or set(route.reasons) != {seen.reason.value}

    def _pass(self, tx: Tx, name: str, policy: str, group: GroupConfig, step: StepPolicy, direction: Direction,
              now: datetime, stale_after: timedelta, recorded: list[Recorded], live: LiveCheck | None = None,
              stored: StoredNotification | None = None, decide: bool = True, record_cooldown: bool = False) -> None:
        trigger = Trigger.NOTIFICATION if stored is not None else Trigger.TIMER
        about = About(name, policy, trigger, group)
        stale = tx.remove_stale_alerts(name, policy, now - stale_after)
        if stale:
            recorded.append(record_skip(
                tx, About(name, policy, Trigger.TIMER, group), Reason.STALE,
                f"not re-sent by Alertmanager for over {stale_after}; stopped stepping", now,
                Evidence([{"fingerprint": a.fingerprint, "labels": a.labels} for a in stale[:MAX_ALERTS_PER_DECISION]],
                         len(stale))))
        fresh = tx.route_summary(name, policy)
        if fresh is None or not decide:
            return
        state = tx.lock_group(name, group.initial_desired)
        verdict = evaluate_step(state, step, direction, group.bounds_at(now), now, live)
        if verdict.reason is Reason.COOLDOWN and not record_cooldown:
            return
        seen = effective(verdict, group, gate_of(tx.pauses(), about, state, now))
        if not seen.acted and set(fresh.reasons) == {seen.reason.value}:
            return  # already recorded this skip for these alerts
        alerts = tx.route_alerts(name, policy, MAX_ALERTS_PER_DECISION)
        done = record(tx, about, verdict, now, state=state, step=direction,
                      evidence=Evidence.of(alerts, stored, total=fresh.count))
        tx.set_route_reason(name, policy, done.reason.value)  # every active alert of the route
        recorded.append(done)
