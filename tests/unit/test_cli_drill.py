"""``alertscaler drill``: usage and configuration mistakes exit 2 with a message naming them, the service out of
reach exits 3, never a traceback; nothing is posted to Alertmanager before they are ruled out. (The drill itself,
against real Alertmanager and service processes: tests/e2e/test_drill_pipeline.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from alertscaler.cli import EXIT_UNREACHABLE, EXIT_USAGE, main

POLICY = """
server: {listen: "127.0.0.1:1", auth: {insecure_no_auth: true}}
ALERTMANAGER
groups:
  web:
    provider: {type: fake}
    max_size: 4
    scale_out: {matchers: ['alertname="Busy"', 'alertscaler_group="web"'], adjustment: 1}
  odd:
    provider: {type: fake}
    max_size: 4
    scale_out: {matchers: ['alertname="Busy"', 'instance=~"10[.].*"'], adjustment: 1}
  healer:
    provider: {type: fake}
    max_size: 4
    heal: {matchers: ['alertname="InstanceDown"']}
"""
WITH_AM = "alertmanager: {url: 'http://127.0.0.1:1'}"

CASES = [
    ("no-such-group", ["drill", "nope"], WITH_AM, EXIT_USAGE, "no group 'nope' in the policy file"),
    ("no-such-policy", ["drill", "web", "scale_in"], WITH_AM, EXIT_USAGE,
     "group 'web' has no policy 'scale_in' (it has: scale_out"),
    ("no-step-policy", ["drill", "healer"], WITH_AM, EXIT_USAGE, "group 'healer' has no step policy"),
    ("no-alertmanager", ["drill", "web"], "", EXIT_USAGE, "alertmanager.url is not set (give --alertmanager URL)"),
    ("bad-alertmanager-url", ["drill", "web", "--alertmanager", "ftp://x"], "", EXIT_USAGE, "Alertmanager: "),
    ("bad-label-option", ["drill", "web", "--label", "novalue"], WITH_AM, EXIT_USAGE,
     "--label 'novalue': give NAME=VALUE"),
    ("drill-label-reserved", ["drill", "web", "--label", "alertscaler_drill=x"], WITH_AM, EXIT_USAGE,
     "not alertscaler_drill"),
    ("labels-cannot-be-made-up", ["drill", "odd"], WITH_AM, EXIT_USAGE,
     "odd scale_out: no value found for label 'instance' that matches instance=~\"10[.].*\": give one with "
     "--label instance=VALUE"),
    ("service-unreachable", ["drill", "web"], WITH_AM, EXIT_UNREACHABLE, "cannot reach alertscaler"),
]


@pytest.mark.parametrize(("argv", "alertmanager", "code", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_drill_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], alertmanager: str,
                        code: int, fragment: str) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY.replace("ALERTMANAGER", alertmanager))
    assert main([*argv, "-c", str(policy)]) == code
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


@pytest.mark.parametrize(("argv", "fragment"), [
    (["drill", "-c", "/nonexistent/policy.yml", "web"], "policy file /nonexistent/policy.yml not found"),
], ids=["missing-policy-file"])
def test_drill_without_a_policy_file(capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str) -> None:
    assert main(argv) == EXIT_USAGE
    assert fragment in capsys.readouterr().err


def test_an_invalid_policy_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text("groups: {web: {provider: {type: fake}, max_size: -1}}\n")
    assert main(["drill", "web", "-c", str(policy)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "invalid" in err and "Traceback" not in err


def test_an_unknown_policy_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["drill", "web", "heal"])
    assert info.value.code == EXIT_USAGE
    assert "invalid choice: 'heal'" in capsys.readouterr().err
