"""Alarms (Aodh / Ceilometer threshold alarms, Monasca alarm definitions) as values, and their pure state
machine: OK / ALARM / INSUFFICIENT_DATA (Monasca: UNDETERMINED) per alarm and dimension set, derived from the
alerts the alarm's generated rules send. No I/O, no clock: time is an argument.

An alarm compiles (``model.alarm_promql``) to an alerting rule whose alerts carry ``alertscaler_alarm: NAME``
and ``alertscaler_alarm_state: alarm`` (firing: the condition holds), and, unless deterministic, a companion
rule for missing data (``alertscaler_alarm_state: insufficient_data``) and one for data present
(``alertscaler_alarm_state: ok``, so that an alarm whose condition never held leaves its initial state). ``apply``
folds each alert event into the alarm's status: every alert (by fingerprint) is remembered with whether it fires
and since when, and the state is INSUFFICIENT_DATA while any missing-data alert fires, else ALARM while any
condition alert fires, else OK. An event older than the one already known for the same alert is ignored (a late
re-delivery), so the order notifications arrive in does not change the outcome. A state change is a
``Transition``, carrying the actions due for the new state.

Called by ``act.alarming`` (inside the transaction that records the notification), read by ``store``, ``api``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Final

from alertscaler.model.alarm_grammar import Expression, is_deterministic, sub_expressions
from alertscaler.model.policies import Direction
from alertscaler.model.urls import shown_url

ALARM_LABEL: Final = "alertscaler_alarm"
"""The label naming the alarm on the alerts of its generated rules."""
SIGNAL_LABEL: Final = "alertscaler_alarm_state"
"""The label saying which state an alarm alert stands for while it fires: ``alarm`` or ``insufficient_data``."""

#: how long a resolved alert is remembered in an alarm's status (to ignore a late re-delivery of its firing)
FORGET_RESOLVED: Final = timedelta(days=1)


class AlarmState(str, Enum):
    OK = "ok"
    ALARM = "alarm"
    INSUFFICIENT_DATA = "insufficient_data"


class Style(str, Enum):
    """How the alarm was written, which is how its states are shown: Aodh's ``ok`` / ``alarm`` / ``insufficient
    data``, or Monasca's ``OK`` / ``ALARM`` / ``UNDETERMINED``."""

    AODH = "aodh"
    MONASCA = "monasca"


_SHOWN: Final = {
    Style.AODH: {AlarmState.OK: "ok", AlarmState.ALARM: "alarm", AlarmState.INSUFFICIENT_DATA: "insufficient data"},
    Style.MONASCA: {AlarmState.OK: "OK", AlarmState.ALARM: "ALARM", AlarmState.INSUFFICIENT_DATA: "UNDETERMINED"},
}


def shown(state: AlarmState, style: Style) -> str:
    """The state as the alarm's own system names it."""
    return _SHOWN[style][state]


class AlarmSignal(str, Enum):
    """What an alarm alert stands for while it fires (its ``alertscaler_alarm_state`` label): the condition holds
    (``alarm``), data is missing (``insufficient_data``), or data is there (``ok``: OK unless another says
    otherwise; it takes an alarm out of its initial state without waiting for the condition to hold once)."""

    ALARM = "alarm"
    INSUFFICIENT_DATA = "insufficient_data"
    OK = "ok"


#: severities: Aodh's (low, moderate, critical) and Monasca's (LOW, MEDIUM, HIGH, CRITICAL), kept lower-case
SEVERITIES: Final = ("low", "moderate", "medium", "high", "critical")


# --- actions -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleAction:
    """Apply the group's step policy (``scale_out`` / ``scale_in``): like posting to a Heat policy's alarm_url."""

    group: str
    policy: Direction

    def __str__(self) -> str:
        return f"scale {self.group} {self.policy.value}"


@dataclass(frozen=True)
class HealAction:
    """Heal the member the alert names, with the group's heal policy."""

    group: str

    def __str__(self) -> str:
        return f"heal {self.group}"


@dataclass(frozen=True)
class LogAction:
    """Log the transition (Aodh's ``log://``)."""

    def __str__(self) -> str:
        return "log"


@dataclass(frozen=True)
class NotifyAction:
    """Send the transition through a notification method of the policy file's ``notification_methods``
    (``notify:NAME``): a webhook, an email or a log line, delivered by ``act.notifying`` from the outbox."""

    method: str

    def __str__(self) -> str:
        return f"notify:{self.method}"


@dataclass(frozen=True)
class UrlAction:
    """POST the transition to a URL, as Aodh's REST notifier does (``http://`` / ``https://``; the alarm's style
    picks the payload: Aodh's or Monasca's), delivered by ``act.notifying`` from the outbox. Shown without
    credentials or query (``model.urls.shown_url``)."""

    url: str

    def __str__(self) -> str:
        return shown_url(self.url)


AlarmAction = ScaleAction | HealAction | LogAction | NotifyAction | UrlAction


@dataclass(frozen=True)
class Actions:
    """The actions of each state (Aodh's alarm_actions / ok_actions / insufficient_data_actions; Monasca's
    alarm_actions / ok_actions / undetermined_actions)."""

    alarm: tuple[AlarmAction, ...] = ()
    ok: tuple[AlarmAction, ...] = ()
    insufficient_data: tuple[AlarmAction, ...] = ()

    def on(self, state: AlarmState) -> tuple[AlarmAction, ...]:
        return {AlarmState.ALARM: self.alarm, AlarmState.OK: self.ok,
                AlarmState.INSUFFICIENT_DATA: self.insufficient_data}[state]


# --- the definition ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmDefinition:
    """One alarm of the policy file's ``alarms`` section. ``condition`` is the expression (one comparison for an
    Aodh threshold alarm). ``match_by``: one alarm state per distinct value set of these dimensions."""

    name: str
    style: Style
    condition: Expression
    severity: str = "low"
    description: str = ""
    match_by: tuple[str, ...] = ()
    actions: Actions = field(default_factory=Actions)
    repeat_actions: bool = False
    enabled: bool = True
    group: str | None = None  # the alertscaler_group label of its alerts, if any

    @property
    def deterministic(self) -> bool:
        """No missing-data state: absent data counts as OK (Monasca's ``deterministic``)."""
        return is_deterministic(self.condition)

    @property
    def initial_state(self) -> AlarmState:
        """Before any alert: OK when deterministic, else INSUFFICIENT_DATA (Aodh's and Monasca's start)."""
        return AlarmState.OK if self.deterministic else AlarmState.INSUFFICIENT_DATA

    def metrics(self) -> list[str]:
        """The metric names (or PromQL queries) the condition reads, once each, in order."""
        return list(dict.fromkeys(s.metric.name if s.metric is not None else s.promql or ""
                                  for s in sub_expressions(self.condition)))


# --- status and transitions ----------------------------------------------------------------------------------


def dims_key(dimensions: Mapping[str, str]) -> str:
    """The canonical text of a dimension set (the store's key): JSON with sorted keys, ``{}`` for none."""
    return json.dumps(dict(sorted(dimensions.items())), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class AlertMark:
    """What is known of one alert of the alarm: what it stands for, whether it fires, since when."""

    signal: AlarmSignal
    firing: bool
    at: datetime


@dataclass(frozen=True)
class AlarmStatus:
    """The current state of one alarm for one dimension set. ``since`` is when it entered the state (None: the
    initial state, no alert seen yet); ``alerts`` the alerts it was derived from, by fingerprint."""

    alarm: str
    dimensions: Mapping[str, str]
    state: AlarmState
    since: datetime | None
    updated_at: datetime | None
    reason: str
    alerts: Mapping[str, AlertMark] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return dims_key(self.dimensions)

    @staticmethod
    def initial(definition: AlarmDefinition, dimensions: Mapping[str, str]) -> AlarmStatus:
        return AlarmStatus(definition.name, dict(dimensions), definition.initial_state, None, None,
                           "no alert received yet")


@dataclass(frozen=True)
class Event:
    """One alert of a notification, as the alarm sees it. ``at``: when it started firing, or when it ended."""

    fingerprint: str
    signal: AlarmSignal
    firing: bool
    at: datetime
    value: str | None = None   # the alert's ``value`` annotation, if any (the value that crossed)


@dataclass(frozen=True)
class Transition:
    """A state change, with the actions due for the new state (``repeat``: the same state re-notified)."""

    alarm: str
    dimensions: Mapping[str, str]
    old: AlarmState
    new: AlarmState
    at: datetime
    reason: str
    actions: tuple[AlarmAction, ...] = ()
    id: int | None = None
    recorded_at: datetime | None = None
    notification_id: int | None = None
    repeat: bool = False  # no change: the state's actions again (``repeat_actions``), not stored in the history


def derive(alerts: Mapping[str, AlertMark], current: AlarmState) -> AlarmState:
    """The state the alerts say. No firing alert and none ever known: the current state stays."""
    if not alerts:
        return current
    firing = {m.signal for m in alerts.values() if m.firing}
    if AlarmSignal.INSUFFICIENT_DATA in firing:
        return AlarmState.INSUFFICIENT_DATA
    if AlarmSignal.ALARM in firing:
        return AlarmState.ALARM
    return AlarmState.OK


def apply(status: AlarmStatus, event: Event, definition: AlarmDefinition,
          now: datetime) -> tuple[AlarmStatus, Transition | None]:
    """Fold one alert event into ``status``. Returns the new status (``updated_at``: ``now``) and the transition,
    if the state changed. An event older than what is known of the same alert changes nothing else (a late
    re-delivery), nor does a re-send."""
    known = status.alerts.get(event.fingerprint)
    if known is not None and (event.at < known.at or (event.at == known.at and known.firing == event.firing)):
        return replace(status, updated_at=now), None  # a re-send (or a late one): heard of, nothing new
    alerts = {fp: m for fp, m in status.alerts.items()
              if m.firing or m.at >= now - FORGET_RESOLVED}
    alerts[event.fingerprint] = AlertMark(event.signal, event.firing, event.at)
    state = derive(alerts, status.state)
    if state is status.state:
        return replace(status, alerts=alerts, updated_at=now), None
    reason = _reason(definition, status.state, state, event)
    new = replace(status, alerts=alerts, state=state, since=event.at, updated_at=now, reason=reason)
    return new, Transition(status.alarm, dict(status.dimensions), status.state, state, event.at, reason,
                           definition.actions.on(state))


def apply_all(status: AlarmStatus, events: list[Event], definition: AlarmDefinition,
              now: datetime) -> tuple[AlarmStatus, list[Transition]]:
    """``apply`` for several events of one alarm and dimension set, oldest first (ties: resolutions first).
    With ``repeat_actions``, a notification that only re-sends a firing alert of the state the alarm is in (an
    Alertmanager repeat while the condition holds) gives ONE ``repeat`` transition: the state's actions again."""
    transitions = []
    resent = False
    for event in sorted(events, key=lambda e: (e.at, e.firing, e.fingerprint)):
        known = status.alerts.get(event.fingerprint)
        resent |= (event.firing and known is not None and known.firing and event.at == known.at
                   and _state_of(event.signal) is status.state)
        status, transition = apply(status, event, definition, now)
        if transition is not None:
            transitions.append(transition)
    if definition.repeat_actions and resent and not transitions:
        state = status.state
        transitions.append(Transition(
            status.alarm, dict(status.dimensions), state, state, now,
            f"Remaining as {shown(state, definition.style)}: actions repeated (repeat_actions)",
            definition.actions.on(state), repeat=True))
    return status, transitions


def _state_of(signal: AlarmSignal) -> AlarmState:
    return {AlarmSignal.ALARM: AlarmState.ALARM, AlarmSignal.INSUFFICIENT_DATA: AlarmState.INSUFFICIENT_DATA}.get(
        signal, AlarmState.OK)


def _reason(definition: AlarmDefinition, old: AlarmState, new: AlarmState, event: Event) -> str:
    """Why, in the words of the alarm's system (Aodh: "Transition to alarm due to ...")."""
    value = f", most recent: {event.value}" if event.value else ""
    if new is AlarmState.ALARM:
        why = f"{definition.condition} is true{value}"
    elif new is AlarmState.INSUFFICIENT_DATA:
        why = f"no data for {', '.join(definition.metrics())}"
    elif old is AlarmState.INSUFFICIENT_DATA and event.signal is not AlarmSignal.ALARM:
        why = "data is present and the condition does not hold"
    else:
        why = f"{definition.condition} is no longer true"
    return f"Transition to {shown(new, definition.style)} due to {why}"
