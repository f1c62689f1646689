"""Two alertscaler replicas sharing one store (the HA mode), on SQLite and PostgreSQL: a notification delivered
to both by an HA pair of Alertmanagers, processed concurrently, acts exactly once; and ownership with leases
(issue 12): groups split over the live replicas and move when one stops heart-beating, a live peer's running
action is never touched, a dead peer's is taken over once its lease has expired, a clean stop hands back at
once, and after a failed action desired follows the provider's real size. Time is a clock the test moves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertscaler.act.engine import Engine
from alertscaler.act.ownership import Ownership
from alertscaler.act.processing import Processor
from alertscaler.config import load_policy
from alertscaler.ingest.alertmanager import parse_notification
from alertscaler.model.decisions import ActionState, Outcome, Reason, Trigger
from alertscaler.model.errors import PermanentProviderError
from alertscaler.providers.base import ProviderContext
from alertscaler.providers.fake import FakeConfig, FakeProvider
from alertscaler.service import build_engine
from alertscaler.store.base import Lease, NewDecision
from alertscaler.store.replicas import new_replica_id
from alertscaler.store.sql import SqlStore
from tests.support.webhooks import alert, body

POLICY = load_policy("""
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 5
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: 1m}
""")
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_same_notification_to_two_replicas_acts_once(db_url: str) -> None:
    replicas = [SqlStore(db_url), SqlStore(db_url)]
    replicas[0].migrate()
    notification = parse_notification(body(alert("HighLoad")))
    for store in replicas:  # each Alertmanager of the pair delivers to a different replica
        store.record_notification(notification, T0)

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(store: SqlStore) -> Callable[[], None]:
        def go() -> None:
            try:
                barrier.wait()
                for _ in range(3):  # each replica's loop runs a few times
                    Processor(POLICY, store).process_pending(T0)
            except BaseException as exc:  # surfaced below
                errors.append(exc)
        return go

    threads = [threading.Thread(target=run(s)) for s in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    decisions = replicas[0].list_decisions()
    acted = [d for d in decisions if d.outcome is Outcome.ACTED]
    assert len(acted) == 1 and (acted[0].from_capacity, acted[0].to_capacity) == (1, 2)
    assert [d.reason for d in decisions if d.outcome is Outcome.SKIPPED] == [Reason.DUPLICATE]
    assert len(replicas[0].list_actions()) == 1
    assert replicas[1].pending_notifications() == []
    for store in replicas:
        store.close()


# --- ownership with leases (issue 12): two engines on one store, a clock the test controls ------------------

REPLICA_POLICY = load_policy("""
server: {auth: {insecure_no_auth: true}}
store: {lease: 30s, heartbeat_interval: 10s}
groups:
""" + "".join(f"""
  g{i:02d}:
    provider: {{type: fake}}
    min_size: 1
    max_size: 5
    scale_out: {{matchers: ['alertname="HighLoad"', 'group="g{i:02d}"'], adjustment: 1, cooldown: 1m}}
""" for i in range(12)))
GROUP_NAMES = sorted(REPLICA_POLICY.groups)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Replica:
    name: str
    engine: Engine
    providers: dict[str, FakeProvider]


def _replica(name: str, store: SqlStore, clock: Clock, tmp_path: Path) -> Replica:
    providers = {g: FakeProvider(FakeConfig(type="fake"), ProviderContext(g, tmp_path / name)) for g in GROUP_NAMES}
    for provider in providers.values():
        provider._resize(1)
    ownership = Ownership(REPLICA_POLICY.store.lease, REPLICA_POLICY.store.heartbeat_interval, replica=name)
    engine = build_engine(REPLICA_POLICY, store, dict(providers), clock=clock, ownership=ownership)
    return Replica(name, engine, providers)


def _running_action(store: SqlStore, group: str, holder: Replica, now: datetime) -> int:
    """A RUNNING action of ``group`` held by ``holder`` (as if its worker were in the provider call)."""
    with store.transaction() as tx:
        decision_id = tx.add_decision(NewDecision(group, None, Trigger.MANUAL, Outcome.ACTED, Reason.MANUAL, 1, 2,
                                                  "scale 1 -> 2", now))
        action_id = tx.add_action(decision_id, group, 1, 2, now, claim=True,
                                  lease=holder.engine.ownership.lease(now))
    return action_id


@pytest.fixture
def pair(db_url: str, tmp_path: Path) -> Iterator[tuple[SqlStore, Clock, Replica, Replica]]:
    stores = [SqlStore(db_url), SqlStore(db_url)]  # one store handle per replica, as two processes have
    stores[0].migrate()
    clock = Clock(T0)
    try:
        yield stores[0], clock, _replica("r1", stores[0], clock, tmp_path), _replica("r2", stores[1], clock, tmp_path)
    finally:
        for s in stores:
            s.close()


def _owned(replica: Replica) -> frozenset[str]:
    return replica.engine.ownership.owned


async def _join(clock: Clock, *replicas: Replica) -> None:
    """Heart-beat each replica twice (one interval apart): the second round moves the groups to their owner."""
    for _ in range(2):
        for r in replicas:
            await r.engine.heartbeat()
        clock.advance(REPLICA_POLICY.store.heartbeat_interval)


async def test_groups_split_over_two_replicas_and_rebalance_when_one_stops_heart_beating(
    pair: tuple[SqlStore, Clock, Replica, Replica],
) -> None:
    store, clock, r1, r2 = pair
    await _join(clock, r1, r2)
    split = (_owned(r1), _owned(r2))
    owners = store.group_owners(clock())
    # r2 is killed (no more heartbeats): its last one was 10 s ago, so it expires in 20 s
    clock.advance(19)
    await r1.engine.heartbeat()
    before_expiry = _owned(r1)
    clock.advance(1)
    await r1.engine.heartbeat()

    assert split[0] and split[1] and not split[0] & split[1] and split[0] | split[1] == set(GROUP_NAMES)
    assert owners == {g: ("r1" if g in split[0] else "r2") for g in GROUP_NAMES}
    assert before_expiry == split[0], "a live (not yet expired) peer keeps its groups"
    assert _owned(r1) == set(GROUP_NAMES)


async def test_a_restarting_replica_never_touches_a_live_peers_running_action(
    pair: tuple[SqlStore, Clock, Replica, Replica],
) -> None:
    """Issue 12 point 1: r2 runs an action; r1 restarts (start-up recovery and reconcile) while r2 is live."""
    store, clock, r1, r2 = pair
    await _join(clock, r1, r2)
    group = sorted(_owned(r2))[0]
    action_id = _running_action(store, group, r2, clock())
    for _ in range(6):  # a minute of r1 restarting and heart-beating while r2 heart-beats too
        clock.advance(10)
        await r2.engine.heartbeat()
        await r1.engine.heartbeat()
        await r1.engine.run_once()

    action, lease = store.get_action(action_id), store.action_lease(action_id)
    assert action is not None and (action.state, action.attempts, action.error) == (ActionState.RUNNING, 1, None)
    assert lease is not None and lease.owner == "r2"
    assert r1.providers[group].status().current == 1, "r1 never ran (or reconciled) r2's action"


async def test_a_dead_replicas_action_is_taken_over_once_its_lease_expires(
    pair: tuple[SqlStore, Clock, Replica, Replica],
) -> None:
    """Issue 12 point 2: r2 is killed during an action; r1 takes it over when the lease ends and completes it."""
    store, clock, r1, r2 = pair
    await _join(clock, r1, r2)
    group = sorted(_owned(r2))[0]
    action_id = _running_action(store, group, r2, clock())
    await r2.engine.heartbeat()  # r2's last heartbeat: lease until now + 30 s
    clock.advance(29)
    await r1.engine.run_once()
    untouched = store.get_action(action_id)
    clock.advance(1)
    await r1.engine.run_once()  # lease over: r1 drives the group, takes the action over, resumes it (fake converges)
    done = store.get_action(action_id)

    assert untouched is not None and untouched.state is ActionState.RUNNING
    assert done is not None and (done.state, done.attempts) == (ActionState.SUCCEEDED, 2)
    assert r1.providers[group].status().current == 2
    assert group in _owned(r1)


async def test_a_clean_stop_hands_actions_and_groups_back_at_once(
    pair: tuple[SqlStore, Clock, Replica, Replica],
) -> None:
    store, clock, r1, r2 = pair
    await _join(clock, r1, r2)
    group = sorted(_owned(r2))[0]
    action_id = _running_action(store, group, r2, clock())
    await r2.engine.stop()
    await r1.engine.run_once()  # same instant: nothing to wait for

    done = store.get_action(action_id)
    assert _owned(r1) == set(GROUP_NAMES)
    assert done is not None and done.state is ActionState.SUCCEEDED


async def test_only_the_driving_replica_claims_a_new_action(pair: tuple[SqlStore, Clock, Replica, Replica]) -> None:
    """A webhook may reach any replica: the decision is recorded there; the action is claimed and run by the
    replica that drives the group."""
    store, clock, r1, r2 = pair
    await _join(clock, r1, r2)
    group = sorted(_owned(r2))[0]
    receipt = await r1.engine.record_async(
        parse_notification(body(alert("HighLoad", group=group))), clock())
    await r1.engine.run_once()
    queued = store.list_actions(group)
    await r2.engine.run_once()
    done = store.list_actions(group)

    assert receipt.new == 1
    assert [(a.state, a.attempts) for a in queued] == [(ActionState.PENDING, 0)], "r1 left it to r2"
    assert [(a.state, a.attempts) for a in done] == [(ActionState.SUCCEEDED, 1)]
    assert r2.providers[group].status().current == 2 and r1.providers[group].status().current == 1


# id, manual scales queued before the worker runs, the provider's size when it runs, desired after, reconciles
DRIFT: list[tuple[str, list[int], int, int, list[tuple[int, int]]]] = [
    # issue 12 point 6: the out action and the in action both fail for good; desired was left at 2 (real 1)
    ("out-and-in-both-fail", [2, 1], 1, 1, []),
    # the action failed, yet the group's real size moved (a partial change, someone else): desired follows it
    ("failed-while-the-size-moved", [3], 2, 2, [(3, 2)]),
]


@pytest.mark.parametrize(("scales", "real", "desired", "reconciles"), [c[1:] for c in DRIFT], ids=[c[0] for c in DRIFT])
async def test_after_a_failed_action_desired_follows_the_providers_real_size(
    pair: tuple[SqlStore, Clock, Replica, Replica], scales: list[int], real: int, desired: int,
    reconciles: list[tuple[int, int]],
) -> None:
    store, _, r1, _ = pair
    await r1.engine.heartbeat()
    provider = r1.providers["g00"]
    provider.fail_next(*(PermanentProviderError("refused") for _ in scales))
    for size in scales:
        await r1.engine.operator.manual_scale("g00", size)
    provider._resize(real)
    await r1.engine.run_once()

    state = store.get_group_state("g00")
    recorded = [d for d in store.list_decisions("g00") if d.reason is Reason.RECONCILE]
    assert [a.state for a in store.list_actions("g00")] == [ActionState.FAILED] * len(scales)
    assert state is not None and (state.desired, provider.status().current) == (desired, real)
    assert [(d.from_capacity, d.to_capacity) for d in recorded] == reconciles
    assert all("desired follows the real size" in d.message for d in recorded)


# id, manual scales queued (from 1), how many fail for good first, the (from, to) each provider call was told
REBASE: list[tuple[str, list[int], int, list[tuple[int, int]]]] = [
    # the out action fails: the in action queued behind it was planned from 2, a size never reached
    ("out-fails-in-runs", [2, 1], 1, [(1, 2), (1, 1)]),
    ("out-fails-then-out-in", [2, 3, 2], 1, [(1, 2), (1, 3), (3, 2)]),
    ("nothing-fails", [2, 1], 0, [(1, 2), (2, 1)]),
]


@pytest.mark.parametrize(("scales", "failing", "told"), [c[1:] for c in REBASE], ids=[c[0] for c in REBASE])
async def test_an_action_queued_behind_a_failed_one_starts_from_the_real_size(
    pair: tuple[SqlStore, Clock, Replica, Replica], scales: list[int], failing: int, told: list[tuple[int, int]],
) -> None:
    """A relative provider (a Heat signal, "add one Linode") applies to_capacity - from_capacity: told the
    failed action's target as the starting point, it would apply the change to a size the group never had."""
    store, _, r1, _ = pair
    await r1.engine.heartbeat()
    provider = r1.providers["g00"]
    provider.fail_next(*(PermanentProviderError("refused") for _ in range(failing)))
    for size in scales:
        await r1.engine.operator.manual_scale("g00", size)
    for _ in scales:
        await r1.engine.run_once()

    assert [(c.from_capacity, c.desired) for c in provider.calls] == told
    state = store.get_group_state("g00")
    assert state is not None and state.desired == provider.status().current == scales[-1]


def _gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# id, the dead-looking peer's host and pid (None: a process that has exited), taken over at once
LOCAL_PEERS: list[tuple[str, str | None, int | None, bool]] = [
    ("this-host-pid-gone", None, None, True),
    ("this-host-pid-alive", None, os.getpid(), False),
    ("other-host", "elsewhere.example", None, False),
]


@pytest.mark.parametrize(("host", "pid", "taken"), [c[1:] for c in LOCAL_PEERS], ids=[c[0] for c in LOCAL_PEERS])
async def test_a_restart_after_a_kill_of_a_local_replica_recovers_at_once_only_if_its_process_is_gone(
    pair: tuple[SqlStore, Clock, Replica, Replica], host: str | None, pid: int | None, taken: bool,
) -> None:
    store, clock, _, _ = pair
    killed = new_replica_id(host or socket.gethostname(), pid if pid is not None else _gone_pid())
    store.heartbeat(killed, clock(), clock() + timedelta(seconds=30))
    store.balance_groups(killed, GROUP_NAMES, clock())
    with store.transaction() as tx:
        decision_id = tx.add_decision(NewDecision("g00", None, Trigger.MANUAL, Outcome.ACTED, Reason.MANUAL, 1, 2,
                                                  "scale 1 -> 2", clock()))
        action_id = tx.add_action(decision_id, "g00", 1, 2, clock(), claim=True,
                                  lease=Lease(killed, clock() + timedelta(seconds=30)))
    restarted = Ownership(30, 10, replica=new_replica_id(), local_peers=True)

    gone = restarted.hand_back_dead_local(store, clock())
    lease = store.action_lease(action_id)

    assert (gone == [killed]) is taken
    assert lease is not None and lease.owner == killed
    assert (lease.until == clock()) is taken, "handed back now, or left to its lease"
