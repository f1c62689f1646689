"""Alarm state from alerts: the alerts of an alarm's generated rules (label ``alertscaler_alarm``) are folded into
the alarm's state per dimension set (``model.alarms.apply``: firing → ALARM, resolved → OK, the missing-data
rule firing → INSUFFICIENT_DATA), each transition stored with the actions due on it, all in the transaction
that records and decides on the notification.

Called by ``act.processing``: ``AlarmIntake.lock`` before anything else of a batch (after its groups: every
transaction locks groups first, then alarm states in key order), ``AlarmIntake.take`` for each notification
(after its decisions). The alarm's scale and heal actions are routes of the normal alert routing
(``alarm_routes``, ``alarm_heal_routes``): an ALARM alert is decided by the group's step or heal policy like
any alert its matchers match. A ``log://`` action logs the transition here; ``notify:METHOD`` and URL actions
are put in the notification outbox in the same transaction (``act.notifying.enqueue_for_transition``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alertscaler.act.heal_intake import HealRoute
from alertscaler.act.notifying import enqueue_for_transition
from alertscaler.config import PolicyFile
from alertscaler.config.alarms import alarm_definitions
from alertscaler.ingest.routing import Route
from alertscaler.model.alarms import (
    ALARM_LABEL,
    SIGNAL_LABEL,
    AlarmDefinition,
    AlarmSignal,
    AlarmStatus,
    Event,
    HealAction,
    LogAction,
    ScaleAction,
    Transition,
    apply_all,
    dims_key,
    shown,
)
from alertscaler.model.alerts import Alert, Notification
from alertscaler.model.matchers import MatcherSet
from alertscaler.store.base import Tx

log = logging.getLogger(__name__)


def _matcher_texts(alarm: str) -> list[str]:
    """What an alarm's ALARM alerts carry (``model.alarm_promql`` labels them)."""
    return [f'{ALARM_LABEL}="{alarm}"', f'{SIGNAL_LABEL}="{AlarmSignal.ALARM.value}"']


def _matchers(alarm: str) -> MatcherSet:
    return MatcherSet.parse(_matcher_texts(alarm))


def alarm_routes(policy: PolicyFile) -> list[Route]:
    """A route per ``scale://GROUP/POLICY`` alarm action: the alarm's ALARM alerts go to that step policy."""
    return [Route(action.group, action.policy, _matchers(name))
            for name, alarm in alarm_definitions(policy.alarms).items() if alarm.enabled
            for action in alarm.actions.alarm if isinstance(action, ScaleAction)]


def alarm_matchers(policy: PolicyFile, group: str, step: str) -> list[list[str]]:
    """The matchers of the alarms whose ``scale://`` action routes to ``group``'s ``step`` policy: asked of
    Alertmanager besides the policy's own when its view of the route is needed (``act.reevaluating``)."""
    return [_matcher_texts(name) for name, alarm in alarm_definitions(policy.alarms).items() if alarm.enabled
            for action in alarm.actions.alarm
            if isinstance(action, ScaleAction) and action.group == group and action.policy.value == step]


def one_per_policy(routes: list[Route]) -> list[Route]:
    """The first route of each (group, policy): an alert that an alarm's ``scale://`` action routes to a policy
    whose own matchers match it too is decided once."""
    seen: set[tuple[str, str]] = set()
    out = []
    for r in routes:
        if (r.group, r.policy) not in seen:
            seen.add((r.group, r.policy))
            out.append(r)
    return out


def alarm_heal_routes(policy: PolicyFile) -> list[HealRoute]:
    """A heal route per ``heal://GROUP`` alarm action (with the group's heal section)."""
    out = []
    for name, alarm in alarm_definitions(policy.alarms).items():
        for action in alarm.actions.alarm if alarm.enabled else ():
            if not isinstance(action, HealAction):
                continue
            heal = policy.groups[action.group].heal
            if heal is not None:
                out.append(HealRoute(action.group, _matchers(name), heal))
    return out


@dataclass
class _Pending:
    definition: AlarmDefinition
    dimensions: dict[str, str]
    events: list[Event] = field(default_factory=list)


class AlarmIntake:
    def __init__(self, policy: PolicyFile) -> None:
        self.definitions = {n: d for n, d in alarm_definitions(policy.alarms).items() if d.enabled}
        translations = policy.alarm_metrics.translations()
        self.labels = {n: {dim: translations.label(dim) for dim in d.match_by} for n, d in self.definitions.items()}
        self.methods = policy.notification_methods  # notify:NAME actions (act.notifying)

    def _key(self, alert: Alert) -> tuple[str, dict[str, str], AlarmSignal] | None:
        """(alarm, dimensions, signal) of an alarm alert; None for any other alert."""
        name = alert.labels.get(ALARM_LABEL)
        if name is None or name not in self.definitions:
            return None
        try:
            signal = AlarmSignal(alert.labels.get(SIGNAL_LABEL, ""))
        except ValueError:
            return None
        dims = {dim: alert.labels.get(label, "") for dim, label in self.labels[name].items()}
        return name, dims, signal

    def lock(self, tx: Tx, notifications: Sequence[Notification | None], now: datetime) -> None:
        """Lock every alarm state a batch touches, in key order (call after its groups are locked)."""
        keys = {(k[0], dims_key(k[1])) for n in notifications if n is not None for a in n.alerts
                if (k := self._key(a)) is not None}
        if keys:
            tx.lock_alarm_states(sorted(keys), now)

    def owns(self, alert: Alert) -> bool:
        """Whether ``alert`` is an alarm's (its state is folded in by ``take``)."""
        return self._key(alert) is not None

    def touches(self, notifications: Sequence[Notification | None]) -> bool:
        return bool(self.definitions) and any(self._key(a) is not None for n in notifications if n is not None
                                              for a in n.alerts)

    def take(self, tx: Tx, alerts: Sequence[Alert], notification_id: int | None,
             now: datetime) -> tuple[set[int], list[Transition]]:
        """Fold the alarm alerts of a notification into their alarms' states. Returns the positions of the alerts
        that were an alarm's (not ``no_group`` when no group route matches them) and the transitions stored."""
        if not self.definitions:
            return set(), []
        taken: set[int] = set()
        pending: dict[tuple[str, str], _Pending] = {}
        for i, alert in enumerate(alerts):
            key = self._key(alert)
            if key is None:
                continue
            name, dims, signal = key
            taken.add(i)
            at = alert.starts_at if alert.firing else (alert.ends_at or now)
            item = pending.setdefault((name, dims_key(dims)), _Pending(self.definitions[name], dims))
            item.events.append(Event(alert.fingerprint, signal, alert.firing, at, alert.annotations.get("value")))
        if not pending:
            return taken, []
        stored = tx.lock_alarm_states(sorted(pending), now)
        transitions: list[Transition] = []
        for pair in sorted(pending):
            item = pending[pair]
            status = stored.get(pair) or AlarmStatus.initial(item.definition, item.dimensions)
            status, changed = apply_all(status, item.events, item.definition, now)
            tx.save_alarm_state(status, now)
            transitions += changed
        # a repeat (repeat_actions) changes no state: not in the history; the others' rows, in order
        history_ids = iter(tx.add_alarm_transitions([t for t in transitions if not t.repeat], now, notification_id))
        for t in transitions:
            _log(self.definitions[t.alarm], t)
            # notify: and URL actions: in the outbox, in this transaction (act.notifying delivers them), naming
            # the history row of the transition (a repeat has none)
            enqueue_for_transition(tx, self.definitions[t.alarm], t, now, self.methods,
                                   None if t.repeat else next(history_ids))
        return taken, transitions


def _log(alarm: AlarmDefinition, t: Transition) -> None:
    dims = ",".join(f"{k}={v}" for k, v in sorted(t.dimensions.items()))
    where = f"alarm={alarm.name}{'{' + dims + '}' if dims else ''}"
    old, new = shown(t.old, alarm.style), shown(t.new, alarm.style)
    level = logging.WARNING if any(isinstance(a, LogAction) for a in t.actions) else logging.INFO
    actions = ", ".join(str(a) for a in t.actions) or "none"
    log.log(level, "%s severity=%s: %s -> %s: %s (actions: %s)", where, alarm.severity, old, new, t.reason, actions)
