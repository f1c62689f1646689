"""``rules sync`` against a REAL Prometheus: installs, confirms, refuses bad rules, rolls back."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alertscaler.cli import EXIT_NO, EXIT_OK, main
from alertscaler.confgen.syncing import SyncError, SyncResult, sync_rules
from alertscaler.config import load_policy
from alertscaler.config.render_input import RenderInput
from alertscaler.demo.stack import Stack
from alertscaler.prometheus.client import PrometheusClient

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("promtool")),
                       reason="needs the Debian package prometheus (prometheus, promtool)"),
]

POLICY = """
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    max_size: 3
    scale_out: {matchers: ['alertname="HighLoad"'], adjustment: 1}
rules:
  groups:
    - name: alertscaler-web
      rules:
        - record: web:load:avg
          expr: avg(up)
        - alert: HighLoad
          expr: EXPR
          for: 1m
          group: web
"""


def policy(expr: str = "web:load:avg > 0.8") -> str:
    return POLICY.replace("EXPR", expr)


def prometheus_yml(rule_glob: str) -> str:
    return f"global: {{evaluation_interval: 1s}}\nrule_files: ['{rule_glob}']\nscrape_configs: []\n"


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[Stack, Path]]:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (tmp_path / "prometheus.yml").write_text(prometheus_yml(f"{rules_dir}/*.yml"))
    with Stack(tmp_path / "stack", watchdog=False, handle_signals=False) as stack:
        stack.start_prometheus(tmp_path / "prometheus.yml")
        yield stack, rules_dir


def sync(inp: RenderInput, rules_dir: Path, url: str) -> SyncResult:
    """``sync_rules`` through the one Prometheus client, as ``rules sync`` does."""
    with PrometheusClient(url) as prometheus:
        return sync_rules(inp, rules_dir, "alertscaler.rules.yml", prometheus)


def loaded(stack: Stack) -> dict[str, list[str]]:
    groups = httpx.get(f"{stack.prometheus_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    return {g["name"]: [r["name"] for r in g["rules"]] for g in groups}


def test_sync_installs_confirms_and_is_idempotent(prometheus: tuple[Stack, Path], tmp_path: Path) -> None:
    stack, rules_dir = prometheus
    (tmp_path / "policy.yml").write_text(policy())
    inp = load_policy(policy()).render_input("policy.yml")
    result = sync(inp, rules_dir, stack.prometheus_url)
    assert result.changed and (result.groups, result.rules) == (1, 2)
    assert loaded(stack) == {"alertscaler-web": ["web:load:avg", "HighLoad"]}
    assert [p.name for p in rules_dir.iterdir()] == ["alertscaler.rules.yml"]  # no temporary files left
    again = sync(inp, rules_dir, stack.prometheus_url)
    assert not again.changed


def test_rules_promtool_rejects_never_reach_prometheus(prometheus: tuple[Stack, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    stack, rules_dir = prometheus
    good = tmp_path / "good.yml"
    good.write_text(policy() + f"prometheus: {{url: '{stack.prometheus_url}', rules_dir: '{rules_dir}'}}\n")
    assert main(["rules", "sync", "-c", str(good)]) == EXIT_OK
    before = (rules_dir / "alertscaler.rules.yml").read_text()

    bad = tmp_path / "bad.yml"
    bad.write_text(policy("rate(up[5m]") + f"prometheus: {{url: '{stack.prometheus_url}', rules_dir: '{rules_dir}'}}\n")
    capsys.readouterr()
    assert main(["rules", "sync", "-c", str(bad)]) == EXIT_NO
    err = capsys.readouterr().err
    assert "promtool rejected the generated rules; nothing changed" in err
    assert "rules.groups[0].rules[1] (alert HighLoad): promtool:" in err
    assert (rules_dir / "alertscaler.rules.yml").read_text() == before
    assert sorted(p.name for p in rules_dir.iterdir()) == ["alertscaler.rules.yml"]
    assert loaded(stack) == {"alertscaler-web": ["web:load:avg", "HighLoad"]}


def test_rules_prometheus_does_not_load_are_rolled_back(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    previous = "groups: []\n"
    (rules_dir / "alertscaler.rules.yml").write_text(previous)
    (tmp_path / "prometheus.yml").write_text(prometheus_yml(f"{tmp_path}/elsewhere/*.yml"))  # not our dir
    with Stack(tmp_path / "stack", watchdog=False, handle_signals=False) as stack:
        stack.start_prometheus(tmp_path / "prometheus.yml")
        inp = load_policy(policy()).render_input("policy.yml")
        with pytest.raises(SyncError) as info:
            sync(inp, rules_dir, stack.prometheus_url)
        assert info.value.rolled_back
        assert "not loaded from" in str(info.value) and "rule_files" in str(info.value)
        assert "previous rules restored and reloaded" in str(info.value)
        assert (rules_dir / "alertscaler.rules.yml").read_text() == previous


def test_unreachable_prometheus_leaves_no_new_file(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    inp = load_policy(policy()).render_input("policy.yml")
    with pytest.raises(SyncError) as info:
        sync(inp, rules_dir, "http://127.0.0.1:1")
    assert "cannot reach Prometheus" in str(info.value) and info.value.rolled_back
    assert not (rules_dir / "alertscaler.rules.yml").exists()
