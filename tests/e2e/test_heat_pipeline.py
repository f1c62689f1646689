"""End to end with a REAL Heat: a Prometheus alert → Alertmanager → alertscaler → the Heat group grows.

Seed 000 without its glue (am-executor, a bash script, curl): Prometheus and Alertmanager are configured by
``alertscaler render``, the rule fires on a gauge the test switches, alertscaler signals the stack's
``scaleup_policy`` through openstacksdk and follows Heat until the new member exists. The resolved
notification that follows is recorded and never signals Heat (Heat's own policy would scale on any POST).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import Pipeline, breakdown, needs_stack
from tests.integration.heat_fixtures import HeatStack

pytest_plugins = ["tests.integration.heat_fixtures"]
pytestmark = [pytest.mark.e2e, needs_stack]

INTERVALS = """
scrape: {scrape_interval: 1s, evaluation_interval: 1s, refresh_interval: 1s}
alertmanager: {group_wait: 1s, group_interval: 1s, repeat_interval: 2s}
"""


def heat_policy(stack: HeatStack) -> str:
    return INTERVALS + f"""
groups:
  tenant:
    provider:
      type: openstack-heat
      auth: {{auth_type: none, endpoint_override: {{orchestration: "{stack.server.base_url}"}}}}
      stack: {stack.name}
      poll_interval: 200ms
    min_size: 1
    max_size: 3
    desired: 1
    # one step per alert: alertscaler's cooldown outlasts the test, so only the notification acts
    scale_out: {{matchers: ['alertname="TenantBusy"', 'alertscaler_group="tenant"'], adjustment: 1,
                 cooldown: 1h}}
rules:
  groups:
    - name: e2e-heat
      rules:
        - alert: TenantBusy
          expr: control_value{{name="busy"}} > 0
          for: 0s
          group: tenant
"""


def signals(stack: HeatStack) -> int:
    return len(stack.events("scaleup_policy", resource_action="SIGNAL"))


def test_a_real_alert_grows_the_real_heat_group_and_its_resolution_never_signals(
    tmp_path: Path, heat_stacks: Callable[..., HeatStack],
) -> None:
    stack = heat_stacks({"cooldown": 1})
    assert stack.current_size() == 1
    with Pipeline(tmp_path, heat_policy(stack)) as p:
        p.wait(lambda: p.group("tenant")["current"] == 1, 60, "alertscaler reading the stack's one member")
        p.control.set("busy", 1)
        stack.wait_for_size(2, timeout=90)
        acted = p.wait(lambda: [d for d in p.decisions(group="tenant") if d["outcome"] == "acted"], 30,
                       "the acted decision")
        assert [(d["from_capacity"], d["to_capacity"], d["trigger"]) for d in acted] == [(1, 2, "notification")]
        action = p.wait(lambda: [a for a in p.actions(group="tenant") if a["state"] == "succeeded"], 60,
                        "the Heat action to complete")[0]
        assert "scaleup_policy" in action["result"], action
        assert signals(stack) == 1
        print(breakdown([d for d in p.decisions(group="tenant") if d["outcome"] == "acted"]))

        p.control.set("busy", 0)
        p.wait(lambda: any(d["reason"] == "resolved" for d in p.decisions(group="tenant")), 60, "resolved")
        time.sleep(3)  # real time (e2e): give a wrong signal the chance to show up in Heat
        assert signals(stack) == 1, stack.events("scaleup_policy")
        assert stack.current_size() == 2
        group = p.group("tenant")
        assert (group["desired"], group["current"]) == (2, 2)
        assert {m["id"] for m in group["members"]} == {m["physical_resource_id"] for m in stack.members()}
        assert {m["labels"]["stack_id"] for m in group["members"]} == {stack.id}
