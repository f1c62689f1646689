"""A fair simulator (issue 14): the oracle holds the target utilisation within the bounds; HPA's replica
calculator treats booting pods as Kubernetes does (0 % on a scale-up, left out on a scale-down); the
stabilisation window is seeded with the size found at the first evaluation (HPA and the service); the
metrics policies see; alertscaler's default in the simulator is the service's default ``track``."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from alertscaler.config.groups import TrackConfig, TrackMetric
from alertscaler.model.policies import Bounds
from alertscaler.sim.controllers import Observation, TrackingController
from alertscaler.sim.hpa import hpa_replicas
from alertscaler.sim.running import simulate
from alertscaler.sim.scenarios import (
    Metric,
    Scenario,
    alertscaler_tracking,
    hpa_cpu,
    hpa_rps,
    service_track_defaults,
)
from alertscaler.sim.traces import Trace


def per_minute(*rates: float) -> Trace:
    return Trace(tuple(float(r) for r in rates), tuple(60.0 * i for i in range(len(rates))), 60.0 * len(rates))


@pytest.mark.parametrize(("demand", "capacity", "target", "bounds", "expected"), [
    (280.0, 40.0, 0.7, (1, 20), 10),     # 280 / 28 = 10 exactly: no 11th for float noise
    (281.0, 40.0, 0.7, (1, 20), 11),
    (280.0, 40.0, 1.0, (1, 20), 7),      # at 100 %: the old oracle's size
    (0.0, 40.0, 0.7, (1, 20), 1),        # min_size holds
    (0.0, 40.0, 0.7, (0, 20), 0),
    (2000.0, 40.0, 0.7, (1, 20), 20),    # max_size holds
    (100.0, 10.0, 0.5, (3, 30), 20),
], ids=["exact", "just-above", "full-capacity", "min", "zero", "max", "other-capacity"])
def test_the_oracle_holds_the_target_within_the_bounds(demand: float, capacity: float, target: float,
                                                        bounds: tuple[int, int], expected: int) -> None:
    scenario = Scenario(per_minute(1, 1), capacity=capacity, target=target, min_size=bounds[0], max_size=bounds[1])
    assert scenario.needed(demand) == expected


@pytest.mark.parametrize(("current", "ready", "booting", "ratio", "expected"), [
    (10, 10, 0, 1.05, 10),    # within tolerance
    (10, 10, 0, 2.0, 20),     # no booting pod: ceil(ratio x ready)
    (10, 10, 0, 0.5, 5),
    (10, 5, 5, 2.0, 10),      # scale-up: booting counted at 0 %: new ratio 1.0, within tolerance: hold
    (10, 5, 5, 3.0, 15),      # new ratio 1.5: ceil(1.5 x 10)
    (10, 2, 8, 2.0, 10),      # new ratio 0.4: the direction would flip: hold
    (6, 4, 2, 0.5, 2),        # scale-down: booting left out: ceil(0.5 x 4 ready)
    (6, 4, 2, 0.95, 6),       # scale-down within tolerance: hold
    (6, 0, 6, 5.0, 6),        # no ready pod: no metrics: hold
], ids=["tolerance", "up", "down", "booting-cover-it", "booting-at-zero", "would-flip", "down-without-booting",
        "down-tolerance", "none-ready"])
def test_hpa_counts_booting_pods_as_the_replica_calculator_does(current: int, ready: int, booting: int,
                                                                 ratio: float, expected: int) -> None:
    assert hpa_replicas(current, ready, booting, ratio * 28.0, 28.0, 0.1) == expected


@pytest.mark.parametrize(("metric", "demand", "ready", "desired", "cpu_limit", "expected"), [
    (Metric.RPS, 300.0, 5, 10, 2.0, 30.0),          # per member, booting ones counted
    (Metric.RPS_READY, 300.0, 5, 10, 2.0, 60.0),    # per serving member: not capped
    (Metric.CPU, 300.0, 5, 10, 2.0, 1.5),           # 300 / (5 x 40): 150 % of the request
    (Metric.CPU, 600.0, 5, 10, 2.0, 2.0),           # at most the limit
    (Metric.CPU, 600.0, 5, 10, 1.0, 1.0),           # limits = requests: 100 %
    (Metric.CPU, 600.0, 0, 10, 2.0, math.nan),      # nobody serves: no series
    (Metric.RPS, 600.0, 0, 0, 2.0, 600.0),          # an empty group with load: asks for one
], ids=["rps", "rps-ready", "cpu", "cpu-limit", "cpu-saturated", "none-ready", "empty"])
def test_what_each_metric_shows(metric: Metric, demand: float, ready: int, desired: int, cpu_limit: float,
                                expected: float) -> None:
    value = Observation(demand, ready, desired, 40.0, cpu_limit).value(metric)
    assert (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected)


@pytest.mark.parametrize("policy", [alertscaler_tracking(), hpa_rps(28.0), hpa_cpu()],
                         ids=["alertscaler", "hpa-rps", "hpa-cpu"])
def test_the_scale_down_window_is_seeded_with_the_size_found_first(policy: object) -> None:
    """A group found at 10 with load for 5: the first evaluation's size counts as a recommendation, so the
    scale-in waits the whole window (HPA's 300 s, alertscaler's 180 s; an empty window would scale in at once)."""
    controller = TrackingController(policy, Scenario(per_minute(1, 1), max_size=40))  # type: ignore[arg-type]
    window = int(policy.scale_down.stabilization)  # type: ignore[attr-defined]
    sizes = {}
    desired = 10
    for t in range(0, window + 30, 15):
        desired = controller.decide(float(t), Observation(140.0, desired, desired, 40.0)).size
        sizes[t] = desired
    assert sizes[window - 15] == 10 and sizes[window] == 5


def test_alertscaler_default_is_the_service_default_track() -> None:
    service = TrackConfig(metrics=[TrackMetric(query="q", target=28.0)])
    rules = service.rules(Bounds(min_size=1, max_size=20))
    policy = alertscaler_tracking(0.7, 40.0)
    assert (policy.tolerance, policy.scale_up, policy.scale_down) == (rules.tolerance, rules.scale_up,
                                                                       rules.scale_down)
    assert policy.interval == service.interval and policy.target == 28.0 and policy.lookahead == 0
    assert policy.scale_down.stabilization == 180 and not policy.hpa
    assert (rules.tolerance_up, rules.tolerance_down) == (0.0, 0.3)
    assert service_track_defaults().scale_down == rules.scale_down


def test_a_burst_with_a_start_up_delay_asks_once_for_what_it_needs() -> None:
    """4 -> 16 instances of load with a 2-minute boot: both trackers ask for 8, then 16 (HPA's +100 % per 15 s),
    and ask nothing more while those boot (alertscaler counts them as idle members, HPA at 0 %)."""
    sc = Scenario(per_minute(*[100] * 3, *[440] * 8), delay=120.0, metric_window=0.0, max_size=40, initial=4)
    for policy in (alertscaler_tracking(), hpa_rps(28.0)):
        run = simulate(sc, policy)
        assert [(a.at, a.from_size, a.to_size) for a in run.actions][:2] == [(180.0, 4, 8), (195.0, 8, 16)], policy.name
        assert all(a.to_size == 16 for a in run.actions[1:]), policy.name


def test_every_policy_starts_at_the_oracle_size() -> None:
    sc = Scenario(per_minute(300, 300))
    runs = [simulate(sc, p) for p in (alertscaler_tracking(), hpa_rps(28.0), replace(hpa_cpu(), name="x"))]
    assert {r.initial for r in runs} == {11}  # ceil(300 / 28)
