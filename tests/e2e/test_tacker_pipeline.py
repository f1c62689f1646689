"""Tacker's Prometheus plugin replaced by alertscaler, end to end and all real: Prometheus evaluates Tacker-style
rules (labels ``receiver_type: tacker``, ``function_type``, ``vnf_instance_id``, ``aspect_id`` /
``vnfc_info_id``), Alertmanager runs Tacker's documented config (``examples/tacker/alertmanager.yml``: one
receiver per endpoint, routed by ``function_type``; only the host, the token and the intervals changed), and
alertscaler's ``tacker`` section maps the VNF's aspect and VNFCs to two groups of real ``local`` processes.

Scale: the load alert (SCALE_OUT) scales ``vdu1`` by the aspect's step up to ``max_size``; the low-load alert
(SCALE_IN) back to ``min_size``. Heal: three ``vdu2`` instances killed together → three auto-heal alerts within
``timer_interval`` → ONE heal action replacing the three.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.harness import Pipeline, needs_stack

pytestmark = [pytest.mark.e2e, needs_stack]

REPO = Path(__file__).resolve().parents[2]
VNF = "3721ab69-3f33-44bc-85f1-f416ad1b765e"

POLICY = f"""
scrape: {{scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}}
tacker:
  timer_interval: 4s
  aspects: [{{vnf_instance_id: {VNF}, aspect_id: VDU1_aspect, group: vdu1, step: 2, cooldown: 3s}}]
  healing: [{{vnf_instance_id: {VNF}, group: vdu2, vnfc_prefix: VDU2-, budget: 3, grace: 3s}}]
groups:
  vdu1:
    provider: {{type: local, workload: {{service_time: 10ms, concurrency: 4}}}}
    min_size: 1
    max_size: 5
    desired: 1
    drain: 0s
  vdu2:
    provider: {{type: local, workload: {{service_time: 10ms, concurrency: 4}}}}
    min_size: 7
    max_size: 7
    desired: 7
"""


def tacker_rules() -> dict[str, Any]:
    common = {"receiver_type": "tacker", "vnf_instance_id": VNF}
    scale = {**common, "function_type": "auto_scale", "aspect_id": "VDU1_aspect"}
    return {"groups": [{"name": "tacker", "rules": [
        {"alert": "VDU1LoadHigh", "expr": 'control_value{name="vdu1_load"} > 1', "for": "0s",
         "labels": {**scale, "auto_scale_type": "SCALE_OUT"}},
        {"alert": "VDU1LoadLow", "expr": 'control_value{name="vdu1_load"} < 0.5', "for": "0s",
         "labels": {**scale, "auto_scale_type": "SCALE_IN"}},
        {"alert": "VDU2Down", "expr": 'up{alertscaler_group="vdu2"} == 0', "for": "0s",
         "labels": {**common, "function_type": "auto_heal",
                    "vnfc_info_id": "VDU2-{{ $labels.alertscaler_member }}"}},
    ]}]}


def seed_alertmanager(p: Pipeline, token_file: Path) -> dict[str, Any]:
    """``examples/tacker/alertmanager.yml`` (Tacker's documented config) with this stack's alertscaler, the token
    file, and 1 s intervals instead of 30 s."""
    config: dict[str, Any] = yaml.safe_load((REPO / "examples" / "tacker" / "alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s", repeat_interval="2s")
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = hook["url"].replace("http://alertscaler:8080", p.stack.alertscaler_url)
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return config


def running(p: Pipeline, group: str) -> list[dict[str, Any]]:
    return [m for m in p.group(group)["members"] if m["state"] == "running"]


def scraped(p: Pipeline, group: str) -> int:
    return sum(r["value"][1] == "1" for r in p.query(f'up{{alertscaler_group="{group}"}}'))


def test_auto_scale_by_aspect_and_one_heal_for_three_vnfc(tmp_path: Path) -> None:
    p = Pipeline(tmp_path, POLICY)
    (tmp_path / "generated" / "alertmanager.yml").write_text(
        yaml.safe_dump(seed_alertmanager(p, tmp_path / "token"), sort_keys=False))
    rules = tmp_path / "generated" / "tacker-rules.yml"
    rules.write_text(yaml.safe_dump(tacker_rules(), sort_keys=False))
    prom = yaml.safe_load((tmp_path / "generated" / "prometheus.yml").read_text())
    prom["rule_files"] = [*(prom.get("rule_files") or []), str(rules)]
    (tmp_path / "generated" / "prometheus.yml").write_text(yaml.safe_dump(prom, sort_keys=False))
    with p:
        p.wait(lambda: len(running(p, "vdu1")) == 1 and len(running(p, "vdu2")) == 7, 60, "1 + 7 instances")
        p.control.set("vdu1_load", 2)
        p.wait(lambda: p.group("vdu1")["desired"] == 5, 60, "vdu1 scaled out by the aspect to max_size")
        out = [d for d in p.decisions(group="vdu1") if d["outcome"] == "acted" and d["policy"] == "scale_out"]
        assert [d["message"] for d in out[:2]] == ["scale 1 -> 3", "scale 3 -> 5"]
        p.control.set("vdu1_load", 0)
        p.wait(lambda: p.group("vdu1")["desired"] == 1, 60, "vdu1 scaled in to min_size")

        p.wait(lambda: scraped(p, "vdu2") == 7, 60, "Prometheus scraping the seven vdu2 instances")
        victims = sorted(m["id"] for m in running(p, "vdu2"))[:3]
        for m in running(p, "vdu2"):
            if m["id"] in victims:
                os.kill(int(m["labels"]["pid"]), signal.SIGKILL)
        heals = p.wait(lambda: [a for a in p.actions(group="vdu2") if a["kind"] == "heal"
                                and a["state"] == "succeeded"], 90, "the heal")
        (heal,) = heals
        assert sorted(t["member_id"] for t in heal["targets"]) == victims
        healed = [d for d in p.decisions(group="vdu2") if d["reason"] == "healed"]
        assert len(healed) == 1
        p.wait(lambda: len(running(p, "vdu2")) == 7, 60, "seven vdu2 instances again")
