"""``sim.group``: a user's own group replayed — its track section, its step policies triggered by the alert
rules of the policy file (thresholds, for, rule interval, cooldowns, size_by, guard), its schedule and bounds —
through the real ``decide`` code; and ``alertscaler simulate -c FILE GROUP`` on a small trace file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alertscaler.cli import EXIT_NO, EXIT_OK, EXIT_USAGE, main
from alertscaler.config import PolicyFile, load_policy_file
from alertscaler.sim.group import Condition, GroupError, Kind, group_policy, parse_condition
from alertscaler.sim.running import simulate
from alertscaler.sim.scenarios import Scenario, alertscaler_tracking
from alertscaler.sim.traces import Trace

POLICY = """
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: local, command: [sleep, '60']}
    min_size: 1
    max_size: 20
    track:
      metrics:
        - query: sum(rate(http_requests_total{alertscaler_group="web"}[1m])) / count(up{alertscaler_group="web"})
          target: 28
  cpu:
    provider: {type: local, command: [sleep, '60']}
    min_size: 1
    max_size: 20
    track:
      metrics:
        - {query: 'avg(cpu{alertscaler_group="cpu"})', target: 0.7}
  steps:
    provider: {type: local, command: [sleep, '60']}
    min_size: 1
    max_size: 10
    scale_out:
      matchers: ['alertname="HighCpu"', 'alertscaler_group="steps"']
      adjustment: 2
      cooldown: 60s
    scale_in:
      matchers: ['alertname="LowCpu"', 'alertscaler_group="steps"']
      adjustment: -1
      cooldown: 120s
  sized:
    provider: {type: local, command: [sleep, '60']}
    min_size: 1
    max_size: 20
    scale_out:
      matchers: ['alertname="Busy"']
      adjustment: 1
      cooldown: 60s
      guard: 'avg(cpu{alertscaler_group="sized"}) > 0.7'
      size_by: {query: 'sum(rate(http_requests_total{alertscaler_group="sized"}[1m]))', per_instance: 28}
  scheduled:
    provider: {type: local, command: [sleep, '60']}
    min_size: 1
    max_size: 10
    track:
      metrics: [{query: q, target: 28}]
    schedule:
      timezone: UTC
      windows:
        - {name: morning, cron: "0 8 * * *", duration: 2h, min_size: 6}
  elsewhere:
    provider: {type: local, command: [sleep, '60']}
    max_size: 5
    scale_out:
      matchers: ['alertname="FromElsewhere"']
      adjustment: 1
rules:
  groups:
    - name: steps
      interval: 15s
      rules:
        - alert: HighCpu
          expr: avg by (alertscaler_group) (cpu{alertscaler_group="steps"}) > 0.8
          for: 1m
          group: steps
        - alert: LowCpu
          expr: avg by (alertscaler_group) (cpu{alertscaler_group="steps"}) < 0.3
          for: 2m
          group: steps
        - alert: Busy
          expr: sum(rate(http_requests_total{alertscaler_group="sized"}[1m])) > 100
          labels: {alertscaler_group: sized}
"""


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> PolicyFile:
    path = tmp_path_factory.mktemp("policy") / "policy.yml"
    path.write_text(POLICY)
    return load_policy_file(str(path))


def per_minute(*rates: float, start: datetime | None = None) -> Trace:
    return Trace(tuple(float(r) for r in rates), tuple(60.0 * i for i in range(len(rates))), 60.0 * len(rates),
                 start)


def moves(run: Any) -> list[tuple[float, int, int]]:
    return [(a.at, a.from_size, a.to_size) for a in run.actions]


@pytest.mark.parametrize(("text", "expected"), [
    ("cpu > 0.8 for 1m", Condition(Kind.CPU, ">", 0.8, 60.0, "cpu > 0.8 for 1m")),
    ("total>=500", Condition(Kind.TOTAL, ">=", 500.0, 0.0, "total>=500")),
    ("rps-ready < 5 for 90s", Condition(Kind.RPS_READY, "<", 5.0, 90.0, "rps-ready < 5 for 90s")),
], ids=["cpu", "total", "rps-ready"])
def test_conditions(text: str, expected: Condition) -> None:
    assert parse_condition(text) == expected


@pytest.mark.parametrize("text", ["cpu = 0.8", "memory > 3", "cpu > 0.8 for soon", "cpu >"],
                         ids=["op", "kind", "for", "number"])
def test_bad_conditions(text: str) -> None:
    with pytest.raises(GroupError, match=r"KIND OP NUMBER|duration"):
        parse_condition(text)


def test_kinds_are_guessed_and_the_guess_said(policy: PolicyFile) -> None:
    web = group_policy(policy, "web")
    assert web.track_kinds == (Kind.RPS,) and web.rps_target == 28
    assert any("track metric 1" in n and "--as track.1=KIND" in n for n in web.notes)
    cpu = group_policy(policy, "cpu")
    assert cpu.track_kinds == (Kind.CPU,) and cpu.cpu_target == 0.7
    assert group_policy(policy, "web", kinds={"track.1": "rps-ready"}).track_kinds == (Kind.RPS_READY,)
    sized = group_policy(policy, "sized")
    assert sized.routes[0].triggers[0].condition.kind is Kind.TOTAL   # sum(rate(...)) > 100
    assert sized.routes[0].guard == Condition(Kind.CPU, ">", 0.7, 0.0, 'avg(cpu{alertscaler_group="sized"}) > 0.7')


def test_step_policies_take_their_alerts_from_the_rules(policy: PolicyFile) -> None:
    steps = group_policy(policy, "steps")
    assert steps.rule_interval == 15 and steps.reevaluate_interval == 5 and steps.interval == 5
    out, into = steps.routes
    assert [(t.name, t.condition.kind, t.condition.op, t.condition.threshold, t.condition.hold)
            for t in out.triggers] == [("HighCpu", Kind.CPU, ">", 0.8, 60.0)]
    assert [t.name for t in into.triggers] == ["LowCpu"]
    assert "cpu > 0.8 for 1m" in steps.description and "cooldown 2m" in steps.description


@pytest.mark.parametrize(("name", "options", "fragment"), [
    ("nope", {}, "no group 'nope' in the policy file (groups: cpu, elsewhere, "),
    ("web", {"kinds": {"track.1": "watts"}}, "the kind is one of rps, rps-ready, cpu, total"),
    ("web", {"kinds": {"track.1": "total"}}, "a track metric is per member"),
    ("web", {"kinds": {"track.2": "rps"}}, "--as track.2: no such track metric"),
    ("steps", {"when": {"Other": "cpu > 1"}}, "--when Other: no step policy of group steps matches"),
    ("steps", {"when": {"HighCpu": "cpu is high"}}, "a condition is KIND OP NUMBER"),
    ("elsewhere", {}, "nothing would scale it in the replay"),
], ids=["group", "kind", "total-track", "no-metric", "unused-when", "bad-when", "nothing-fires"])
def test_what_cannot_be_replayed_is_named(policy: PolicyFile, name: str, options: dict[str, Any],
                                          fragment: str) -> None:
    with pytest.raises(GroupError) as caught:
        group_policy(policy, name, **options)
    assert fragment in str(caught.value)


def test_an_alert_from_elsewhere_given_with_when(policy: PolicyFile) -> None:
    group = group_policy(policy, "elsewhere", when={"FromElsewhere": "cpu > 0.9 for 30s"})
    assert group.routes[0].triggers[0].condition == parse_condition("cpu > 0.9 for 30s")


def scenario(trace: Trace, **changes: Any) -> Scenario:
    options: dict[str, Any] = {"capacity": 40.0, "delay": 0.0, "metric_window": 0.0, "min_size": 1, "max_size": 20}
    return Scenario(trace, **(options | changes))


def test_tracking_replays_exactly_as_the_built_in_default(policy: PolicyFile) -> None:
    """The group's track section with its defaults decides like the simulator's alertscaler default."""
    trace = per_minute(*[100] * 5, *[400] * 5, *[100] * 10, *[250] * 5)
    sc = scenario(trace, delay=60.0, initial=4)
    assert moves(simulate(sc, group_policy(policy, "web"))) == moves(simulate(sc, alertscaler_tracking(0.7, 40.0)))


def test_alerts_fire_after_their_for_and_step_after_each_cooldown(policy: PolicyFile) -> None:
    """200 req/s on 2 instances: CPU 2.5 capped at 2 (limits 2 x requests) > 0.8 from t=0: HighCpu fires at 60
    s (rules every 15 s), +2 then +2 after each 60 s cooldown until CPU falls to 0.625 at 8 instances."""
    run = simulate(scenario(per_minute(*[200] * 6), initial=2, max_size=10), group_policy(policy, "steps"))
    assert moves(run) == [(60.0, 2, 4), (120.0, 4, 6), (180.0, 6, 8)]


def test_size_by_sizes_in_one_step_when_the_guard_holds(policy: PolicyFile) -> None:
    run = simulate(scenario(per_minute(10, *[300] * 4), initial=1), group_policy(policy, "sized"))
    assert moves(run)[0] == (60.0, 1, 11)  # the Busy alert (no for) at the first rule evaluation: ceil(300 / 28)


def test_a_schedule_window_raises_min_size_while_open(policy: PolicyFile) -> None:
    start = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
    trace = per_minute(*[50] * 240, start=start)  # 07:00 to 11:00, load for 2 instances
    run = simulate(scenario(trace, initial=2, max_size=10), group_policy(policy, "scheduled", start=start))
    # opens at 08:00; closes at 10:00, when tracking scales in at once: its recommendations were 2 all along
    # (the window's min_size held the size, not the recommendation), as in the service
    assert moves(run) == [(3600.0, 2, 6), (3 * 3600.0, 6, 2)]
    assert run.actions[0].reason == "scheduled"


# -- the command ------------------------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    trace = tmp_path / "load.csv"
    rates = [50] * 30 + [400] * 30 + [200] * 30 + [50] * 30
    trace.write_text("timestamp,value\n" + "".join(f"{1714550400 + 60 * i},{r}\n" for i, r in enumerate(rates)))
    return policy, trace


def test_simulate_your_own_group(files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy, trace = files
    out_json = tmp_path / "out.json"
    code = main(["simulate", "-c", str(policy), "web", "--trace", str(trace), "--delay", "1m", "--json", str(out_json)])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    for fragment in ("group web", "hpa-rps", "hpa-cpu", "oracle", "2024-05-01 08:00 UTC", "bounds 1..20, target 0.7",
                     "note: track metric 1", "requests/s per ready pod, target 28"):
        assert fragment in captured.out
    data = json.loads(out_json.read_text())
    assert [r["policy"] for r in data["results"]] == ["group web", "hpa-rps", "hpa-cpu", "seed-step"]
    assert data["scenario"]["max_size"] == 20 and data["scenario"]["target"] == pytest.approx(0.7)


def test_simulate_a_group_with_steps_and_a_schedule(files: tuple[Path, Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    policy, trace = files
    assert main(["simulate", "-c", str(policy), "steps", "--trace", str(trace)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "group steps" in out and "HighCpu (cpu > 0.8 for 1m)" in out and "bounds 1..10" in out
    assert main(["simulate", "-c", str(policy), "scheduled", "--trace", str(trace)]) == EXIT_OK
    assert "schedule of 1 window(s) (UTC)" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "code", "fragment"), [
    (["web"], EXIT_USAGE, "GROUP web: give the policy file that holds it with -c FILE"),
    (["-c", "{policy}", "web", "--policy", "hpa-rps"], EXIT_USAGE, "--policy hpa-rps and GROUP web"),
    (["--as", "track.1=rps"], EXIT_USAGE, "--as and --when describe a group's queries"),
    (["-c", "{policy}", "nope"], EXIT_USAGE, "no group 'nope'"),
    (["-c", "{policy}", "web", "--as", "track.1"], EXIT_USAGE, "--as 'track.1': give NAME=VALUE"),
    (["-c", "{policy}", "web", "--capacity", "20"], EXIT_USAGE, "28 req/s per member, more than --capacity 20"),
    (["-c", "{policy}.missing", "web"], EXIT_USAGE, "not found"),
    (["-c", "{trace}", "web"], EXIT_NO, "invalid"),
], ids=["no-config", "policy-and-group", "as-without-group", "unknown-group", "bad-as", "capacity", "no-file",
        "not-a-policy"])
def test_bad_group_options(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], args: list[str], code: int,
                           fragment: str) -> None:
    policy, trace = files
    argv = [a.format(policy=policy, trace=trace) for a in args]
    assert main(["simulate", "--trace", str(trace), *argv]) == code
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
