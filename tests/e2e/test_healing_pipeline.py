"""Healing end to end, all real: Prometheus scrapes the group's real local instances (found through
alertscaler's http_sd, each labelled ``alertscaler_member``); ``kill -9`` one → ``up == 0`` → the real rule
``InstanceDown`` fires → Alertmanager delivers → alertscaler replaces the member (new one first) and
Prometheus scrapes the replacement. Killing most members at once freezes healing (nothing destroyed); a
member slot that keeps dying is quarantined after ``flap.heals`` heals.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Pipeline, needs_stack

pytestmark = [pytest.mark.e2e, needs_stack]

INTERVALS = """
scrape: {scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}
alertmanager: {group_wait: 1s, group_interval: 1s, repeat_interval: 2s}
"""


def policy(size: int) -> str:
    return INTERVALS + f"""
groups:
  web:
    provider: {{type: local, workload: {{service_time: 10ms, concurrency: 4}}}}
    min_size: 1
    max_size: 6
    desired: {size}
    heal:
      matchers: ['alertname="InstanceDown"']
      provider_status: false          # only the real alert path, in this test
      grace: 3s
      batch_window: 2s
      budget: 1
      flap: {{heals: 2, period: 1h}}
rules:
  groups:
    - name: e2e-heal
      rules:
        - alert: InstanceDown
          expr: up{{job="alertscaler"}} == 0
          for: 0s
          group: web
"""


def members(p: Pipeline) -> list[dict[str, Any]]:
    return list(p.group("web")["members"])


def running(p: Pipeline) -> set[str]:
    return {m["id"] for m in members(p) if m["state"] == "running"}


def kill(p: Pipeline, member_id: str) -> None:
    (m,) = [m for m in members(p) if m["id"] == member_id]
    os.kill(int(m["labels"]["pid"]), signal.SIGKILL)


def age(p: Pipeline, member_id: str) -> float:
    (m,) = [m for m in members(p) if m["id"] == member_id]
    return (datetime.now(UTC) - datetime.fromisoformat(m["created_at"])).total_seconds()


def scraped_up(p: Pipeline, member_id: str) -> bool:
    return any(r["value"][1] == "1" for r in p.query(f'up{{alertscaler_member="{member_id}"}}'))


def heal_actions(p: Pipeline) -> list[dict[str, Any]]:
    return [a for a in p.actions(group="web") if a.get("kind") == "heal"]


def test_a_killed_instance_is_replaced_and_scraped_then_a_flapping_slot_is_quarantined(tmp_path: Path) -> None:
    with Pipeline(tmp_path, policy(3)) as p:
        p.wait(lambda: len(running(p)) == 3, 60, "three running instances")
        p.wait(lambda: all(scraped_up(p, m) for m in running(p)), 30, "Prometheus scraping all three")
        slot = sorted(running(p))[0]
        victim = slot
        for round_ in range(1, 3):  # healed twice: each replacement takes the slot over
            before = running(p)
            kill(p, victim)
            p.wait(lambda n=round_: len([a for a in heal_actions(p) if a["state"] == "succeeded"]) == n, 60,
                   f"heal {round_} of {victim}")
            (new,) = p.wait(lambda b=before: running(p) - b, 30, "the replacement")
            assert victim not in {m["id"] for m in members(p)}
            assert len(running(p)) == 3
            p.wait(lambda n=new: scraped_up(p, n), 30, "Prometheus scraping the replacement")
            victim = new
            p.wait(lambda n=new: age(p, n) > 3.5, 30, "the replacement past its grace period")
            p.wait(lambda: not any(a["labels"].get("alertname") == "InstanceDown"
                                   for a in _firing(p)), 30, "InstanceDown resolved")
        healed = p.decisions(group="web", reason="healed")
        assert [d["alerts"][0]["member"] for d in healed][:1] == [slot]

        # the slot dies a third time: quarantined (out of the group, kept), the size restored by a scale
        before = running(p)
        kill(p, victim)
        p.wait(lambda: p.decisions(group="web", reason="quarantined"), 60, "the quarantine")
        p.wait(lambda: len(running(p)) == 3 and victim not in {m["id"] for m in members(p)}, 60,
               "the size restored without the quarantined member")
        assert len(running(p) - before) == 1
        (quarantined,) = p.decisions(group="web", reason="quarantined")
        assert "healed 2 times" in quarantined["message"]


def test_most_instances_down_at_once_freezes_healing(tmp_path: Path) -> None:
    with Pipeline(tmp_path, policy(3)) as p:
        p.wait(lambda: len(running(p)) == 3, 60, "three running instances")
        p.wait(lambda: all(scraped_up(p, m) for m in running(p)), 30, "Prometheus scraping all three")
        victims = sorted(running(p))[:2]
        for victim in victims:  # 2 of 3 at once: more likely the monitoring path than the instances
            kill(p, victim)
        frozen = p.wait(lambda: len(p.decisions(group="web", reason="frozen")) >= 2, 60, "the freeze")
        assert frozen
        assert heal_actions(p) == []
        assert {m["id"] for m in members(p)} >= set(victims)  # nothing destroyed: still members (failed)
        assert all("nothing destroyed" in d["message"] for d in p.decisions(group="web", reason="frozen"))


def _firing(p: Pipeline) -> list[dict[str, Any]]:
    import httpx

    response = httpx.get(f"{p.stack.prometheus_url}/api/v1/alerts", timeout=10)
    return [a for a in response.json()["data"]["alerts"] if a["state"] == "firing"]
