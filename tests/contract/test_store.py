"""Contract tests of ``StateStore`` (``store.base``) against ``SqlStore`` on SQLite and PostgreSQL.

Every test runs once per back end (fixture ``store`` / ``db_url`` in conftest). Times are passed explicitly;
nothing sleeps. Concurrency tests use threads and a barrier, and check outcomes, not timings.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from alertscaler.model.alerts import Alert, AlertStatus, Notification
from alertscaler.model.decisions import ActionState, HealTarget, Outcome, Reason, Trigger
from alertscaler.model.errors import StoreError, StoreUnavailable
from alertscaler.model.groups import GroupState
from alertscaler.model.healing import HealAction, HealRecord, HealSignal, SignalSource
from alertscaler.model.policies import Direction
from alertscaler.store.base import ActiveAlert, Lease, NewDecision, StateStore
from alertscaler.store.replicas import assign_groups, new_replica_id, rendezvous_owner
from alertscaler.store.sql import MIGRATIONS_DIR, SqlStore, metadata, sqlite_url

T0 = datetime(2026, 1, 1, tzinfo=UTC)
AlertF = Callable[..., Alert]
NotificationF = Callable[..., Notification]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def decision(
    group: str | None = "web",
    *,
    outcome: Outcome = Outcome.ACTED,
    reason: Reason = Reason.SCALED,
    decided_at: datetime = T0,
    **kwargs: Any,
) -> NewDecision:
    return NewDecision(group=group, policy="scale_out" if group else None, trigger=Trigger.NOTIFICATION,
                       outcome=outcome, reason=reason, from_capacity=2, to_capacity=3,
                       message=f"{reason.value} at {decided_at.isoformat()}", decided_at=decided_at, **kwargs)


def new_action(store: SqlStore, group: str = "web", now: datetime = T0) -> int:
    with store.transaction() as tx:
        decision_id = tx.add_decision(decision(group, decided_at=now))
        return tx.add_action(decision_id, group, 2, 3, now)


def test_ping_answers_when_usable_and_raises_unavailable_when_the_database_is_unreachable(
    store: SqlStore, db_url: str, tmp_path: Path,
) -> None:
    """``StateStore.ping``'s promise, on each back end: None on a usable store, StoreUnavailable otherwise."""
    as_protocol: StateStore = store
    assert as_protocol.ping() is None
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        (tmp_path / "not-a-dir").write_text("a file where the database directory should be")
        unreachable = sqlite_url(tmp_path / "not-a-dir" / "state.db")
    else:  # nothing listens on port 1
        unreachable = url.set(host="127.0.0.1", port=1).render_as_string(hide_password=False)
    broken: StateStore = SqlStore(unreachable)
    try:
        with pytest.raises(StoreUnavailable):
            broken.ping()
    finally:
        broken.close()


# --- ingest: recording and de-duplication --------------------------------------------------------------


def test_the_same_notification_twice_is_all_duplicates(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    n = notification(alert("a"), alert("b"), alert("c"))

    first = store.record_notification(n, at(0))
    second = store.record_notification(n, at(1))

    assert (first.new, first.duplicates) == (3, 0)
    assert (second.new, second.duplicates) == (0, 3)
    assert second.notification_id > first.notification_id


def test_a_batch_is_recorded_in_order_in_one_transaction(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    """Group commit: a burst recorded together dedups exactly as if the webhooks had come one by one."""
    ab, bc = notification(alert("a"), alert("b")), notification(alert("b"), alert("c"))
    receipts = store.record_notifications([(ab, at(0)), (bc, at(0)), (ab, at(1))])
    assert [(r.new, r.duplicates) for r in receipts] == [(2, 0), (1, 1), (0, 2)]
    assert len({r.notification_id for r in receipts}) == 3
    pending = store.pending_notifications()
    assert [len(p.new_keys) for p in pending] == [2, 1, 0]
    assert store.record_notifications([]) == []


# Each case: how the second notification differs from a first one with alerts fp-a and fp-b (firing at T0).
SECOND_NOTIFICATION: list[tuple[str, dict[str, Any], int, int]] = [
    # id, changes (alerts as (fingerprint, status, starts_at) + notification kwargs), new, duplicates
    ("alertmanager-retry", {}, 0, 2),
    ("ha-peer-copy", {"external_url": "http://alertmanager-1:9093"}, 0, 2),
    ("resolved", {"alerts": [("fp-a", AlertStatus.RESOLVED, T0), ("fp-b", AlertStatus.RESOLVED, T0)]}, 2, 0),
    ("fired-again", {"alerts": [("fp-a", AlertStatus.FIRING, at(600)),
                                ("fp-b", AlertStatus.FIRING, T0)]}, 1, 1),
    ("one-more-alert", {"alerts": [("fp-a", AlertStatus.FIRING, T0), ("fp-b", AlertStatus.FIRING, T0),
                                   ("fp-c", AlertStatus.FIRING, T0)]}, 1, 2),
    ("other-receiver", {"receiver": "pager"}, 2, 0),
    ("other-group-key", {"group_key": '{}:{alertname="Other"}'}, 2, 0),
]


@pytest.mark.parametrize(("changes", "new", "duplicates"), [c[1:] for c in SECOND_NOTIFICATION],
                         ids=[c[0] for c in SECOND_NOTIFICATION])
def test_dedup_identity_is_receiver_group_fingerprint_status_and_start(
    store: SqlStore, alert: AlertF, notification: NotificationF,
    changes: dict[str, Any], new: int, duplicates: int,
) -> None:
    store.record_notification(notification(alert("fp-a"), alert("fp-b")), at(0))
    changes = dict(changes)
    specs = changes.pop("alerts", [("fp-a", AlertStatus.FIRING, T0), ("fp-b", AlertStatus.FIRING, T0)])
    second = notification(*(alert(fp, status=st, starts_at=sa_) for fp, st, sa_ in specs), **changes)

    receipt = store.record_notification(second, at(1))

    assert (receipt.new, receipt.duplicates) == (new, duplicates)


def test_the_same_key_twice_in_one_notification_is_one_new_and_one_duplicate(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    receipt = store.record_notification(notification(alert("a"), alert("a")), at(0))

    assert (receipt.new, receipt.duplicates) == (1, 1)
    [pending] = store.pending_notifications()
    assert pending.new_keys == frozenset(notification(alert("a")).dedup_keys())


def test_a_notification_without_alerts_is_recorded(store: SqlStore, notification: NotificationF) -> None:
    n = replace(notification(), alerts=())

    receipt = store.record_notification(n, at(0))

    assert (receipt.new, receipt.duplicates) == (0, 0)
    assert [p.id for p in store.pending_notifications()] == [receipt.notification_id]


def test_concurrent_copies_of_one_notification_claim_each_key_once(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    copies = [notification(alert("a"), alert("b"), external_url=f"http://am-{i}:9093") for i in range(6)]
    barrier = threading.Barrier(len(copies))

    def record(n: Notification) -> int:
        barrier.wait()
        return store.record_notification(n, at(0)).new

    with ThreadPoolExecutor(len(copies)) as pool:
        news = list(pool.map(record, copies))

    assert sum(news) == 2
    assert sum(len(p.new_keys) for p in store.pending_notifications()) == 2


def test_pending_notifications_are_oldest_first_with_body_and_new_keys(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    first_n = notification(alert("a"), alert("b"))
    second_n = notification(alert("b"), alert("c"), external_url="http://alertmanager-1:9093")
    first = store.record_notification(first_n, at(0))
    second = store.record_notification(second_n, at(1))
    retry = store.record_notification(first_n, at(2))

    pending = store.pending_notifications()

    assert [p.id for p in pending] == [first.notification_id, second.notification_id, retry.notification_id]
    assert [p.received_at for p in pending] == [at(0), at(1), at(2)]
    assert all(p.received_at.tzinfo is not None for p in pending)
    assert pending[0].body == first_n.raw
    assert pending[1].body == second_n.raw
    assert pending[0].new_keys == frozenset(first_n.dedup_keys())
    assert pending[1].new_keys == frozenset(second_n.dedup_keys()) - frozenset(first_n.dedup_keys())
    assert pending[2].new_keys == frozenset()
    limited = store.pending_notifications(limit=2)
    assert [p.id for p in limited] == [first.notification_id, second.notification_id]


def test_notification_body_is_the_raw_webhook_body(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    n = notification(alert("a"), alert("b"))
    nid = store.record_notification(n, at(0)).notification_id
    with store.transaction() as tx:
        tx.mark_processed(nid, at(1))

    assert store.notification_body(nid) == n.raw
    assert store.notification_body(nid + 1000) is None


def test_mark_processed_removes_a_notification_from_pending(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    ids = [store.record_notification(notification(alert(f"fp-{i}")), at(i)).notification_id for i in range(3)]

    with store.transaction() as tx:
        tx.mark_processed(ids[1], at(10))

    assert [p.id for p in store.pending_notifications()] == [ids[0], ids[2]]


def test_only_one_transaction_can_claim_a_notification(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    """Two replicas processing the same pending notification: exactly one claim wins, even concurrently."""
    nid = store.record_notification(notification(alert("claimed")), at(0)).notification_id
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        with store.transaction() as tx:
            results.append(tx.mark_processed(nid, at(1)))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    with store.transaction() as tx:
        assert tx.mark_processed(nid, at(2)) is False


# --- transactions and groups ----------------------------------------------------------------------------


def test_a_transaction_commits_everything_together(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    nid = store.record_notification(notification(alert("a")), at(0)).notification_id

    with store.transaction() as tx:
        state = tx.lock_group("web", 2)
        tx.save_group(replace(state, desired=3))
        decision_id = tx.add_decision(decision("web", notification_id=nid))
        tx.add_action(decision_id, "web", 2, 3, at(1))
        tx.upsert_active_alert(ActiveAlert("web", "scale_out", "a", {"alertname": "X"}, T0, at(0), nid))
        tx.mark_processed(nid, at(1))

    assert store.get_group_state("web") == GroupState("web", 3)
    assert [d.id for d in store.list_decisions()] == [decision_id]
    assert store.next_action("web") is not None
    assert len(store.active_alerts()) == 1
    assert store.pending_notifications() == []


class Boom(Exception):
    pass


def test_an_exception_inside_a_transaction_rolls_everything_back(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    nid = store.record_notification(notification(alert("a")), at(0)).notification_id

    with pytest.raises(Boom), store.transaction() as tx:
        state = tx.lock_group("web", 2)
        tx.save_group(replace(state, desired=5, updated_at=at(1)))
        decision_id = tx.add_decision(decision("web", notification_id=nid))
        tx.add_action(decision_id, "web", 2, 5, at(1))
        tx.upsert_active_alert(ActiveAlert("web", "scale_out", "a", {}, T0, at(0), nid))
        tx.mark_processed(nid, at(1))
        raise Boom

    assert store.group_states() == []
    assert store.list_decisions() == []
    assert store.list_actions() == []
    assert store.active_alerts() == []
    assert [p.id for p in store.pending_notifications()] == [nid]


def test_lock_group_creates_the_group_once_then_returns_the_stored_state(store: SqlStore) -> None:
    with store.transaction() as tx:
        created = tx.lock_group("web", 2)
    with store.transaction() as tx:
        again = tx.lock_group("web", 7)
        tx.save_group(replace(again, desired=4, last_scale_out_at=at(5), updated_at=at(5)))
    with store.transaction() as tx:
        saved = tx.lock_group("web", 9)

    assert created == GroupState("web", 2)
    assert again == GroupState("web", 2)
    assert saved == GroupState("web", 4, last_scale_out_at=at(5), updated_at=at(5))


def test_lock_group_serialises_read_modify_write(store: SqlStore) -> None:
    workers, rounds = 6, 5
    barrier = threading.Barrier(workers)

    def bump(_: int) -> None:
        barrier.wait()
        for _round in range(rounds):
            with store.transaction() as tx:
                state = tx.lock_group("web", 0)
                tx.save_group(replace(state, desired=state.desired + 1))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(bump, range(workers)))

    state = store.get_group_state("web")
    assert state is not None
    assert state.desired == workers * rounds


@pytest.mark.parametrize("count", [1, 3, 1201], ids=["one", "three", "more-than-one-select"])
def test_lock_groups_creates_the_missing_and_returns_each_stored_state(store: SqlStore, count: int) -> None:
    names = [f"g{i:04d}" for i in range(count)]
    with store.transaction() as tx:
        tx.save_group(GroupState(names[0], 9, last_scale_in_at=at(3), updated_at=at(3)))
    with store.transaction() as tx:
        first = tx.lock_groups({n: 2 for n in reversed(names)})
        assert tx.lock_group(names[-1], 7) == first[names[-1]]  # the same lock, the same state
    with store.transaction() as tx:
        again = tx.lock_groups({n: 5 for n in names})

    expected = {n: GroupState(n, 2) for n in names} | {names[0]: GroupState(names[0], 9, last_scale_in_at=at(3),
                                                                           updated_at=at(3))}
    assert first == expected and again == expected
    assert list(first) == list(reversed(names))  # in the caller's order
    assert {s.name: s for s in store.group_states()} == expected


def test_lock_groups_serialises_read_modify_write_with_lock_group(store: SqlStore) -> None:
    workers, rounds = 4, 5
    barrier = threading.Barrier(workers)

    def bump(worker: int) -> None:
        barrier.wait()
        for _round in range(rounds):
            with store.transaction() as tx:
                if worker % 2:
                    states = tx.lock_groups({"web": 0, "api": 0})
                else:
                    states = {"api": tx.lock_group("api", 0), "web": tx.lock_group("web", 0)}
                for state in states.values():
                    tx.save_group(replace(state, desired=state.desired + 1))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(bump, range(workers)))

    assert {s.name: s.desired for s in store.group_states()} == {"api": workers * rounds, "web": workers * rounds}


@pytest.mark.parametrize("stamp", [
    datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
    datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))),
    datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
], ids=["utc-microseconds", "plus-two-hours", "old"])
def test_save_group_roundtrips_tz_aware_utc_datetimes(store: SqlStore, stamp: datetime) -> None:
    state = GroupState("web", 3, last_scale_out_at=stamp, last_scale_in_at=stamp - timedelta(hours=1),
                       updated_at=stamp)

    with store.transaction() as tx:
        tx.save_group(state)

    got = store.get_group_state("web")
    assert got == state
    assert got is not None
    for value in (got.last_scale_out_at, got.last_scale_in_at, got.updated_at):
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert value.tzinfo == UTC


def test_a_naive_datetime_is_refused(store: SqlStore) -> None:
    with pytest.raises(StoreError, match="naive"), store.transaction() as tx:
        tx.save_group(GroupState("web", 3, updated_at=datetime(2026, 1, 1)))

    assert store.group_states() == []


def test_group_states_and_unknown_groups(store: SqlStore) -> None:
    with store.transaction() as tx:
        for name in ("web", "api", "db"):
            tx.lock_group(name, 1)

    assert [g.name for g in store.group_states()] == ["api", "db", "web"]
    assert store.get_group_state("nope") is None


# --- decisions ------------------------------------------------------------------------------------------


def test_a_decision_roundtrips_every_field(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    nid = store.record_notification(notification(alert("a")), at(0)).notification_id
    alerts = [{"fingerprint": "a", "labels": {"alertname": "HighLoad"}, "startsAt": "2026-01-01T00:00:00Z"}]
    new = NewDecision(group="web", policy="scale_out", trigger=Trigger.NOTIFICATION, outcome=Outcome.ACTED,
                      reason=Reason.CLAMPED, from_capacity=2, to_capacity=4, message="2 → 4 (clamped)",
                      decided_at=at(2), alerts=alerts, notification_id=nid, alert_starts_at=T0,
                      received_at=at(1))
    with store.transaction() as tx:
        did = tx.add_decision(new)

    [got] = store.list_decisions()

    assert (got.id, got.group, got.policy, got.trigger, got.outcome, got.reason) == (
        did, "web", "scale_out", Trigger.NOTIFICATION, Outcome.ACTED, Reason.CLAMPED)
    assert (got.from_capacity, got.to_capacity, got.message) == (2, 4, "2 → 4 (clamped)")
    assert got.alerts == alerts
    assert (got.notification_id, got.alert_starts_at) == (nid, T0)
    assert (got.received_at, got.decided_at) == (at(1), at(2))
    assert (got.provider_call_at, got.action_id) == (None, None)
    assert store.get_decision(did) == got
    assert store.get_decision(did + 1000) is None


def test_a_decision_without_group_or_capacities(store: SqlStore) -> None:
    new = NewDecision(group=None, policy=None, trigger=Trigger.NOTIFICATION, outcome=Outcome.SKIPPED,
                      reason=Reason.NO_GROUP, from_capacity=None, to_capacity=None, message="no group",
                      decided_at=T0)
    with store.transaction() as tx:
        tx.add_decision(new)

    [got] = store.list_decisions()
    assert (got.group, got.policy, got.alerts) == (None, None, [])
    assert (got.from_capacity, got.to_capacity) == (None, None)


# (id, free text as a provider or an exception may give it, what the store keeps)
FREE_TEXT = [
    ("nul", "exit status 1: a\0b", "exit status 1: a\\0b"),
    ("lone-surrogate", "stderr: \udfff!", "stderr: \ufffd!"),
    ("both-and-a-pair", "\0\ud83d\ude00\0", "\\0\ufffd\ufffd\\0"),
    ("unicode-kept", "2 → 4 é 😀 \\0", "2 → 4 é 😀 \\0"),
]


@pytest.mark.parametrize(("given", "kept"), [c[1:] for c in FREE_TEXT], ids=[c[0] for c in FREE_TEXT])
def test_free_text_columns_store_any_python_string(store: SqlStore, given: str, kept: str) -> None:
    """A decision's message, an action's error and result are written whatever they hold (a NUL or a lone
    surrogate from a provider's output would otherwise fail the whole transaction): NUL → ``\\0``, a
    surrogate → U+FFFD, everything else as given."""
    with store.transaction() as tx:
        numbered = tx.add_decision(replace(decision(), message=given))
        tx.add_skip(replace(decision(None, outcome=Outcome.SKIPPED, reason=Reason.REJECTED), message=given))
    released, finished = new_action(store, "web"), new_action(store, "api")
    store.claim_action(released, at(1))
    store.release_action(released, at(2), given)
    store.claim_action(finished, at(1))
    store.finish_action(finished, ActionState.FAILED, at(2), result=given, error=given)

    written = {d.id for d in store.list_decisions() if d.id == numbered or d.reason is Reason.REJECTED}
    assert [d.message for d in store.list_decisions() if d.id in written] == [kept, kept]
    got_released, got_finished = store.get_action(released), store.get_action(finished)
    assert got_released is not None and got_finished is not None
    assert (got_released.error, got_finished.result, got_finished.error) == (kept, kept, kept)


# (id, group, outcome, reason, decided_at offset in minutes), recorded in this order.
DECISIONS = [
    (1, "web", Outcome.ACTED, Reason.SCALED, 0),
    (2, "web", Outcome.SKIPPED, Reason.COOLDOWN, 10),
    (3, "api", Outcome.ACTED, Reason.SCALED, 20),
    (4, "api", Outcome.SKIPPED, Reason.AT_MAX, 30),
    (5, None, Outcome.SKIPPED, Reason.NO_GROUP, 40),
    (6, "web", Outcome.SKIPPED, Reason.COOLDOWN, 50),
    (7, "web", Outcome.ACTED, Reason.MANUAL, 5),  # recorded last, decided early
]


def minutes(m: int) -> datetime:
    return T0 + timedelta(minutes=m)


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, [6, 5, 4, 3, 2, 7, 1]),
    ({"group": "web"}, [6, 2, 7, 1]),
    ({"group": "nope"}, []),
    ({"outcome": Outcome.ACTED}, [3, 7, 1]),
    ({"reason": Reason.COOLDOWN}, [6, 2]),
    ({"group": "web", "outcome": Outcome.SKIPPED}, [6, 2]),
    ({"since": minutes(20)}, [6, 5, 4, 3]),
    ({"until": minutes(10)}, [7, 1]),
    ({"since": minutes(5), "until": minutes(30)}, [3, 2, 7]),
    ({"limit": 2}, [6, 5]),
    ({"group": "web", "limit": 1}, [6]),
    ({"limit": 0}, []),
], ids=["all-newest-first", "group", "unknown-group", "outcome", "reason", "group+outcome", "since-inclusive",
        "until-exclusive", "since+until", "limit", "group+limit", "limit-0"])
def test_list_decisions_filters_newest_first(
    store: SqlStore, filters: dict[str, Any], expected: list[int],
) -> None:
    ids: dict[int, int] = {}
    with store.transaction() as tx:
        for key, group, outcome, reason, offset in DECISIONS:
            ids[tx.add_decision(decision(group, outcome=outcome, reason=reason,
                                         decided_at=minutes(offset)))] = key

    got = store.list_decisions(**filters)

    assert [ids[d.id] for d in got] == expected


def test_provider_call_at_is_the_actions_first_start(store: SqlStore) -> None:
    action_id = new_action(store)
    [before] = store.list_decisions()
    store.claim_action(action_id, at(10))
    store.release_action(action_id, at(70), "timeout")
    store.claim_action(action_id, at(80))

    [after] = store.list_decisions()

    assert (before.action_id, before.provider_call_at) == (action_id, None)
    assert (after.action_id, after.provider_call_at) == (action_id, at(10))
    assert store.get_decision(after.id) == after


# --- actions --------------------------------------------------------------------------------------------


def test_action_lifecycle_with_a_retry(store: SqlStore) -> None:
    action_id = new_action(store, now=at(0))

    created = store.get_action(action_id)
    first = store.claim_action(action_id, at(1))
    store.release_action(action_id, at(60), "provider said 503")
    released = store.get_action(action_id)
    second = store.claim_action(action_id, at(61))
    store.finish_action(action_id, ActionState.SUCCEEDED, at(62), result="desired=3")
    done = store.get_action(action_id)

    assert created is not None and first is not None and released is not None
    assert second is not None and done is not None
    assert (created.state, created.attempts, created.not_before, created.created_at) == (
        ActionState.PENDING, 0, None, at(0))
    assert (created.group, created.from_capacity, created.desired) == ("web", 2, 3)
    assert (first.state, first.attempts, first.started_at) == (ActionState.RUNNING, 1, at(1))
    assert (released.state, released.not_before, released.error) == (
        ActionState.PENDING, at(60), "provider said 503")
    assert (second.state, second.attempts, second.started_at) == (ActionState.RUNNING, 2, at(1))
    assert (done.state, done.attempts, done.started_at, done.finished_at) == (
        ActionState.SUCCEEDED, 2, at(1), at(62))
    assert (done.result, done.error) == ("desired=3", None)


def test_an_action_created_claimed_only_when_the_group_has_nothing_queued(store: SqlStore) -> None:
    with store.transaction() as tx:
        first = tx.add_action(tx.add_decision(decision()), "web", 2, 3, at(0), claim=True)
        second = tx.add_action(tx.add_decision(decision()), "web", 3, 4, at(0), claim=True)
        other = tx.add_action(tx.add_decision(decision("api")), "api", 2, 3, at(0), claim=True)
        flags = (tx.claimed_action(first), tx.claimed_action(second), tx.claimed_action(other))
    assert flags == (True, False, True)
    a, b = store.get_action(first), store.get_action(second)
    assert a is not None and b is not None
    assert (a.state, a.attempts, a.started_at) == (ActionState.RUNNING, 1, at(0))
    assert (b.state, b.attempts, b.started_at) == (ActionState.PENDING, 0, None)
    assert [x.id for x in store.running_actions()] == [first, other]  # recovered like any interrupted one


@pytest.mark.parametrize(("queued_from", "real", "heal", "expected_from", "rebased"), [
    (3, 2, False, 2, True),    # planned from the failed action's target (3): starts from the real size
    (3, 3, False, 3, False),   # the real size is the planned one: nothing to change
    (4, 2, False, 4, False),   # not planned from the failed action's target: left alone
    (3, 2, True, 3, False),    # a heal action has no size to rebase
], ids=["planned-from-the-failed-target", "real-is-planned", "other-base", "heal"])
def test_the_next_action_is_rebased_on_the_real_size_after_a_failure(
        store: SqlStore, queued_from: int, real: int, heal: bool, expected_from: int, rebased: bool) -> None:
    targets = (HealTarget("m1", "replace", "s1"),) if heal else ()
    with store.transaction() as tx:
        failed = tx.add_action(tx.add_decision(decision()), "web", 2, 3, at(0), claim=True)
        queued = tx.add_action(tx.add_decision(decision()), "web", queued_from, 2, at(0), targets=targets)
        later = tx.add_action(tx.add_decision(decision()), "web", 2, 3, at(0))
        other = tx.add_action(tx.add_decision(decision("api")), "api", 3, 2, at(0))
    with store.transaction() as tx:
        tx.lock_group("web", 2)
        got = tx.rebase_next_action("web", 3, real)
    assert got == queued  # the next queued action, rebased or not
    actions = {a.id: a for a in store.list_actions(limit=10)}
    assert actions[queued].from_capacity == expected_from
    assert (actions[failed].from_capacity, actions[later].from_capacity, actions[other].from_capacity) == (2, 2, 3)


def test_a_running_action_is_never_rebased(store: SqlStore) -> None:
    with store.transaction() as tx:
        running = tx.add_action(tx.add_decision(decision()), "web", 3, 2, at(0), claim=True)
    with store.transaction() as tx:
        assert tx.rebase_next_action("web", 3, 2) is None  # nothing queued
    action = store.get_action(running)
    assert action is not None and action.from_capacity == 3


def test_provider_call_time_of_the_first_attempt_replaces_the_claim_time(store: SqlStore) -> None:
    action_id = new_action(store, now=at(0))
    store.claim_action(action_id, at(1))
    store.release_action(action_id, at(5), "503", called_at=at(1.5))
    first = store.get_action(action_id)
    store.claim_action(action_id, at(6))
    store.finish_action(action_id, ActionState.SUCCEEDED, at(8), called_at=at(6.5))
    done = store.get_action(action_id)
    assert first is not None and done is not None
    assert first.started_at == at(1.5) and done.started_at == at(1.5)  # the first real call is kept


def test_a_failed_action_keeps_its_last_error_unless_given_one(store: SqlStore) -> None:
    kept, given = new_action(store, "web"), new_action(store, "api")
    for action_id in (kept, given):
        store.claim_action(action_id, at(1))
        store.release_action(action_id, at(2), "temporary")
        store.claim_action(action_id, at(3))
    store.finish_action(kept, ActionState.FAILED, at(4))
    store.finish_action(given, ActionState.FAILED, at(4), error="permanent: 403")

    assert [(a.state, a.error) for a in (store.get_action(kept), store.get_action(given)) if a] == [
        (ActionState.FAILED, "temporary"), (ActionState.FAILED, "permanent: 403")]


def test_a_pending_action_can_be_finished_directly(store: SqlStore) -> None:
    action_id = new_action(store)

    store.finish_action(action_id, ActionState.FAILED, at(5), error="superseded")

    got = store.get_action(action_id)
    assert got is not None
    assert (got.state, got.attempts, got.started_at, got.finished_at) == (ActionState.FAILED, 0, None, at(5))


@pytest.mark.parametrize("prepare", ["running", "succeeded", "failed", "unknown-id"])
def test_claim_of_a_non_pending_action_returns_none(store: SqlStore, prepare: str) -> None:
    action_id = new_action(store)
    if prepare == "unknown-id":
        action_id += 1000
    else:
        store.claim_action(action_id, at(1))
        if prepare != "running":
            store.finish_action(action_id, ActionState(prepare), at(2))

    assert store.claim_action(action_id, at(3)) is None
    if prepare != "unknown-id":
        got = store.get_action(action_id)
        assert got is not None and got.attempts == 1


def test_only_one_of_many_concurrent_claims_wins(store: SqlStore) -> None:
    action_id = new_action(store)
    workers = 8
    barrier = threading.Barrier(workers)

    def claim(i: int) -> bool:
        barrier.wait()
        return store.claim_action(action_id, at(i)) is not None

    with ThreadPoolExecutor(workers) as pool:
        wins = list(pool.map(claim, range(workers)))

    assert wins.count(True) == 1
    got = store.get_action(action_id)
    assert got is not None and got.attempts == 1


def test_late_release_or_finish_never_changes_a_finished_action(store: SqlStore) -> None:
    action_id = new_action(store)
    store.claim_action(action_id, at(1))
    store.finish_action(action_id, ActionState.SUCCEEDED, at(2), result="ok")

    store.release_action(action_id, at(60), "late timeout")
    store.finish_action(action_id, ActionState.FAILED, at(3), error="late failure")

    got = store.get_action(action_id)
    assert got is not None
    assert (got.state, got.finished_at, got.result, got.error) == (ActionState.SUCCEEDED, at(2), "ok", None)


def test_finish_action_refuses_an_unfinished_state(store: SqlStore) -> None:
    action_id = new_action(store)
    with pytest.raises(ValueError, match="succeeded or failed"):
        store.finish_action(action_id, ActionState.RUNNING, at(1))


def test_a_decision_gets_at_most_one_action(store: SqlStore) -> None:
    with store.transaction() as tx:
        decision_id = tx.add_decision(decision())
        tx.add_action(decision_id, "web", 2, 3, T0)

    with pytest.raises(StoreError), store.transaction() as tx:
        tx.add_action(decision_id, "web", 2, 3, at(1))

    assert len(store.list_actions()) == 1


def test_an_action_needs_an_existing_decision(store: SqlStore) -> None:
    with pytest.raises(StoreError), store.transaction() as tx:
        tx.add_action(12345, "web", 2, 3, T0)

    assert store.list_actions() == []


def test_next_action_is_the_groups_oldest_unfinished_whatever_its_not_before(store: SqlStore) -> None:
    done = new_action(store, "web")
    store.claim_action(done, at(1))
    store.finish_action(done, ActionState.SUCCEEDED, at(2))
    waiting = new_action(store, "web")
    store.claim_action(waiting, at(3))
    store.release_action(waiting, at(3600), "rate limited")
    later = new_action(store, "web")
    other = new_action(store, "api")

    first = store.next_action("web")
    assert first is not None and first.id == waiting
    store.claim_action(waiting, at(3601))
    running = store.next_action("web")
    assert running is not None and (running.id, running.state) == (waiting, ActionState.RUNNING)
    store.finish_action(waiting, ActionState.SUCCEEDED, at(3602))
    then = store.next_action("web")
    assert then is not None and then.id == later
    api = store.next_action("api")
    assert api is not None and api.id == other
    assert store.next_action("db") is None


def test_list_actions_filters_newest_first(store: SqlStore) -> None:
    a1, a2, a3 = new_action(store, "web"), new_action(store, "api"), new_action(store, "web")
    store.claim_action(a3, at(1))

    assert [a.id for a in store.list_actions()] == [a3, a2, a1]
    assert [a.id for a in store.list_actions(group="web")] == [a3, a1]
    assert [a.id for a in store.list_actions(state=ActionState.PENDING)] == [a2, a1]
    assert [a.id for a in store.list_actions(group="web", state=ActionState.RUNNING)] == [a3]
    assert [a.id for a in store.list_actions(limit=1)] == [a3]


def test_running_actions_survive_a_crash(db_url: str, store: SqlStore) -> None:
    running, pending = new_action(store, "web"), new_action(store, "api")
    store.claim_action(running, at(1))
    store.close()  # the process "dies" with the action RUNNING

    restarted = SqlStore(db_url)
    try:
        restarted.migrate()
        found = restarted.running_actions()
    finally:
        restarted.close()

    assert [(a.id, a.state, a.started_at) for a in found] == [(running, ActionState.RUNNING, at(1))]
    assert pending not in [a.id for a in found]


# --- active alerts --------------------------------------------------------------------------------------


def test_active_alerts_upsert_reason_and_remove(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    n1 = store.record_notification(notification(alert("a")), at(0)).notification_id
    n2 = store.record_notification(notification(alert("a"), external_url="http://x"), at(60)).notification_id
    first = ActiveAlert("web", "scale_out", "a", {"alertname": "HighLoad", "v": "1"}, T0, at(0), n1)
    other = ActiveAlert("api", "scale_out", "b", {"alertname": "HighLoad"}, T0, at(0), n1)

    with store.transaction() as tx:
        tx.upsert_active_alert(first)
        tx.upsert_active_alert(other)
        tx.set_alert_reason("web", "scale_out", "a", "cooldown")
    with store.transaction() as tx:
        tx.upsert_active_alert(replace(first, labels={"alertname": "HighLoad", "v": "2"}, starts_at=at(30),
                                       last_seen_at=at(60), notification_id=n2))

    refreshed = ActiveAlert("web", "scale_out", "a", {"alertname": "HighLoad", "v": "2"}, T0, at(60), n2,
                            last_reason="cooldown")
    assert store.active_alerts("web") == [refreshed]
    assert [a.group for a in store.active_alerts()] == ["api", "web"]

    with store.transaction() as tx:
        tx.set_alert_reason("web", "scale_out", "a", None)
        removed = tx.remove_active_alert("api", "scale_out", "b")
        removed_again = tx.remove_active_alert("api", "scale_out", "b")
        never = tx.remove_active_alert("web", "scale_in", "a")

    assert (removed, removed_again, never) == (True, False, False)
    assert [(a.group, a.last_reason) for a in store.active_alerts()] == [("web", None)]


def test_an_inserted_active_alert_keeps_its_given_reason(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    nid = store.record_notification(notification(alert("a")), at(0)).notification_id
    with store.transaction() as tx:
        tx.upsert_active_alert(ActiveAlert("web", "p", "a", {}, T0, T0, nid, last_reason="at_max"))

    assert [a.last_reason for a in store.active_alerts()] == ["at_max"]


# --- schema, migrations, configuration ------------------------------------------------------------------


def test_migrate_twice_is_harmless(store: SqlStore, alert: AlertF, notification: NotificationF) -> None:
    nid = store.record_notification(notification(alert("a")), at(0)).notification_id

    store.migrate()
    store.migrate()

    assert [p.id for p in store.pending_notifications()] == [nid]


def test_concurrent_migrations_of_an_empty_database(db_url: str) -> None:
    stores = [SqlStore(db_url) for _ in range(3)]
    barrier = threading.Barrier(len(stores))

    def migrate(s: SqlStore) -> None:
        barrier.wait()
        s.migrate()

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            list(pool.map(migrate, stores))
        stores[0].ping()
        assert stores[1].group_states() == []
    finally:
        for s in stores:
            s.close()


def test_the_migrated_schema_matches_the_table_definitions(store: SqlStore) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()

    assert diff == []
    newest = max(p.name.partition("_")[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))
    assert version == newest  # the newest migration file (parallel work adds them)


def test_upgrading_from_0001_keeps_the_actions_as_scale_actions(db_url: str) -> None:
    old = SqlStore(db_url)
    try:
        old.migrate("0001")
        with old.engine.begin() as conn:  # an action as 0001 stored it
            conn.execute(sa.text(
                "INSERT INTO decisions (group_name, policy, trigger, outcome, reason, from_capacity, to_capacity,"
                " message, alerts, decided_at) VALUES ('web', 'scale_out', 'notification', 'acted', 'scaled',"
                " 1, 2, 'scale 1 -> 2', '[]', :at)"), {"at": T0.replace(tzinfo=None)})
            conn.execute(sa.text(
                "INSERT INTO actions (decision_id, group_name, from_capacity, desired, state, attempts, created_at)"
                " VALUES (1, 'web', 1, 2, 'succeeded', 1, :at)"), {"at": T0.replace(tzinfo=None)})
    finally:
        old.close()
    new = SqlStore(db_url)
    try:
        new.migrate()
        (action,) = new.list_actions()
        assert (action.kind, action.targets, action.desired) == ("scale", (), 2)
    finally:
        new.close()


def test_an_unmigrated_database_is_a_store_error_not_unavailable(db_url: str) -> None:
    s = SqlStore(db_url)
    try:
        with pytest.raises(StoreError) as info:
            s.list_actions()
    finally:
        s.close()

    assert not isinstance(info.value, StoreUnavailable)


@pytest.mark.parametrize(("synchronous", "expected"), [("full", 2), ("normal", 1), ("NORMAL", 1)])
def test_sqlite_pragmas(tmp_path: Path, synchronous: str, expected: int) -> None:
    s = SqlStore(sqlite_url(tmp_path / "new" / "dir" / "state.db"), sqlite_synchronous=synchronous)
    try:
        s.migrate()
        with s.engine.connect() as conn:
            pragmas = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                       for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    finally:
        s.close()

    assert pragmas == {"journal_mode": "wal", "synchronous": expected, "foreign_keys": 1,
                       "busy_timeout": 5000}


@pytest.mark.parametrize("url", [
    "sqlite://", "sqlite:///:memory:", "mysql://u:s3cr3t@h/db", "postgresql://u:s3cr3t@h:port/db", "s3cr3t",
], ids=["memory-default", "memory", "mysql", "bad-port", "not-a-url"])
def test_unsupported_urls_are_refused_without_echoing_a_password(url: str) -> None:
    with pytest.raises(ValueError) as info:
        SqlStore(url)

    assert "s3cr3t" not in str(info.value)


def test_a_plain_postgresql_url_uses_psycopg_3() -> None:
    pytest.importorskip("psycopg")
    s = SqlStore("postgresql://u@127.0.0.1:1/db")
    try:
        assert s.engine.url.drivername == "postgresql+psycopg"
    finally:
        s.close()


def test_sqlite_synchronous_must_be_full_or_normal(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        SqlStore(sqlite_url(tmp_path / "x.db"), sqlite_synchronous="off")


# --- unavailability -------------------------------------------------------------------------------------


def _calls(store: SqlStore, alert: AlertF, notification: NotificationF) -> list[Callable[[], object]]:
    return [store.ping, store.migrate, lambda: store.record_notification(notification(alert()), T0),
            store.pending_notifications, store.group_states, lambda: store.claim_action(1, T0)]


def test_sqlite_file_that_cannot_be_created_is_unavailable(
    tmp_path: Path, alert: AlertF, notification: NotificationF,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database directory should be")
    s = SqlStore(sqlite_url(blocker / "state.db"))
    try:
        for call in _calls(s, alert, notification):
            with pytest.raises(StoreUnavailable, match="unable to open"):
                call()
    finally:
        s.close()


def test_sqlite_directory_without_write_permission_is_unavailable(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    try:
        probe = locked / "probe"
        try:
            probe.touch()
        except PermissionError:
            pass
        else:
            pytest.skip("running with privileges that ignore directory permissions (root)")
        s = SqlStore(sqlite_url(locked / "state.db"))
        try:
            with pytest.raises(StoreUnavailable):
                s.migrate()
        finally:
            s.close()
    finally:
        locked.chmod(0o700)


def test_sqlite_write_lock_held_elsewhere_is_unavailable_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import alertscaler.store.sql as sql

    monkeypatch.setattr(sql, "SQLITE_BUSY_TIMEOUT_MS", 50)
    path = tmp_path / "state.db"
    s = SqlStore(sqlite_url(path))
    s.migrate()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="locked"), s.transaction() as tx:
            tx.lock_group("web", 1)
        assert s.group_states() == []  # readers are not blocked by a writer (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
        s.close()


def test_postgresql_on_a_closed_port_is_unavailable_and_hides_the_password(
    alert: AlertF, notification: NotificationF,
) -> None:
    pytest.importorskip("psycopg")
    password = "s3cr3t-Pa55word"
    s = SqlStore(f"postgresql+psycopg://scaler:{password}@127.0.0.1:1/alertscaler")
    try:
        for call in _calls(s, alert, notification):
            with pytest.raises(StoreUnavailable) as info:
                call()
            assert password not in str(info.value)
            assert "127.0.0.1" in str(info.value)
    finally:
        s.close()


def test_reasons_of_many_alerts_of_one_route_are_set_together(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    nid = store.record_notification(notification(alert("x")), at(0)).notification_id
    with store.transaction() as tx:
        for fp in ("a", "b", "c"):
            tx.upsert_active_alert(ActiveAlert("web", "scale_out", fp, {}, T0, at(0), nid))
        tx.upsert_active_alert(ActiveAlert("web", "scale_in", "a", {}, T0, at(0), nid))
        tx.set_alert_reasons("web", "scale_out", ["a", "c", "missing"], "at_max")
        tx.set_alert_reasons("web", "scale_out", [], "ignored")
    reasons = {(a.policy, a.fingerprint): a.last_reason for a in store.active_alerts("web")}
    assert reasons == {("scale_in", "a"): None, ("scale_out", "a"): "at_max", ("scale_out", "b"): None,
                       ("scale_out", "c"): "at_max"}


# --- recording and deciding in one transaction; route summaries for the re-evaluation timer --------------


def test_recording_inside_a_transaction_as_processed_is_not_pending(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    ab, bc = notification(alert("a"), alert("b")), notification(alert("b"), alert("c"))
    with store.transaction() as tx:
        receipts = tx.record_notifications([(ab, at(0)), (bc, at(0))], processed_at=at(1))
    assert [(r.new, r.duplicates) for r in receipts] == [(2, 0), (1, 1)]
    assert [sorted(r.new_keys) for r in receipts] == [
        sorted(a.dedup_key(ab.receiver, ab.group_key) for a in ab.alerts),
        [bc.alerts[1].dedup_key(bc.receiver, bc.group_key)],
    ]
    assert store.pending_notifications() == []
    with store.transaction() as tx:  # a batch not marked processed stays pending
        tx.record_notifications([(notification(alert("d")), at(2))])
    assert len(store.pending_notifications()) == 1


def test_a_failed_transaction_records_nothing(store: SqlStore, alert: AlertF, notification: NotificationF) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.record_notifications([(notification(alert("a")), at(0))], processed_at=at(0))
        raise RuntimeError("deciding failed")
    receipt = store.record_notification(notification(alert("a")), at(1))
    assert (receipt.new, receipt.duplicates) == (1, 0)  # the key was not kept by the rolled-back batch


def test_a_locked_group_is_read_once_and_kept_current_in_a_transaction(store: SqlStore) -> None:
    with store.transaction() as tx:
        state = tx.lock_group("web", 2)
        tx.save_group(state.stepped(Direction.SCALE_OUT, 3, at(5)))
        again = tx.lock_group("web", 2)
    assert (again.desired, again.last_scale_out_at) == (3, at(5))
    assert store.get_group_state("web") == again


def _active(store: SqlStore, nid: int, group: str, policy: str, fp: str, seen: float, started: float = 0,
            reason: str | None = None) -> None:
    with store.transaction() as tx:
        tx.upsert_active_alert(ActiveAlert(group, policy, fp, {"alertname": fp}, at(started), at(seen), nid,
                                           last_reason=reason))


def test_route_summaries_count_reasons_and_oldest_confirmation(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    nid = store.record_notification(notification(alert("a")), at(0)).notification_id
    _active(store, nid, "web", "scale_out", "a", seen=10, reason="cooldown")
    _active(store, nid, "web", "scale_out", "b", seen=20, reason="cooldown")
    _active(store, nid, "web", "scale_out", "c", seen=5)
    _active(store, nid, "api", "scale_in", "d", seen=30, reason="at_min")

    routes = store.active_alert_routes()
    assert [(r.group, r.policy, r.count, r.oldest_seen_at, r.reasons) for r in routes] == [
        ("api", "scale_in", 1, at(30), {"at_min": 1}),
        ("web", "scale_out", 3, at(5), {"cooldown": 2, None: 1}),
    ]
    with store.transaction() as tx:
        assert tx.route_summary("web", "scale_out") == routes[1]
        assert tx.route_summary("web", "scale_in") is None


def test_route_alerts_stale_removal_reasons_and_drop(
    store: SqlStore, alert: AlertF, notification: NotificationF,
) -> None:
    nid = store.record_notification(notification(alert("a")), at(0)).notification_id
    for i, fp in enumerate(["e", "d", "c", "b", "a"]):
        _active(store, nid, "web", "scale_out", fp, seen=100 + i, started=i)
    _active(store, nid, "web", "scale_in", "z", seen=1)

    with store.transaction() as tx:
        assert [a.fingerprint for a in tx.route_alerts("web", "scale_out", 3)] == ["e", "d", "c"]  # earliest first
        stale = tx.remove_stale_alerts("web", "scale_out", seen_before=at(102))
        tx.set_route_reason("web", "scale_out", "at_max")
    assert [a.fingerprint for a in stale] == ["e", "d"]
    assert [(a.fingerprint, a.last_reason) for a in store.active_alerts("web") if a.policy == "scale_out"] == [
        ("a", "at_max"), ("b", "at_max"), ("c", "at_max")]
    assert [a.last_reason for a in store.active_alerts("web") if a.policy == "scale_in"] == [None]
    with store.transaction() as tx:
        assert tx.drop_route("web", "scale_out") == 3
        assert tx.drop_route("web", "scale_out") == 0
    assert [a.fingerprint for a in store.active_alerts()] == ["z"]


# --- healing ------------------------------------------------------------------------------------------------


def test_heal_signals_wait_in_their_group_until_judged(store: SqlStore) -> None:
    def sig(key: str, at: float, source: SignalSource = SignalSource.ALERT) -> HealSignal:
        return HealSignal(key, source, "InstanceDown", T0 + timedelta(seconds=at))

    with store.transaction() as tx:
        added = tx.add_heal_signals("web", [sig("m1", 5), sig("m1", 6), sig("m1", 7, SignalSource.STATUS)])
        tx.add_heal_signals("api", [sig("a1", 9)])
    assert added == 2  # the same member and source counts once while pending
    assert store.pending_heal_groups() == [("api", at(9)), ("web", at(5))]
    with store.transaction() as tx:
        pending = tx.pending_heal_signals("web")
        assert [(p.signal.member_key, p.signal.source) for p in pending] == [
            ("m1", SignalSource.ALERT), ("m1", SignalSource.STATUS)]
        decision_id = tx.add_decision(decision("web"))
        tx.consume_heal_signals([p.id for p in pending], decision_id)
    assert store.pending_heal_groups() == [("api", at(9))]
    with store.transaction() as tx:  # judged: a new signal for m1 starts a new window
        assert tx.add_heal_signals("web", [sig("m1", 30)]) == 1
    assert store.pending_heal_groups() == [("api", at(9)), ("web", at(30))]


def test_heal_history_and_the_slots_replacements_take_over(store: SqlStore) -> None:
    store.add_heal_records("web", [
        (HealRecord("m1", "m1", HealAction.REPLACE, at(10)), None, "m7"),
        (HealRecord("m1", "m7", HealAction.REPLACE, at(20)), None, "m9"),
        (HealRecord("m2", "m2", HealAction.REBOOT, at(30)), None, None),
    ])
    store.add_heal_records("api", [(HealRecord("a1", "a1", HealAction.QUARANTINE, at(40)), None, None)])
    assert [(r.member_id, r.action) for r in store.heal_history("web", since=at(15))] == [
        ("m7", HealAction.REPLACE), ("m2", HealAction.REBOOT)]
    with store.transaction() as tx:
        assert tx.heal_slots("web") == {"m7": "m1", "m9": "m1"}
        assert [r.slot for r in tx.heal_history_in("web", since=at(0))] == ["m1", "m1", "m2"]


def test_a_heal_action_keeps_its_targets(store: SqlStore) -> None:
    targets = (HealTarget("m1", "replace", "m1"), HealTarget("m2", "quarantine", "slot-x"))
    with store.transaction() as tx:
        decision_id = tx.add_decision(decision("web"))
        action_id = tx.add_action(decision_id, "web", 3, 3, T0, targets=targets)
    action = store.get_action(action_id)
    assert action is not None and (action.kind, action.targets) == ("heal", targets)
    assert new_action(store, "api") and [a.kind for a in store.list_actions(group="api")] == ["scale"]


# --- retention ----------------------------------------------------------------------------------------------

DAY = 86400.0


def _count(store: SqlStore, table: str) -> int:
    with store._read() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def test_retention_deletes_only_what_is_old_and_finished(store: SqlStore, alert: AlertF,
                                                         notification: NotificationF) -> None:
    old, new = at(0), at(10 * DAY)
    # old and done: a notification, its decision and finished action, the heal history of that action
    done = store.record_notification(notification(alert("done")), old).notification_id
    with store.transaction() as tx:
        tx.mark_processed(done, old)
        finished = tx.add_action(tx.add_decision(decision(decided_at=old, notification_id=done)), "web", 2, 3, old)
        tx.add_skip(decision(outcome=Outcome.SKIPPED, reason=Reason.COOLDOWN, decided_at=old))
        judged = tx.add_decision(decision("web", decided_at=old))
        tx.add_heal_signals("web", [HealSignal("m1", SignalSource.ALERT, "InstanceDown", old)])
        tx.consume_heal_signals([p.id for p in tx.pending_heal_signals("web")], judged)
    store.claim_action(finished, old)
    store.finish_action(finished, ActionState.SUCCEEDED, old, result="ok")
    store.add_heal_records("web", [(HealRecord("m1", "m1", HealAction.REPLACE, old), finished, "m2")])
    # old but still needed: an unprocessed notification, an alert still firing, an unfinished action and its
    # decision, a pending heal signal
    unprocessed = store.record_notification(notification(alert("late")), old).notification_id
    firing = store.record_notification(notification(alert("firing")), old).notification_id
    with store.transaction() as tx:
        tx.mark_processed(firing, old)
        tx.upsert_active_alert(ActiveAlert("web", "scale_out", "firing", {}, old, old, firing))
        running = tx.add_action(tx.add_decision(decision(decided_at=old)), "web", 3, 4, old)
        tx.add_heal_signals("api", [HealSignal("a1", SignalSource.ALERT, "InstanceDown", old)])
    # new: kept whatever it is
    recent = store.record_notification(notification(alert("recent")), new).notification_id
    with store.transaction() as tx:
        tx.mark_processed(recent, new)
        tx.add_skip(decision(outcome=Outcome.SKIPPED, reason=Reason.COOLDOWN, decided_at=new, notification_id=recent))
    before = {t: _count(store, t) for t in ("notifications", "seen_keys", "decisions", "actions", "heal_signals",
                                            "heal_history")}

    counts = store.prune(at(5 * DAY), batch=1)  # one row per transaction: the batching loop is exercised too

    assert counts == {"heal_history": 1, "heal_signals": 1, "actions": 1, "decisions": 3, "seen_keys": 1,
                      "notifications": 1, "signals": 0, "outbox_attempts": 0, "outbox": 0, "approvals": 0,
                      "alarm_history": 0}
    after = {t: _count(store, t) for t in before}
    assert {t: before[t] - after[t] for t in before} == {
        "notifications": 1, "seen_keys": 1, "decisions": 3, "actions": 1, "heal_signals": 1, "heal_history": 1}
    assert [p.id for p in store.pending_notifications()] == [unprocessed]
    assert store.get_action(running) is not None and store.get_action(finished) is None
    assert [(r.group, r.policy, r.count) for r in store.active_alert_routes()] == [("web", "scale_out", 1)]
    assert store.pending_heal_groups() == [("api", old)]
    # a re-send of the pruned notification is new again; one of the kept one is still a duplicate
    assert store.record_notification(notification(alert("done")), new).new == 1
    assert store.record_notification(notification(alert("recent")), new).duplicates == 1
    assert store.prune(at(5 * DAY)) == dict.fromkeys(counts, 0), "idempotent"


# --- replicas, action leases, group ownership (issue 12) ------------------------------------------------------

R1, R2, R3 = "host-a:100:aaaaaaaa", "host-b:200:bbbbbbbb", "host-c:300:cccccccc"
LEASE = timedelta(seconds=30)


def running_action(store: SqlStore, owner: str | None, now: datetime = T0, group: str = "web") -> int:
    """A RUNNING action held by ``owner`` until ``now`` + LEASE (no lease at all for None)."""
    action_id = new_action(store, group, now)
    lease = Lease(owner, now + LEASE) if owner is not None else None
    assert store.claim_action(action_id, now, lease) is not None
    return action_id


@pytest.mark.parametrize(("seconds", "live"), [
    (0, [R1]), (29.999, [R1]), (30, []), (31, []),
], ids=["at-heartbeat", "just-before-expiry", "at-expiry", "after-expiry"])
def test_a_replica_is_live_until_its_heartbeat_expires(store: SqlStore, seconds: float, live: list[str]) -> None:
    store.heartbeat(R1, at(0), at(0) + LEASE)
    assert [r.id for r in store.live_replicas(at(seconds))] == live


def test_a_heartbeat_renews_the_replica_and_all_its_action_leases_only(store: SqlStore) -> None:
    mine = [running_action(store, R1, group=g) for g in ("web", "api")]
    peers = running_action(store, R2, group="db")
    store.heartbeat(R1, at(0), at(30))
    renewed = store.heartbeat(R1, at(20), at(50))

    leases = {i: store.action_lease(i) for i in [*mine, peers]}
    (replica,) = store.live_replicas(at(49))
    assert renewed == frozenset(mine)
    assert {i: (lease.owner, lease.until) for i, lease in leases.items() if lease} == {
        mine[0]: (R1, at(50)), mine[1]: (R1, at(50)), peers: (R2, at(30))}
    assert (replica.id, replica.started_at, replica.heartbeat_at, replica.expires_at, replica.stopped_at) == (
        R1, at(0), at(20), at(50), None)


@pytest.mark.parametrize(("dead_for", "kept"), [(timedelta(hours=23), True), (timedelta(days=1, seconds=1), False)],
                         ids=["dead-less-than-a-day", "dead-over-a-day"])
def test_a_replica_dead_for_over_a_day_is_forgotten_at_a_peers_heartbeat(
    store: SqlStore, dead_for: timedelta, kept: bool,
) -> None:
    store.heartbeat(R1, at(0), at(30))
    store.heartbeat(R2, at(30) + dead_for, at(60) + dead_for)
    with store.engine.connect() as conn:
        ids = set(conn.execute(sa.text("SELECT id FROM replicas")).scalars())
    assert ids == ({R1, R2} if kept else {R2})


def test_a_heartbeat_that_ends_before_it_starts_is_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="until"):
        store.heartbeat(R1, at(10), at(10))


# How an action stands when replica R2 tries to take it over at t=40 (R1's lease: until t=30 unless renewed).
TAKEOVER: list[tuple[str, str, bool]] = [
    ("expired-lease", "expired", True),
    ("lease-renewed-by-a-live-peer", "renewed", False),
    ("never-leased", "no-lease", True),
    ("handed-back", "left", True),
    ("pending", "pending", False),
    ("finished", "finished", False),
]


@pytest.mark.parametrize(("situation", "taken"), [c[1:] for c in TAKEOVER], ids=[c[0] for c in TAKEOVER])
def test_a_peer_takes_over_only_an_expired_lease(store: SqlStore, situation: str, taken: bool) -> None:
    if situation == "pending":
        action_id = new_action(store)
    else:
        action_id = running_action(store, None if situation == "no-lease" else R1)
    if situation == "renewed":
        store.heartbeat(R1, at(25), at(55))
    elif situation == "left":
        store.leave(R1, at(10))
    elif situation == "finished":
        store.finish_action(action_id, ActionState.SUCCEEDED, at(5))

    expired = [a.id for a in store.expired_actions(at(40))]
    got = store.take_over_action(action_id, at(40), Lease(R2, at(70)))

    assert (got is not None, expired == [action_id]) == (taken, taken)
    if got is not None:
        assert (got.state, got.attempts) == (ActionState.RUNNING, 1), "taken as it was: the taker settles it"
        lease = store.action_lease(action_id)
        assert lease is not None and (lease.owner, lease.until) == (R2, at(70))
        assert store.heartbeat(R1, at(41), at(71)) == frozenset(), "the old owner renews it no more"


def test_a_live_peers_running_action_is_untouchable(store: SqlStore) -> None:
    """Issue 12 point 1: a (re)starting replica must leave a live peer's action alone."""
    action_id = running_action(store, R1)
    for t in (10, 20, 30, 40, 50):  # R1 keeps heart-beating every 10 s; R2 looks each time
        store.heartbeat(R1, at(t), at(t) + LEASE)
        assert store.expired_actions(at(t + 1)) == []
        assert store.take_over_action(action_id, at(t + 1), Lease(R2, at(t + 31))) is None
        store.finish_action(action_id, ActionState.FAILED, at(t + 1), error="R2's recovery", owner=R2)
        store.release_action(action_id, at(t + 1), "R2's retry", owner=R2)
    got, lease = store.get_action(action_id), store.action_lease(action_id)
    assert got is not None and got.state is ActionState.RUNNING and got.error is None
    assert lease is not None and lease.owner == R1


def test_the_old_owner_cannot_finish_or_release_an_action_taken_over(store: SqlStore) -> None:
    action_id = running_action(store, R1)
    assert store.take_over_action(action_id, at(31), Lease(R2, at(61))) is not None

    store.finish_action(action_id, ActionState.SUCCEEDED, at(32), result="R1 woke up late", owner=R1)
    store.release_action(action_id, at(32), "R1 retry", owner=R1)
    still = store.get_action(action_id)
    store.finish_action(action_id, ActionState.SUCCEEDED, at(33), result="reconciled", owner=R2)
    done = store.get_action(action_id)

    assert still is not None and (still.state, still.result) == (ActionState.RUNNING, None)
    assert done is not None and (done.state, done.result) == (ActionState.SUCCEEDED, "reconciled")
    assert store.action_lease(action_id) is None


def test_a_released_action_is_claimed_again_with_a_new_lease(store: SqlStore) -> None:
    action_id = running_action(store, R1)
    store.release_action(action_id, at(5), "503", owner=R1)
    pending_lease = store.action_lease(action_id)
    again = store.claim_action(action_id, at(6), Lease(R2, at(36)))
    lease = store.action_lease(action_id)
    assert pending_lease is None and again is not None
    assert lease is not None and (lease.owner, lease.until) == (R2, at(36))


def test_an_action_created_claimed_carries_its_lease(store: SqlStore) -> None:
    with store.transaction() as tx:
        claimed = tx.add_action(tx.add_decision(decision()), "web", 2, 3, at(0), claim=True, lease=Lease(R1, at(30)))
        queued = tx.add_action(tx.add_decision(decision()), "web", 3, 4, at(0), claim=True, lease=Lease(R1, at(30)))
    lease = store.action_lease(claimed)
    assert lease is not None and (lease.owner, lease.until) == (R1, at(30))
    assert store.action_lease(queued) is None
    assert store.expired_actions(at(29)) == [] and [a.id for a in store.expired_actions(at(30))] == [claimed]


def test_only_one_of_many_concurrent_takeovers_wins(store: SqlStore) -> None:
    action_id = running_action(store, R1)
    workers = 8
    barrier = threading.Barrier(workers)

    def take(i: int) -> bool:
        barrier.wait()
        return store.take_over_action(action_id, at(40), Lease(f"peer-{i}", at(70))) is not None

    with ThreadPoolExecutor(workers) as pool:
        wins = list(pool.map(take, range(workers)))

    lease = store.action_lease(action_id)
    assert wins.count(True) == 1
    assert lease is not None and lease.owner == f"peer-{wins.index(True)}"


def test_leaving_hands_back_actions_and_groups_at_once(store: SqlStore) -> None:
    held = running_action(store, R1, at(0))
    store.heartbeat(R1, at(0), at(30))
    store.heartbeat(R2, at(0), at(30))
    groups = [f"g{i}" for i in range(40)]
    owned_r1 = store.balance_groups(R1, groups, at(1))

    handed = store.leave(R1, at(5))
    store.heartbeat(R2, at(5), at(35))
    owned_r2 = store.balance_groups(R2, groups, at(5))

    assert handed == [held] and owned_r1
    assert [r.id for r in store.live_replicas(at(5))] == [R2]
    assert [a.id for a in store.expired_actions(at(5))] == [held]
    assert store.take_over_action(held, at(5), Lease(R2, at(35))) is not None
    assert owned_r2 == frozenset(groups), "R1's groups were released: R2 takes them without waiting"
    assert store.group_owners(at(6)) == dict.fromkeys(groups, R2)


# --- group assignment: rendezvous hashing over the live replicas --------------------------------------------

GROUPS = [f"group-{i:04d}" for i in range(2000)]


@pytest.mark.parametrize("count", [1, 2, 3, 5], ids=["one", "two", "three", "five"])
def test_rendezvous_spreads_groups_evenly_and_a_join_moves_only_to_the_newcomer(count: int) -> None:
    ids = [f"replica-{i}" for i in range(count)]
    before = assign_groups(GROUPS, ids)
    after = assign_groups(GROUPS, [*ids, "newcomer"])
    shuffled = assign_groups(GROUPS, list(reversed(ids)))

    shares = [list(before.values()).count(r) for r in ids]
    moved = {g for g in GROUPS if before[g] != after[g]}
    assert shuffled == before, "the order replicas are listed in does not matter"
    assert set(before) == set(GROUPS) and min(shares) > len(GROUPS) / count * 0.85
    assert {after[g] for g in moved} == {"newcomer"}
    assert abs(len(moved) - len(GROUPS) / (count + 1)) < len(GROUPS) * 0.05
    assert {g for g in GROUPS if after[g] != before[g]} == {g for g, r in after.items() if r == "newcomer"}


def test_rendezvous_without_replicas_assigns_nothing() -> None:
    assert assign_groups(GROUPS, []) == {} and rendezvous_owner("web", []) is None


def test_replica_ids_are_host_pid_random_and_differ_between_starts() -> None:
    a, b = new_replica_id("node-1", 42), new_replica_id("node-1", 42)
    assert a.startswith("node-1:42:") and b.startswith("node-1:42:") and a != b


def test_groups_split_over_live_replicas_and_rebalance_when_one_stops_heart_beating(store: SqlStore) -> None:
    groups = GROUPS[:300]

    def beat(replica: str, t: float) -> None:
        store.heartbeat(replica, at(t), at(t) + LEASE)

    beat(R1, 0)
    alone = store.balance_groups(R1, groups, at(0))
    beat(R2, 1)
    r2_early = store.balance_groups(R2, groups, at(1))  # R1 still holds everything: nothing to take yet
    r1_after_join = store.balance_groups(R1, groups, at(2))  # R1 sees R2 and lets its share go
    r2_joined = store.balance_groups(R2, groups, at(3))
    expected = assign_groups(groups, [R1, R2])
    owners_split = store.group_owners(at(3))
    # R2 stops heart-beating at t=1: its heartbeat expires at t=31
    beat(R1, 20)
    r1_before_expiry = store.balance_groups(R1, groups, at(30.5))
    beat(R1, 31)
    r1_after_expiry = store.balance_groups(R1, groups, at(31))

    assert alone == frozenset(groups) and r2_early == frozenset()
    assert r1_after_join == {g for g, r in expected.items() if r == R1}
    assert r2_joined == {g for g, r in expected.items() if r == R2}
    assert owners_split == expected and 100 < len(r2_joined) < 200
    assert r1_before_expiry == r1_after_join, "R2's groups are not taken while its heartbeat holds"
    assert r1_after_expiry == frozenset(groups)
    assert store.group_owners(at(31)) == dict.fromkeys(groups, R1)


def test_a_replica_keeps_a_group_until_its_running_action_ends(store: SqlStore) -> None:
    groups = GROUPS[:50]
    store.heartbeat(R1, at(0), at(30))
    store.balance_groups(R1, groups, at(0))
    moving = next(g for g, r in assign_groups(groups, [R1, R2]).items() if r == R2)
    action_id = running_action(store, R1, at(0), group=moving)
    store.heartbeat(R2, at(1), at(31))

    kept = store.balance_groups(R1, groups, at(2))
    not_yet = store.balance_groups(R2, groups, at(2))
    store.finish_action(action_id, ActionState.SUCCEEDED, at(3), owner=R1)
    released = store.balance_groups(R1, groups, at(4))
    taken = store.balance_groups(R2, groups, at(4))

    assert moving in kept and moving not in not_yet
    assert moving not in released and moving in taken


def test_a_replica_that_is_not_live_owns_nothing(store: SqlStore) -> None:
    store.heartbeat(R1, at(0), at(30))
    assert store.balance_groups(R1, ["web"], at(30)) == frozenset()
    assert store.balance_groups(R2, ["web"], at(0)) == frozenset(), "never heart-beaten"
    assert store.group_owners(at(0)) == {}


def test_concurrent_balancing_replicas_never_share_a_group(store: SqlStore) -> None:
    replicas = [R1, R2, R3]
    for r in replicas:
        store.heartbeat(r, at(0), at(300))
    barrier = threading.Barrier(len(replicas))

    def balance(replica: str) -> list[frozenset[str]]:
        barrier.wait()
        return [store.balance_groups(replica, GROUPS[:600], at(1 + i)) for i in range(3)]

    with ThreadPoolExecutor(len(replicas)) as pool:
        rounds = dict(zip(replicas, pool.map(balance, replicas), strict=True))

    for i in range(3):
        owned = [rounds[r][i] for r in replicas]
        assert sum(len(o) for o in owned) == len(set().union(*owned)), f"round {i}: a group owned twice"
    final = {r: store.balance_groups(r, GROUPS[:600], at(10)) for r in replicas}
    expected = assign_groups(GROUPS[:600], replicas)
    assert final == {r: {g for g, o in expected.items() if o == r} for r in replicas}


def test_overlapping_batches_recorded_by_two_replicas_do_not_deadlock(
    db_url: str, alert: AlertF, notification: NotificationF,
) -> None:
    """Issue 12 point 7: the same webhooks delivered to two replicas, batched in opposite orders. Keys are
    claimed in one order, so the second transaction waits for the first instead of deadlocking."""
    stores = [SqlStore(db_url), SqlStore(db_url)]
    stores[0].migrate()
    rounds = 15
    barrier = threading.Barrier(2, timeout=60)  # a replica that failed breaks the other's wait

    errors: list[BaseException] = []

    def replica(index: int) -> list[tuple[int, int]]:
        out = []
        for r in range(rounds):
            batch = [(notification(*(alert(f"{r}-{name}-{i}") for i in range(60)), group_key=name), at(r))
                     for name in ("x", "y", "z")]
            try:
                barrier.wait()
                receipts = stores[index].record_notifications(batch if index == 0 else batch[::-1])
            except BaseException as exc:  # surfaced below; the peer's wait is broken, not left hanging
                errors.append(exc)
                barrier.abort()
                return out
            out.extend((rc.new, rc.duplicates) for rc in receipts)
        return out

    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(replica, [0, 1]))
    finally:
        for s in stores:
            s.close()
    assert [e for e in errors if not isinstance(e, threading.BrokenBarrierError)] == []
    new = [n for result in results for n, _ in result]
    assert sum(new) == rounds * 3 * 60, "each alert claimed once"
    assert all(n in (0, 60) for n in new), "a notification's keys are claimed by one replica"


def test_upgrading_from_0002_leaves_running_actions_recoverable(db_url: str) -> None:
    old = SqlStore(db_url)
    try:
        old.migrate("0002")
        with old.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO decisions (group_name, policy, trigger, outcome, reason, from_capacity, to_capacity,"
                " message, alerts, decided_at) VALUES ('web', 'scale_out', 'notification', 'acted', 'scaled',"
                " 1, 2, 'scale 1 -> 2', '[]', :at)"), {"at": T0.replace(tzinfo=None)})
            conn.execute(sa.text(
                "INSERT INTO actions (decision_id, group_name, from_capacity, desired, state, attempts, created_at,"
                " started_at) VALUES (1, 'web', 1, 2, 'running', 1, :at, :at)"), {"at": T0.replace(tzinfo=None)})
    finally:
        old.close()
    new = SqlStore(db_url)
    try:
        new.migrate()
        lease = new.action_lease(1)
        assert lease is not None and (lease.owner, lease.until) == (None, None)
        assert [a.id for a in new.expired_actions(T0)] == [1]
    finally:
        new.close()
