"""Store contract for alarms (tables ``alarm_states`` and ``alarm_history``, migration 0007): an alarm's state per
dimension set is stored with the alerts it was derived from, every transition is kept with the actions due on
it, and two writers folding alerts of the same alarm take turns (row locks on PostgreSQL), on every back end
(fixtures ``store`` / ``db_url`` in conftest)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from alertscaler.model.alarm_grammar import parse_expression
from alertscaler.model.alarms import (
    Actions,
    AlarmDefinition,
    AlarmSignal,
    AlarmState,
    AlarmStatus,
    Event,
    LogAction,
    ScaleAction,
    Style,
    apply_all,
    dims_key,
)
from alertscaler.model.policies import Direction
from alertscaler.store.sql import SqlStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ALARM = AlarmDefinition("cpu_high", Style.AODH, parse_expression("avg(cpu_util) > 70"),
                        actions=Actions(alarm=(ScaleAction("web", Direction.SCALE_OUT), LogAction())))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fold(store: SqlStore, dims: dict[str, str], events: list[Event], now: datetime,
         notification_id: int | None = None) -> AlarmStatus:
    """What ``act.alarming`` does in a transaction: lock, apply, save, add the transitions."""
    key = (ALARM.name, dims_key(dims))
    with store.transaction() as tx:
        stored = tx.lock_alarm_states([key], now)
        status, transitions = apply_all(stored.get(key) or AlarmStatus.initial(ALARM, dims), events, ALARM, now)
        tx.save_alarm_state(status, now)
        tx.add_alarm_transitions(transitions, now, notification_id)
    return status


def firing(t: float, fp: str = "f1") -> Event:
    return Event(fp, AlarmSignal.ALARM, True, at(t), "91")


def resolved(t: float, fp: str = "f1") -> Event:
    return Event(fp, AlarmSignal.ALARM, False, at(t))


def test_a_state_and_its_transitions_are_stored(store: SqlStore) -> None:
    fold(store, {"hostname": "a"}, [firing(0)], at(5), notification_id=None)
    fold(store, {"hostname": "a"}, [resolved(60)], at(65))
    fold(store, {"hostname": "b"}, [firing(30, "f2")], at(35))

    states = store.alarm_states()
    assert [(s.alarm, dict(s.dimensions), s.state, s.since, s.updated_at) for s in states] == [
        ("cpu_high", {"hostname": "a"}, AlarmState.OK, at(60), at(65)),
        ("cpu_high", {"hostname": "b"}, AlarmState.ALARM, at(30), at(35))]
    assert states[0].alerts["f1"].firing is False and states[0].alerts["f1"].at == at(60)
    assert states[0].reason.startswith("Transition to ok due to")

    history = store.alarm_history("cpu_high")
    assert [(t.old, t.new, dict(t.dimensions), t.at, t.recorded_at) for t, _ in history] == [
        (AlarmState.INSUFFICIENT_DATA, AlarmState.ALARM, {"hostname": "b"}, at(30), at(35)),
        (AlarmState.ALARM, AlarmState.OK, {"hostname": "a"}, at(60), at(65)),
        (AlarmState.INSUFFICIENT_DATA, AlarmState.ALARM, {"hostname": "a"}, at(0), at(5))]  # newest recorded first
    assert history[2][1] == ["scale web scale_out", "log"] and history[1][1] == []
    assert [t.new for t, _ in store.alarm_history("cpu_high", dimensions={"hostname": "b"})] == [AlarmState.ALARM]
    assert len(store.alarm_history("cpu_high", limit=1)) == 1
    assert store.alarm_history("other") == [] and store.alarm_states("other") == []


def test_a_stored_state_is_read_back_and_a_late_event_ignored(store: SqlStore) -> None:
    fold(store, {}, [firing(0), resolved(60)], at(61))
    status = fold(store, {}, [firing(0)], at(90))  # a late re-delivery of the firing

    assert status.state is AlarmState.OK and status.updated_at == at(90)
    assert [t.new for t, _ in store.alarm_history("cpu_high")] == [AlarmState.OK, AlarmState.ALARM]


def test_unicode_and_odd_dimension_values_round_trip(store: SqlStore) -> None:
    dims = {"hostname": "馬-1", "path": 'C:\\"x"'}
    fold(store, dims, [firing(0)], at(1))

    assert [dict(s.dimensions) for s in store.alarm_states("cpu_high")] == [dims]
    assert [dict(t.dimensions) for t, _ in store.alarm_history("cpu_high", dimensions=dims)] == [dims]


def test_two_writers_of_the_same_alarm_take_turns(db_url: str) -> None:
    """Two stores (two replicas) each fold one alert of the same alarm at once: both alerts end up in the state
    (no lost update), and exactly one transition to ALARM is recorded."""
    stores = [SqlStore(db_url) for _ in range(2)]
    stores[0].migrate()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            fold(stores[i], {}, [firing(i, f"f{i}")], at(10 + i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        [status] = stores[0].alarm_states()
        assert set(status.alerts) == {"f0", "f1"} and status.state is AlarmState.ALARM
        assert [t.new for t, _ in stores[0].alarm_history("cpu_high")] == [AlarmState.ALARM]
    finally:
        for s in stores:
            s.close()


def test_retention_prunes_old_transitions_never_the_state(store: SqlStore) -> None:
    fold(store, {}, [firing(0)], at(5))
    fold(store, {}, [resolved(100)], at(3600))

    pruned = store.prune(at(60))

    assert pruned["alarm_history"] == 1
    assert [t.new for t, _ in store.alarm_history("cpu_high")] == [AlarmState.OK]
    assert [s.state for s in store.alarm_states()] == [AlarmState.OK]
