"""``act.tracking.TrackingLoop``'s cycle: every due group's queries in ONE ``values_of`` call, one read of the
sizes, no write when nothing is new, records in chunks of ``WRITE_CHUNK`` groups, and a re-decision under the
group's lock when the size moved after the read. A real SQLite store; the time is passed in."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alertscaler.act.tracking import WRITE_CHUNK, TrackingLoop
from alertscaler.config import load_policy
from alertscaler.model.errors import EmptyResult, QueryError
from alertscaler.model.groups import GroupState
from alertscaler.store.base import Tx
from alertscaler.store.sql import SqlStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def policy_text(groups: int, metrics: int = 1, desired: int = 2) -> str:
    lines = ["server: {auth: {insecure_no_auth: true}}", "groups:"]
    for i in range(groups):
        queries = ", ".join(f"{{query: 'load{{group=\"g{i}\",m=\"{m}\"}}', target: 100}}" for m in range(metrics))
        lines += [f"  g{i}:", "    provider: {type: fake}", "    min_size: 1", "    max_size: 50",
                  f"    desired: {desired}", "    track:", f"      metrics: [{queries}]", "      interval: 15s"]
    return "\n".join(lines) + "\n"


@dataclass
class Answers:
    """``values_of`` for the loop: the same value for every query (or none), and every call recorded."""

    value: float | None = 100.0
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, queries: Sequence[str]) -> Mapping[str, float | QueryError]:
        self.calls.append(list(queries))
        return {q: EmptyResult(q) if self.value is None else self.value for q in queries}


class CountingStore(SqlStore):
    """A real SQLite store that counts write transactions and can answer ``group_states`` from a snapshot."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.writes = 0
        self.stale: list[GroupState] | None = None

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        self.writes += 1
        with super().transaction() as tx:
            yield tx

    def group_states(self) -> list[GroupState]:
        return list(self.stale) if self.stale is not None else super().group_states()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    s = CountingStore(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


def loop_of(store: CountingStore, text: str, answers: Answers, tmp_path: Path) -> TrackingLoop:
    def no_single_queries(query: str) -> float:
        raise AssertionError(f"asked alone: {query}")
    return TrackingLoop(load_policy(text, base_dir=tmp_path), store, no_single_queries, answers)


@pytest.mark.parametrize(("groups", "metrics"), [(1, 1), (7, 1), (5, 3)], ids=["one", "seven", "three-metrics"])
def test_one_values_of_call_per_cycle_with_every_due_query(groups: int, metrics: int, store: CountingStore,
                                                            tmp_path: Path) -> None:
    answers = Answers()
    loop = loop_of(store, policy_text(groups, metrics), answers, tmp_path)
    loop.run(T0)
    assert len(answers.calls) == 1
    assert sorted(answers.calls[0]) == sorted(f'load{{group="g{i}",m="{m}"}}'
                                              for i in range(groups) for m in range(metrics))
    loop.run(T0 + timedelta(seconds=5))  # nobody due: nothing asked
    assert len(answers.calls) == 1


def test_a_steady_cycle_takes_no_write_transaction(store: CountingStore, tmp_path: Path) -> None:
    loop = loop_of(store, policy_text(30), Answers(100.0), tmp_path)
    first = loop.run(T0)
    assert len(first) == 30 and store.writes == 1  # each group's first "no change", in one transaction
    writes = store.writes
    for cycle in range(1, 4):
        assert loop.run(T0 + timedelta(seconds=15 * cycle)) == []
    assert store.writes == writes
    assert len(store.list_decisions(limit=1000)) == 30


@pytest.mark.parametrize("groups", [1, WRITE_CHUNK, WRITE_CHUNK + 1, 2 * WRITE_CHUNK + 50],
                         ids=["one", "a-chunk", "a-chunk-and-one", "two-and-a-half-chunks"])
def test_decisions_are_recorded_in_chunks(groups: int, store: CountingStore, tmp_path: Path) -> None:
    loop = loop_of(store, policy_text(groups), Answers(250.0), tmp_path)  # 2 at 250 vs 100: 5 each
    out = loop.run(T0)
    assert store.writes == -(-groups // WRITE_CHUNK)
    assert len(out) == groups and all(o[1].value == "acted" and o[3] is not None for o in out)
    assert {s.name: s.desired for s in store.group_states()} == {f"g{i}": 5 for i in range(groups)}
    assert len(store.list_actions(limit=1000)) == groups


def _set_desired(store: SqlStore, name: str, desired: int) -> None:
    with store.transaction() as tx:
        tx.save_group(GroupState(name, desired, updated_at=T0))


def test_a_size_changed_after_the_read_is_decided_again_under_the_lock(store: CountingStore,
                                                                       tmp_path: Path) -> None:
    answers = Answers(100.0)
    loop = loop_of(store, policy_text(1), answers, tmp_path)
    loop.run(T0)  # 2, on target: "no change" recorded
    store.stale = store.group_states()  # the read will say 2 ...
    _set_desired(store, "g0", 4)        # ... while an alert's decision made it 4
    answers.value = 250.0               # 2 x 2.5 = 5 on the stale size; 4 x 2.5 = 10 on the real one
    (out,) = loop.run(T0 + timedelta(seconds=15))
    (decision, _) = store.list_decisions(group="g0")
    assert (decision.from_capacity, decision.to_capacity, out[1].value) == (4, 8, "acted")  # +100 % per 15 s
    assert store.get_group_state("g0").desired == 8  # type: ignore[union-attr]


def test_a_skip_already_said_on_a_stale_read_is_said_again_when_the_size_moved(store: CountingStore,
                                                                             tmp_path: Path) -> None:
    answers = Answers(None)  # metric missing: fallback holds the size
    loop = loop_of(store, policy_text(1), answers, tmp_path)
    loop.run(T0)
    _set_desired(store, "g0", 3)
    out = loop.run(T0 + timedelta(seconds=15))  # holding 3 now, not 2: a new thing to say
    assert [(o[1].value, o[2].value) for o in out] == [("skipped", "fallback")]
    newest = store.list_decisions(group="g0")[0]
    assert (newest.from_capacity, newest.to_capacity) == (3, 3)


def test_a_group_first_seen_is_created_at_its_initial_size(store: CountingStore, tmp_path: Path) -> None:
    loop = loop_of(store, policy_text(2, desired=3), Answers(100.0), tmp_path)
    assert store.group_states() == []
    loop.run(T0)
    assert {s.name: s.desired for s in store.group_states()} == {"g0": 3, "g1": 3}


def test_the_memory_keeps_one_recommendation_per_cycle_whether_recorded_or_not(store: CountingStore,
                                                                              tmp_path: Path) -> None:
    loop = loop_of(store, policy_text(1), Answers(40.0), tmp_path)  # wants 1: stabilised for 300 s
    seen: list[Any] = []
    for cycle in range(4):
        loop.run(T0 + timedelta(seconds=15 * cycle))
        seen.append(len(loop.memory["g0"].history))
    assert seen == [2, 3, 4, 5]  # the size found at start, then one per cycle
    assert [d.reason.value for d in store.list_decisions(group="g0")] == ["stabilized"]
