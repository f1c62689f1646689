"""Store contract for the notification outbox (tables ``outbox``, ``outbox_attempts``, migration 0009;
``store.sql_outbox``), on every back end (fixtures ``store`` / ``db_url`` in conftest): enqueue in a transaction
(rolled back with it), due and claimed atomically (one winner of racing claims), attempts recorded, the row moved
only by its claimant, listed with filters, pruned once finished."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from alertscaler.model.alarms import AlarmState, Style
from alertscaler.model.notifications import (
    AlarmEvent,
    Attempt,
    AttemptOutcome,
    DeliveryStatus,
    MethodKind,
    NewOutgoing,
)
from alertscaler.store.sql import SqlStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EVENT = AlarmEvent("cpu_high", Style.AODH, "critical", "CPU ☃", {"hostname": "a"}, AlarmState.OK, AlarmState.ALARM,
                   T0, "Transition to alarm due to avg(cpu_util) > 70 is true", ("cpu_util",), "web")


def item(uid: str, method: str = "hook", alarm: str = "cpu_high", kind: MethodKind = MethodKind.WEBHOOK,
         group: str | None = "web") -> NewOutgoing:
    event = AlarmEvent(alarm, EVENT.style, EVENT.severity, EVENT.description, EVENT.dimensions, EVENT.old,
                       EVENT.new, EVENT.at, EVENT.reason, EVENT.metrics, group)
    return NewOutgoing(uid, method, kind, method, event, 3, group, None)


def enqueue(store: SqlStore, *items: NewOutgoing, at: datetime = T0) -> list[int]:
    with store.transaction() as tx:
        return tx.enqueue_notifications(list(items), at)


def failed(n: int, at: datetime, replica: str = "r1") -> Attempt:
    return Attempt(n, at, replica, False, "HTTP 503", "Service Unavailable", 12)


def test_enqueued_notifications_are_due_at_once_and_keep_their_event(store: SqlStore) -> None:
    ids = enqueue(store, item("u-1"), item("u-2", method="mail", kind=MethodKind.EMAIL, group=None))
    assert len(ids) == 2 and ids[0] < ids[1]
    due = store.due_notifications(T0)
    assert [n.uid for n in due] == ["u-1", "u-2"]
    first = due[0]
    assert (first.status, first.attempts, first.max_attempts, first.next_attempt_at) == (
        DeliveryStatus.PENDING, 0, 3, T0)
    assert first.event == EVENT and first.group == "web" and due[1].group is None
    assert due[1].kind is MethodKind.EMAIL
    assert store.due_notifications(T0 - timedelta(seconds=1)) == []
    assert store.next_notification_due() == T0


def test_an_enqueue_rolled_back_with_its_transaction_leaves_nothing(store: SqlStore) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.enqueue_notifications([item("u-1")], T0)
        raise RuntimeError("the transition's transaction fails")
    assert store.list_notifications() == [] and store.next_notification_due() is None


def test_the_uid_is_unique(store: SqlStore) -> None:
    enqueue(store, item("u-1"))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        enqueue(store, item("u-1"))


def test_a_claim_holds_until_it_ends_and_only_one_claimant_wins(store: SqlStore) -> None:
    [nid] = enqueue(store, item("u-1"))
    claimed = store.claim_notification(nid, "r1", T0, T0 + timedelta(seconds=15))
    assert claimed is not None and claimed.claimed_by == "r1" and claimed.claimed_until == T0 + timedelta(seconds=15)
    assert store.claim_notification(nid, "r2", T0 + timedelta(seconds=5), T0 + timedelta(seconds=20)) is None
    assert store.due_notifications(T0 + timedelta(seconds=5)) == []  # held: not offered
    # the claimant died mid-send: once the claim ends another replica (or the restarted one) may take it
    later = T0 + timedelta(seconds=15)
    assert [n.id for n in store.due_notifications(later)] == [nid]
    retaken = store.claim_notification(nid, "r2", later, later + timedelta(seconds=15))
    assert retaken is not None and retaken.claimed_by == "r2"
    # the first claimant's late result is recorded (the attempt was made) but does not move the row
    assert not store.finish_notification(nid, "r1", failed(1, later), AttemptOutcome(
        DeliveryStatus.PENDING, later + timedelta(seconds=30), "HTTP 503"))
    row = store.get_notification(nid)
    assert row is not None and row.claimed_by == "r2" and row.status is DeliveryStatus.PENDING
    assert [a.replica for a in row.history] == ["r1"]


def test_racing_claims_have_exactly_one_winner(db_url: str) -> None:
    stores = [SqlStore(db_url) for _ in range(4)]
    stores[0].migrate()
    [nid] = enqueue(stores[0], item("u-race"))
    barrier = threading.Barrier(len(stores))

    def claim(i: int) -> bool:
        barrier.wait()
        return stores[i].claim_notification(nid, f"r{i}", T0, T0 + timedelta(seconds=15)) is not None

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            wins = list(pool.map(claim, range(len(stores))))
    finally:
        for s in stores:
            s.close()
    assert wins.count(True) == 1


@pytest.mark.parametrize(
    ("outcome", "status", "finished", "next_at"),
    [
        (AttemptOutcome(DeliveryStatus.PENDING, T0 + timedelta(seconds=30), "HTTP 503: Service Unavailable"),
         DeliveryStatus.PENDING, False, T0 + timedelta(seconds=30)),
        (AttemptOutcome(DeliveryStatus.DELIVERED, None, "HTTP 200: OK"), DeliveryStatus.DELIVERED, True, T0),
        (AttemptOutcome(DeliveryStatus.FAILED, None, "gave up after 1 attempt(s): HTTP 503"),
         DeliveryStatus.FAILED, True, T0),
    ],
    ids=["retry-later", "delivered", "given-up"],
)
def test_finishing_an_attempt_records_it_and_moves_the_row(store: SqlStore, outcome: AttemptOutcome,
                                                          status: DeliveryStatus, finished: bool,
                                                          next_at: datetime) -> None:
    [nid] = enqueue(store, item("u-1"))
    assert store.claim_notification(nid, "r1", T0, T0 + timedelta(seconds=15)) is not None
    attempt = Attempt(1, T0, "r1", status is DeliveryStatus.DELIVERED, "HTTP 200" if outcome.status is
                      DeliveryStatus.DELIVERED else "HTTP 503", "detail ☃\x00", 42)
    assert store.finish_notification(nid, "r1", attempt, outcome)
    row = store.get_notification(nid)
    assert row is not None
    assert (row.status, row.attempts, row.next_attempt_at, row.claimed_by, row.claimed_until) == (
        status, 1, next_at, None, None)
    assert (row.finished_at is not None) == finished and row.last_result == outcome.last_result
    [recorded] = row.history
    assert (recorded.attempt, recorded.at, recorded.replica, recorded.ok, recorded.duration_ms) == (
        1, T0, "r1", attempt.ok, 42)
    assert recorded.detail == "detail ☃\\0"  # a NUL from a reply is storable on every back end
    assert store.finish_notification(nid, "r1", attempt, outcome) is False  # released: not twice
    due = store.due_notifications(T0 + timedelta(minutes=1))
    assert [n.id for n in due] == ([nid] if status is DeliveryStatus.PENDING else [])


def test_listing_filters_newest_first_with_attempts(store: SqlStore) -> None:
    a, b, c = enqueue(store, item("u-a"), item("u-b", method="mail", kind=MethodKind.EMAIL),
                      item("u-c", alarm="disk_full"), at=T0)
    store.claim_notification(b, "r1", T0, T0 + timedelta(seconds=15))
    store.finish_notification(b, "r1", Attempt(1, T0, "r1", True, "SMTP 250", "OK queued"),
                              AttemptOutcome(DeliveryStatus.DELIVERED, None, "SMTP 250: OK queued"))
    assert [n.id for n in store.list_notifications()] == [c, b, a]
    assert [n.id for n in store.list_notifications(alarm="cpu_high")] == [b, a]
    assert [n.id for n in store.list_notifications(status=DeliveryStatus.DELIVERED)] == [b]
    assert [n.id for n in store.list_notifications(method="mail")] == [b]
    assert [n.id for n in store.list_notifications(limit=1)] == [c]
    assert store.list_notifications(since=T0 + timedelta(seconds=1)) == []
    assert [len(n.history) for n in store.list_notifications()] == [0, 1, 0]
    assert store.get_notification(999_999) is None


def test_retention_prunes_finished_notifications_never_pending_ones(store: SqlStore) -> None:
    done, pending = enqueue(store, item("u-done"), item("u-pending"))
    store.claim_notification(done, "r1", T0, T0 + timedelta(seconds=15))
    store.finish_notification(done, "r1", failed(1, T0), AttemptOutcome(DeliveryStatus.FAILED, None, "gave up"))
    store.claim_notification(pending, "r1", T0, T0 + timedelta(seconds=15))
    store.finish_notification(pending, "r1", failed(1, T0), AttemptOutcome(
        DeliveryStatus.PENDING, T0 + timedelta(days=30), "HTTP 503"))
    assert store.prune(T0)["outbox"] == 0  # finished at T0: not older than T0
    counts = store.prune(T0 + timedelta(days=1))
    assert (counts["outbox_attempts"], counts["outbox"]) == (1, 1)
    assert [n.id for n in store.list_notifications()] == [pending]
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM outbox_attempts")).scalar_one() == 1
