"""Target tracking end to end: real local instances under a real request rate, Prometheus scraping them,
alertscaler querying Prometheus every interval — a rising rate is met with the right number of instances
in ONE decision (no step-by-step climb as with alert-driven +1 policies). Two groups track, so the service
asks Prometheus their queries in one combined request (``ingest.combining``) and each gets its own value.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from alertscaler.demo.loadgen import LoadGenerator
from tests.e2e.harness import Pipeline, needs_stack

pytestmark = [pytest.mark.e2e, needs_stack]

INTERVAL = 10.0
# offered requests/s per member (503s included: the load the group is asked to carry)
PER_INSTANCE = ('sum(rate(workload_requests_total{alertscaler_group="web"}[5s]))'
                ' / count(up{job="alertscaler", alertscaler_group="web"})')
POLICY = f"""
scrape: {{scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}}
alertmanager: {{group_wait: 1s, group_interval: 1s, repeat_interval: 30s}}
groups:
  web:
    provider: {{type: local, workload: {{service_time: 100ms, concurrency: 2}}}}   # 20 req/s each
    min_size: 1
    max_size: 6
    desired: 1
    track:
      metrics: [{{query: '{PER_INSTANCE}', target: 13}}]
      interval: {INTERVAL:g}s
      tolerance: 0.2             # a 1 s scrape makes rate() over 5 s noisy by a few %
  idle:                          # no load: its own query answers 0 per instance, never web's value
    provider: {{type: local, workload: {{service_time: 100ms, concurrency: 2}}}}
    min_size: 1
    max_size: 2
    desired: 1
    track:
      metrics: [{{query: '{PER_INSTANCE.replace('"web"', '"idle"')}', target: 13}}]
      interval: {INTERVAL:g}s
"""


def tracking(p: Pipeline, group: str = "web") -> list[dict[str, object]]:
    return [d for d in p.decisions(group=group) if d["policy"] == "track"]


def test_a_rising_request_rate_gets_the_right_number_of_instances_in_one_decision(tmp_path: Path) -> None:
    with Pipeline(tmp_path, POLICY) as p:
        p.wait(lambda: p.group("web")["current"] == 1, 30, "the initial instance")
        first = p.wait(lambda: tracking(p), 30, "the first tracking evaluation")[0]
        # start the load right after an evaluation, so the next one sees a whole 5 s rate window of it
        t0 = datetime.fromisoformat(str(first["decided_at"])).timestamp()
        p.wait(lambda: (time.time() - t0) % INTERVAL < 1.5, INTERVAL + 2, "just after an evaluation")
        gen = LoadGenerator(lambda t: 50.0, targets_url=f"{p.stack.alertscaler_url}/api/v1/targets",
                            group="web", poll_interval=0.5)
        runner = threading.Thread(target=lambda: asyncio.run(gen.run(None)), daemon=True)
        runner.start()
        try:
            # 50 req/s on one instance = 50 per instance against a target of 13: ceil(3.85) = 4 instances
            p.wait(lambda: p.group("web")["current"] == 4, 60, "4 instances")
            time.sleep(2 * INTERVAL + 1)  # real time (e2e): two more evaluations at 12.5 per instance, within tolerance
        finally:
            gen.stop()
            runner.join(15)
        acted = [(d["from_capacity"], d["to_capacity"], d["reason"]) for d in tracking(p) if d["outcome"] == "acted"]
        assert acted == [(1, 4, "scaled")], tracking(p)
        assert p.group("web")["current"] == 4
        (decision,) = [d for d in tracking(p) if d["outcome"] == "acted"]
        seen = re.search(r"metric value\(s\) ([\d.]+)", str(decision["message"]))
        assert seen is not None and 40 <= float(seen.group(1)) <= 60, decision["message"]
        idle = tracking(p, "idle")
        # idle's newest evaluation (the first may come before its member is scraped: "missing") has its own 0
        assert idle and re.search(r"metric value\(s\) 0[:.]", str(idle[-1]["message"])), [d["message"] for d in idle]
        assert p.group("idle")["current"] == 1
        # the two groups' queries went to Prometheus together: one request per cycle, two evaluations
        metrics = dict(re.findall(r"^(alertscaler_tracking_\w+) ([\d.e+]+)$", p.metrics(), re.MULTILINE))
        cycles = float(metrics["alertscaler_tracking_cycle_seconds_count"])
        assert cycles >= 3 and float(metrics["alertscaler_tracking_groups_evaluated_total"]) == 2 * cycles, metrics
        assert float(metrics["alertscaler_tracking_prometheus_requests_total"]) == cycles, metrics
