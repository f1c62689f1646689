"""promtool accepts the rules alarms compile to: the golden rule file of tests/golden/alarms (made by
tests/unit/test_alarm_rules.py) and ``alertscaler check`` of that policy file (which runs promtool itself)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from alertscaler.cli import EXIT_OK, main

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("promtool") is None,
                                 reason="promtool not on PATH (install the Debian package prometheus)")]

GOLDEN = Path(__file__).resolve().parents[2] / "tests" / "golden" / "alarms"


def test_promtool_accepts_the_golden_alarm_rules() -> None:
    done = subprocess.run(["promtool", "check", "rules", str(GOLDEN / "expected" / "alertscaler.rules.yml")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 16 rules found" in done.stdout


def test_check_validates_the_alarm_rules_with_promtool(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(GOLDEN / "policy.yml")]) == EXIT_OK
    out = capsys.readouterr().out
    assert "promtool check rules" in out and "ok" in out


def test_check_passes_on_the_openstack_alarms_example(capsys: pytest.CaptureFixture[str]) -> None:
    example = GOLDEN.parents[2] / "examples" / "openstack-alarms" / "alertscaler.yml"
    assert main(["check", str(example)]) == EXIT_OK
    assert "ok promtool check rules: 15 rule(s) valid" in capsys.readouterr().out
