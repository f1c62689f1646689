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

With ``alertmanager.url`` set every step-policy route goes that way (``gated``): before deciding, Alertmanager
is asked (``act.silencing``, outside the transaction) whether its alerts are silenced or inhibited (decided
``silenced``; fail open or closed when it cannot be asked) and which it no longer has (phantoms: removed,
decided ``reconciled``); a route in cooldown or at a bound is still reconciled every
``alertmanager.reconcile_interval``.

Called by ``act.engine`` every ``server.reevaluate_interval``. Verdicts are recorded by ``act.recording``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta

from alertscaler.act.alarming import alarm_matchers
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
from alertscaler.act.silencing import Judgement, SilenceGate, View, judge
from alertscaler.config import GroupConfig, PolicyFile
from alertscaler.decide.evaluator import evaluate_step
from alertscaler.model.decisions import Outcome, Reason, Trigger, Verdict
from alertscaler.model.errors import PrometheusUnavailable
from alertscaler.model.groups import GroupState
from alertscaler.model.policies import Direction, LiveCheck, StepPolicy
from alertscaler.store.base import AlertRoute, StateStore, StoredNotification, Tx

log = logging.getLogger(__name__)


class Reevaluator:
    def __init__(self, policy: PolicyFile, store: StateStore, checker: Checker | None = None,
                 gate: SilenceGate | None = None) -> None:
        self.policy = policy
        self.store = store
        self.checker = checker
        self.gate = gate  # Alertmanager's view (act.silencing): None without alertmanager.url
        self._next_reconcile: dict[tuple[str, str], datetime] = {}
        self.drives: Drives = drives_all  # several replicas: the engine sets its replica's (act.ownership)
        self._next_check: dict[tuple[str, str], datetime] = {}
        self._checking: set[tuple[str, str]] = set()  # routes whose check runs (timer and engine threads)
        self._lock = threading.Lock()

    def carry_from(self, old: Reevaluator, groups: Collection[str]) -> None:
        """A reload (``act.reloading``): ``groups``, which it left unchanged, keep when their routes are next
        checked and reconciled; a check ``old`` still runs is seen (one check of a route at a time)."""
        self._checking, self._lock = old._checking, old._lock
        for key, at in old._next_check.items():
            if key[0] in groups:
                self._next_check[key] = at
        for key, at in old._next_reconcile.items():
            if key[0] in groups:
                self._next_reconcile[key] = at

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
        if step.checked or self.gate is not None:
            self._checked(route, group, step, direction, now, stale, recorded, stored)
            return
        if not stale and not self._due(route, group, step, direction, now):
            return
        with self.store.transaction() as tx:
            self._pass(tx, route.group, route.policy, group, step, direction, now, stale_after, recorded)

    def _checked(self, route: AlertRoute, group: GroupConfig, step: StepPolicy, direction: Direction,
                 now: datetime, stale: bool, recorded: list[Recorded], stored: StoredNotification | None) -> None:
        """A checked or gated route: due when it has unchecked alerts or its ``check_interval`` has passed
        (gated only: when a pass could record something) and no cooldown runs; then ask Alertmanager and check
        live, outside any transaction, and decide with what was found."""
        key = (route.group, route.policy)
        unchecked = route.reasons.get(Reason.CHECKING.value, 0) > 0
        state = self.store.get_group_state(route.group) or GroupState(route.group, group.initial_desired)
        pre = evaluate_step(state, step, direction, group.bounds_at(now), now)
        cooling = pre.reason is Reason.COOLDOWN
        if step.checked:
            due = not cooling and (unchecked or now >= self._next_check.get(key, now))
        else:
            due = not cooling and (unchecked or self._due(route, group, step, direction, now))
        reconcile = self.gate is not None and now >= self._next_reconcile.get(key, now)
        if cooling and unchecked:  # like an unchecked policy: the cooldown skip is recorded now, no query
            with self.store.transaction() as tx:
                self._pass(tx, route.group, route.policy, group, step, direction, now,
                           timedelta(seconds=self.policy.server.alert_stale_after), recorded, stored=stored,
                           record_cooldown=True)
            return
        if not due and not stale and not reconcile:
            return
        judgement: Judgement | None = None
        if self.gate is not None and (due or reconcile):
            judgement = self._ask(route, group, step, direction, now)
        live: LiveCheck | None = None
        if due and step.checked and (judgement is None or (judgement.live and judgement.blocked is None)):
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
                       live=live, stored=stored, decide=due, judgement=judgement)

    def _ask(self, route: AlertRoute, group: GroupConfig, step: StepPolicy, direction: Direction,
             now: datetime) -> Judgement:
        """Alertmanager's view of the route's believed-firing alerts (read and asked outside any transaction)."""
        assert self.gate is not None
        self._next_reconcile[(route.group, route.policy)] = now + timedelta(seconds=self.gate.interval)
        believed = [a for a in self.store.active_alerts(route.group) if a.policy == route.policy]
        where = f"group={route.group} policy={route.policy}"
        view = self.gate.ask(step.matchers, now, where)
        for matchers in alarm_matchers(self.policy, route.group, route.policy):  # its alarms' scale:// alerts
            more = self.gate.ask(matchers, now, where)
            view = View(view.asked_at, {**view.alerts, **more.alerts}, view.error or more.error)
        return judge(believed, view, direction, group.silences)

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
              stored: StoredNotification | None = None, decide: bool = True, record_cooldown: bool = False,
              judgement: Judgement | None = None) -> None:
        trigger = Trigger.NOTIFICATION if stored is not None else Trigger.TIMER
        about = About(name, policy, trigger, group)
        if judgement is not None and judgement.phantoms:
            self._reconcile(tx, name, policy, group, judgement, now, recorded)
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
        if judgement is not None and judgement.blocked is not None:
            verdict = Verdict(Outcome.SKIPPED, Reason.SILENCE_UNKNOWN, state.desired, state.desired, judgement.blocked)
        elif judgement is not None and judgement.silenced:
            verdict = Verdict(Outcome.SKIPPED, Reason.SILENCED, state.desired, state.desired, judgement.why_silenced())
        else:
            verdict = evaluate_step(state, step, direction, group.bounds_at(now), now, live)
            if judgement is not None and judgement.note:
                verdict = replace(verdict, message=f"{verdict.message} ({judgement.note})")
        if verdict.reason is Reason.COOLDOWN and not record_cooldown:
            return
        seen = effective(verdict, group, gate_of(tx.pauses(), about, state, now))
        if not seen.acted and set(fresh.reasons) == {seen.reason.value}:
            return  # already recorded this skip for these alerts
        alerts = tx.route_alerts(name, policy, MAX_ALERTS_PER_DECISION)
        if judgement is not None and judgement.live and judgement.suppressed:
            alerts = [a for a in alerts if a.fingerprint in judgement.live] or alerts  # acted on: the unsilenced
        done = record(tx, about, verdict, now, state=state, step=direction,
                      evidence=Evidence.of(alerts, stored, total=fresh.count))
        tx.set_route_reason(name, policy, done.reason.value)  # every active alert of the route
        recorded.append(done)

    def _reconcile(self, tx: Tx, name: str, policy: str, group: GroupConfig, judgement: Judgement, now: datetime,
                   recorded: list[Recorded]) -> None:
        """Phantoms: believed firing, unknown to Alertmanager when asked (and not confirmed since): resolved."""
        gone = [a for a in tx.route_alerts(name, policy, 1_000_000) if a.fingerprint in judgement.phantoms
                and (judgement.asked_at is None or a.last_seen_at <= judgement.asked_at)]  # not re-sent since
        for alert in gone:
            tx.remove_active_alert(name, policy, alert.fingerprint)
        if gone:
            recorded.append(record_skip(
                tx, About(name, policy, Trigger.TIMER, group), Reason.RECONCILED,
                f"{len(gone)} alert(s) believed firing that Alertmanager no longer has (resolved, the resolved "
                "notification never came): removed, no longer stepping", now, Evidence.of(gone)))
