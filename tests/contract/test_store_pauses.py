"""Store contract for operators' controls: pauses (``pauses`` table, migration 0004) and a group's hold
(``group_states.held_until``), on every back end (fixtures ``store`` / ``db_url`` in conftest)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.model.controls import EVERY_GROUP, Pause
from alertscaler.store.sql import SqlStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("scope", "until", "reason"),
    [("web", T0 + timedelta(hours=2), "incident 42"), (EVERY_GROUP, None, ""), ("db", None, "naïve ☃ reason")],
    ids=["group-with-end", "global-until-resumed", "unicode-reason"],
)
def test_a_pause_is_kept_replaced_and_cleared(store: SqlStore, scope: str, until: datetime | None,
                                              reason: str) -> None:
    with store.transaction() as tx:
        assert tx.pauses() == []
        tx.set_pause(Pause(scope, T0, until, reason))
        assert tx.pauses() == [Pause(scope, T0, until, reason)]  # seen by the transaction that set it
    assert store.pauses() == [Pause(scope, T0, until, reason)]
    with store.transaction() as tx:  # a second pause of the same scope replaces the first
        tx.set_pause(Pause(scope, T0 + timedelta(minutes=1), None, "again"))
    assert store.pauses() == [Pause(scope, T0 + timedelta(minutes=1), None, "again")]
    with store.transaction() as tx:
        assert tx.clear_pause(scope) == Pause(scope, T0 + timedelta(minutes=1), None, "again")
        assert tx.pauses() == []
        assert tx.clear_pause(scope) is None
    assert store.pauses() == []


@pytest.mark.parametrize("held_until", [T0 + timedelta(minutes=30), None], ids=["held", "no-hold"])
def test_a_groups_hold_is_saved_with_its_row(store: SqlStore, held_until: datetime | None) -> None:
    with store.transaction() as tx:
        state = tx.lock_group("web", 2)
        tx.save_group(replace(state, desired=3, held_until=held_until, updated_at=T0))
    saved = store.get_group_state("web")
    assert saved is not None and (saved.desired, saved.held_until) == (3, held_until)
    with store.transaction() as tx:
        assert tx.lock_group("web", 2).held_until == held_until
