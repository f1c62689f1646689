"""Anomaly scores end to end, all real: a noisy series scraped by Prometheus (the control exporter) shifts to a
new level; alertscaler range-queries it through its Prometheus client, its KS score on /metrics rises from
noise to 1, Prometheus scrapes that score (the job ``render`` adds for it), the README's alert rule on it
fires, Alertmanager delivers, and the group scales out. Intervals of 1 s and windows of 10 s keep it to well
under a minute.
"""

from __future__ import annotations

import random
import re
import threading
from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import Pipeline, needs_stack

pytestmark = [pytest.mark.e2e, needs_stack]

POLICY = """
scrape: {scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}
alertmanager: {group_wait: 1s, group_interval: 1s, repeat_interval: 2s}
anomaly:
  - name: latency
    query: control_value{name="latency"}
    window: 10s
    step: 1s
    interval: 1s
    min_samples: 5
groups:
  web:
    provider: {type: local, workload: {service_time: 10ms, concurrency: 4}}
    min_size: 1
    max_size: 3
    desired: 1
    scale_out: {matchers: ['alertname="LatencyAnomaly"', 'alertscaler_group="web"'], adjustment: 1, cooldown: 1m}
rules:
  groups:
    - name: anomalies
      rules:
        - alert: LatencyAnomaly
          expr: alertscaler_anomaly_score{name="latency", kind="ks"} >= 0.9
          for: 0s
          group: web
"""

_SCORE = re.compile(r'^alertscaler_anomaly_score\{kind="ks",name="latency"\} (\S+)$', re.M)
_P = re.compile(r'^alertscaler_anomaly_p_value\{name="latency"\} (\S+)$', re.M)


class Noise:
    """Sets ``control_value{name="latency"}`` to ``level`` plus uniform noise in [0, 1), four times a second."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.level = 10.0
        self.pipeline = pipeline
        self.stop = threading.Event()
        self.rng = random.Random(7)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.pipeline.control.set("latency", self.level + self.rng.random())
            if self.stop.wait(0.25):  # the pace of the noise, not a wait for a condition
                return


def _read(pattern: re.Pattern[str], text: str) -> float | None:
    match = pattern.search(text)
    return float(match.group(1)) if match else None


def test_a_shift_raises_the_score_and_an_alert_on_it_scales_out(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path, POLICY)
    # with anomaly scores, render's prometheus.yml scrapes alertscaler's own /metrics too
    prom = yaml.safe_load((pipeline.generated / "prometheus.yml").read_text())
    [job] = [j for j in prom["scrape_configs"] if j["job_name"] == "alertscaler-metrics"]
    assert job["static_configs"] == [{"targets": [f"127.0.0.1:{pipeline.stack.alertscaler_port}"]}]
    noise = Noise(pipeline)
    noise.thread.start()
    try:
        with pipeline as p:
            p.wait(lambda: p.group("web")["current"] == 1, 30, "the initial instance")
            # both windows filled with the same noise: a score exists, well below the alert's 0.9
            before = p.wait(lambda: _read(_SCORE, p.metrics()), 40, "a first KS score")
            assert before < 0.9, before
            assert p.group("web")["desired"] == 1
            noise.level = 20.0  # the shift
            p.wait(lambda: (_read(_SCORE, p.metrics()) or 0) == 1.0, 30, "the KS score at 1 after the shift")
            p_value = _read(_P, p.metrics())
            assert p_value is not None and p_value < 0.01
            p.wait(lambda: p.query('alertscaler_anomaly_score{name="latency", kind="ks"} == 1'), 15,
                   "Prometheus scraping the score")
            p.wait(lambda: p.group("web")["desired"] == 2, 30, "the scale-out on the anomaly alert")
            acted = [d for d in p.decisions(group="web") if d["outcome"] == "acted" and d["policy"] == "scale_out"]
            assert acted and acted[0]["to_capacity"] == 2 and acted[0]["trigger"] == "notification"
            p.wait(lambda: p.group("web")["current"] == 2, 30, "the second instance running")
            # the reference window catches up with the new level: the score falls back
            p.wait(lambda: (_read(_SCORE, p.metrics()) or 1) < 0.9, 40, "the score back under 0.9")
    finally:
        noise.stop.set()
        noise.thread.join(timeout=5)
