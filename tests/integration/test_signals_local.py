"""Signed URLs and OpenStack alarm inputs against the whole service as a real process, with the ``local`` provider's
real processes (the ``service`` fixture of test_service_local): a URL from ``alertscaler url create`` scales the
group with a bare POST (no token), a tampered one and an expired one are refused and change nothing, an Aodh
alarm action through a signed input URL and a Monasca notification through the token endpoint start real
instances, and a retried Aodh notification (same request id) starts nothing more."""

from __future__ import annotations

import stat
import time
from typing import Any

import httpx
import pytest

from alertscaler.cli import EXIT_OK, main
from tests.integration.test_service_local import TOKEN, Service, _instance_pids, service  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AODH: dict[str, Any] = {
    "alarm_name": "cpu_high", "alarm_id": "0b6b4f0a-a1f4-4c5e-9d3a-000000000001", "severity": "low",
    "previous": "ok", "current": "alarm", "reason": "Transition to alarm due to 3 samples outside threshold",
    "reason_data": {"type": "threshold", "disposition": "outside", "count": 3, "most_recent": 91.0}}
MONASCA: dict[str, Any] = {
    "alarm_id": "m-1", "alarm_definition_id": "def-high", "alarm_name": "cpu high", "alarm_timestamp": 1763726400,
    "state": "ALARM", "old_state": "OK", "message": "Thresholds were exceeded", "tenant_id": "t",
    "metrics": [{"name": "cpu.user_perc", "dimensions": {"hostname": "web-1"}}]}


def create(capsys: pytest.CaptureFixture[str], config: str, *argv: str) -> str:
    capsys.readouterr()
    assert main(["url", "create", *argv, "-c", config]) == EXIT_OK
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.out.strip()


def test_signed_urls_and_alarm_inputs_drive_real_instances(service: Service,  # noqa: F811
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    config = service.dir / "policy.yml"
    config.write_text(config.read_text() + """
inputs:
  aodh: [{alarm: cpu_high, group: web, policy: scale_out}]
  monasca: [{alarm: def-high, group: web, policy: scale_out}]
""")
    monkeypatch.delenv("ALERTSCALER_TOKEN", raising=False)  # the CLI takes the token from the policy file
    state = service.dir / "state"
    service.start()
    service.wait(lambda: service.settled(1), "initial instance")

    url = create(capsys, str(config), "web", "scale_out", "--expires", "1d")
    assert stat.S_IMODE((state / "url-signing.key").stat().st_mode) == 0o600
    response = httpx.post(url, timeout=10)  # curl -X POST "$URL": no token, no body
    assert response.status_code == 202, response.text
    service.wait(lambda: service.settled(2), "scale out to 2 by the signed URL")
    assert len(_instance_pids(state)) == 2

    tampered = url.replace("/scale_out/", "/scale_in/")
    refused = httpx.post(tampered, timeout=10)
    assert refused.status_code == 403 and refused.json()["reason"] == "bad_signature"
    assert service.decisions()[0]["reason"] == "refused" and service.settled(2)

    short = create(capsys, str(config), "web", "scale_out", "--expires", "1s")
    expires = int(short.partition("expires=")[2].partition("&")[0])
    service.wait(lambda: time.time() >= expires + 0.5, "the short URL's expiry")
    expired = httpx.post(short, timeout=10)
    assert expired.status_code == 403 and expired.json()["reason"] == "expired"

    aodh_url = create(capsys, str(config), "--input", "aodh", "--note", "alarm_actions of cpu_high")
    first = httpx.post(aodh_url, json=AODH, headers={"x-openstack-request-id": "req-1"}, timeout=10)
    assert first.status_code == 202 and first.json()["decisions"][0]["reason"] == "scaled"
    service.wait(lambda: service.settled(3), "scale out to 3 by Aodh")
    retried = httpx.post(aodh_url, json=AODH, headers={"x-openstack-request-id": "req-1"}, timeout=10)
    assert retried.status_code == 200 and retried.json()["status"] == "duplicate"
    ok = httpx.post(aodh_url, json={**AODH, "previous": "alarm", "current": "ok"}, timeout=10)
    assert ok.json()["decisions"][0]["reason"] == "resolved"

    monasca = httpx.post(f"{service.url}/api/v1/inputs/monasca", json=MONASCA,
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert monasca.status_code == 202 and monasca.json()["decisions"][0]["reason"] == "scaled"
    service.wait(lambda: service.settled(4), "scale out to 4 by Monasca")
    assert len(_instance_pids(state)) == 4
    reasons = [d["reason"] for d in reversed(service.decisions()) if d["trigger"] == "signal"]
    assert reasons == ["scaled", "refused", "refused", "scaled", "duplicate", "resolved", "scaled"]
