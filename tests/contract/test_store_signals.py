"""Store contract for signed URLs and outside signals (tables ``url_keys``, ``signed_urls``, ``signals``, migration
0008; ``store.sql_signals``), on every back end (fixtures ``store`` / ``db_url`` in conftest)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from alertscaler.model.signals import AlarmState, SignalSource
from alertscaler.model.signing import SignedUrl, SigningKey, UrlTarget
from alertscaler.store.sql import SqlStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
URL = SignedUrl("abc123", UrlTarget.POLICY, "web", "scale_out", "k1", "for aodh ☃", T0, T0 + timedelta(days=30))


def test_keys_are_added_listed_oldest_first_and_retired(store: SqlStore) -> None:
    with store.transaction() as tx:
        assert tx.signing_keys() == []
        tx.add_signing_key("k1", T0)
        tx.add_signing_key("k2", T0 + timedelta(hours=1))
    assert store.signing_keys() == [SigningKey("k1", T0), SigningKey("k2", T0 + timedelta(hours=1))]
    later = T0 + timedelta(hours=2)
    with store.transaction() as tx:
        tx.add_signing_key("k3", later)
        assert tx.retire_signing_keys("k3", later) == ["k1", "k2"]
        assert tx.retire_signing_keys("k3", later + timedelta(hours=1)) == []  # retired once
    assert [(k.kid, k.retired_at) for k in store.signing_keys()] == [("k1", later), ("k2", later), ("k3", None)]


@pytest.mark.parametrize(
    "url",
    [URL, replace(URL, id="inp1", target=UrlTarget.AODH, group=None, policy=None, note="")],
    ids=["policy", "aodh-input"],
)
def test_a_url_is_kept_without_its_signature_used_and_revoked_once(store: SqlStore, url: SignedUrl) -> None:
    with store.transaction() as tx:
        tx.add_signed_url(url)
    assert store.get_signed_url(url.id) == url
    assert store.get_signed_url("nope") is None
    with store.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM signed_urls")).mappings().one()
    assert "sig" not in "".join(row.keys()) and "signature" not in "".join(row.keys())
    used = T0 + timedelta(minutes=5)
    with store.transaction() as tx:
        tx.mark_url_used(url.id, used)
        tx.mark_url_used(url.id, used + timedelta(seconds=1))
        assert tx.get_signed_url(url.id) == replace(url, last_used_at=used + timedelta(seconds=1), uses=2)
    revoked = T0 + timedelta(hours=1)
    with store.transaction() as tx:
        first = tx.revoke_signed_url(url.id, revoked)
        again = tx.revoke_signed_url(url.id, revoked + timedelta(hours=1))
        missing = tx.revoke_signed_url("nope", revoked)
    assert first is not None and again is not None and missing is None
    assert first.revoked_at == again.revoked_at == revoked


def test_urls_are_listed_newest_first_optionally_per_group(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.add_signed_url(URL)
        tx.add_signed_url(replace(URL, id="def456", group="db", created_at=T0 + timedelta(hours=1)))
        tx.add_signed_url(replace(URL, id="ghi789", target=UrlTarget.MONASCA, group=None, policy=None,
                                  created_at=T0 + timedelta(hours=2)))
    assert [u.id for u in store.signed_urls()] == ["ghi789", "def456", "abc123"]
    assert [u.id for u in store.signed_urls(group="web")] == ["abc123"]
    assert [u.id for u in store.signed_urls(limit=1)] == ["ghi789"]


def test_a_signal_key_is_claimed_once_and_remembers_its_decisions(store: SqlStore) -> None:
    with store.transaction() as tx:
        first, seen = tx.claim_signal(SignalSource.AODH, "aodh:req-1", None, "cpu_high", AlarmState.ALARM, "{}", T0)
        tx.set_signal_decisions(first, [7, 8])
    assert seen is None
    with store.transaction() as tx:
        again, seen = tx.claim_signal(SignalSource.AODH, "aodh:req-1", None, "cpu_high", AlarmState.ALARM, "{}", T0)
        other, fresh = tx.claim_signal(SignalSource.AODH, "aodh:req-2", None, "cpu_high", AlarmState.OK, "{}", T0)
    assert (again, seen) == (first, [7, 8])
    assert other != first and fresh is None
    with store.transaction() as tx:  # no key: every signal is new
        a, _ = tx.claim_signal(SignalSource.URL, None, "abc123", "", AlarmState.ALARM, "", T0)
        b, none = tx.claim_signal(SignalSource.URL, None, "abc123", "", AlarmState.ALARM, "", T0)
    assert a != b and none is None


def test_concurrent_claims_of_one_key_let_exactly_one_through(store: SqlStore) -> None:
    barrier = threading.Barrier(4)

    def claim(_: int) -> list[int] | None:
        barrier.wait()
        with store.transaction() as tx:
            signal_id, seen = tx.claim_signal(SignalSource.MONASCA, "monasca:a:1:alarm", None, "x",
                                              AlarmState.ALARM, "{}", T0)
            if seen is None:
                tx.set_signal_decisions(signal_id, [signal_id])
            return seen

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(claim, range(4)))
    assert results.count(None) == 1
    winners = [r for r in results if r is not None]
    assert len(winners) == 3 and all(w == winners[0] for w in winners)


def test_signals_older_than_the_retention_are_pruned(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.claim_signal(SignalSource.AODH, "old", None, "a", AlarmState.ALARM, "{}", T0)
        tx.claim_signal(SignalSource.AODH, "new", None, "a", AlarmState.ALARM, "{}", T0 + timedelta(days=10))
    assert store.prune(T0 + timedelta(days=5))["signals"] == 1
    with store.transaction() as tx:  # the pruned key is new again, the kept one is not
        assert tx.claim_signal(SignalSource.AODH, "old", None, "a", AlarmState.ALARM, "{}", T0)[1] is None
        assert tx.claim_signal(SignalSource.AODH, "new", None, "a", AlarmState.ALARM, "{}", T0)[1] == []
