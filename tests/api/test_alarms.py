"""Alarm state through the real webhook, in process (``tests/api/conftest.served``): the alerts of an alarm's rules
move its state (firing → ALARM, resolved → OK, the missing-data rule → INSUFFICIENT_DATA), per ``match_by``
dimension set, every transition in ``GET /api/v1/alarms/{id}/history``; an alarm's ``scale://`` action scales the
group through the normal routing (its step policy, cooldown and bounds), in the same transaction."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Served, served
from tests.support.alertmanager_standin import AlertmanagerStandin
from tests.support.webhooks import body

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
POLICY = """
server:
  auth: {insecure_no_auth: true}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 4
    desired: 1
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1, cooldown: 60s}
alarms:
  cpu_high:
    description: instance running hot
    meter_name: cpu_util
    threshold: 70
    comparison_operator: gt
    period: 600
    evaluation_periods: 3
    alarm_actions: ['scale://web/scale_out', 'log://']
    ok_actions: ['log://']
  web_busy:
    expression: avg(cpu.user_perc{}) > 85 or avg(disk_read_ops{device=vda}, 120) > 1000
    match_by: [instance]
    severity: HIGH
  errors:
    expression: count(log.error, deterministic) > 0
"""


def _iso(at: datetime | None) -> str:
    return at.isoformat().replace("+00:00", "Z") if at is not None else "0001-01-01T00:00:00Z"


def alarm_alert(alarm: str, signal: str = "alarm", *, starts: datetime = T0, ends: datetime | None = None,
                **labels: str) -> dict[str, Any]:
    """An alert of an alarm's generated rule, as Alertmanager sends it (resolved when ``ends`` is given)."""
    all_labels = {"alertname": alarm if signal == "alarm" else f"{alarm}:insufficient_data",
                  "alertscaler_alarm": alarm, "alertscaler_alarm_state": signal, "severity": "low", **labels}
    return {"status": "resolved" if ends else "firing", "labels": all_labels,
            "annotations": {"summary": alarm, "value": "91.5"},
            "startsAt": _iso(starts), "endsAt": _iso(ends), "generatorURL": "http://127.0.0.1:9090/graph",
            "fingerprint": hashlib.sha256(repr(sorted(all_labels.items())).encode()).hexdigest()[:16]}


async def post(s: Served, *alerts: dict[str, Any]) -> None:
    response = await s.client.post("/api/v1/alerts", json=body(*alerts))
    assert response.status_code == 200, response.text


async def alarms(s: Served, **params: str) -> dict[str, dict[str, Any]]:
    response = await s.client.get("/api/v1/alarms", params=params)
    assert response.status_code == 200, response.text
    return {a["name"]: a for a in response.json()}


async def history(s: Served, alarm: str) -> list[dict[str, Any]]:
    response = await s.client.get(f"/api/v1/alarms/{alarm}/history")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()
    return data


async def test_before_any_alert_each_alarm_shows_its_initial_state(tmp_path: Path) -> None:
    async with served(tmp_path, POLICY) as s:
        shown = await alarms(s)

    assert {n: (a["state"], a["shown"]) for n, a in shown.items()} == {
        "cpu_high": ("insufficient_data", "insufficient data"), "web_busy": ("insufficient_data", "UNDETERMINED"),
        "errors": ("ok", "OK")}
    assert shown["cpu_high"]["states"] == [{"dimensions": {}, "state": "insufficient_data",
                                            "shown": "insufficient data", "since": None, "updated_at": None,
                                            "reason": "no alert received yet", "firing": []}]
    assert shown["web_busy"]["states"] == []  # match_by: one state per dimension set, once seen
    assert shown["cpu_high"]["condition"] == "avg(cpu_util, 600) > 70 times 3"
    assert shown["cpu_high"]["actions"] == {"alarm": ["scale web scale_out", "log"], "ok": ["log"],
                                            "insufficient_data": []}
    assert (shown["errors"]["deterministic"], shown["web_busy"]["severity"]) == (True, "high")


async def test_a_threshold_alarm_goes_alarm_scales_the_group_and_goes_ok(tmp_path: Path) -> None:
    async with served(tmp_path, POLICY, now=T0 + timedelta(seconds=5)) as s:
        await post(s, alarm_alert("cpu_high"))
        firing = (await alarms(s))["cpu_high"]
        scaled = await s.decisions("web")
        s.clock.advance(120)
        await post(s, alarm_alert("cpu_high", ends=T0 + timedelta(seconds=100)))
        ok = (await alarms(s))["cpu_high"]
        transitions = await history(s, "cpu_high")
        after = await s.decisions("web")

    assert (firing["state"], firing["states"][0]["since"]) == ("alarm", "2026-11-21T12:00:00+00:00")
    assert [(d["policy"], d["outcome"], d["from_capacity"], d["to_capacity"]) for d in scaled] == [
        ("scale_out", "acted", 1, 2)]
    assert (ok["state"], ok["states"][0]["since"], ok["states"][0]["firing"]) == (
        "ok", "2026-11-21T12:01:40+00:00", [])
    assert [(t["old"], t["new"], t["actions"]) for t in transitions] == [
        ("alarm", "ok", ["log"]), ("insufficient_data", "alarm", ["scale web scale_out", "log"])]
    assert transitions[1]["reason"] == ("Transition to alarm due to avg(cpu_util, 600) > 70 times 3 is true, "
                                        "most recent: 91.5")
    assert transitions[1]["notification_id"] is not None
    assert [d["reason"] for d in after[1:]] == ["resolved"]  # a resolved alarm alert never scales


async def test_a_monasca_alarm_has_a_state_per_dimension_set(tmp_path: Path) -> None:
    async with served(tmp_path, POLICY, now=T0 + timedelta(seconds=5)) as s:
        await post(s, alarm_alert("web_busy", instance="a:9100"),
                   alarm_alert("web_busy", "insufficient_data", instance="b:9100"))
        both = (await alarms(s))["web_busy"]
        undetermined = await alarms(s, state="UNDETERMINED")
        by_name = await alarms(s, state="insufficient data")
        await post(s, alarm_alert("web_busy", "insufficient_data", instance="b:9100", ends=T0 + timedelta(seconds=60)))
        later = (await alarms(s))["web_busy"]
        transitions = await history(s, "web_busy")
        decisions = await s.client.get("/api/v1/decisions")

    assert both["state"] == "alarm" and both["shown"] == "ALARM"  # any dimension set in ALARM
    assert [(st["dimensions"], st["shown"]) for st in both["states"]] == [
        ({"instance": "a:9100"}, "ALARM"), ({"instance": "b:9100"}, "UNDETERMINED")]
    assert set(undetermined) == {"cpu_high"} and set(by_name) == {"cpu_high"}
    assert [(st["dimensions"], st["shown"]) for st in later["states"]] == [
        ({"instance": "a:9100"}, "ALARM"), ({"instance": "b:9100"}, "OK")]
    assert [(t["dimensions"], t["old_shown"], t["new_shown"]) for t in transitions] == [
        ({"instance": "b:9100"}, "UNDETERMINED", "OK"), ({"instance": "a:9100"}, "UNDETERMINED", "ALARM")]
    assert decisions.json() == []  # alarm alerts are not "no group" skips: they are the alarm's


async def test_a_resend_or_a_late_firing_changes_nothing(tmp_path: Path) -> None:
    async with served(tmp_path, POLICY, now=T0 + timedelta(seconds=5)) as s:
        await post(s, alarm_alert("errors"))
        await post(s, alarm_alert("errors"))  # Alertmanager's repeat
        await post(s, alarm_alert("errors", ends=T0 + timedelta(seconds=30)))
        s.clock.advance(60)
        await post(s, alarm_alert("errors"))  # a firing delivered late, after its resolution
        state = (await alarms(s))["errors"]
        transitions = await history(s, "errors")

    assert state["state"] == "ok"
    assert [(t["old"], t["new"]) for t in transitions] == [("alarm", "ok"), ("ok", "alarm")]


@pytest.mark.parametrize(("path", "status", "says"), [
    ("/api/v1/alarms/nope/history", 404, "no alarm named 'nope'"),
    ("/api/v1/alarms?state=broken", 422, "state: must be ok, alarm or insufficient_data"),
    ("/api/v1/alarms/cpu_high/history?limit=0", 422, "limit: must be an integer from 1 to 1000"),
], ids=["unknown-alarm", "bad-state", "bad-limit"])
async def test_client_mistakes_are_4xx(tmp_path: Path, path: str, status: int, says: str) -> None:
    async with served(tmp_path, POLICY) as s:
        response = await s.client.get(path)

    assert response.status_code == status and says in response.json()["error"]


async def test_an_alarm_alert_its_policy_also_matches_is_decided_once(tmp_path: Path) -> None:
    both = POLICY.replace("""scale_out: {matchers: ['alertname="HighLoad"']""",
                          """scale_out: {matchers: ['alertscaler_alarm="cpu_high"']""")
    async with served(tmp_path, both, now=T0 + timedelta(seconds=5)) as s:
        await post(s, alarm_alert("cpu_high"))
        decisions = await s.decisions("web")

    assert [(d["policy"], d["outcome"], d["to_capacity"]) for d in decisions] == [("scale_out", "acted", 2)]


async def test_with_alertmanager_asked_an_alarms_scale_action_still_acts(tmp_path: Path) -> None:
    """With ``alertmanager.url`` every step policy first asks Alertmanager which of its alerts still fire (by the
    policy's matchers): an alarm's alert routed by its scale:// action is looked up by the alarm's matchers too,
    so it is neither a phantom nor left undecided."""
    with AlertmanagerStandin() as am:
        gated = POLICY.replace("  auth: {insecure_no_auth: true}\n",
                               f"  auth: {{insecure_no_auth: true}}\nalertmanager: {{url: \"{am.url}\"}}\n")
        firing = alarm_alert("cpu_high")
        am.fire(firing)
        async with served(tmp_path, gated, now=T0 + timedelta(seconds=5)) as s:
            await post(s, firing)
            await s.engine.run_once()
            s.clock.advance(61)
            await s.engine.run_once()  # after the cooldown: still firing in Alertmanager, one more step
            decisions = [(d["reason"], d["to_capacity"]) for d in await s.decisions("web")]

    assert decisions[:2] == [("scaled", 2), ("scaled", 3)], decisions
