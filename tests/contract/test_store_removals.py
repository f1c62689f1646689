"""Store contract for members alertscaler removes on purpose (``removed_members``, migration 0006): removing,
then removed, remembered for ``REMEMBER``, one ``removed_member`` report per member — on every back end
(fixtures ``store`` / ``db_url`` in conftest)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.model.removals import REMEMBER, RemovalState
from alertscaler.store.sql import SqlStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def states(store: SqlStore, now: datetime, group: str | None = None) -> list[tuple[str, str, str]]:
    return [(m.group, m.member_id, m.state.value) for m in store.removed_members(now, group)]


def test_removing_then_removed_then_forgotten(store: SqlStore) -> None:
    store.add_removing("web", [("web-1", "127.0.0.1:20001"), ("web-2", None)], "scale-in to 1", T0)
    store.add_removing("db", [("db-9", "10.0.0.9:5432")], "scale-in to 0", T0)
    assert states(store, T0) == [("db", "db-9", "removing"), ("web", "web-1", "removing"),
                                 ("web", "web-2", "removing")]
    store.mark_removed("web", ["web-1"], T0 + timedelta(seconds=8))
    (one, two) = store.removed_members(T0 + timedelta(seconds=8), "web")
    assert (one.state, one.address, one.why, one.since, one.removed_at) == (
        RemovalState.REMOVED, "127.0.0.1:20001", "scale-in to 1", T0, T0 + timedelta(seconds=8))
    assert (two.state, two.address, two.removed_at) == (RemovalState.REMOVING, None, None)
    # remembered for REMEMBER after the stop (a removal that never ends: after it began)
    assert states(store, T0 + REMEMBER - timedelta(seconds=1), "web") == [("web", "web-1", "removed"),
                                                                           ("web", "web-2", "removing")]
    assert states(store, T0 + REMEMBER, "web") == [("web", "web-1", "removed")]
    late = T0 + timedelta(seconds=8) + REMEMBER
    assert states(store, late, "web") == []
    store.add_removing("web", [("web-3", None)], "scale-in to 0", late)  # the next removal deletes the forgotten
    assert states(store, T0) == [("web", "web-3", "removing")]


def test_a_repeated_leaving_keeps_its_start_and_a_new_removal_of_the_id_replaces_the_row(store: SqlStore) -> None:
    store.add_removing("web", [("web-1", "a:1")], "scale-in to 1", T0)
    store.add_removing("web", [("web-1", "a:1")], "scale-in to 1", T0 + timedelta(seconds=30))  # a retry
    (row,) = store.removed_members(T0, "web")
    assert row.since == T0
    store.mark_removed("web", ["web-1"], T0 + timedelta(seconds=40))
    with store.transaction() as tx:
        assert tx.mark_removed_reported("web", ["web-1"], T0 + timedelta(seconds=41)) == ["web-1"]
    store.add_removing("web", [("web-1", "a:2")], "replaced by web-7", T0 + timedelta(minutes=5))  # the id again
    (row,) = store.removed_members(T0 + timedelta(minutes=5), "web")
    assert (row.state, row.address, row.why, row.since, row.reported_at) == (
        RemovalState.REMOVING, "a:2", "replaced by web-7", T0 + timedelta(minutes=5), None)


def test_an_abandoned_removal_is_forgotten_but_a_finished_one_is_kept(store: SqlStore) -> None:
    store.add_removing("web", [("web-1", None), ("web-2", None)], "scale-in to 0", T0)
    store.mark_removed("web", ["web-2"], T0)
    store.forget_removing("web", ["web-1", "web-2"])
    assert states(store, T0) == [("web", "web-2", "removed")]


@pytest.mark.parametrize(("first", "second", "claimed"), [
    (["web-1"], ["web-1"], (["web-1"], [])),
    (["web-1", "web-1"], ["web-2", "web-1"], (["web-1"], ["web-2"])),
    (["ghost"], ["web-1"], ([], ["web-1"])),
], ids=["once-per-member", "duplicates-in-one-call", "unknown-member-claims-nothing"])
def test_each_member_is_reported_once(store: SqlStore, first: list[str], second: list[str],
                                      claimed: tuple[list[str], list[str]]) -> None:
    store.add_removing("web", [("web-1", None), ("web-2", None)], "scale-in to 0", T0)
    with store.transaction() as tx:
        assert tx.mark_removed_reported("web", first, T0) == claimed[0]
    with store.transaction() as tx:
        assert tx.mark_removed_reported("web", second, T0 + timedelta(seconds=1)) == claimed[1]
        assert [m.member_id for m in tx.removed_members_of("web", T0) if m.reported_at is not None] == \
            sorted(set(first + second) - {"ghost"})


def test_two_stores_racing_to_report_a_member_report_it_once(db_url: str) -> None:
    stores = [SqlStore(db_url) for _ in range(4)]
    stores[0].migrate()
    stores[0].add_removing("web", [("web-1", None)], "scale-in to 0", T0)

    def claim(store: SqlStore) -> list[str]:
        with store.transaction() as tx:
            return tx.mark_removed_reported("web", ["web-1"], T0)

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            results = list(pool.map(claim, stores))
    finally:
        for s in stores:
            s.close()
    assert sorted(results) == [[], [], [], ["web-1"]]
