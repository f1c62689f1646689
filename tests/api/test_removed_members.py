"""Members alertscaler removes on purpose are never healed (in process, ``fake`` provider, the test's clock).

A scale-in's victim is reported leaving (out of ``/api/v1/targets``) before it goes; heal alerts naming it —
firing, repeated, resolved — make at most ONE ``removed_member`` decision and never a ``batched`` or a heal;
the same for a member a heal replaced, and for a signal stored before its member was chosen for removal. A new
member at a removed member's address is still healed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from alertscaler.model.removals import ADDRESS_SLACK
from tests.api.conftest import TOKEN, Served, served
from tests.support.webhooks import alert, body

POLICY = f"""
server: {{listen: 127.0.0.1:8080, auth: {{bearer_token: {TOKEN}}}}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 8
    desired: 4
    drain: 12s
    heal:
      matchers: ['alertname="InstanceDown"']
      grace: 60s
      batch_window: 20s
"""
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def post(s: Served, *alerts: dict[str, object]) -> None:
    response = await s.client.post("/api/v1/alerts", json=body(*alerts), headers=AUTH)
    assert response.status_code == 200, response.text


async def heal_reasons(s: Served) -> list[str]:
    return [str(d["reason"]) for d in await s.decisions("web") if d["policy"] == "heal"]


async def scale_to(s: Served, desired: int) -> None:
    response = await s.client.post("/api/v1/groups/web/scale", json={"desired": desired}, headers=AUTH)
    assert response.status_code == 202, response.text
    await s.engine.run_once()


async def targets(s: Served) -> list[str]:
    response = await s.client.get("/api/v1/targets", headers=AUTH)
    assert response.status_code == 200, response.text
    return [t["labels"]["alertscaler_member"] for t in response.json()]


async def window(s: Served) -> None:
    s.clock.advance(21)
    await s.engine.run_once()


@pytest.fixture
async def s(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path, POLICY) as srv:
        srv.providers["web"].clock = srv.clock
        srv.providers["web"]._resize(4)  # web-1..web-4, made at the test's clock
        srv.clock.advance(3600)  # past the members' grace
        yield srv


async def test_a_scale_in_reports_its_victim_leaving_before_it_goes_with_the_groups_drain(s: Served) -> None:
    fake = s.providers["web"]
    seen: list[tuple[float, list[tuple[str, str]]]] = []
    fake.wait = lambda seconds: seen.append((seconds, [(m.member_id, m.state.value)
                                                      for m in s.store.removed_members(s.clock())]))
    await scale_to(s, 3)
    assert seen == [(12.0, [("web-4", "removing")])]  # recorded before the drain, with the group's drain
    assert [(m.member_id, m.state.value) for m in s.store.removed_members(s.clock())] == [("web-4", "removed")]
    assert await targets(s) == ["web-1", "web-2", "web-3"]


async def test_a_member_being_removed_is_out_of_the_targets_even_before_the_status_says_so(s: Served) -> None:
    assert await targets(s) == ["web-1", "web-2", "web-3", "web-4"]  # the status is now cached
    s.store.add_removing("web", [("web-2", "127.0.0.1:9002")], "scale-in to 3", s.clock())
    assert await targets(s) == ["web-1", "web-3", "web-4"]


@pytest.mark.parametrize("labels", [
    {"alertscaler_member": "web-4"},
    {"instance": "127.0.0.1:9004"},
], ids=["named-by-id", "named-by-address"])
async def test_alerts_about_a_scaled_in_member_make_one_removed_member_decision(s: Served,
                                                                                 labels: dict[str, str]) -> None:
    await scale_to(s, 3)
    s.clock.advance(2)
    started = s.clock()
    down = alert("InstanceDown", starts=started, **labels)
    await post(s, down)
    s.clock.advance(30)
    await post(s, down)  # Alertmanager's repeat
    await post(s, alert("InstanceDown", status="resolved", starts=started, **labels))
    await window(s)
    assert await heal_reasons(s) == ["removed_member"]
    (dropped,) = [d for d in await s.decisions("web") if d["reason"] == "removed_member"]
    assert "web-4" in str(dropped["message"]) and "scale-in to 3" in str(dropped["message"])
    assert s.providers["web"].heal_calls == []


async def test_a_resolved_alert_alone_is_the_one_decision(s: Served) -> None:
    await scale_to(s, 3)
    await post(s, alert("InstanceDown", status="resolved", starts=s.clock(), alertscaler_member="web-4"))
    await post(s, alert("InstanceDown", starts=s.clock(), alertscaler_member="web-4"))
    assert await heal_reasons(s) == ["removed_member"]


async def test_a_signal_stored_before_its_member_was_removed_is_dropped_when_judged(s: Served) -> None:
    await post(s, alert("InstanceDown", starts=s.clock(), alertscaler_member="web-4"))
    fake = s.providers["web"]
    fake.mark_failed("web-4")  # the provider reports it failed too: a second signal of it
    await s.engine.live_status("web")
    await scale_to(s, 3)  # and a scale-in chose it meanwhile
    await window(s)
    await window(s)
    assert await heal_reasons(s) == ["batched", "removed_member"]
    assert fake.heal_calls == []


async def test_a_member_a_heal_replaced_is_remembered(s: Served) -> None:
    await post(s, alert("InstanceDown", starts=s.clock(), alertscaler_member="web-2"))
    await window(s)
    assert s.providers["web"].heal_calls == [("replace", "web-2")]
    (removed,) = s.store.removed_members(s.clock())
    assert (removed.member_id, removed.state.value, removed.why) == ("web-2", "removed", "replaced by web-5")
    await post(s, alert("InstanceDown", starts=s.clock() - timedelta(minutes=1), alertscaler_member="web-2"))
    await window(s)
    assert await heal_reasons(s) == ["batched", "healed", "removed_member"]


async def test_a_new_member_at_a_removed_members_address_is_healed(s: Served) -> None:
    await scale_to(s, 3)
    s.store.add_removing("web", [("web-old", "127.0.0.1:9001")], "scale-in to 2", s.clock())  # web-1's address
    s.store.mark_removed("web", ["web-old"], s.clock())
    s.clock.advance(ADDRESS_SLACK.total_seconds() + 60)
    await post(s, alert("InstanceDown", starts=s.clock(), instance="127.0.0.1:9001"))
    await window(s)
    assert await heal_reasons(s) == ["batched", "healed"]
    assert s.providers["web"].heal_calls == [("replace", "web-1")]
