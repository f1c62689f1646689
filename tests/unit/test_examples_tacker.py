"""``examples/tacker``: seed 004's Tacker Prometheus-plugin setup pointed at alertscaler.

The policy file must pass ``alertscaler check`` and map the rules' VNF instance, aspect and VNFC labels to its
groups; the Alertmanager config (Tacker's documented one) must route every ``function_type`` to the alertscaler
endpoint of that type with the token; every rule's labels must be what that endpoint accepts (``ingest.tacker``).
promtool and amtool check the files when installed.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from alertscaler.cli import EXIT_OK, main
from alertscaler.config import PolicyFile, load_policy_file
from alertscaler.ingest.tacker import SHAPES, Endpoint, check
from alertscaler.model.alerts import Alert, AlertStatus, Notification
from alertscaler.model.matchers import MatcherSet

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "tacker"
POLICY = EXAMPLE / "alertscaler.yml"


@pytest.fixture(scope="module")
def policy() -> PolicyFile:
    return load_policy_file(POLICY)


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((EXAMPLE / "rules.yml").read_text())
    return [r for g in data["groups"] for r in g["rules"]]


def test_check_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["check", str(POLICY)]) == EXIT_OK
    assert "vdu1 (kubernetes, 1..3)" in capsys.readouterr().out


@pytest.mark.parametrize("endpoint", list(Endpoint), ids=[e.value for e in Endpoint])
def test_alertmanager_routes_each_function_type_to_its_endpoint(endpoint: Endpoint) -> None:
    config = yaml.safe_load((EXAMPLE / "alertmanager.yml").read_text())
    labels = {"function_type": endpoint.value, "receiver_type": "tacker"}
    route = next(r for r in config["route"]["routes"] if MatcherSet.parse(r["matchers"]).matches(labels))
    receiver = next(r for r in config["receivers"] if r["name"] == route["receiver"])
    (hook,) = receiver["webhook_configs"]
    assert hook["url"] == f"http://alertscaler:8080{SHAPES[endpoint].path}"
    assert "credentials_file" in hook["http_config"]["authorization"]


@pytest.mark.parametrize("rule", rules(), ids=[r["alert"] for r in rules()])
def test_each_rule_is_accepted_and_mapped(policy: PolicyFile, rule: dict[str, Any]) -> None:
    labels = {k: v.replace("{{ $labels.pod }}", "vdu2-5d8f7c-abcde") for k, v in rule["labels"].items()}
    labels["alertname"] = rule["alert"]
    endpoint = Endpoint(labels["function_type"])
    alert = Alert(AlertStatus.FIRING, labels, {}, datetime(2026, 1, 1, tzinfo=UTC), None, "", "fp")
    check(Notification("r", AlertStatus.FIRING, (alert,), {}, {}, {}, "", "k", 0), endpoint)
    if endpoint is Endpoint.AUTO_SCALE:
        scale = [g.scale_out if labels["auto_scale_type"] == "SCALE_OUT" else g.scale_in
                 for g in policy.groups.values()]
        assert [p for p in scale if p is not None and p.matcher_set.matches(labels)]
    else:
        heal = policy.groups["vdu2"].heal
        assert heal is not None and MatcherSet.parse(heal.matchers).matches(labels)


@pytest.mark.skipif(shutil.which("promtool") is None or shutil.which("amtool") is None,
                    reason="promtool / amtool not installed")
def test_promtool_and_amtool_accept_the_files() -> None:
    subprocess.run(["promtool", "check", "rules", str(EXAMPLE / "rules.yml")], check=True, capture_output=True)
    subprocess.run(["amtool", "check-config", str(EXAMPLE / "alertmanager.yml")], check=True, capture_output=True)


def test_no_secrets_in_the_example() -> None:
    assert (EXAMPLE / "token").read_text().strip() == "REPLACE-ME-placeholder-not-a-secret"
