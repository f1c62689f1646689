"""``act.signals`` on every back end (fixture ``store``): a signed URL handed out by one replica verifies on another
(same configured secret), and retries of one signal racing on several replicas step the group exactly once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from alertscaler.act.signals import Signals
from alertscaler.config import load_policy
from alertscaler.model.decisions import Reason
from alertscaler.model.signals import AlarmState, Signal, SignalSource
from alertscaler.model.signing import UrlTarget
from alertscaler.store.sql import SqlStore

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
POLICY = """
server: {auth: {bearer_token: test-token-123}}
inputs: {signed_urls: {secret: 0123456789abcdef0123456789abcdef}}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 4
    desired: 1
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: 60s}
"""


def replica(store: SqlStore, tmp_path: Path) -> Signals:
    return Signals(load_policy(POLICY, base_dir=tmp_path), store, lambda: T0, lambda done: None)


def test_retries_racing_on_replicas_step_once(store: SqlStore, tmp_path: Path) -> None:
    one, other = replica(store, tmp_path), replica(store, tmp_path)
    created = one.create(UrlTarget.POLICY, "web", "scale_out", 3600, "", "http://as")
    path, _, query = created.full.removeprefix("http://as").partition("?")
    params = [(k, v) for k, _, v in (p.partition("=") for p in query.split("&"))]
    url = other.verified("POST", path, params, created.url.id)  # another replica verifies it
    assert url.id == created.url.id
    signal = Signal(SignalSource.URL, AlarmState.ALARM, key="idempotency-key:job-1")
    barrier = threading.Barrier(4)

    def post(signals: Signals) -> bool:
        barrier.wait()
        return signals.receive(signal, SignalSource.URL, url, "").duplicate

    with ThreadPoolExecutor(4) as pool:
        duplicates = list(pool.map(post, [one, other, one, other]))
    assert sorted(duplicates) == [False, True, True, True]
    reasons = sorted(d.reason for d in store.list_decisions(group="web"))
    assert reasons == sorted([Reason.SCALED, Reason.DUPLICATE, Reason.DUPLICATE, Reason.DUPLICATE])
    state = store.get_group_state("web")
    assert state is not None and state.desired == 2
    assert [a.desired for a in store.list_actions(group="web")] == [2]
