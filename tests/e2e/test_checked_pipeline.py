"""Checked step policies end to end, all real: Prometheus evaluates the rule, Alertmanager delivers it, and
alertscaler re-checks the guard and reads the size_by value in the same Prometheus before acting.

The alert (``Busy``) and the guard look at different series, so the test can make a firing alert stale: it
is skipped as ``guard_failed``; once the guard holds, the still-firing alert is sized from the live load in
ONE decision (1 -> 5 for 45 at 10 per instance), not stepped +1 at a time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import Pipeline, needs_stack

pytestmark = [pytest.mark.e2e, needs_stack]

POLICY = """
scrape: {scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}
alertmanager: {group_wait: 1s, group_interval: 1s, repeat_interval: 30s}
groups:
  web:
    provider: {type: fake}
    min_size: 1
    max_size: 8
    desired: 1
    scale_out:
      matchers: ['alertname="Busy"', 'alertscaler_group="web"']
      adjustment: 1
      cooldown: 30s
      guard: 'control_value{name="still_busy"} > 0'
      size_by: {query: 'control_value{name="load"}', per_instance: 10}
      check_interval: 2s
rules:
  groups:
    - name: e2e
      rules:
        - alert: Busy
          expr: control_value{name="busy"} > 0
          for: 0s
          group: web
"""


def test_a_stale_alert_is_skipped_then_sized_live_in_one_decision(tmp_path: Path) -> None:
    with Pipeline(tmp_path, POLICY) as p:
        p.wait(lambda: p.group("web")["current"] == 1, 30, "the initial instance")
        p.control.set("load", 45)
        p.control.set("still_busy", 0)
        p.control.set("busy", 1)
        skip = p.wait(lambda: [d for d in p.decisions(group="web") if d["reason"] == "guard_failed"], 60,
                      "the stale alert's skip")[0]
        assert (skip["trigger"], skip["outcome"], skip["policy"]) == ("notification", "skipped", "scale_out")
        assert 'control_value{name="still_busy"} > 0 returned no series' in skip["message"]
        assert p.group("web")["desired"] == 1

        p.control.set("still_busy", 1)  # the alert keeps firing; now the guard holds too
        acted = p.wait(lambda: [d for d in p.decisions(group="web") if d["outcome"] == "acted"
                                and d["policy"] == "scale_out"], 60, "the sized step")
        assert [(d["from_capacity"], d["to_capacity"], d["reason"]) for d in acted] == [(1, 5, "scaled")]
        assert "live value 45 at 10 per instance needs 5" in acted[0]["message"]
        p.wait(lambda: p.group("web")["current"] == 5, 30, "5 instances")
