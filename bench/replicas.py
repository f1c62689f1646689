#!/usr/bin/env python3
"""Groups spread over replicas (issue 12): the store side of ownership with 10,000 groups.

A benchmark, not a test: it prints figures and never fails on them. Two replica ids share one store
(PostgreSQL when ``ALERTSCALER_TEST_PG_URL`` is set, in a fresh schema dropped afterwards; SQLite otherwise
or in addition with ``--sqlite``). Time is simulated (``now`` passed in, heartbeat every ``--interval`` s,
lease ``--lease`` s), so the figures are the store's cost, not waiting:

* R1 alone balances all groups (first balance inserts a ``group_owners`` row per group);
* R2 joins: its first balance takes nothing (R1 still holds everything), R1's next balance lets R2's share
  go, R2's next one takes it — each replica's share, and the wall / CPU time of each step;
* steady state: one heartbeat + balance per replica with nothing moving (what every interval costs);
* heartbeat with ``--actions`` RUNNING actions held by R1 (one statement renews them all);
* R2 is "killed" (no more heartbeats): R1 takes R2's share at its first balance after R2's heartbeat
  expired — rebalance time = the lease left at the kill + up to one heartbeat interval (simulated), plus
  the CPU of that balance (measured).

Usage::

    ALERTSCALER_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/replicas.py
    .venv/bin/python bench/replicas.py --groups 1000 --sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.pg_schemas import fresh_schema

from alertscaler.model.decisions import Outcome, Reason, Trigger
from alertscaler.store.base import Lease, NewDecision
from alertscaler.store.sql import SqlStore, sqlite_url

T0 = datetime(2026, 12, 7, tzinfo=UTC)
R1, R2 = "bench-1:1:aaaaaaaa", "bench-2:2:bbbbbbbb"
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def run(store: SqlStore, groups: list[str], lease: float, interval: float, n_actions: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    lease_d = timedelta(seconds=lease)
    now = T0

    def beat(replica: str, at: datetime) -> frozenset[int]:
        return store.heartbeat(replica, at, at + lease_d)

    def step(name: str, replica: str, at: datetime) -> frozenset[str]:
        owned, wall, cpu = timed(lambda: store.balance_groups(replica, groups, at))
        out[name] = {"owned": len(owned), "wall_ms": round(wall, 1), "cpu_ms": round(cpu, 1)}
        return owned

    beat(R1, now)
    step("r1_alone_first_balance", R1, now)
    now += timedelta(seconds=interval)
    beat(R1, now)
    step("r1_alone_steady_balance", R1, now)
    beat(R2, now)
    step("r2_join_first_balance", R2, now)
    now += timedelta(seconds=interval)
    beat(R1, now)
    step("r1_releases_share", R1, now)
    beat(R2, now)
    r2 = step("r2_takes_share", R2, now)
    now += timedelta(seconds=interval)
    beat(R1, now)
    r1 = step("r1_steady_balance_of_two", R1, now)
    _, hb_wall, hb_cpu = timed(lambda: beat(R2, now))
    step("r2_steady_balance_of_two", R2, now)
    out["shares"] = {"r1": len(r1), "r2": len(r2), "overlap": len(r1 & r2), "unowned": len(groups) - len(r1 | r2)}
    out["heartbeat_no_actions"] = {"wall_ms": round(hb_wall, 2), "cpu_ms": round(hb_cpu, 2)}

    with store.transaction() as tx:  # R1 runs n_actions actions (one per group of its share)
        for g in sorted(r1)[:n_actions]:
            d = tx.add_decision(NewDecision(g, None, Trigger.MANUAL, Outcome.ACTED, Reason.MANUAL, 1, 2, "bench", now))
            tx.add_action(d, g, 1, 2, now, claim=True, lease=Lease(R1, now + lease_d))
    renewed, wall, cpu = timed(lambda: beat(R1, now))
    out["heartbeat_with_actions"] = {"actions": len(renewed), "wall_ms": round(wall, 2), "cpu_ms": round(cpu, 2)}

    # R2 is killed right after its last heartbeat at `now`: R1 keeps beating every interval.
    killed_at = now
    t = now
    while True:
        t += timedelta(seconds=interval)
        beat(R1, t)
        owned = store.balance_groups(R1, groups, t)
        if len(owned) == len(groups):
            break
    out["after_kill"] = {"rebalanced_after_s": (t - killed_at).total_seconds(),
                         "lease_s": lease, "interval_s": interval}
    # the CPU of the takeover balance itself, measured on a fresh kill of R2's share
    beat(R2, t)
    t += timedelta(seconds=interval)
    beat(R1, t)
    store.balance_groups(R1, groups, t)  # releases R2's share again
    beat(R2, t)
    store.balance_groups(R2, groups, t)
    t += lease_d
    beat(R1, t)
    step("r1_takes_dead_r2_share", R1, t)
    return out


def tracking_policy(groups: int) -> str:
    """``groups`` target-tracking groups as bench/tracking.py builds them (fake provider, one metric, 15 s)."""
    lines = ["server: {auth: {insecure_no_auth: true}}", "groups:"]
    for i in range(groups):
        g = f"g{i:05d}"
        lines += [f"  {g}:", "    provider: {type: fake}", "    min_size: 1", "    max_size: 50", "    desired: 4",
                  "    track:", f"      metrics: [{{query: 'load{{alertscaler_group=\"{g}\"}}', target: 100}}]",
                  "      interval: 15s"]
    return "\n".join(lines) + "\n"


RATIOS = (1.0, 1.5, 0.5, 1.05, 3.0)  # per group (index mod 5), times the target: as bench/tracking.py


def answer(query: str) -> float:
    digits = query.split('alertscaler_group="g', 1)[1][:5]
    return 100 * RATIOS[int(digits) % len(RATIOS)]


def run_tracking(url: str, groups: int, lease: float, interval: float) -> dict[str, Any]:
    """Two replicas' tracking loops on one store: each evaluates only the groups it drives. Queries are
    answered in-process (no HTTP), so the CPU is the loop's: deciding and the store."""
    from alertscaler.act.ownership import Ownership
    from alertscaler.act.tracking import TrackingLoop
    from alertscaler.config import load_policy

    policy = load_policy(tracking_policy(groups))
    names = list(policy.groups)
    out: dict[str, Any] = {}
    stores_ = [SqlStore(url), SqlStore(url)]
    stores_[0].migrate()
    own = [Ownership(lease, interval, replica=R1), Ownership(lease, interval, replica=R2)]
    loops = [TrackingLoop(policy, stores_[i], answer) for i in range(2)]
    for i in range(2):
        loops[i].drives = own[i].drives
    now = T0

    def cycle(label: str, which: list[int]) -> None:
        nonlocal now
        now += timedelta(seconds=15)
        row: dict[str, Any] = {}
        for i in which:
            own[i].beat(stores_[i], names, now)
        for i in which:
            before = loops[i].evaluated
            _, wall, cpu = timed(lambda i=i: loops[i].run(now))  # type: ignore[misc]
            row[f"r{i + 1}"] = {"groups": loops[i].evaluated - before, "cpu_s": round(cpu / 1000, 2),
                                "wall_s": round(wall / 1000, 2)}
        out[label] = row

    try:
        cycle("alone_cycle1_creates", [0])
        cycle("alone_steady", [0])
        for _ in range(2):  # r2 joins: two heartbeats move its share over
            now += timedelta(seconds=interval)
            for i in (1, 0):
                own[i].beat(stores_[i], names, now)
        out["shares"] = {"r1": len(own[0].owned), "r2": len(own[1].owned),
                         "overlap": len(own[0].owned & own[1].owned)}
        cycle("two_r2_first_cycle", [0, 1])
        cycle("two_steady_1", [0, 1])
        cycle("two_steady_2", [0, 1])
        killed = now  # r2 killed: it beats no more
        while len(own[0].owned) < groups:
            cycle("r1_cycle_while_r2_dead", [0])
        out["rebalanced_after_kill_s"] = (now - killed).total_seconds()
        cycle("r1_alone_again_steady", [0])
    finally:
        for st in stores_:
            st.close()
    return out


@contextlib.contextmanager
def stores(args: argparse.Namespace) -> Iterator[list[tuple[str, str]]]:
    urls: list[tuple[str, str]] = []
    with contextlib.ExitStack() as stack:
        pg = os.environ.get("ALERTSCALER_TEST_PG_URL")
        if pg:
            urls.append(("postgresql", stack.enter_context(fresh_schema(pg, prefix="bench_replicas"))))
        if args.sqlite or not pg:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            urls.append(("sqlite", sqlite_url(Path(tmp) / "bench.db")))
        yield urls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--actions", type=int, default=100)
    parser.add_argument("--sqlite", action="store_true", help="also (or only, without PostgreSQL) SQLite")
    parser.add_argument("--tracking", action="store_true",
                        help="two replicas' target-tracking loops over --groups tracked groups, CPU per cycle")
    args = parser.parse_args()
    groups = [f"g{i:05d}" for i in range(args.groups)]
    with stores(args) as urls:
        for name, url in urls:
            if args.tracking:
                print(f"== {name}: tracking, {args.groups} groups, lease {args.lease}s")
                for key, value in run_tracking(url, args.groups, args.lease, args.interval).items():
                    print(f"  {key}: {value}")
                continue
            store = SqlStore(url)
            try:
                store.migrate()
                result = run(store, groups, args.lease, args.interval, args.actions)
            finally:
                store.close()
            print(f"== {name}: {args.groups} groups, lease {args.lease}s, heartbeat every {args.interval}s")
            for key, value in result.items():
                print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
