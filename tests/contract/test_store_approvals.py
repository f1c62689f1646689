"""Store contract for approvals (``approvals`` table, migration 0005): a change that waits is kept with its
decision, listed, resolved exactly once, on every back end (fixtures ``store`` / ``db_url`` in conftest)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.model.approvals import ApprovalKind, ApprovalState, PendingApproval
from alertscaler.model.decisions import HealTarget, Outcome, Reason, Trigger
from alertscaler.store.base import NewDecision
from alertscaler.store.sql import SqlStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pending(store: SqlStore, group: str = "web", kind: ApprovalKind = ApprovalKind.SCALE,
            sizes: tuple[int, int] = (2, 7), targets: tuple[HealTarget, ...] = (), at: datetime = T0,
            expiry: timedelta = timedelta(hours=1),
            message: str = "scale 2 -> 7") -> PendingApproval:
    """Record a pending_approval decision and its approval row, as ``act.recording`` does."""
    with store.transaction() as tx:
        decision_id = tx.add_decision(NewDecision(
            group=group, policy="scale_out", trigger=Trigger.NOTIFICATION, outcome=Outcome.SKIPPED,
            reason=Reason.PENDING_APPROVAL, from_capacity=sizes[0], to_capacity=sizes[1], message="placeholder",
            decided_at=at))
        approval = PendingApproval(decision_id, group, kind, "scale_out", Trigger.NOTIFICATION, "scale_out", *sizes,
                                   targets, "a scale-out of 5 instances is over the approval limit of 3", message,
                                   at, at + expiry)
        tx.add_approval(approval, f"waits for approval {decision_id}")
    return approval


@pytest.mark.parametrize(
    ("kind", "targets", "message"),
    [(ApprovalKind.SCALE, (), "scale 2 -> 7"),
     (ApprovalKind.HEAL, (HealTarget("m-1", "replace", "s-1"), HealTarget("m-2", "reboot", "s-2")), "heal ☃ m-1"),
     (ApprovalKind.SCALE, (), "a NUL \0 in a policy's words")],
    ids=["scale", "heal-with-targets", "nul-in-message"],
)
def test_a_pending_approval_is_kept_with_its_decision(store: SqlStore, kind: ApprovalKind,
                                                      targets: tuple[HealTarget, ...], message: str) -> None:
    approval = pending(store, kind=kind, targets=targets, message=message)
    stored = store.get_approval(approval.decision_id)
    assert stored == replace(approval, message=message.replace("\0", "\\0"))
    assert store.approvals() == [stored]
    decision = store.get_decision(approval.decision_id)
    assert decision is not None and decision.message == f"waits for approval {approval.decision_id}"
    with store.transaction() as tx:
        assert tx.pending_approvals("web") == [stored]
        assert tx.pending_approvals("db") == []
        assert tx.get_approval(approval.decision_id, lock=True) == stored


def test_listing_filters_by_group_and_state_newest_first(store: SqlStore) -> None:
    first = pending(store, "web")
    second = pending(store, "db", sizes=(9, 1))
    third = pending(store, "web", sizes=(2, 8))
    with store.transaction() as tx:
        assert tx.resolve_approval(first.decision_id, ApprovalState.SUPERSEDED, T0, "a newer change", 99)
    assert [a.decision_id for a in store.approvals()] == [third.decision_id, second.decision_id]
    assert [a.decision_id for a in store.approvals("web")] == [third.decision_id]
    everything = store.approvals("web", pending_only=False)
    assert [a.decision_id for a in everything] == [third.decision_id, first.decision_id]
    ended = everything[1]
    assert (ended.state, ended.resolved_at, ended.resolved_by, ended.resolution_id) == \
        (ApprovalState.SUPERSEDED, T0, "a newer change", 99)
    assert [a.decision_id for a in store.approvals(limit=1)] == [third.decision_id]


@pytest.mark.parametrize(
    ("expiry", "now", "due"),
    [(timedelta(minutes=30), T0 + timedelta(minutes=29), False),
     (timedelta(minutes=30), T0 + timedelta(minutes=30), True),
     (timedelta(minutes=30), T0 + timedelta(days=3), True)],
    ids=["before-expiry", "at-expiry", "long-after"],
)
def test_due_approvals_are_the_pending_ones_past_their_expiry(store: SqlStore, expiry: timedelta, now: datetime,
                                                             due: bool) -> None:
    approval = pending(store, expiry=expiry)
    assert [a.decision_id for a in store.due_approvals(now)] == ([approval.decision_id] if due else [])
    with store.transaction() as tx:
        assert tx.resolve_approval(approval.decision_id, ApprovalState.REJECTED, now, "alice", None)
    assert store.due_approvals(now) == []  # resolved: never due again


def test_an_approval_is_resolved_once(store: SqlStore) -> None:
    approval = pending(store)
    with store.transaction() as tx:
        assert tx.resolve_approval(approval.decision_id, ApprovalState.APPROVED, T0, "alice", 12)
        assert not tx.resolve_approval(approval.decision_id, ApprovalState.EXPIRED, T0, "expiry", 13)
    with store.transaction() as tx:
        assert not tx.resolve_approval(approval.decision_id, ApprovalState.REJECTED, T0, "bob", 14)
        assert not tx.resolve_approval(404, ApprovalState.REJECTED, T0, "bob", 14)
    stored = store.get_approval(approval.decision_id)
    assert stored is not None and (stored.state, stored.resolved_by, stored.resolution_id) == \
        (ApprovalState.APPROVED, "alice", 12)
    assert store.get_approval(404) is None


def test_two_resolvers_at_once_one_wins(store: SqlStore) -> None:
    """An operator and the expiry pass (or two replicas) at the same moment: exactly one resolves it."""
    approval = pending(store)
    barrier = threading.Barrier(2)
    won: list[bool] = []

    def resolve(state: ApprovalState) -> None:
        barrier.wait()
        with store.transaction() as tx:
            tx.lock_group("web", 2)
            found = tx.get_approval(approval.decision_id, lock=True)
            assert found is not None
            won.append(found.state is ApprovalState.PENDING
                       and tx.resolve_approval(approval.decision_id, state, T0, state.value, None))

    threads = [threading.Thread(target=resolve, args=(s,)) for s in (ApprovalState.APPROVED, ApprovalState.EXPIRED)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(won) == [False, True]


def test_retention_prunes_ended_approvals_only(store: SqlStore) -> None:
    old_ended, old_pending, recent_ended = pending(store), pending(store, "db"), pending(store, "api")
    with store.transaction() as tx:
        assert tx.resolve_approval(old_ended.decision_id, ApprovalState.EXPIRED, T0 + timedelta(hours=1), "expired",
                                   None)
        assert tx.resolve_approval(recent_ended.decision_id, ApprovalState.APPROVED, T0 + timedelta(days=9), "alice",
                                   None)
    counts = store.prune(T0 + timedelta(days=5))
    assert counts["approvals"] == 1
    assert store.get_approval(old_ended.decision_id) is None
    assert store.get_approval(old_pending.decision_id) is not None  # pending: never pruned, however old
    assert store.get_approval(recent_ended.decision_id) is not None
