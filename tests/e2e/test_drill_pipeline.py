"""``alertscaler drill`` end to end, all real: the CLI (a real process) posts the drill alert to the real
Alertmanager, whose generated route and webhook receiver deliver it to the real service, which decides it apart
(``drill``) and changes nothing. A good configuration passes and prints the hops; a route that sends the drill's
labels to a receiver that sends nothing fails at the ``routed`` hop, and a webhook aimed at the wrong port fails at
``received`` — each named, exit 1. Desired, the cooldown clocks and the actions never move for a drill, even in a
group that is not dry-run, and even when the drill joins a group with a real firing alert.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.harness import Pipeline, needs_stack

pytestmark = [pytest.mark.e2e, needs_stack]

AM_PLACEHOLDER = "http://127.0.0.1:1"
POLICY = f"""
scrape: {{scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}}
alertmanager: {{url: "{AM_PLACEHOLDER}", group_wait: 1s, group_interval: 1s, repeat_interval: 30s}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 5
    desired: 2
    scale_out: {{matchers: ['alertname="Busy"', 'alertscaler_group="web"'], adjustment: 1, cooldown: 1h}}
    scale_in: {{matchers: ['alertname="Idle"', 'alertscaler_group="web"'], adjustment: -1, cooldown: 1h}}
rules:
  groups:
    - name: e2e
      rules:
        - alert: Busy
          expr: control_value{{name="busy"}} > 0
          for: 0s
          group: web
"""


def pipeline(tmp_path: Path) -> Pipeline:
    p = Pipeline(tmp_path, POLICY)
    p.policy_file.write_text(p.policy_file.read_text().replace(AM_PLACEHOLDER, p.stack.alertmanager_url))
    return p


def drill(p: Pipeline, *args: str) -> tuple[int, str]:
    argv = [sys.executable, "-m", "alertscaler.cli", "drill", "web", *args, "-c", str(p.policy_file)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "250"})
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    print(output)  # -s shows the drill's hops
    return done.returncode, output


def untouched(p: Pipeline, desired: int, actions: int) -> dict[str, Any]:
    """desired as the real alerts left it, no other action (``actions``: how many there are), no drill alert
    believed firing (the re-evaluation timer would step it)."""
    group = p.group("web")
    assert group["desired"] == desired
    assert len(p.actions(group="web")) == actions
    assert not [a for a in p.http.get("/api/v1/alerts/active").json() if "alertscaler_drill" in a["labels"]]
    return group


def reload_alertmanager(p: Pipeline, config: dict[str, Any]) -> None:
    (p.generated / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    assert httpx.post(f"{p.stack.alertmanager_url}/-/reload", timeout=10).status_code == 200


def test_a_drill_passes_on_the_generated_config_and_changes_nothing(tmp_path: Path) -> None:
    with pipeline(tmp_path) as p:
        p.wait(lambda: p.group("web")["current"] == 2, 30, "the initial size")
        start = len(p.actions(group="web"))  # the fake group's reconcile to its initial size
        code, output = drill(p)
        assert code == 0, output
        for hop in ("Alertmanager accepted", "Alertmanager routed", "webhook received", "decided"):
            assert hop in output
        assert "to receiver 'alertscaler'" in output and "would have scale 2 -> 3" in output
        assert "drill passed" in output
        group = untouched(p, desired=2, actions=start)
        assert group["last_scale_out_at"] is None and group["current"] == 2
        drills = p.wait(lambda: [d for d in p.decisions(reason="drill") if "resolved" in d["message"]], 30,
                        "the drill's resolve, recorded as a no-op")
        assert drills and all(d["outcome"] == "skipped" for d in p.decisions(reason="drill"))

        # scale_in, --json: what the policy would have done, machine-readable
        code, output = drill(p, "scale_in", "--json")
        assert code == 0, output
        report = yaml.safe_load(output[output.index("{"):])
        assert report["passed"] and report["failed_hop"] is None
        assert [h["name"] for h in report["hops"]] == ["accepted", "routed", "received", "decided"]
        assert all(h["ok"] and h["at_s"] is not None for h in report["hops"])
        assert (report["decision"]["from_capacity"], report["decision"]["to_capacity"]) == (2, 1)
        untouched(p, desired=2, actions=start)

        # the drill joins Alertmanager's group of a real firing alert: the real one scales once, the drill nothing
        p.control.set("busy", 1)
        p.wait(lambda: p.group("web")["desired"] == 3, 60, "the real alert's step")
        code, output = drill(p, "scale_out")
        assert code == 0, output
        assert "would not have acted (cooldown)" in output
        group = untouched(p, desired=3, actions=start + 1)
        real = [d for d in p.decisions(group="web") if d["outcome"] == "acted" and d["trigger"] != "reconcile"]
        assert [(d["from_capacity"], d["to_capacity"]) for d in real] == [(2, 3)]
        assert group["last_scale_out_at"] == real[0]["decided_at"]  # stamped by the real step only


def test_a_drill_names_the_broken_hop(tmp_path: Path) -> None:
    with pipeline(tmp_path) as p:
        p.wait(lambda: p.group("web")["current"] == 2, 30, "the initial size")
        start = len(p.actions(group="web"))  # the fake group's reconcile to its initial size
        good = yaml.safe_load((p.generated / "alertmanager.yml").read_text())

        # a route before alertscaler's sends Busy to a receiver that sends nothing
        broken = yaml.safe_load(yaml.safe_dump(good))
        broken["route"]["routes"] = [{"receiver": "null", "matchers": ['alertname="Busy"']}]
        broken["receivers"].append({"name": "null"})
        reload_alertmanager(p, broken)
        code, output = drill(p, "scale_out")
        assert code == 1, output
        assert "drill FAILED at hop 'Alertmanager routed'" in output
        assert "routed the drill to receiver 'null', which does not send to alertscaler" in output
        assert 'route {alertname="Busy"} → receiver \'null\'' in output
        untouched(p, desired=2, actions=start)

        # the receiver posts to the wrong port: the webhook never arrives
        wrong = yaml.safe_load(yaml.safe_dump(good))
        hook = wrong["receivers"][0]["webhook_configs"][0]
        hook["url"] = hook["url"].replace(f":{p.stack.alertscaler_port}/", ":1/")
        reload_alertmanager(p, wrong)
        code, output = drill(p, "scale_out", "--timeout", "6")
        assert code == 1, output
        assert "drill FAILED at hop 'webhook received'" in output
        assert "webhook never received within 6s" in output and "check the receiver's url" in output
        assert "webhook requests failed" in output
        untouched(p, desired=2, actions=start)
        assert p.group("web")["last_scale_out_at"] is None
