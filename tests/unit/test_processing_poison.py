"""``act.processing.Processor.process_batch``: nothing blocks the queue. A notification that fails never fails
its batch neighbours; one that fails alone (any reason but StoreUnavailable) or whose stored body no longer
parses is set aside with a ``rejected`` decision saying why, and marked processed. A real SQLite store; the
time is passed in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alertscaler.act import processing
from alertscaler.act.processing import MAX_WHY, Processor
from alertscaler.config import load_policy
from alertscaler.ingest.alertmanager import parse_notification
from alertscaler.ingest.routing import Route
from alertscaler.model.decisions import Reason
from alertscaler.model.errors import StoreError, StoreUnavailable
from alertscaler.store.sql import SqlStore
from tests.support.webhooks import alert, body

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = """
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 4
    desired: 1
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: 60s}
"""
VALID = 6


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


def failing_route(failures: dict[str, Exception]) -> Any:
    """``route`` as processing calls it, raising ``failures[labels["poison"]]`` for a poison alert."""
    real = processing.route

    def route(labels: dict[str, str], routes: list[Route]) -> list[Route]:
        if labels.get("poison") in failures:
            raise failures[labels["poison"]]
        return real(labels, routes)
    return route


def stored(store: SqlStore, name: str, *, parses: bool = True) -> int:
    """Store a notification directly (as an older version, or a crash before deciding, left it)."""
    labels = {"poison": name} if name.startswith("poison") else {"v": name}
    n = parse_notification(body(alert("Up", **labels)))
    if not parses:  # an older version accepted it; this one does not
        n = replace(n, raw={**n.raw, "version": "3"})
    return store.record_notification(n, T0).notification_id


def outcome(store: SqlStore) -> tuple[dict[int, Reason], list[str], int]:
    """Each notification's decision reason, the rejected decisions' messages, how many are still pending."""
    decisions = store.list_decisions(limit=1000)
    reasons = {d.notification_id: d.reason for d in decisions if d.notification_id is not None}
    assert len(reasons) == len(decisions)  # one decision per notification, each naming it
    return reasons, [d.message for d in decisions if d.reason is Reason.REJECTED], len(store.pending_notifications())


# (id, the poison's failure (None: its stored body no longer parses), where it is in the batch, in the message)
POISONS: list[tuple[str, Exception | None, int | None, str]] = [
    ("bug-first", RuntimeError("boom\nsecond line"), 0, "RuntimeError: boom"),
    ("bug-middle", KeyError("gone"), 3, "KeyError: 'gone'"),
    ("bug-last", RecursionError(), VALID, "RecursionError"),
    ("bug-alone", ValueError("bad"), None, "ValueError: bad"),
    ("store-refuses-a-value", StoreError("database x: DataError: NUL"), 2, "StoreError: database x: DataError"),
    ("unparseable-first", None, 0, "the stored body no longer parses: InputError: version"),
    ("unparseable-alone", None, None, "the stored body no longer parses: InputError: version"),
]


@pytest.mark.parametrize(("failure", "position", "why"), [p[1:] for p in POISONS], ids=[p[0] for p in POISONS])
def test_a_poison_is_rejected_and_its_neighbours_are_decided(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception | None,
    position: int | None, why: str,
) -> None:
    if failure is not None:
        monkeypatch.setattr(processing, "route", failing_route({"poison": failure}))
    valid = VALID if position is not None else 0
    ids = [stored(store, f"v{i}") for i in range(valid)]
    poison = stored(store, "poison", parses=failure is not None)
    ids.insert(position or 0, poison)
    processor = Processor(load_policy(POLICY, base_dir=tmp_path), store)

    batch = store.pending_notifications(100)
    assert [s.id for s in batch] == sorted(ids)
    done = processor.process_batch(sorted(batch, key=lambda s: ids.index(s.id)), T0)

    reasons, rejected, pending = outcome(store)
    assert reasons == {i: Reason.REJECTED if i == poison else Reason.NO_GROUP for i in ids}
    assert [r.reason for r in done.recorded].count(Reason.REJECTED) == 1 and len(done.recorded) == len(ids)
    assert rejected == [f"notification {poison} set aside: " + rejected[0].split(" set aside: ", 1)[1]]
    assert why in rejected[0] and "second line" not in rejected[0]
    assert pending == 0
    assert processor.process_batch(store.pending_notifications(100), T0).recorded == []  # set aside for good


def test_store_unavailable_keeps_the_rest_waiting_and_returns_what_was_decided(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug sends the batch one by one; the store going away there stops the pass — what was committed is
    returned (to be published), the rest waits in order, nothing is rejected for an unavailable store."""
    monkeypatch.setattr(processing, "route", failing_route({"poison-bug": RuntimeError("boom"),
                                                             "poison-down": StoreUnavailable("db down")}))
    ids = [stored(store, "poison-bug"), stored(store, "v1"), stored(store, "poison-down"), stored(store, "v2")]
    processor = Processor(load_policy(POLICY, base_dir=tmp_path), store)

    done = processor.process_batch(store.pending_notifications(100), T0)

    assert [r.reason for r in done.recorded] == [Reason.REJECTED, Reason.NO_GROUP]
    assert [s.id for s in store.pending_notifications(100)] == ids[2:]
    with pytest.raises(StoreUnavailable):  # nothing decided before it: raised, for the loop to retry later
        processor.process_batch(store.pending_notifications(100), T0)
    assert [s.id for s in store.pending_notifications(100)] == ids[2:]


def test_a_rejection_that_cannot_be_recorded_still_moves_the_queue_on(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processing, "route", failing_route({"poison": RuntimeError("boom")}))
    real_skip = processing.record_skip

    def record_skip(*args: Any, **kwargs: Any) -> Any:
        if args[2] is Reason.REJECTED:
            raise RuntimeError("cannot record it either")
        return real_skip(*args, **kwargs)
    monkeypatch.setattr(processing, "record_skip", record_skip)
    ids = [stored(store, "poison"), stored(store, "v1")]

    Processor(load_policy(POLICY, base_dir=tmp_path), store).process_batch(store.pending_notifications(100), T0)

    reasons, rejected, pending = outcome(store)
    assert (reasons, rejected, pending) == ({ids[1]: Reason.NO_GROUP}, [], 0)  # marked processed, no decision


@pytest.mark.parametrize(("exc", "why"), [
    (RuntimeError("x" * (MAX_WHY + 50)), "RuntimeError: " + "x" * (MAX_WHY - 1) + "…"),
    (RuntimeError(""), "RuntimeError"),
    (OSError(2, "No such file"), "FileNotFoundError: [Errno 2] No such file"),
], ids=["long-message-cut", "no-message", "os-error"])
def test_why_names_the_exception_type_and_its_first_line_kept_short(exc: Exception, why: str) -> None:
    assert processing._why(exc) == why
