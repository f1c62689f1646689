"""Fault-injection scenarios (issue 12): the real service under ``kill -9``, replicas on PostgreSQL, failing and
hanging providers, duplicate deliveries and a storm, each judged by ``ledger.check`` — what really ran against
what the store says.

Bounded by default (part of ``make test``); ``ALERTSCALER_FAULT_LONG=1`` runs the long form (see RELIABILITY.md).
Scenarios over ~5 s are ``slow`` (out of the inner loop ``pytest -m "not slow"``; ``make test`` runs them).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fault.harness import LONG, Run, Sender, Service, Stream, alert, in_flight, notification, scaled, wait_for
from tests.fault.ledger import Answer, check, summary

pytestmark = [pytest.mark.fault, pytest.mark.integration]


def verdict(run: Run, sender: Sender | None, settle: float, extra: list[Answer] | None = None,
            **figures: Any) -> dict[str, Any]:
    """Settle (failures off, wait by condition), collect, check; fail with the figures and the violations."""
    settled = run.settle(settle)
    ev = run.evidence(sender, extra)
    violations = check(ev)
    result = {**summary(ev, violations), "settled": settled, **figures}
    if sender is not None:
        result["connection_errors"] = sender.connection_errors
    (run.dir / "summary.json").write_text(json.dumps(result, indent=1))
    print(f"\n{run.dir.parent.name}: {json.dumps(result)}")
    listed = "\n".join(f"  {v}" for v in violations[:25])
    assert not violations, (f"{len(violations)} violation(s); figures {json.dumps(result)}; logs in {run.dir}\n"
                            f"{listed}")
    return result


def aimed_kill(run: Run, victims: list[Service], delay: tuple[float, float], timeout: float = 60.0) -> Service:
    """``kill -9`` of the first of ``victims`` to start a command, while it runs (commands take ``delay``
    seconds meanwhile); returns the one killed. (A replica runs commands only for the groups it drives, and it
    may drive none at a given moment, so the victim is the one caught running a command.)"""
    run.set_knobs(delay=list(delay))
    before = {(b["action"], b["pid"]) for b in in_flight(run)}
    names = {v.name: v for v in victims if v.alive()}
    started = wait_for(lambda: [b for b in in_flight(run) if (b["action"], b["pid"]) not in before
                                and b["replica"] in names], timeout, f"a command of {sorted(names)} to start")
    victim = names[started[0]["replica"]]
    victim.kill9()
    return victim


# --- 1. kill -9 of the service (SQLite) during streams of alerts -------------------------------------------
@pytest.mark.slow
def test_kill_9_during_streams_sqlite(make_run: Callable[..., Run]) -> None:
    kills = scaled(3, 50)
    run = make_run([f"g{i}" for i in range(scaled(4, 8))], initial=2, timeout="30s")
    svc = run.add_service()
    svc.start()
    sender = Sender([svc.url])
    streams = [Stream(sender, run.groups, seed=i).start() for i in range(scaled(2, 4))]
    rng = random.Random()
    try:
        for _ in range(kills):
            if rng.random() < scaled(1.0, 0.6):
                aimed_kill(run, [svc], scaled((1.5, 3.0), (0.0, 8.0)))  # mid-command
            else:
                time.sleep(rng.uniform(0.2, 2.0))  # anywhere: stream of webhooks, idle, recovery
                svc.kill9()
            run.set_knobs(delay=list(scaled((0.0, 1.0), (0.0, 8.0))))
            svc.start()
            time.sleep(rng.uniform(*scaled((0.1, 1.0), (0.5, 4.0))))  # the streams go on, restarted service
        # the long form: at least 1,200 notifications (over 1,000 actions), the last ones with no more kills
        wait_for(lambda: sum(s.sent for s in streams) >= scaled(0, 1200), 1800, "1,200 notifications")
    finally:
        for s in streams:
            s.stop()
        sender.close()
    verdict(run, sender, scaled(60, 300), kills=kills)


# --- 2. two replicas on PostgreSQL, kill -9 of one --------------------------------------------------------
@pytest.mark.slow
def test_kill_9_of_one_replica_postgres(pg_make_run: Callable[..., Run]) -> None:
    rounds = scaled(1, 20)
    run = pg_make_run(["g0", "g1", "g2"], initial=2)
    replicas = [run.add_service(), run.add_service()]
    replicas[0].start()
    replicas[1].start()
    sender = Sender([r.url for r in replicas])
    stream = Stream(sender, run.groups, seed=7).start()
    rng = random.Random()
    try:
        for _ in range(rounds):
            victim = aimed_kill(run, replicas, scaled((2.0, 3.0), (0.0, 8.0)))
            run.set_knobs(delay=[0.0, 1.0])
            survivor = next(r for r in replicas if r is not victim)
            for g in run.groups:  # every group gets more work, the dead replica's too, on the survivor
                sender.send(notification(alert("Up", g, f"after-kill-{time.monotonic()}")), survivor.url)
            time.sleep(rng.uniform(1.0, 3.0))  # the stream goes on against the survivor
            if LONG:
                victim.start()
    finally:
        stream.stop()
        sender.close()
    verdict(run, sender, scaled(40, 120), rounds=rounds)


# --- 3. restart of a replica while its peer runs an action -------------------------------------------------
@pytest.mark.slow
def test_restart_while_peer_runs_an_action(pg_make_run: Callable[..., Run]) -> None:
    run = pg_make_run(["g0"], initial=1)
    r0, r1 = run.add_service(), run.add_service()
    r0.start()
    r1.start()
    run.set_knobs(delay=[4.0, 4.0])
    sender = Sender([r1.url])
    sender.send(notification(alert("Up", "g0", "peer")), r1.url)
    wait_for(lambda: in_flight(run), 30, "r1's command to start")
    r0.terminate()  # a clean restart of the other replica
    r0.start()
    sender.close()
    verdict(run, sender, 60)


# --- 4. providers failing 30 % of calls, or hanging past their timeout -------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("fault", ["fail_30", "hang"])
def test_failing_and_hanging_provider(make_run: Callable[..., Run], fault: str) -> None:
    run = make_run(["g0", "g1", "g2"], initial=2, timeout="2s")
    svc = run.add_service()
    svc.start()
    knobs = {"fail_rate": 0.3, "delay": [0.0, 0.3]} if fault == "fail_30" else {"hang_rate": 0.2,
                                                                                   "delay": [0.0, 0.3]}
    run.set_knobs(**knobs)
    sender = Sender([svc.url])
    stream = Stream(sender, run.groups, pause=(0.05, 0.4), seed=4).start()
    try:
        wait_for(lambda: stream.sent >= scaled(60, 1000), scaled(60, 1800), "the stream")
    finally:
        stream.stop()
        sender.close()
    verdict(run, sender, 60, fault=fault)


# --- 5. Alertmanager-style retries and duplicate deliveries to both replicas -------------------------------
@pytest.mark.slow
def test_duplicate_deliveries_to_both_replicas(pg_make_run: Callable[..., Run]) -> None:
    n = scaled(40, 500)
    run = pg_make_run(["g0", "g1"], initial=2, max_size=1000)
    replicas = [run.add_service(), run.add_service()]
    for r in replicas:
        r.start()
    sender = Sender([r.url for r in replicas])
    rng = random.Random(5)
    out = 0
    for i in range(n):
        group = rng.choice(run.groups)
        body = notification(alert("Up", group, f"d{i}"))
        out += 1
        barrier = threading.Barrier(2)

        def deliver(url: str, body: dict[str, Any] = body, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            sender.send(body, url)
        threads = [threading.Thread(target=deliver, args=(r.url,)) for r in replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if rng.random() < 0.3:  # an Alertmanager retry (its answer was lost) or a repeat
            sender.send(body)
    sender.close()
    result = verdict(run, sender, 60)
    # each distinct alert acted once: one scale-out per alert
    assert result["commands_ok"] == out, result


# --- 6. a storm of alerts --------------------------------------------------------------------------------
@pytest.mark.slow
def test_alert_storm(make_run: Callable[..., Run]) -> None:
    total = scaled(2000, 10_000)
    per = 20
    run = make_run([f"g{i}" for i in range(4)], initial=2, max_size=8)
    svc = run.add_service()
    svc.start()
    sender = Sender([svc.url])
    bodies = []
    for i in range(total // per):
        group = f"g{i % 4}"
        name = "Up" if (i // 4) % 2 == 0 else "Down"
        bodies.append(notification(*[alert(name, group, f"storm{i}-{j}") for j in range(per)]))
    chunks = [bodies[k::8] for k in range(8)]
    started = time.monotonic()
    threads = [threading.Thread(target=lambda c=c: [sender.send(b) for b in c]) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    sender.close()
    result = verdict(run, sender, 120, storm_alerts=total, storm_seconds=round(elapsed, 1))
    assert result["accepted_alerts"] == total


# --- 4b. an out action and the in action queued behind it both fail for good --------------------------------
def test_desired_follows_real_after_failures(make_run: Callable[..., Run]) -> None:
    run = make_run(["g0"], initial=2)
    svc = run.add_service()
    svc.start()
    run.set_knobs(fail_rate=1.0, fail_kind="permanent", delay=[1.0, 1.0])
    sender = Sender([svc.url])
    sender.send(notification(alert("Up", "g0", "out")))
    wait_for(lambda: in_flight(run), 30, "the scale-out command to start")
    sender.send(notification(alert("Down", "g0", "in")))  # decided while the scale-out runs: 3 -> 2
    wait_for(lambda: len([c for c in run.evidence(sender).ledger if c.outcome == "fail"]) >= 2, 30,
             "both commands to fail")
    sender.close()
    verdict(run, sender, 30)
