"""``sim.metrics``: the SPEC RG elasticity metrics and the cost figures on small hand-computed series."""

from __future__ import annotations

import pytest

from alertscaler.sim.metrics import (
    adaptations,
    instability,
    instance_hours,
    jitter,
    oracle_summary,
    over_accuracy,
    over_timeshare,
    summarize,
    under_accuracy,
    under_timeshare,
    unserved,
)
from alertscaler.sim.running import Run, Series
from alertscaler.sim.scenarios import Scenario, hpa_rps
from alertscaler.sim.traces import Trace

# demand d and supply s in instances, one sample per step
MIXED = ([1, 2, 2, 4], [1, 1, 3, 2])       # short, short by half, over by half, short by half
EXACT = ([1, 2, 3, 3], [1, 2, 3, 3])
LAGGING = ([1, 2, 2, 2], [1, 1, 2, 2])     # supply follows one step late
IDLE = ([0, 0], [1, 0])                    # no demand: one idle instance counts as 100 % too many
ONE = ([2], [3])


@pytest.mark.parametrize(("series", "theta_u", "theta_o", "tau_u", "tau_o"), [
    (MIXED, 25.0, 12.5, 50.0, 25.0),       # θU = (0 + 1/2 + 0 + 2/4) / 4; θO = (1/2) / 4
    (EXACT, 0.0, 0.0, 0.0, 0.0),
    (LAGGING, 12.5, 0.0, 25.0, 0.0),       # (1/2) / 4
    (IDLE, 0.0, 50.0, 0.0, 50.0),
    (ONE, 0.0, 50.0, 0.0, 100.0),
], ids=["mixed", "exact", "lagging", "zero-demand", "one-sample"])
def test_accuracy_and_timeshare(series: tuple[list[int], list[int]], theta_u: float, theta_o: float,
                                tau_u: float, tau_o: float) -> None:
    d, s = series
    assert under_accuracy(d, s) == pytest.approx(theta_u)
    assert over_accuracy(d, s) == pytest.approx(theta_o)
    assert under_timeshare(d, s) == pytest.approx(tau_u)
    assert over_timeshare(d, s) == pytest.approx(tau_o)


@pytest.mark.parametrize(("series", "expected"), [
    (MIXED, 100.0),        # Δd = +1, 0, +2 vs Δs = 0, +2, -1: never alike
    (EXACT, 0.0),          # same moves
    (LAGGING, 200 / 3),    # Δd = +1, 0, 0 vs Δs = 0, +1, 0
    (([3, 2, 1], [4, 3, 2]), 0.0),   # both fall together
    (([1, 2], [2, 1]), 100.0),       # opposite directions
    (ONE, 0.0),            # no step between samples
], ids=["mixed", "exact", "lagging", "falling-together", "opposite", "one-sample"])
def test_instability(series: tuple[list[int], list[int]], expected: float) -> None:
    assert instability(*series) == pytest.approx(expected)


@pytest.mark.parametrize(("demand", "supply", "dt", "expected"), [
    ([1, 2, 1, 2], [1, 1, 1, 1], 30.0, -1.5),   # 0 - 3 adaptations over 2 minutes
    ([1, 1, 1, 1], [1, 2, 1, 2], 15.0, 3.0),    # 3 - 0 over 1 minute: oscillating
    ([1, 2, 2, 4], [1, 1, 3, 2], 15.0, 0.0),    # 2 - 2
    ([5, 5], [5, 5], 60.0, 0.0),
], ids=["inert", "oscillating", "as-many", "flat"])
def test_jitter(demand: list[int], supply: list[int], dt: float, expected: float) -> None:
    assert jitter(demand, supply, dt) == pytest.approx(expected)


@pytest.mark.parametrize(("curve", "expected"), [
    ([1, 1, 1], 0), ([1, 2, 1], 2), ([1, 4, 4, 2], 2), ([3], 0),
], ids=["flat", "up-down", "big-steps-count-once", "single"])
def test_adaptations(curve: list[int], expected: int) -> None:
    assert adaptations(curve) == expected


def test_instance_hours_and_unserved() -> None:
    assert instance_hours([2, 2, 4], 1800.0) == pytest.approx(4.0)
    assert unserved([40.0, 100.0], [1, 2], 40.0) == pytest.approx(100 * 20 / 140)   # 20 req/s found no room
    assert unserved([0.0, 0.0], [0, 0], 40.0) == 0.0


@pytest.mark.parametrize("pair", [([1, 2], [1]), ([], [])], ids=["lengths-differ", "empty"])
def test_series_must_match(pair: tuple[list[int], list[int]]) -> None:
    with pytest.raises(ValueError, match="same, non-zero length"):
        under_accuracy(*pair)


def test_summarize_puts_it_together() -> None:
    trace = Trace((40.0, 80.0, 80.0, 160.0), (0.0, 60.0, 120.0, 180.0), 240.0)
    scenario = Scenario(trace, capacity=40.0)
    series = Series(60.0, trace.values, (1, 2, 2, 4), (1, 1, 3, 2), (2, 2, 3, 3))
    summary = summarize(Run(hpa_rps(28.0), scenario, 2, series, ()))
    assert (summary.theta_u, summary.theta_o, summary.tau_u, summary.tau_o) == pytest.approx((25, 12.5, 50, 25))
    assert summary.instance_hours == pytest.approx(10 / 60)       # desired: 2+2+3+3 instance-minutes
    assert summary.oracle_instance_hours == pytest.approx(9 / 60)
    assert summary.ratio_to_oracle == pytest.approx(10 / 9)
    assert summary.unserved == pytest.approx(100 * (40 + 80) / 360)
    assert summary.booting == pytest.approx(75)                 # desired above ready in 3 of 4 samples
    assert summary.minutes == 4 and summary.actions == 0 and summary.actions_per_day == 0
    assert summary.as_dict()["policy"] == "hpa-rps"


def test_the_oracle_reports_its_own_figures() -> None:
    """Its size changes are its actions (per day of the run), it serves everything unless max_size holds it."""
    trace = Trace((40.0, 80.0, 80.0, 160.0), (0.0, 60.0, 120.0, 180.0), 240.0)
    scenario = Scenario(trace, capacity=40.0, max_size=3)
    series = Series(60.0, trace.values, (2, 3, 3, 3), (2, 2, 2, 2), (2, 2, 2, 2))
    oracle = oracle_summary(Run(hpa_rps(28.0), scenario, 2, series, ()))
    assert (oracle.policy, oracle.actions, oracle.tau_u, oracle.ratio_to_oracle) == ("oracle", 1, 0, 1)
    assert oracle.actions_per_day == pytest.approx(1 / (240 / 86400))
    assert oracle.instance_hours == pytest.approx(11 / 60)
    assert oracle.unserved == pytest.approx(100 * 40 / 360)      # 160 req/s on 3 instances of 40
    assert "0.7" in oracle.description and "1..3" in oracle.description
