"""Retention through the service: ``store.retention`` bounds the history the API shows and the database keeps;
what is still needed (here: an alert that is still firing) is kept. Validation of the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError
from tests.api.conftest import POLICY, TOKEN, served
from tests.support.webhooks import alert, body

RETAINED = POLICY.replace("  alert_stale_after: 1h\n", "  alert_stale_after: 30d\nstore: {retention: 1d}\n")


async def test_history_older_than_the_retention_is_deleted_and_firing_alerts_are_kept(tmp_path: Path) -> None:
    async with served(tmp_path, RETAINED) as s:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        for name in ("HighLoad", "LowLoad"):
            response = await s.client.post("/api/v1/alerts", headers=headers,
                                           json=body(alert(name, service="web", status="resolved")))
            assert response.status_code == 200
        await s.client.post("/api/v1/alerts", headers=headers, json=body(alert("HighLoad", service="web")))
        await s.engine.run_once()
        old = await s.decisions("web")
        assert [d["reason"] for d in old] == ["resolved", "resolved", "scaled"]
        s.clock.advance(2 * 86400)
        counts = await s.engine.prune()
        # every decision and the finished action went; of the notifications, the one whose alert still fires stays
        assert (counts["decisions"], counts["actions"], counts["notifications"]) == (3, 1, 2)
        assert await s.decisions("web") == []
        assert [r.count for r in s.store.active_alert_routes()] == [1]
        s.clock.advance(60)  # the alert that still fires keeps stepping after its cooldown
        await s.engine.run_once()
        assert [(d["trigger"], d["reason"], d["to_capacity"]) for d in await s.decisions("web")] == [
            ("timer", "scaled", 3)]
        assert await s.engine.prune() == dict.fromkeys(counts, 0)


@pytest.mark.parametrize(("store", "error"), [
    ("{retention: 1h}", "store.retention: must be 0 (keep everything) or at least 1d, got 1h"),
    ("{retention: 2d}", "store.retention: 48h is shorter than groups.web.heal.flap.period (72h): the heal history "
                        "it counts would be deleted"),
], ids=["too-short", "shorter-than-flap-period"])
def test_retention_is_validated(store: str, error: str) -> None:
    text = POLICY + f"store: {store}\n"
    text = text.replace("  batch:\n", "    heal: {flap: {period: 3d}}\n  batch:\n")
    with pytest.raises(ConfigError) as info:
        load_policy(text)
    assert error in str(info.value), str(info.value)


def test_zero_keeps_everything() -> None:
    assert load_policy(POLICY + "store: {retention: 0}\n").store.retention == 0
