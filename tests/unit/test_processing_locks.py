"""``act.processing``: a batch locks every group it routes to, in name order, before anything else — so two replicas
deciding batches that touch the same groups in different orders cannot deadlock (on PostgreSQL each would hold
one group row and wait for the other's). A real SQLite store, its transactions observed; time passed in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alertscaler.act.processing import Processor
from alertscaler.config import load_policy
from alertscaler.ingest.alertmanager import parse_notification
from alertscaler.store.sql import SqlStore
from tests.support.webhooks import alert, body

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GROUP = """
  {name}:
    provider: {{type: fake}}
    min_size: 1
    max_size: 4
    desired: 1
    scale_out: {{matchers: ['alertname="HighLoad"', 'g="{name}"'], adjustment: 1, cooldown: 60s}}
"""
POLICY = ("server: {auth: {insecure_no_auth: true}}\ngroups:"
          + "".join(GROUP.format(name=n) for n in ("web", "api", "db")))


class LockSpy:
    """Wraps a transaction, recording the group locks it takes, in order."""

    def __init__(self, tx: Any, calls: list[tuple[str, tuple[str, ...]]]) -> None:
        self._tx, self._calls = tx, calls

    def lock_groups(self, initial: dict[str, int]) -> Any:
        self._calls.append(("lock_groups", tuple(sorted(initial))))  # it locks in name order (store contract)
        return self._tx.lock_groups(initial)

    def lock_group(self, name: str, initial: int) -> Any:
        self._calls.append(("lock_group", (name,)))
        return self._tx.lock_group(name, initial)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[tuple[SqlStore, list[tuple[str, tuple[str, ...]]]]]:
    store = SqlStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    calls: list[tuple[str, tuple[str, ...]]] = []
    real = store.transaction

    @contextmanager
    def transaction() -> Iterator[Any]:
        with real() as tx:
            yield LockSpy(tx, calls)

    store.transaction = transaction  # type: ignore[method-assign]
    yield store, calls
    store.close()


@pytest.mark.parametrize(("groups", "first_lock"), [
    (["web", "api"], ("lock_groups", ("api", "web"))),
    (["db", "web", "api"], ("lock_groups", ("api", "db", "web"))),
    (["web", "web"], ("lock_group", ("web",))),  # one group: nothing to order
], ids=["two-groups-reversed", "three-groups", "one-group"])
def test_a_batch_locks_its_groups_in_name_order_first(
        observed: tuple[SqlStore, list[tuple[str, tuple[str, ...]]]], tmp_path: Path, groups: list[str],
        first_lock: tuple[str, tuple[str, ...]]) -> None:
    store, calls = observed
    for i, g in enumerate(groups):
        store.record_notification(parse_notification(body(alert("HighLoad", g=g, n=str(i)))), T0)
    processor = Processor(load_policy(POLICY, base_dir=tmp_path), store)
    done = processor.process_batch(store.pending_notifications(10), T0)
    assert calls[0] == (first_lock[0], tuple(sorted(first_lock[1])))
    assert sorted(r.group for r in done.recorded) == sorted(groups)  # and every notification was decided


def test_recorded_webhooks_lock_their_groups_first_too(
        observed: tuple[SqlStore, list[tuple[str, tuple[str, ...]]]], tmp_path: Path) -> None:
    store, calls = observed
    processor = Processor(load_policy(POLICY, base_dir=tmp_path), store)
    items = [(parse_notification(body(alert("HighLoad", g=g))), T0) for g in ("web", "db")]
    with store.transaction() as tx:
        receipts = tx.record_notifications(items, processed_at=T0)
        processor.process_recorded(tx, [(n, r, at) for (n, at), r in zip(items, receipts, strict=True)], T0)
    assert calls[0] == ("lock_groups", ("db", "web"))
