"""End to end, all real: Prometheus scrapes real local instances found through alertscaler's http_sd, real
rules fire, real Alertmanager delivers, alertscaler scales the real processes. Intervals are 1 s so the
suite runs in a few minutes. The reaction-time breakdown of every acted decision is printed (-s to see it).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from alertscaler.demo.loadgen import LoadGenerator
from tests.e2e.harness import Pipeline, breakdown, needs_stack

pytestmark = [pytest.mark.e2e, needs_stack]

INTERVALS = """
scrape: {scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}
alertmanager: {group_wait: 1s, group_interval: 1s, repeat_interval: 2s}
"""


def steady(result: list[dict[str, Any]]) -> float | None:
    """The value of a one-series instant query if it lies strictly between 0.25 and 0.7, else None."""
    if len(result) != 1:
        return None
    value = float(result[0]["value"][1])
    return value if 0.25 < value < 0.7 else None


def test_persistent_alerts_step_to_max_resends_never_double_resolved_stops(tmp_path: Path) -> None:
    policy = INTERVALS + """
groups:
  web:
    provider: {type: local, workload: {service_time: 10ms, concurrency: 4}}
    min_size: 1
    max_size: 6
    desired: 1
    scale_out: {matchers: ['alertname="KeepAdding"', 'alertscaler_group="web"'], adjustment: 1, cooldown: 3s}
  batch:
    provider: {type: fake}
    min_size: 1
    max_size: 3
    desired: 1
    scale_out: {matchers: ['alertname="Fill"', 'alertscaler_group="batch"'], adjustment: 1, cooldown: 2s}
rules:
  groups:
    - name: e2e
      rules:
        - alert: KeepAdding
          expr: control_value{name="add"} > 0
          for: 0s
          group: web
        - alert: Fill
          expr: control_value{name="fill"} > 0
          for: 0s
          group: batch
"""
    with Pipeline(tmp_path, policy) as p:
        p.wait(lambda: p.group("web")["current"] == 1, 30, "the initial instance")
        p.control.set("fill", 1)  # stays firing: batch steps to its max and stops there
        p.control.set("add", 1)
        # one step per cooldown, with no new notification needed: 1 -> 2 -> 3
        p.wait(lambda: p.group("web")["current"] >= 3, 60, "two steps of a persistent alert")
        p.control.set("add", 0)
        p.wait(lambda: any(d["reason"] == "resolved" for d in p.decisions(group="web")), 30, "resolved")
        size = p.group("web")["desired"]
        p.wait(lambda: p.group("web")["current"] == size, 30, "last action done")
        # a resolved alert stops it: two more cooldowns pass without a step
        resolved_at = next(d["id"] for d in p.decisions(group="web") if d["reason"] == "resolved")
        time.sleep(7)  # real time: e2e
        decisions = p.decisions(group="web")
        assert not [d for d in decisions if d["id"] > resolved_at and d["outcome"] == "acted"]
        assert p.group("web")["desired"] == size

        acted = [d for d in decisions if d["outcome"] == "acted" and d["reason"] == "scaled"]
        steps = [(d["from_capacity"], d["to_capacity"]) for d in acted]
        assert steps == [(n, n + 1) for n in range(1, size)], steps
        assert {d["trigger"] for d in acted[1:]} == {"timer"}  # later steps came from alertscaler's timer
        # Alertmanager re-sent the firing alert (repeat_interval 2s): recognised, never acted on
        duplicates = [d for d in decisions if d["reason"] == "duplicate"]
        assert duplicates, "expected Alertmanager re-sends"
        actions = p.actions(group="web")
        assert len(actions) == len(acted) + 1  # + the reconcile 0 -> 1 at start
        assert all(a["state"] == "succeeded" for a in actions)
        # Prometheus scrapes exactly the live instances, found through http_sd
        p.wait(lambda: len(p.query('up{job="alertscaler"} == 1')) == size, 20, "Prometheus scraping every member")
        print("\n" + breakdown(decisions))

        batch = p.decisions(group="batch")
        assert [(d["from_capacity"], d["to_capacity"]) for d in batch if d["reason"] == "scaled"] == [(1, 2), (2, 3)]
        assert [d["reason"] for d in batch if d["outcome"] == "skipped" and d["reason"] != "duplicate"] == ["at_max"]
        assert p.group("batch")["current"] == 3


def test_real_load_scales_out_then_in(tmp_path: Path) -> None:
    # 100 ms per request, 2 slots: 20 req/s per instance. 45 req/s needs 3 instances at 75 %, 4 at 56 %.
    policy = INTERVALS + """
groups:
  web:
    provider: {type: local, workload: {service_time: 100ms, concurrency: 2}}
    min_size: 1
    max_size: 4
    desired: 1
    scale_out: {matchers: ['alertname="HighLoad"', 'alertscaler_group="web"'], adjustment: 1, cooldown: 4s}
    scale_in: {matchers: ['alertname="LowLoad"', 'alertscaler_group="web"'], adjustment: -1, cooldown: 3s}
rules:
  groups:
    - name: e2e
      rules:
        - alert: HighLoad
          expr: avg by (alertscaler_group) (workload_utilisation{alertscaler_group="web"}) > 0.7
          for: 2s
          group: web
        - alert: LowLoad
          expr: avg by (alertscaler_group) (workload_utilisation{alertscaler_group="web"}) < 0.25
          for: 3s
          group: web
"""
    with Pipeline(tmp_path, policy) as p:
        p.wait(lambda: p.group("web")["current"] == 1, 30, "the initial instance")
        rate = {"value": 45.0}
        gen = LoadGenerator(lambda t: rate["value"], targets_url=f"{p.stack.alertscaler_url}/api/v1/targets",
                            group="web", poll_interval=0.5)
        runner = threading.Thread(target=lambda: asyncio.run(gen.run(None)), daemon=True)
        runner.start()
        try:
            p.wait(lambda: p.group("web")["current"] == 4, 120, "scale out under load to 4")
            p.wait(lambda: len(gen.stats().per_target) == 4, 10, "the load spread over the 4th instance too")
            # 45 req/s x 100 ms over 4 x 2 slots = 0.56: between LowLoad (< 0.25) and HighLoad (> 0.7), so
            # 4 is where the group settles (the 5 s utilisation window first forgets the 3-instance load)
            util = p.wait(lambda: steady(p.query('avg(workload_utilisation{alertscaler_group="web"})')), 30,
                          "utilisation at 4 instances between the LowLoad and HighLoad thresholds")
            rate["value"] = 0.0
            p.wait(lambda: p.group("web")["current"] == 1, 120, "scale in after the load")
        finally:
            gen.stop()
            runner.join(15)
        decisions = p.decisions(group="web")
        outs = [(d["from_capacity"], d["to_capacity"]) for d in decisions
                if d["outcome"] == "acted" and d["policy"] == "scale_out"]
        ins = [(d["from_capacity"], d["to_capacity"]) for d in decisions
               if d["outcome"] == "acted" and d["policy"] == "scale_in"]
        assert outs == [(1, 2), (2, 3), (3, 4)]
        assert ins == [(4, 3), (3, 2), (2, 1)]
        # LowLoad keeps firing at min_size: refused as at_min (not scaled, not an error)
        p.wait(lambda: [d for d in p.decisions(group="web") if d["reason"] == "at_min"], 30,
               "a LowLoad at min_size recorded as at_min")
        stats = gen.stats()
        assert stats.totals.ok > 0 and len(stats.per_target) >= 4  # requests reached every instance
        print(f"\nload: {stats.totals}\nutilisation at 4 instances: {util}")
        print(breakdown(decisions))
        # reconcile 0 -> 1 at start + 3 out + 3 in, all succeeded (the last one once its victim has drained: the
        # group counts 1 as soon as the victim leaves, and the action ends after the 13 s drain)
        succeeded = r'alertscaler_actions_total\{alertscaler_group="web",result="succeeded"\} 7\.0'
        p.wait(lambda: re.search(succeeded, p.metrics()),
               30, f"7 succeeded actions; actions: {p.actions()}")
        drained = [a["result"] for a in p.actions() if "drain" in (a["result"] or "")]
        assert len(drained) == 3 and all("after a 13s drain" in r for r in drained), drained
