"""Two alertscaler replicas sharing one store (the HA mode): a notification delivered to both by an HA pair
of Alertmanagers, processed concurrently, acts exactly once. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from alertscaler.act.processing import Processor
from alertscaler.config import load_policy
from alertscaler.ingest.alertmanager import parse_notification
from alertscaler.model.decisions import Outcome, Reason
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
