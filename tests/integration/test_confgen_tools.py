"""The promtool / amtool step of ``alertscaler check``, with the installed tools (Debian packages
``prometheus`` and ``prometheus-alertmanager``; each test is skipped, saying so, without its tool).

Moved out of tests/unit/test_confgen.py: these run the tools as subprocesses. The golden files they check
are tests/golden/expected (see test_confgen.py for how they are made).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alertscaler.cli import EXIT_NO, EXIT_OK, main
from alertscaler.confgen import validate as validate_module
from alertscaler.confgen.validate import validate
from alertscaler.config import load_policy
from alertscaler.config.render_input import RenderInput

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
EXPECTED = GOLDEN / "expected"
EXAMPLE = ROOT / "examples" / "local.yml"
MINIMAL = "server: {auth: {insecure_no_auth: true}}\ngroups:\n  web: {provider: {type: fake}, max_size: 3}\n"

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool not on PATH (install the Debian package prometheus)")
needs_amtool = pytest.mark.skipif(shutil.which("amtool") is None,
                                  reason="amtool not on PATH (install the Debian package prometheus-alertmanager)")


# --- the real tools -----------------------------------------------------------------------------------------
@needs_promtool
def test_promtool_accepts_the_golden_rules() -> None:
    done = subprocess.run(["promtool", "check", "rules", str(EXPECTED / "rules/alertscaler.rules.yml")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_accepts_the_golden_prometheus_yml(tmp_path: Path) -> None:
    shutil.copytree(EXPECTED, tmp_path, dirs_exist_ok=True)
    done = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if done.returncode != 0 and "field linode_sd_configs not found" in output:
        # Debian's prometheus is built without Linode discovery: check everything else.
        config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
        config["scrape_configs"] = [j for j in config["scrape_configs"] if "linode_sd_configs" not in j]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        done = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=tmp_path,
                              capture_output=True, text=True, check=False)
        output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "1 rules found" not in output and "5 rules found" in output


@needs_amtool
def test_amtool_accepts_the_golden_alertmanager_yml() -> None:
    done = subprocess.run(["amtool", "check-config", str(EXPECTED / "alertmanager.yml")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_amtool
def test_amtool_accepts_the_route_snippet_merged_into_a_config(tmp_path: Path) -> None:
    snippet = yaml.safe_load((EXPECTED / "alertmanager-route.yml").read_text())
    existing: dict[str, Any] = {"route": {"receiver": "ops", "routes": [{"receiver": "ops",
                                                                       "matchers": ['team="ops"']}]},
                "receivers": [{"name": "ops"}]}
    existing["route"]["routes"] = snippet["route"]["routes"] + existing["route"]["routes"]
    existing["receivers"] += snippet["receivers"]
    (tmp_path / "am.yml").write_text(yaml.safe_dump(existing))
    done = subprocess.run(["amtool", "check-config", str(tmp_path / "am.yml")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
@needs_amtool
@pytest.mark.parametrize("policy", [GOLDEN / "policy.yml", EXAMPLE], ids=["golden", "examples-local"])
def test_check_passes_the_generated_side_through_the_tools(policy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(policy)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "ok promtool check rules" in printed and "ok amtool check-config" in printed
    assert "promtool check config" in printed


BAD_RULES = """
server: {auth: {insecure_no_auth: true}}
groups:
  web: {provider: {type: fake}, max_size: 3}
rules:
  groups:
    - name: fine
      rules:
        - {record: up_ratio, expr: avg(up)}
    - name: broken
      rules:
        - {alert: Fine, expr: up == 0}
        - {alert: HighLoad, expr: 'rate(x[5m]', for: 1m, group: web}
        - {record: templ, expr: 'sum(up'}
"""


@needs_promtool
def test_check_names_the_rule_promtool_rejects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "bad.yml"
    policy.write_text(BAD_RULES)
    assert main(["check", str(policy)]) == EXIT_NO
    err = capsys.readouterr().err
    assert "rules.groups[1].rules[1] (alert HighLoad): promtool: " in err
    assert "rules.groups[1].rules[2] (record templ): promtool: " in err
    assert "unclosed left parenthesis" in err  # promtool's own words
    assert "rules.groups[1].rules[0]" not in err and "rules.groups[0]" not in err
    assert "Traceback" not in err and str(tmp_path / "alertscaler-check") not in err


@needs_promtool
def test_rule_by_rule_fallback_finds_the_culprit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If promtool's message cannot be mapped, each rule is checked on its own."""
    monkeypatch.setattr(validate_module, "_mapped_rule_errors", lambda inp, output: [])
    policy = load_policy(BAD_RULES)
    inp = RenderInput(source="bad.yml", server_url=policy.server.url, rules=policy.rules)
    reports = {r.check: r for r in validate(inp, tmp_path)}
    rules = reports["promtool check rules"]
    assert rules.status == "failed"
    assert [p.split(":")[0] for p in rules.problems] == [
        "rules.groups[1].rules[1] (alert HighLoad)", "rules.groups[1].rules[2] (record templ)"]


@needs_amtool
def test_amtool_rejection_fails_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A receiver amtool refuses (Alertmanager 0.25 has no webhook timeout) makes check exit 1."""
    import alertscaler.confgen.alertmanager as am

    original = am.receiver
    monkeypatch.setattr(am, "receiver", lambda inp: {**original(inp), "webhook_configs": [
        {**original(inp)["webhook_configs"][0], "timeout": "10s"}]})
    policy = tmp_path / "p.yml"
    policy.write_text(MINIMAL)
    assert main(["check", str(policy)]) == EXIT_NO
    err = capsys.readouterr().err
    assert "alertmanager: amtool: " in err and "timeout" in err


QUERIES = """
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    max_size: 4
    scale_out:
      matchers: ['alertname="A"']
      adjustment: 1
      guard: 'sum(rate(http_requests_total[1m]) > 1'
      size_by: {query: 'sum(rate(http_requests_total[1m]))', per_instance: 3}
    track: {metrics: [{query: 'avg(load5)', target: 2}, {query: 'avg(y) by (', target: 2}]}
"""


@needs_promtool
def test_check_validates_the_policy_files_own_promql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "q.yml"
    policy.write_text(QUERIES)
    assert main(["check", str(policy)]) == EXIT_NO
    err = capsys.readouterr().err
    assert "failed promtool check rules (queries): promtool rejected PromQL in the policy file" in err
    assert "groups.web.track.metrics[1].query: promtool: 1:12: parse error: unclosed left parenthesis" in err
    assert "groups.web.scale_out.guard: promtool: 1:38: parse error: unclosed left parenthesis" in err
    assert "size_by" not in err and "metrics[0]" not in err, "valid queries are not named"
    policy.write_text(QUERIES.replace("[1m]) > 1'", "[1m])) > 1'").replace("by (", "by (job)"))
    assert main(["check", str(policy)]) == EXIT_OK
    assert "ok promtool check rules (queries): 4 queries valid PromQL" in capsys.readouterr().out
