"""Aodh and Monasca alarm bodies → signals (``ingest.openstack``), and the ``inputs`` section of the policy file
(``config.inputs``): every state spelling, every refusal naming its field, the mappings checked against the groups,
the signing secret's checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from alertscaler.config import load_policy
from alertscaler.ingest.openstack import parse_aodh, parse_monasca, signed_body
from alertscaler.model.errors import ConfigError, InputError
from alertscaler.model.signals import AlarmState, SignalSource

AODH: dict[str, Any] = {
    "alarm_name": "cpu_high", "alarm_id": "b3b3a7e4-0000-4000-8000-000000000001", "severity": "low",
    "previous": "ok", "current": "alarm",
    "reason": "Transition to alarm due to 3 samples outside threshold, most recent: 91.0",
    "reason_data": {"type": "threshold", "disposition": "outside", "count": 3, "most_recent": 91.0}}
MONASCA: dict[str, Any] = {
    "alarm_id": "a-1", "alarm_definition_id": "def-1", "alarm_name": "high-cpu", "alarm_description": "",
    "alarm_timestamp": 1700000000, "state": "ALARM", "old_state": "OK", "message": "Thresholds were exceeded",
    "tenant_id": "t-1", "metrics": [{"name": "cpu.user_perc", "dimensions": {"hostname": "a"}}]}


@pytest.mark.parametrize(("current", "state"), [
    ("alarm", AlarmState.ALARM), ("ok", AlarmState.OK), ("insufficient data", AlarmState.INSUFFICIENT_DATA),
    ("ALARM", AlarmState.ALARM)], ids=["alarm", "ok", "insufficient-data", "upper-case"])
def test_aodh_states(current: str, state: AlarmState) -> None:
    signal = parse_aodh({**AODH, "current": current})
    assert (signal.source, signal.state, signal.alarm) == (SignalSource.AODH, state, "cpu_high")
    assert signal.names == ("cpu_high", AODH["alarm_id"]) and signal.key is None
    assert signal.labels["alertname"] == "cpu_high" and "most recent: 91.0" in signal.annotations["reason"]


@pytest.mark.parametrize(("state", "expected"), [
    ("ALARM", AlarmState.ALARM), ("OK", AlarmState.OK), ("UNDETERMINED", AlarmState.INSUFFICIENT_DATA)],
    ids=["alarm", "ok", "undetermined"])
def test_monasca_states_and_retry_key(state: str, expected: AlarmState) -> None:
    signal = parse_monasca({**MONASCA, "state": state})
    assert (signal.source, signal.state) == (SignalSource.MONASCA, expected)
    assert signal.names == ("high-cpu", "a-1", "def-1")
    assert signal.key == f"monasca:a-1:1700000000:{expected.value}"
    assert signal.annotations["metrics"] == "cpu.user_perc{hostname=a}"
    assert parse_monasca({k: v for k, v in MONASCA.items() if k != "alarm_timestamp"}).key is None


@pytest.mark.parametrize(("body", "field"), [
    ({k: v for k, v in AODH.items() if k != "current"}, "current"),
    ({k: v for k, v in AODH.items() if k != "alarm_name"}, "alarm_name"),
    ({**AODH, "alarm_id": ""}, "alarm_id"),
    ({**AODH, "alarm_id": 7}, "alarm_id"),
    ({**AODH, "current": "burning"}, "current"),
    ({**AODH, "current": 1}, "current"),
    ({**AODH, "reason": ["x"]}, "reason"),
    ({**AODH, "reason_data": "x"}, "reason_data"),
    ({**AODH, "alarm_name": "x" * 256}, "alarm_name"),
    ([AODH], ""),
], ids=["no-current", "no-name", "empty-id", "id-not-a-string", "unknown-state", "state-not-a-string",
        "reason-not-a-string", "reason-data-not-an-object", "name-too-long", "not-an-object"])
def test_bad_aodh_bodies_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(InputError) as info:
        parse_aodh(body)
    assert info.value.field == field and info.value.status_code == 422


@pytest.mark.parametrize(("body", "field"), [
    ({k: v for k, v in MONASCA.items() if k != "alarm_definition_id"}, "alarm_definition_id"),
    ({k: v for k, v in MONASCA.items() if k != "state"}, "state"),
    ({**MONASCA, "state": "FIRING"}, "state"),
    ({**MONASCA, "alarm_timestamp": "yesterday"}, "alarm_timestamp"),
    ({**MONASCA, "alarm_timestamp": True}, "alarm_timestamp"),
    ({**MONASCA, "metrics": {"name": "x"}}, "metrics"),
    ({**MONASCA, "metrics": [{"dimensions": {}}]}, "metrics[0]"),
    ({**MONASCA, "metrics": [{"name": "x", "dimensions": {"a": 1}}]}, "metrics[0].dimensions"),
    ({**MONASCA, "tenant_id": 3}, "tenant_id"),
], ids=["no-definition", "no-state", "unknown-state", "timestamp-text", "timestamp-bool", "metrics-not-a-list",
        "metric-without-name", "dimension-not-a-string", "tenant-not-a-string"])
def test_bad_monasca_bodies_name_the_field(body: Any, field: str) -> None:
    with pytest.raises(InputError) as info:
        parse_monasca(body)
    assert info.value.field == field


@pytest.mark.parametrize(("body", "source", "state"), [
    (None, SignalSource.URL, AlarmState.ALARM),
    ({}, SignalSource.URL, AlarmState.ALARM),
    ({"anything": 1}, SignalSource.URL, AlarmState.ALARM),
    ({"current": "ok"}, SignalSource.URL, AlarmState.OK),
    ({"state": "insufficient data"}, SignalSource.URL, AlarmState.INSUFFICIENT_DATA),
    (AODH, SignalSource.AODH, AlarmState.ALARM),
    ({**AODH, "current": "ok"}, SignalSource.AODH, AlarmState.OK),
    ({**MONASCA, "state": "UNDETERMINED"}, SignalSource.MONASCA, AlarmState.INSUFFICIENT_DATA),
], ids=["no-body", "empty-object", "other-details", "heat-details-ok", "heat-details-no-data", "aodh", "aodh-ok",
        "monasca-undetermined"])
def test_what_a_signed_url_is_posted(body: Any, source: SignalSource, state: AlarmState) -> None:
    signal = signed_body(body)
    assert (signal.source, signal.state) == (source, state)


def test_a_signed_url_body_must_be_an_object() -> None:
    with pytest.raises(InputError):
        signed_body([1, 2])


# --- the inputs section -----------------------------------------------------------------------------------

GROUPS = """
server: {auth: {bearer_token: test-token-123}}
groups:
  web:
    provider: {type: fake}
    max_size: 4
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1}
"""


def load(inputs: str, tmp_path: Path) -> Any:
    return load_policy(GROUPS + inputs, base_dir=tmp_path)


def problems(inputs: str, tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(inputs, tmp_path)
    return [str(p) for p in info.value.problems]


def test_mappings_give_each_alarm_its_targets(tmp_path: Path) -> None:
    policy = load("""
inputs:
  aodh: [{alarm: cpu_high, group: web, policy: scale_out}, {alarm: id-1, group: web, policy: scale_out}]
  monasca: [{alarm: def-1, group: web, policy: scale_out}]
""", tmp_path)
    assert policy.inputs.targets(SignalSource.AODH, ("cpu_high", "id-9")) == [("web", "scale_out")]
    assert policy.inputs.targets(SignalSource.AODH, ("cpu_high", "id-1")) == [("web", "scale_out")]  # once
    assert policy.inputs.targets(SignalSource.AODH, ("other",)) == []
    assert policy.inputs.targets(SignalSource.MONASCA, ("x", "y", "def-1")) == [("web", "scale_out")]
    assert policy.inputs.signed_urls.default_expires == 30 * 86400


@pytest.mark.parametrize(("inputs", "expected"), [
    ("inputs: {aodh: [{alarm: a, group: nope, policy: scale_out}]}",
     "inputs.aodh[0].group: no group 'nope' in this file (groups: web)"),
    ("inputs: {monasca: [{alarm: a, group: web, policy: scale_in}]}",
     "inputs.monasca[0].policy: group 'web' has no scale_in policy"),
    ("inputs: {aodh: [{alarm: a, group: web, policy: heal}]}", "inputs.aodh[0].policy"),
    ("inputs: {aodh: [{alarm: '', group: web, policy: scale_out}]}", "inputs.aodh[0].alarm"),
    ("inputs: {signed_urls: {secret: short}}", "inputs.signed_urls.secret: too short"),
    ("inputs: {signed_urls: {max_expires: 20d, default_expires: 30d}}", "at most max_expires (480h)"),
    ("inputs: {signed_urls: {max_expires: 20000d}}", "inputs.signed_urls.max_expires"),
    ("inputs: {signed_urls: {secret_env: NO_SUCH_VARIABLE_HERE}}", "NO_SUCH_VARIABLE_HERE is not set"),
    ("inputs: {kafka: []}", "inputs.kafka: unknown key"),
], ids=["unknown-group", "missing-policy", "not-a-step-policy", "empty-alarm", "short-secret", "default-over-max",
        "max-too-long", "unset-env", "unknown-input"])
def test_inputs_problems(tmp_path: Path, inputs: str, expected: str) -> None:
    assert any(expected in p for p in problems(inputs, tmp_path)), problems(inputs, tmp_path)


def test_a_secret_file_readable_by_others_is_refused_and_never_echoed(tmp_path: Path) -> None:
    secret = tmp_path / "url.secret"
    secret.write_text("0123456789abcdef" * 4)
    os.chmod(secret, 0o644)
    found = problems(f"inputs: {{signed_urls: {{secret_file: {secret}}}}}", tmp_path)
    assert any("readable by group or others" in p and f"chmod 600 {secret}" in p for p in found)
    assert not any("0123456789abcdef" in p for p in found)
    os.chmod(secret, 0o600)
    policy = load("inputs: {signed_urls: {secret_file: url.secret}}", tmp_path)
    assert policy.inputs.signed_urls.secret is not None
    assert "0123456789abcdef" not in repr(policy.inputs) + str(policy.inputs)
