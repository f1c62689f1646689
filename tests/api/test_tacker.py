"""Tacker's five alert endpoints in process (``api.tacker``; fake provider, the test's clock): labels checked
(422 naming the label), auth required unless ``tacker.auth: open``, recorded durably and idempotently, auto-scale
by aspect through the group's step policies (cooldown, bounds), auto-heal of one VNF instance batched over
``timer_interval`` into one heal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import TOKEN, Served, served
from tests.support.webhooks import alert, body

VNF = "3721ab69-3f33-44bc-85f1-f416ad1b765e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

POLICY = f"""
server: {{listen: 127.0.0.1:8080, auth: {{bearer_token: {TOKEN}}}}}
tacker:
  timer_interval: 20s
  aspects:
    - {{vnf_instance_id: {VNF}, aspect_id: VDU1_aspect, group: vdu1, step: 2, cooldown: 60s}}
  healing:
    - {{vnf_instance_id: {VNF}, group: vdu2, vnfc_prefix: VDU2-, grace: 60s}}
groups:
  vdu1:
    provider: {{type: fake}}
    min_size: 1
    max_size: 5
    desired: 1
    drain: 0s
  vdu2:
    provider: {{type: fake}}
    min_size: 1
    max_size: 10
    desired: 8
"""


def scale(kind: str, aspect: str = "VDU1_aspect", vnf: str = VNF, **extra: str) -> dict[str, Any]:
    labels = {"receiver_type": "tacker", "function_type": "auto_scale", "vnf_instance_id": vnf,
              "auto_scale_type": kind, "aspect_id": aspect, **extra}
    return alert(f"Scale{kind}", **labels)


def heal(vnfc: str, vnf: str = VNF) -> dict[str, Any]:
    return alert("Heal", receiver_type="tacker", function_type="auto_heal", vnf_instance_id=vnf, vnfc_info_id=vnfc)


@pytest.fixture
async def s(tmp_path: Path) -> AsyncIterator[Served]:
    async with served(tmp_path, POLICY, sizes={"vdu1": 1}) as out:
        out.providers["vdu2"].clock = out.clock
        out.providers["vdu2"]._resize(8)
        out.clock.advance(3600)  # vdu2's members are past their grace period
        yield out


async def post(s: Served, path: str, payload: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return await s.client.post(path, json=payload, headers=AUTH if headers is None else headers)


async def test_scale_out_by_aspect_adds_the_step_then_cooldown_then_scale_in(s: Served) -> None:
    response = await post(s, "/alert/auto_scaling", body(scale("SCALE_OUT"), receiver="auto-scale"))
    assert response.status_code == 200, response.text
    assert response.json()["new"] == 1 and "not_built" not in response.json() and "unmapped" not in response.json()
    await s.engine.run_once()
    assert len(s.providers["vdu1"].members()) == 3   # one step of the aspect = 2 instances
    s.clock.advance(30)
    again = scale("SCALE_OUT", starts=None)
    again["startsAt"] = "2026-11-21T12:00:30Z"  # a new firing of the alert, inside the cooldown
    await post(s, "/alert/auto_scaling", body(again, receiver="auto-scale"))
    await s.engine.run_once()
    assert len(s.providers["vdu1"].members()) == 3
    s.clock.advance(61)
    resolved = {**again, "status": "resolved", "endsAt": "2026-11-21T12:01:30Z"}
    await post(s, "/alert/auto_scaling", body(resolved, receiver="auto-scale"))
    await post(s, "/alert/auto_scaling", body(scale("SCALE_IN"), receiver="auto-scale"))
    await s.engine.run_once()
    assert len(s.providers["vdu1"].members()) == 1
    acted = [(d["policy"], d["reason"], d["message"]) for d in await s.decisions("vdu1") if d["outcome"] == "acted"]
    assert acted == [("scale_out", "scaled", "scale 1 -> 3"), ("scale_in", "scaled", "scale 3 -> 1")]
    assert "cooldown" in [d["reason"] for d in await s.decisions("vdu1")]


async def test_bounds_apply_to_a_scale_in_by_aspect(s: Served) -> None:
    await post(s, "/alert/auto_scaling", body(scale("SCALE_IN"), receiver="auto-scale"))
    await s.engine.run_once()
    assert len(s.providers["vdu1"].members()) == 1  # min_size 1
    (decision,) = [d for d in await s.decisions("vdu1") if d["policy"] == "scale_in"]
    assert decision["outcome"] == "skipped"


async def test_a_resent_webhook_never_acts_twice(s: Served) -> None:
    payload = body(scale("SCALE_OUT"), receiver="auto-scale")
    first = await post(s, "/alert/auto_scaling", payload)
    second = await post(s, "/alert/auto_scaling", payload)
    assert (first.json()["new"], second.json()["duplicates"]) == (1, 1)
    await s.engine.run_once()
    assert len(s.providers["vdu1"].members()) == 3


async def test_an_unmapped_aspect_is_recorded_as_no_group_and_said(s: Served) -> None:
    response = await post(s, "/alert/auto_scaling", body(scale("SCALE_OUT", aspect="VDU9_aspect")))
    assert response.status_code == 200
    assert response.json()["unmapped"] == [{"vnf_instance_id": VNF, "aspect_id": "VDU9_aspect"}]
    rows = (await s.client.get("/api/v1/decisions", params={"reason": "no_group"})).json()
    assert len(rows) == 1


async def test_three_vnfc_within_the_timer_interval_make_one_heal(s: Served) -> None:
    fake = s.providers["vdu2"]
    victims = [m.id for m in fake.members()][:3]
    for i, member in enumerate(victims):
        response = await post(s, "/alert/auto_healing", body(heal(f"VDU2-{member}"), receiver="auto-heal"))
        assert response.status_code == 200, response.text
        s.clock.advance(5 if i < 2 else 0)
    await s.engine.run_once()
    assert fake.heal_calls == []  # the window (timer_interval) is still open
    s.clock.advance(21)
    await s.engine.run_once()
    assert sorted(m for _, m in fake.heal_calls) == sorted(victims)
    actions = (await s.client.get("/api/v1/actions", params={"group": "vdu2"})).json()
    assert len(actions) == 1 and sorted(t["member_id"] for t in actions[0]["targets"]) == sorted(victims)
    healed = [d for d in await s.decisions("vdu2") if d["reason"] == "healed"]
    assert len(healed) == 1


async def test_auth_is_required_unless_open(tmp_path: Path) -> None:
    payload = body(scale("SCALE_OUT"))
    async with served(tmp_path / "a", POLICY) as s:
        assert (await post(s, "/alert/auto_scaling", payload, headers={})).status_code == 401
    opened = POLICY.replace("tacker:\n", "tacker:\n  auth: open\n")
    async with served(tmp_path / "b", opened) as s:
        assert (await post(s, "/alert/auto_scaling", payload, headers={})).status_code == 200


def _labels(**change: str | None) -> dict[str, Any]:
    a = scale("SCALE_OUT")
    for k, v in change.items():
        if v is None:
            a["labels"].pop(k)
        else:
            a["labels"][k] = v
    return body(a)


BAD: dict[str, tuple[str, Any, str, str]] = {
    "no-receiver-type": ("/alert/auto_scaling", _labels(receiver_type=None), "alerts[0].labels.receiver_type",
                         "tacker"),
    "wrong-function-type": ("/alert/auto_scaling", _labels(function_type="auto_heal"),
                            "alerts[0].labels.function_type", "/alert/auto_healing"),
    "no-aspect": ("/alert/auto_scaling", _labels(aspect_id=None), "alerts[0].labels.aspect_id", "required"),
    "bad-scale-type": ("/alert/auto_scaling", _labels(auto_scale_type="SCALE_UP"),
                       "alerts[0].labels.auto_scale_type", "SCALE_OUT, SCALE_IN"),
    "no-vnfc": ("/alert/auto_healing", body(alert("H", receiver_type="tacker", function_type="auto_heal",
                                                  vnf_instance_id=VNF)), "alerts[0].labels.vnfc_info_id", "required"),
    "pm-no-value": ("/pm_event", body(alert("P", receiver_type="tacker", function_type="vnfpm", job_id="j",
                                            object_instance_id=VNF, metric="VCpuUsageMeanVnf.x")),
                    "alerts[0].annotations.value", "$value"),
    "fm-bad-severity": ("/alert", body(alert("F", receiver_type="tacker", function_type="vnffm", vnf_instance_id=VNF,
                                             pod="p", perceived_severity="HIGH")),
                        "alerts[0].labels.perceived_severity", "CRITICAL"),
    "no-alerts": ("/alert/auto_healing", body(), "alerts", "at least one"),
    "not-a-webhook": ("/pm_threshold", {"alerts": []}, "version", "version"),
}


@pytest.mark.parametrize(("path", "payload", "field", "says"), list(BAD.values()), ids=list(BAD))
async def test_a_bad_alert_is_a_422_naming_the_label(s: Served, path: str, payload: Any, field: str,
                                                      says: str) -> None:
    response = await post(s, path, payload)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field and says in response.json()["error"]
    assert (await s.client.get("/api/v1/decisions")).json() == [] or all(
        d["reason"] == "reconcile" for d in (await s.client.get("/api/v1/decisions")).json())


NOT_BUILT = {
    "pm-event": ("/pm_event", alert("P", receiver_type="tacker", function_type="vnfpm", job_id="j",
                                    object_instance_id=VNF, metric="VCpuUsageMeanVnf.x"), "PM jobs"),
    "pm-threshold": ("/pm_threshold", alert("T", receiver_type="tacker", function_type="vnfpm_threshold",
                                            threshold_id="t", object_instance_id=VNF, metric="m"), "PM thresholds"),
    "doc-alias": ("/vnfpm_threshold", alert("T", receiver_type="tacker", function_type="vnfpm_threshold",
                                            threshold_id="t", object_instance_id=VNF, metric="m"), "PM thresholds"),
    "fm": ("/alert", alert("F", receiver_type="tacker", function_type="vnffm", vnf_instance_id=VNF, pod="p",
                           perceived_severity="CRITICAL", event_type="PROCESSING_ERROR_ALARM"), "FM alarms"),
}


@pytest.mark.parametrize(("path", "one", "missing"), list(NOT_BUILT.values()), ids=list(NOT_BUILT))
async def test_endpoints_not_built_record_and_say_what_is_missing(s: Served, path: str, one: dict[str, Any],
                                                                  missing: str) -> None:
    one["annotations"]["value"] = "42.5"
    response = await post(s, path, body(one))
    assert response.status_code == 200, response.text
    assert missing in response.json()["not_built"] and response.json()["new"] == 1
    rows = (await s.client.get("/api/v1/decisions", params={"reason": "no_group"})).json()
    assert len(rows) == 1


@pytest.mark.parametrize(("auth", "secured"), [("required", True), ("open", False)], ids=["required", "open"])
async def test_the_openapi_document_says_whether_the_endpoints_need_credentials(tmp_path: Path, auth: str,
                                                                                 secured: bool) -> None:
    text = POLICY.replace("tacker:\n", f"tacker:\n  auth: {auth}\n")
    async with served(tmp_path, text) as s:
        spec = (await s.client.get("/openapi.json")).json()
    for path in ("/pm_event", "/pm_threshold", "/vnfpm_threshold", "/alert", "/alert/auto_scaling",
                 "/alert/auto_healing"):
        op = spec["paths"][path]["post"]
        assert bool(op["security"]) is secured and ("401" in op["responses"]) is secured, path
    assert bool(spec["paths"]["/api/v1/alerts"]["post"]["security"])


async def test_heal_alerts_of_an_unmapped_instance_or_an_unknown_vnfc_heal_nothing(s: Served) -> None:
    other = await post(s, "/alert/auto_healing", body(heal("VDU2-x", vnf="another-vnf"), receiver="auto-heal"))
    assert other.json()["unmapped"] == [{"vnf_instance_id": "another-vnf"}]
    await post(s, "/alert/auto_healing", body(heal("VDU2-not-a-pod"), receiver="auto-heal"))
    s.clock.advance(21)
    await s.engine.run_once()
    assert s.providers["vdu2"].heal_calls == []
    assert [d["reason"] for d in await s.decisions("vdu2")] == ["batched", "unknown_member"]
    assert len((await s.client.get("/api/v1/decisions", params={"reason": "no_group"})).json()) == 1
