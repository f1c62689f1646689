"""Approvals end to end on the store, on every back end (fixture ``store`` in conftest): a change that waits is
recorded by ``act.recording`` (a repeat still waits, a newer change supersedes), ``act.approving`` approves it (an
acted ``approved`` decision and its action), refuses what cannot be approved (409: expired, moved, paused, already
ended), rejects, and expires it once. Time is passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.act.approving import approve, expire_due, recorded_on_refusal, reject
from alertscaler.act.recording import About, Recorded, record
from alertscaler.config import PolicyFile, load_policy
from alertscaler.model.approvals import ApprovalKind, ApprovalState
from alertscaler.model.controls import Pause
from alertscaler.model.decisions import ActionState, HealTarget, Outcome, Reason, Trigger, Verdict
from alertscaler.model.errors import Conflict, NotFound
from alertscaler.model.policies import Direction
from alertscaler.store.sql import SqlStore

T0 = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
POLICY: PolicyFile = load_policy("""
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 20
    desired: 2
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 5, cooldown: 5m}
    heal: {matchers: ['alertname="Down"']}
    approval: {over_change: 3, heal: [replace], expire_after: 30m}
""")
WEB = POLICY.groups["web"]


def step(store: SqlStore, to: int, now: datetime = T0, trigger: Trigger = Trigger.NOTIFICATION) -> Recorded:
    """A scale_out step to ``to`` decided on the group's size, as ``act.processing`` records it."""
    with store.transaction() as tx:
        state = tx.lock_group("web", WEB.initial_desired)
        verdict = Verdict(Outcome.ACTED, Reason.SCALED, state.desired, to, f"scale {state.desired} -> {to}")
        return record(tx, About("web", "scale_out", trigger, WEB), verdict, now, state=state,
                      step=Direction.SCALE_OUT)


def heal(store: SqlStore, *members: str, now: datetime = T0) -> Recorded:
    targets = [HealTarget(m, "replace", f"slot-{m}") for m in members]
    with store.transaction() as tx:
        size = tx.lock_group("web", WEB.initial_desired).desired
        return record(tx, About("web", "heal", Trigger.HEALTH, WEB),
                      Verdict(Outcome.ACTED, Reason.HEALED, size, size, "replace " + ", ".join(members)), now,
                      targets=targets, numbered=True)


def manual(store: SqlStore, to: int, now: datetime = T0) -> None:
    with store.transaction() as tx:
        state = tx.lock_group("web", WEB.initial_desired)
        record(tx, About("web", None, Trigger.MANUAL, WEB),
               Verdict(Outcome.ACTED, Reason.MANUAL, state.desired, to, f"manual scale {state.desired} -> {to}"),
               now, state=state, numbered=True)


def test_a_big_change_waits_and_runs_once_approved(store: SqlStore) -> None:
    waits = step(store, 9)
    assert (waits.outcome, waits.reason, waits.action_id) == (Outcome.SKIPPED, Reason.PENDING_APPROVAL, None)
    assert waits.decision_id is not None
    decision = store.get_decision(waits.decision_id)
    assert decision is not None and (decision.from_capacity, decision.to_capacity) == (2, 9)
    assert f"alertscaler approve {waits.decision_id}" in decision.message
    assert "until 2026-12-08T10:30:00Z" in decision.message and "would have scale 2 -> 9" in decision.message
    (pending,) = store.approvals()
    assert (pending.decision_id, pending.kind, pending.from_capacity, pending.to_capacity, pending.step) == \
        (waits.decision_id, ApprovalKind.SCALE, 2, 9, "scale_out")
    assert store.list_actions() == [] and store.get_group_state("web").desired == 2  # type: ignore[union-attr]

    done = approve(store, POLICY, waits.decision_id, "alice", T0 + timedelta(minutes=5))
    assert (done.outcome, done.reason) == (Outcome.ACTED, Reason.APPROVED) and done.action_id is not None
    approved = store.get_decision(done.decision_id or 0)
    assert approved is not None and approved.trigger is Trigger.APPROVAL and approved.policy == "scale_out"
    assert f"approval {waits.decision_id} approved by alice: scale 2 -> 9" in approved.message
    (action,) = store.list_actions()
    assert (action.from_capacity, action.desired, action.state) == (2, 9, ActionState.RUNNING)
    state = store.get_group_state("web")
    assert state is not None and state.desired == 9
    assert state.last_scale_out_at == T0 + timedelta(minutes=5)  # the step's cooldown runs from the approval
    ended = store.get_approval(waits.decision_id)
    assert ended is not None and (ended.state, ended.resolved_by, ended.resolution_id) == \
        (ApprovalState.APPROVED, "alice", done.decision_id)
    assert store.approvals() == []
    with pytest.raises(Conflict, match="is already approved by alice"):
        approve(store, POLICY, waits.decision_id, "bob", T0 + timedelta(minutes=6))
    with pytest.raises(NotFound, match="no approval 9999"):
        approve(store, POLICY, 9999, "bob", T0)


def test_a_repeat_still_waits_and_a_newer_change_supersedes(store: SqlStore) -> None:
    first = step(store, 9)
    again = step(store, 9, T0 + timedelta(minutes=1), Trigger.TIMER)
    assert again.reason is Reason.PENDING_APPROVAL and again.also == ()
    assert [a.decision_id for a in store.approvals()] == [first.decision_id]  # one row for one change
    newest = store.list_decisions(group="web")[0]
    assert newest.message.startswith(f"still waits for approval {first.decision_id} until 2026-12-08T10:30:00Z")

    newer = step(store, 12, T0 + timedelta(minutes=2))
    (superseded,) = newer.also
    assert (superseded.outcome, superseded.reason) == (Outcome.SKIPPED, Reason.APPROVAL_EXPIRED)
    old = store.get_decision(superseded.decision_id or 0)
    assert old is not None and old.trigger is Trigger.APPROVAL and (old.from_capacity, old.to_capacity) == (2, 9)
    assert f"approval {first.decision_id} superseded by a newer change" in old.message
    assert [a.decision_id for a in store.approvals()] == [newer.decision_id]
    with pytest.raises(Conflict, match="already superseded"):
        approve(store, POLICY, first.decision_id or 0, "alice", T0 + timedelta(minutes=3))


def test_refusals_leave_it_waiting(store: SqlStore) -> None:
    waits = step(store, 9)
    assert waits.decision_id is not None
    manual(store, 3, T0 + timedelta(minutes=1))  # the group moved since
    with pytest.raises(Conflict, match="the group moved since: its desired size is 3, the change was planned from 2"):
        approve(store, POLICY, waits.decision_id, "alice", T0 + timedelta(minutes=2))
    manual(store, 2, T0 + timedelta(minutes=3))  # back where it was planned from
    with store.transaction() as tx:
        tx.set_pause(Pause("web", T0, None, "incident 42"))
    with pytest.raises(Conflict, match="group web is paused until resumed \\(incident 42\\): resume it first"):
        approve(store, POLICY, waits.decision_id, "alice", T0 + timedelta(minutes=4))
    with store.transaction() as tx:
        tx.clear_pause("web")
    assert [a.decision_id for a in store.approvals()] == [waits.decision_id]
    assert approve(store, POLICY, waits.decision_id, "alice", T0 + timedelta(minutes=5)).reason is Reason.APPROVED


def test_expiry_is_recorded_once_and_the_change_cannot_be_approved_after(store: SqlStore) -> None:
    waits = step(store, 9)
    assert waits.decision_id is not None
    assert expire_due(store, POLICY, T0 + timedelta(minutes=29)) == []
    (expired,) = expire_due(store, POLICY, T0 + timedelta(minutes=30))
    assert (expired.outcome, expired.reason) == (Outcome.SKIPPED, Reason.APPROVAL_EXPIRED)
    assert expire_due(store, POLICY, T0 + timedelta(hours=2)) == []  # once
    decision = store.get_decision(expired.decision_id or 0)
    assert decision is not None and "expired at 2026-12-08T10:30:00Z unapproved" in decision.message
    with pytest.raises(Conflict, match="is already expired"):
        approve(store, POLICY, waits.decision_id, "alice", T0 + timedelta(hours=2))
    assert store.get_group_state("web").desired == 2  # type: ignore[union-attr]


def test_approving_too_late_records_the_expiry_and_refuses(store: SqlStore) -> None:
    waits = step(store, 9)
    assert waits.decision_id is not None
    with pytest.raises(Conflict, match="expired at 2026-12-08T10:30:00Z") as info:
        approve(store, POLICY, waits.decision_id, "alice", T0 + timedelta(hours=1))
    (recorded,) = recorded_on_refusal(info.value)
    assert recorded.reason is Reason.APPROVAL_EXPIRED
    assert store.get_approval(waits.decision_id).state is ApprovalState.EXPIRED  # type: ignore[union-attr]
    assert expire_due(store, POLICY, T0 + timedelta(hours=2)) == []


def test_a_rejected_change_never_runs(store: SqlStore) -> None:
    waits = step(store, 9)
    assert waits.decision_id is not None
    done = reject(store, POLICY, waits.decision_id, "bob", T0 + timedelta(minutes=1))
    assert (done.outcome, done.reason) == (Outcome.SKIPPED, Reason.REJECTED)
    decision = store.get_decision(done.decision_id or 0)
    assert decision is not None and f"approval {waits.decision_id} rejected by bob" in decision.message
    with pytest.raises(Conflict, match="already rejected by bob"):
        reject(store, POLICY, waits.decision_id, "bob", T0 + timedelta(minutes=2))
    with pytest.raises(Conflict, match="already rejected by bob"):
        approve(store, POLICY, waits.decision_id, "alice", T0 + timedelta(minutes=2))
    assert store.list_actions() == []


def test_heals_wait_and_a_newer_heal_carries_the_older_members_over(store: SqlStore) -> None:
    first = heal(store, "m-1")
    assert first.reason is Reason.PENDING_APPROVAL
    scale_waits = step(store, 9)  # a scale change waits beside the heal: another kind, nothing superseded
    assert scale_waits.also == ()
    second = heal(store, "m-2", now=T0 + timedelta(minutes=1))
    assert [r.reason for r in second.also] == [Reason.APPROVAL_EXPIRED]
    pending = {a.kind: a for a in store.approvals()}
    assert [t.member_id for t in pending[ApprovalKind.HEAL].targets] == ["m-2", "m-1"]
    assert "and from the change it supersedes: replace m-1" in pending[ApprovalKind.HEAL].message
    done = approve(store, POLICY, second.decision_id or 0, "alice", T0 + timedelta(minutes=2))
    (action,) = store.list_actions()
    assert (action.kind, [t.member_id for t in action.targets], action.id) == ("heal", ["m-2", "m-1"], done.action_id)
    assert (action.from_capacity, action.desired) == (2, 2)
