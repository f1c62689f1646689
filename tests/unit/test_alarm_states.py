"""The alarm state machine (``model.alarms``), time passed in: each row is a sequence of alert events (which
alert, what it stands for, firing or resolved, when) and the states and transitions it must give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.model.alarm_grammar import parse_expression
from alertscaler.model.alarms import (
    FORGET_RESOLVED,
    Actions,
    AlarmDefinition,
    AlarmSignal,
    AlarmState,
    AlarmStatus,
    Event,
    LogAction,
    ScaleAction,
    Style,
    apply,
    apply_all,
    shown,
)
from alertscaler.model.policies import Direction

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OK, ALARM, INSUFFICIENT = AlarmState.OK, AlarmState.ALARM, AlarmState.INSUFFICIENT_DATA
SCALE = ScaleAction("web", Direction.SCALE_OUT)
AODH = AlarmDefinition("cpu_high", Style.AODH, parse_expression("avg(cpu_util, 600) > 70 times 3"),
                       actions=Actions(alarm=(SCALE, LogAction()), ok=(LogAction(),)))
MONASCA_DETERMINISTIC = AlarmDefinition("errors", Style.MONASCA,
                                        parse_expression("count(log.error, deterministic) > 0"))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(what: str, t: float, fp: str = "") -> Event:
    """``alarm+`` / ``alarm-`` (condition alert firing / resolved), ``data+`` / ``data-`` (missing-data alert),
    ``ok+`` / ``ok-`` (data-present alert)."""
    signal = {"alarm": AlarmSignal.ALARM, "data": AlarmSignal.INSUFFICIENT_DATA, "ok": AlarmSignal.OK}[what[:-1]]
    return Event(fp or what[:-1], signal, what.endswith("+"), at(t), value="91" if what == "alarm+" else None)


@pytest.mark.parametrize(("definition", "events", "states"), [
    (AODH, [], []),
    (AODH, [ev("alarm+", 0)], [ALARM]),
    (AODH, [ev("alarm-", 0)], [OK]),
    (AODH, [ev("alarm+", 0), ev("alarm-", 60)], [ALARM, OK]),
    (AODH, [ev("alarm+", 0), ev("alarm+", 0)], [ALARM]),
    (AODH, [ev("data+", 0)], []),
    (AODH, [ev("data+", 0), ev("data-", 60)], [OK]),
    (AODH, [ev("alarm+", 0), ev("data+", 30)], [ALARM, INSUFFICIENT]),
    (AODH, [ev("alarm+", 0), ev("data+", 30), ev("data-", 60)], [ALARM, INSUFFICIENT, ALARM]),
    (AODH, [ev("alarm+", 0), ev("data+", 30), ev("alarm-", 40), ev("data-", 60)], [ALARM, INSUFFICIENT, OK]),
    (AODH, [ev("data+", 0), ev("alarm+", 10)], []),
    (AODH, [ev("alarm-", 60), ev("alarm+", 0)], [OK]),
    (AODH, [ev("alarm+", 0, "a"), ev("alarm+", 5, "b"), ev("alarm-", 60, "a")], [ALARM]),
    (AODH, [ev("alarm+", 0, "a"), ev("alarm+", 5, "b"), ev("alarm-", 60, "a"), ev("alarm-", 70, "b")], [ALARM, OK]),
    (AODH, [ev("alarm+", 0), ev("alarm-", 60), ev("alarm+", 120)], [ALARM, OK, ALARM]),
    (AODH, [ev("ok+", 0)], [OK]),
    (AODH, [ev("ok+", 0), ev("alarm+", 10), ev("alarm-", 20)], [OK, ALARM, OK]),
    (AODH, [ev("ok+", 0), ev("data+", 30), ev("ok-", 31)], [OK, INSUFFICIENT]),
    (AODH, [ev("ok+", 0), ev("data+", 30), ev("ok-", 31), ev("data-", 60), ev("ok+", 61)],
     [OK, INSUFFICIENT, OK]),
    (MONASCA_DETERMINISTIC, [ev("alarm-", 0)], []),
    (MONASCA_DETERMINISTIC, [ev("alarm+", 0), ev("alarm-", 60)], [ALARM, OK]),
], ids=["nothing-yet", "firing-alarms", "resolved-is-ok", "alarm-then-ok", "resend-changes-nothing",
        "no-data-from-the-start", "data-comes", "data-goes-while-alarming", "data-back-still-alarming",
        "data-back-condition-gone", "missing-data-wins-over-alarm", "late-firing-after-its-resolution-ignored",
        "any-series-firing-is-alarm", "ok-when-every-series-resolved", "alarm-again",
        "data-present-leaves-the-initial-state", "data-present-then-alarm-and-back", "data-goes",
        "data-goes-and-comes-back", "deterministic-starts-ok", "deterministic-alarm-and-back"])
def test_states_follow_the_alerts(definition: AlarmDefinition, events: list[Event],
                                  states: list[AlarmState]) -> None:
    status = AlarmStatus.initial(definition, {})
    seen = []
    for i, event in enumerate(events):
        status, transition = apply(status, event, definition, at(1000 + i))
        if transition is not None:
            assert transition.old is (seen[-1] if seen else definition.initial_state)
            seen.append(transition.new)
            assert transition.at == event.at and status.since == event.at
        assert status.updated_at == at(1000 + i)
    assert seen == states
    assert status.state is (states[-1] if states else definition.initial_state)


def test_initial_states() -> None:
    assert AODH.initial_state is INSUFFICIENT
    assert MONASCA_DETERMINISTIC.initial_state is OK
    status = AlarmStatus.initial(AODH, {"hostname": "a"})
    assert (status.since, status.reason, status.key) == (None, "no alert received yet", '{"hostname":"a"}')


def test_a_transition_carries_the_actions_of_its_new_state_and_an_aodh_reason() -> None:
    status, alarm = apply(AlarmStatus.initial(AODH, {}), ev("alarm+", 0), AODH, at(1))
    _, ok = apply(status, ev("alarm-", 60), AODH, at(61))

    assert alarm is not None and ok is not None
    assert alarm.actions == (SCALE, LogAction()) and ok.actions == (LogAction(),)
    assert alarm.reason == ("Transition to alarm due to avg(cpu_util, 600) > 70 times 3 is true, most recent: 91")
    assert ok.reason == "Transition to ok due to avg(cpu_util, 600) > 70 times 3 is no longer true"


def test_monasca_names_its_states() -> None:
    definition = AlarmDefinition("m", Style.MONASCA, parse_expression("avg(cpu.user_perc) > 85"))
    status, lost = apply(AlarmStatus.initial(definition, {}), ev("data-", 0), definition, at(1))
    _, gone = apply(status, ev("data+", 60), definition, at(61))

    assert lost is not None and lost.reason.startswith("Transition to OK due to data is present")
    assert gone is not None and gone.reason == "Transition to UNDETERMINED due to no data for cpu.user_perc"
    assert [shown(s, Style.MONASCA) for s in AlarmState] == ["OK", "ALARM", "UNDETERMINED"]
    assert [shown(s, Style.AODH) for s in AlarmState] == ["ok", "alarm", "insufficient data"]


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0], [0, 2, 1]],
                         ids=["in-order", "reversed", "rotated", "swapped"])
def test_apply_all_is_independent_of_arrival_order(order: list[int]) -> None:
    events = [ev("alarm+", 0), ev("alarm-", 60), ev("data+", 90)]
    status, transitions = apply_all(AlarmStatus.initial(AODH, {}), [events[i] for i in order], AODH, at(100))

    assert status.state is INSUFFICIENT
    assert [t.new for t in transitions] == [ALARM, OK, INSUFFICIENT]


def test_resolved_alerts_are_forgotten_after_a_day_firing_ones_never() -> None:
    status, _ = apply_all(AlarmStatus.initial(AODH, {}), [ev("alarm+", 0, "a"), ev("alarm-", 10, "a"),
                                                          ev("data+", 20, "d")], AODH, at(30))
    later = at(20) + FORGET_RESOLVED + timedelta(seconds=1)
    status, _ = apply(status, ev("alarm+", 25, "b"), AODH, later)

    assert set(status.alerts) == {"d", "b"}


REPEATING = AlarmDefinition("cpu_high", Style.AODH, parse_expression("avg(cpu_util, 600) > 70 times 3"),
                            actions=Actions(alarm=(SCALE, LogAction()), ok=(LogAction(),)), repeat_actions=True)


@pytest.mark.parametrize(("definition", "first", "then", "repeats"), [
    (REPEATING, [ev("alarm+", 0)], [ev("alarm+", 0)], [ALARM]),
    (REPEATING, [ev("ok+", 0)], [ev("ok+", 0)], [OK]),
    (REPEATING, [ev("alarm+", 0, "a"), ev("alarm+", 5, "b")], [ev("alarm+", 0, "a"), ev("alarm+", 5, "b")], [ALARM]),
    (REPEATING, [ev("alarm+", 0)], [ev("alarm-", 60)], []),
    (REPEATING, [ev("ok+", 0), ev("alarm+", 10)], [ev("ok+", 0)], []),
    (REPEATING, [ev("alarm-", 0)], [ev("alarm-", 0)], []),
    (AODH, [ev("alarm+", 0)], [ev("alarm+", 0)], []),
], ids=["alarm-resent-repeats", "ok-resent-repeats", "one-repeat-per-notification", "a-change-is-no-repeat",
        "resend-of-another-state-no-repeat", "resolved-resent-no-repeat", "without-repeat-actions-nothing"])
def test_repeat_actions_repeat_the_state_actions_on_a_resend(definition: AlarmDefinition, first: list[Event],
                                                             then: list[Event], repeats: list[AlarmState]) -> None:
    """Aodh's ``repeat_actions``: while the state holds, each Alertmanager re-send of its alert runs the state's
    actions again — one ``repeat`` transition per notification, same state, never stored as a change."""
    status, _ = apply_all(AlarmStatus.initial(definition, {}), first, definition, at(100))

    after, transitions = apply_all(status, then, definition, at(200))

    repeated = [t for t in transitions if t.repeat]
    assert [t.new for t in repeated] == repeats
    assert all(t.old is t.new and t.actions == definition.actions.on(t.new) and t.at == at(200) for t in repeated)
    if repeats:
        assert after.state is status.state and transitions == repeated
