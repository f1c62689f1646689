"""``examples/openstack-alarms``: seed 003's OpenStack alarms translated to alertscaler.

The example's policy file must load and say what the seed's commands say (the Ceilometer threshold alarm field by
field, the Monasca alarm definition's expression, Heat's scale-up / scale-down URLs as scale:// actions); the
committed ``generated/`` files must be exactly what ``alertscaler render`` writes for it today; ``alertscaler
check`` must pass on it (here without promtool / amtool; tests/integration/test_alarm_rules_promtool.py runs it
with them); the user data must be the seed's sample as cloud-config.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alertscaler.cli import EXIT_OK, main
from alertscaler.confgen import render_all
from alertscaler.config import PolicyFile, load_policy_file
from alertscaler.config.alarms import alarm_definitions
from alertscaler.model.alarm_grammar import Function, MetricRef, Operator, SubExpression, parse_expression
from alertscaler.model.alarms import LogAction, ScaleAction, Style
from alertscaler.model.policies import Direction

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "openstack-alarms"
POLICY = EXAMPLE / "alertscaler.yml"
GENERATED = EXAMPLE / "generated"
SOURCE = "examples/openstack-alarms/alertscaler.yml"  # the -c argument, as render's headers name it
REGENERATE = f".venv/bin/alertscaler render -c {SOURCE} --out examples/openstack-alarms/generated"


@pytest.fixture(scope="module")
def policy() -> PolicyFile:
    return load_policy_file(POLICY)


def test_the_ceilometer_alarm_is_the_seeds(policy: PolicyFile) -> None:
    """ceilometer alarm-threshold-create --name cpu_high --description 'instance running hot' --meter-name cpu_util
    --threshold 70.0 --comparison-operator gt --statistic avg --period 600 --evaluation-periods 3
    --alarm-action 'log://' --query resource_id=VM_ID"""
    alarms = alarm_definitions(policy.alarms)
    one = alarms["vm_cpu_high"]
    assert one.style is Style.AODH and one.condition == SubExpression(
        Function.AVG, MetricRef("cpu_util", (("resource_id", "VM_ID"),)), Operator.GT, 70.0, period=600, periods=3)
    assert one.actions.alarm == (LogAction(),)
    group = alarms["cpu_high"]  # the same alarm on the group, with Heat's scale_up_url as scale://
    assert group.description == "instance running hot"
    assert group.condition == SubExpression(Function.AVG, MetricRef("cpu_util", (("alertscaler_group", "web"),)),
                                            Operator.GT, 70.0, period=600, periods=3)
    assert group.actions.alarm == (LogAction(), ScaleAction("web", Direction.SCALE_OUT))
    assert alarms["cpu_low"].actions.alarm == (ScaleAction("web", Direction.SCALE_IN),)


def test_the_monasca_alarm_definition_is_the_seeds(policy: PolicyFile) -> None:
    busy = alarm_definitions(policy.alarms)["web_busy"]
    assert busy.style is Style.MONASCA and busy.severity == "high" and busy.match_by == ("hostname",)
    assert busy.condition == parse_expression(
        "avg(cpu.user_perc{}) > 85 or avg(disk_read_ops{device=vda}, 120) > 1000")
    assert [str(a) for a in busy.actions.alarm] == ["notify:ops_email", "notify:audit"]
    assert [str(a) for a in busy.actions.insufficient_data] == ["notify:ops_email"]


def test_generated_files_are_a_fresh_render(policy: PolicyFile) -> None:
    fresh = render_all(policy.render_input(SOURCE))
    committed = sorted(p.relative_to(GENERATED).as_posix() for p in GENERATED.rglob("*") if p.is_file())
    hint = f"examples/openstack-alarms/generated is stale: regenerate it from the repository root with\n  {REGENERATE}"
    assert committed == sorted(fresh), hint
    stale = [name for name, text in fresh.items() if (GENERATED / name).read_bytes() != text.encode("utf-8")]
    assert not stale, f"{', '.join(stale)} differ from a fresh render; {hint}"
    rules = yaml.safe_load((GENERATED / "rules" / "alertscaler.rules.yml").read_text())
    assert [r["alert"] for r in rules["groups"][0]["rules"] if ":" not in r["alert"]] == list(policy.alarms)
    assert {r["alert"] for r in rules["groups"][0]["rules"] if r["alert"].endswith(":ok")} == {
        f"{name}:ok" for name in policy.alarms}  # every alarm here reads data that can be missing


def test_check_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # the tools' step: tests/integration/test_alarm_rules_promtool.py
    assert main(["check", str(POLICY)]) == EXIT_OK
    assert "1 group(s): web (openstack-nova, 1..4)" in capsys.readouterr().out


def test_the_user_data_is_the_seeds_sample_as_cloud_config() -> None:
    text = (EXAMPLE / "cloud-init.yaml").read_text()
    data = yaml.safe_load(text)
    assert text.startswith("#cloud-config\n")
    assert data["write_files"][0]["path"] == "/etc/resolv.conf" and data["apt_update"] is True
    assert "git" in data["packages"] and any("git clone" in c for c in data["runcmd"])


def test_no_secrets_in_the_example() -> None:
    assert (EXAMPLE / "token").read_text().strip() == "REPLACE-ME-placeholder-not-a-secret"
    for path in GENERATED.rglob("*"):
        if path.is_file():
            assert "REPLACE-ME-placeholder" not in path.read_text(), path
