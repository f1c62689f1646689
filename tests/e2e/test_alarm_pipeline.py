"""Alarm states end to end and all real: an Aodh/Ceilometer threshold alarm and a Monasca expression alarm of the
policy file, compiled by ``alertscaler render`` into the rule file Prometheus loads, evaluated on metrics the test
exposes on loopback (the harness's control exporter), delivered by Alertmanager to alertscaler (its own process,
SQLite store). Each goes ALARM when its metric crosses the threshold and OK when it returns; the threshold
alarm's ``scale://`` action scales the group; when the metric disappears the missing-data rule makes the threshold
alarm INSUFFICIENT_DATA, and it is OK again once the metric is back. Both leave their initial state for OK as soon
as their data is there. Every transition is in the alarm's history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Pipeline, needs_stack

pytestmark = [pytest.mark.e2e, needs_stack]

POLICY = """
scrape: {scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}
alertmanager: {group_wait: 1s, group_interval: 1s, repeat_interval: 1h}
groups:
  web:
    provider: {type: fake, initial: 1}
    min_size: 1
    max_size: 6
    desired: 1
    scale_out: {matchers: ['alertname="NotThisOne"'], adjustment: 1, cooldown: 1h}
alarms:
  load_high:                      # ceilometer alarm-threshold-create, translated
    description: the web tier is overloaded
    meter_name: control_value
    query: name=load
    statistic: max
    comparison_operator: gt
    threshold: 50
    period: 2
    evaluation_periods: 1
    alarm_actions: ['scale://web/scale_out', 'log://']
    ok_actions: ['log://']
    insufficient_data_actions: ['log://']
  queue_deep:                     # a Monasca alarm definition
    expression: last(control_value{name=queue}) > 10 or last(control_value{name=errors}) gte 5
    match_by: [instance]
    severity: HIGH
"""


def alarm(pipe: Pipeline, name: str) -> dict[str, Any]:
    response = pipe.http.get("/api/v1/alarms")
    assert response.status_code == 200, response.text
    [found] = [a for a in response.json() if a["name"] == name]
    return found  # type: ignore[no-any-return]


def history(pipe: Pipeline, name: str) -> list[tuple[str, str]]:
    response = pipe.http.get(f"/api/v1/alarms/{name}/history")
    assert response.status_code == 200, response.text
    return [(t["old"], t["new"]) for t in reversed(response.json())]  # oldest first


def test_a_threshold_alarm_and_a_monasca_alarm_follow_their_metrics(tmp_path: Path) -> None:
    with Pipeline(tmp_path, POLICY) as pipe:
        pipe.control.set("load", 10)
        pipe.control.set("queue", 1)
        pipe.control.set("errors", 0)
        pipe.wait(lambda: pipe.query('control_value{name="errors"}'), timeout=60, what="the metrics scraped")
        # out of Aodh's initial state (insufficient data) as soon as its data-present rule fires
        pipe.wait(lambda: alarm(pipe, "load_high")["state"] == "ok", timeout=60, what="load_high OK with data")
        pipe.wait(lambda: alarm(pipe, "queue_deep")["shown"] == "OK", timeout=60, what="queue_deep OK with data")

        pipe.control.set("load", 100)
        pipe.wait(lambda: alarm(pipe, "load_high")["state"] == "alarm", timeout=60, what="load_high in ALARM")
        pipe.wait(lambda: pipe.group("web")["desired"] == 2, timeout=60, what="load_high's scale:// action")
        [scaled] = [d for d in pipe.decisions(group="web") if d["outcome"] == "acted"]
        assert (scaled["policy"], scaled["alerts"][0]["labels"]["alertscaler_alarm"]) == ("scale_out", "load_high")

        pipe.control.set("load", 10)
        pipe.wait(lambda: alarm(pipe, "load_high")["state"] == "ok", timeout=60, what="load_high back to OK")

        pipe.control.set("queue", 50)
        busy = pipe.wait(lambda: (a := alarm(pipe, "queue_deep"))["state"] == "alarm" and a, timeout=60,
                         what="queue_deep in ALARM")
        [dims] = [s["dimensions"] for s in busy["states"]]
        assert dims == {"instance": pipe.control.address} and busy["shown"] == "ALARM"
        pipe.control.set("errors", 7)  # the other side of the or holds: still ALARM ...
        pipe.control.set("queue", 1)  # ... (set second: no scrape sees neither breaching)
        pipe.wait(lambda: pipe.query('control_value{name="queue"} == 1'), timeout=30, what="queue at 1")
        pipe.control.set("errors", 0)
        pipe.wait(lambda: alarm(pipe, "queue_deep")["shown"] == "OK", timeout=60, what="queue_deep back to OK")

        del pipe.control.values["load"]  # the metric disappears: missing data is an alert too
        pipe.wait(lambda: alarm(pipe, "load_high")["shown"] == "insufficient data", timeout=60,
                  what="load_high INSUFFICIENT_DATA once its metric is gone")
        pipe.control.set("load", 10)
        pipe.wait(lambda: alarm(pipe, "load_high")["state"] == "ok", timeout=60, what="load_high OK with data back")

        assert history(pipe, "load_high") == [("insufficient_data", "ok"), ("ok", "alarm"), ("alarm", "ok"),
                                              ("ok", "insufficient_data"), ("insufficient_data", "ok")]
        assert history(pipe, "queue_deep") == [("insufficient_data", "ok"), ("ok", "alarm"), ("alarm", "ok")]
        assert pipe.group("web")["desired"] == 2  # OK and missing data never scale
