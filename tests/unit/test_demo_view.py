"""``alertscaler demo`` without processes: the pure view (rendered into a recording console), building its
state from the raw answers, the demo's policy and replay, and the command's option checks."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from alertscaler.cli import EXIT_NO, EXIT_USAGE, main
from alertscaler.confgen import render_all
from alertscaler.config import load_policy
from alertscaler.demo.load_stats import Counts, SecondSummary, Snapshot
from alertscaler.demo.options import (
    PER_INSTANCE_RPS,
    REPLAY_MINUTES,
    DemoOptions,
    attribution,
    demo_policy,
    demo_replay,
)
from alertscaler.demo.running import run_demo
from alertscaler.demo.summaries import Summary
from alertscaler.demo.view import bar, decision_line, render, resample, sparkline, status_line
from alertscaler.demo.view_states import (
    AlertRow,
    DecisionRow,
    InstanceRow,
    ViewState,
    build_state,
    parse_alerts,
    parse_decision,
    utilisation_by_instance,
)


def _text(renderable: object, width: int = 120) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def _state() -> ViewState:
    second = SecondSummary(second=41, target_rate=97.5, counts=Counts(sent=97, ok=80, overloaded=17),
                           p50=0.1, p95=0.25, per_target={})
    return ViewState(
        group="web", elapsed=42.0, duration=300.0, trace_time=datetime(1998, 6, 30, 15, 0), compression=168,
        target_rps=97.5, last_second=second, sent=3000, ok=2900, overloaded=100, desired=3, current=2,
        min_size=1, max_size=5, per_instance_rps=40.0,
        instances=(InstanceRow("web-0001", "127.0.0.1:20001", "running", 0.93, 48.7),
                   InstanceRow("web-0002", "127.0.0.1:20002", "running", 0.88, 48.3),
                   InstanceRow("web-0003", "127.0.0.1:20003", "starting", None, None)),
        alerts=(AlertRow("HighLoad", "firing", 0.905, 7.0, "web"),),
        decisions=(DecisionRow(3, "scale_out", "timer", "acted", "scaled", 2, 3, "scale 2 -> 3", 40.2),
                   DecisionRow(2, "scale_out", "notification", "acted", "scaled", 1, 2, "scale 1 -> 2", 28.9),
                   DecisionRow(1, None, "reconcile", "acted", "reconcile", 0, 1, "converge", -3.0)),
        demand=tuple(float(x) for x in range(0, 100, 2)),
        capacity=(40.0,) * 40 + (80.0,) * 10,
        links=(("Prometheus", "http://127.0.0.1:9090"),),
        attribution=attribution(),
    )


def test_render_shows_instances_alerts_decisions_and_the_attribution() -> None:
    text = _text(render(_state()))
    assert "elapsed 0:42 / 5:00" in text and "1998-06-30 15:00" in text
    assert "97.5 req/s" in text and "503 17/s" in text and "p95 250 ms" in text
    assert "desired 3" in text and "current 2" in text and "capacity 80 req/s = 2 x 40" in text
    for row in ("web-0001", "127.0.0.1:20001", "93%", "48.7", "web-0003", "starting"):
        assert row in text
    assert "HighLoad firing 90% for 7s" in text
    assert "scale_out" in text and "2→3" in text and "scale 2 -> 3" in text and "reconcile" in text
    assert "M. Arlitt and T. Jin" in text and "1998 World Cup Web Site Access Logs" in text
    assert "Ctrl-C" in text and "http://127.0.0.1:9090" in text
    assert "demand" in text and "▁" in text and "█" in text  # the sparklines
    for line in text.splitlines():
        assert len(line) <= 120


def test_render_copes_with_an_empty_state() -> None:
    text = _text(render(ViewState()), width=80)
    assert "(none yet)" in text and "none pending or firing" in text and "no instance running" in text


def test_one_line_forms() -> None:
    s = _state()
    line = status_line(s)
    assert "[0:42/5:00]" in line and "desired 3 current 2" in line and "93% 88% -" in line
    assert "firing: HighLoad" in line
    assert decision_line(s.decisions[0]) == "[0:40] decision #3: scale_out acted (scaled) 2→3 [timer]: scale 2 -> 3"


def test_sparkline_and_bar() -> None:
    assert sparkline([0, 5, 10], top=10, width=10) == " ▄█"
    assert sparkline([20, 1], top=10, width=1) == "▁"  # only the last value; small but non-zero shows
    assert bar(0.5, 4) == "██░░" and bar(2.0, 4) == "████" and bar(None, 3) == "   "
    assert resample([1, 3, 5, 7, 9], 2) == [2, 6, 9] and resample([1, 2], 1) == [1, 2]


def test_build_state_joins_members_utilisation_and_per_target_rates() -> None:
    history = [SecondSummary(second=i, target_rate=10.0 + i, counts=Counts(sent=10), p50=None, p95=None,
                             per_target={"127.0.0.1:1": 6, "127.0.0.1:2": 4}) for i in range(5)]
    snapshot = Snapshot(elapsed=5.2, target_rate=15.0, targets=("127.0.0.1:1", "127.0.0.1:2"), outstanding=0,
                        outstanding_by_target={}, totals=Counts(sent=50, ok=45, overloaded=3, timeouts=2),
                        per_target={}, last=history[-1], discovery_errors=0, last_discovery_error=None)
    group = {"desired": 2, "current": 2, "min_size": 1, "max_size": 5, "members": [
        {"id": "web-1", "address": "127.0.0.1:1", "state": "running"},
        {"id": "web-2", "address": "127.0.0.1:2", "state": "running"}]}
    prometheus = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"alertscaler_member": "web-1", "instance": "127.0.0.1:1"}, "value": [1.0, "0.5"]},
        {"metric": {"instance": "127.0.0.1:2"}, "value": [1.0, "0.25"]}]}}
    decisions = [DecisionRow(i, "scale_out", "timer", "acted", "scaled", i, i + 1, "m") for i in range(1, 12)]
    state = build_state(ViewState(duration=60, per_instance_rps=40), snapshot=snapshot, history=history,
                        group=group, utilisation=utilisation_by_instance(prometheus), alerts=(),
                        decisions=decisions, capacity=[80.0] * 5, trace_start=datetime(1998, 6, 30, 13),
                        seconds_per_minute=0.5)
    assert [(i.id, i.utilisation, i.rps) for i in state.instances] == [("web-1", 0.5, 6.0), ("web-2", 0.25, 4.0)]
    assert state.capacity_rps == 80 and state.mean_utilisation == 0.375
    assert (state.sent, state.ok, state.overloaded, state.errors) == (50, 45, 3, 2)
    assert [d.id for d in state.decisions] == [11, 10, 9, 8, 7, 6, 5, 4]  # the last 8, newest first
    assert state.trace_time == datetime(1998, 6, 30, 13, 10, 24)
    assert state.compression == 120 and state.demand == (10, 11, 12, 13, 14)


def test_parsing_prometheus_alerts_and_decisions() -> None:
    now = datetime(2026, 1, 1, 10, 0, 10, tzinfo=UTC)
    answer = {"data": {"alerts": [
        {"labels": {"alertname": "LowLoad", "alertscaler_group": "web"}, "state": "pending",
         "activeAt": "2026-01-01T10:00:08.123456789Z", "value": "2e-01"},
        {"labels": {"alertname": "HighLoad"}, "state": "firing", "activeAt": "2026-01-01T10:00:00Z",
         "value": "9.1e-01"}]}}
    rows = parse_alerts(answer, now)
    assert [(a.name, a.state) for a in rows] == [("HighLoad", "firing"), ("LowLoad", "pending")]
    assert rows[0].active_for == 10 and rows[0].value == pytest.approx(0.91)
    assert rows[1].active_for == pytest.approx(1.876544, abs=1e-3) and rows[1].group == "web"
    assert parse_alerts({"status": "error"}, now) == () and utilisation_by_instance(None) == {}
    started = now - timedelta(seconds=30)
    d = parse_decision({"id": 4, "policy": "scale_in", "trigger": "timer", "outcome": "acted", "reason": "scaled",
                        "from_capacity": 3, "to_capacity": 2, "message": "scale 3 -> 2",
                        "decided_at": "2026-01-01T10:00:10+00:00"}, started)
    assert d.at == 30 and d.scale_in and not d.scale_out


def test_demo_policy_is_valid_and_renders_without_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "to ken"  # paths are quoted
    token_file.write_text("s3cret-token-value")
    text = demo_policy(port=18080, token_file=token_file, state_dir=tmp_path / "state", max_size=4,
                       prometheus_url="http://127.0.0.1:19090")
    policy = load_policy(text, base_dir=tmp_path)
    web = policy.groups["web"]
    assert web.heal is not None and web.heal.action.value == "replace"  # the heal demo (a killed instance)
    assert policy.prometheus.url == "http://127.0.0.1:19090"  # heals freeze while it does not answer
    assert web.scale_out is not None and web.scale_in is not None
    assert (web.min_size, web.max_size, web.scale_out.cooldown, web.scale_in.cooldown) == (1, 4, 10, 15)
    assert policy.server.url == "http://127.0.0.1:18080" and policy.server.reevaluate_interval == 1
    files = render_all(policy.render_input("policy.yml", str(token_file), "http://127.0.0.1:9093"))
    rules = files["rules/alertscaler.rules.yml"]
    assert "HighLoad" in rules and "> 0.75" in rules and "LowLoad" in rules and "< 0.35" in rules
    assert 'up{job="alertscaler", alertscaler_group="web"} == 0' in rules
    assert not any("s3cret" in body for body in files.values())


def test_the_replay_is_one_busy_then_quiet_cycle_of_the_chosen_length() -> None:
    options = DemoOptions(duration=300, max_size=5)
    replay = demo_replay(5, options.seconds_per_minute)
    assert replay.duration == pytest.approx(300)
    assert replay.peak == pytest.approx(0.9 * 5 * PER_INSTANCE_RPS)
    start, end = replay.rate_at(0), replay.rate_at(299)
    assert start < 0.75 * PER_INSTANCE_RPS and end < 0.7 * PER_INSTANCE_RPS  # one instance copes, both ends
    busy = [replay.rate_at(t) for t in range(0, 300)]
    assert max(busy) > 4 * PER_INSTANCE_RPS
    assert DemoOptions(speed=2.8).seconds == pytest.approx(REPLAY_MINUTES / 2.8)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [(DemoOptions(duration=5), "--duration"), (DemoOptions(max_size=1), "--max-size"),
     (DemoOptions(duration=60, speed=2), "exclude"), (DemoOptions(speed=0), "--speed")],
)
def test_bad_options_are_usage_errors(options: DemoOptions, fragment: str) -> None:
    err = Console(record=True, file=io.StringIO(), width=200)
    assert run_demo(options, out=Console(file=io.StringIO()), err=err) == EXIT_USAGE
    assert fragment in err.export_text()


def test_cli_demo_usage_and_missing_binaries(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--duration", "soon"])
    assert info.value.code == EXIT_USAGE and "duration like 300" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["demo", "--duration", "60", "--speed", "3"])
    assert info.value.code == EXIT_USAGE
    assert main(["demo", "--max-size", "50"]) == EXIT_USAGE
    capsys.readouterr()
    monkeypatch.setenv("PATH", str(tmp_path))  # no prometheus here
    assert main(["demo", "--duration", "1m"]) == EXIT_NO
    err = capsys.readouterr().err
    assert "apt-get install -y prometheus prometheus-alertmanager" in err and "Traceback" not in err


def test_workdir_of_other_use_is_refused(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("do not touch")
    err = Console(record=True, file=io.StringIO(), width=300)
    code = run_demo(DemoOptions(duration=60, workdir=tmp_path), out=Console(file=io.StringIO()), err=err)
    message = err.export_text()
    if "is not installed" in message:
        pytest.skip("prometheus not installed: checked before the working directory")
    assert code == EXIT_USAGE and "not empty" in message
    assert (tmp_path / "precious.txt").read_text() == "do not touch"


def test_summary_counts_size_changes() -> None:
    decisions = [DecisionRow(1, None, "reconcile", "acted", "reconcile", 0, 1, "", -2),
                 DecisionRow(2, "scale_out", "notification", "acted", "scaled", 1, 2, "", 20),
                 DecisionRow(3, "scale_out", "timer", "skipped", "at_max", 2, 2, "", 30),
                 DecisionRow(4, "scale_in", "notification", "acted", "scaled", 2, 1, "", 80)]
    summary = Summary("interrupted", elapsed=90, duration=300, decisions=decisions, max_current=2, final_current=1)
    text = "\n".join(summary.lines())
    assert "stopped early (Ctrl-C) after 1:30 of 5:00" in text
    assert "scale-outs: 1, scale-ins: 1, largest size: 2, final size: 1" in text
    assert "1→2 at 0:20, 2→1 at 1:20" in text and "every process stopped: none left behind" in text


def test_a_previous_demo_directory_is_cleaned_for_reuse(tmp_path: Path) -> None:
    from alertscaler.demo.workdirs import WORKDIR_MARKER, prepare_workdir

    workdir = tmp_path / "wd"
    prepare_workdir(workdir)  # created, marked
    assert (workdir / WORKDIR_MARKER).exists()
    (workdir / "state").mkdir()
    (workdir / "state" / "alertscaler.db").write_text("old run")
    (workdir / "policy.yml").write_text("old")
    (workdir / "notes.txt").write_text("mine")
    prepare_workdir(workdir)
    assert not (workdir / "state").exists() and not (workdir / "policy.yml").exists()
    assert (workdir / "notes.txt").read_text() == "mine"


def heal(i: int, reason: str, *members: str) -> DecisionRow:
    return DecisionRow(i, "heal", "notification", "skipped", reason, None, None, "", 40 + i, members=members)


@pytest.mark.parametrize(("decisions", "line"), [
    ([heal(1, "batched", "web-k"), heal(2, "healed", "web-k"), heal(3, "removed_member", "web-k")],
     "heal decisions: 3 (batched 1, healed 1, removed_member 1), all about the killed web-k"),
    ([heal(1, "batched", "web-k"), heal(2, "batched", "web-a"), heal(3, "unknown_member", "web-a", "web-b")],
     "heal decisions: 3 (batched 2, unknown_member 1), about web-k, web-a, web-b (NOT only the killed web-k: "
     "web-a, web-b)"),
    ([], "heal decisions: none"),
], ids=["only-the-killed-instance", "noise-about-others", "none"])
def test_the_summary_names_the_instances_heal_decisions_are_about(decisions: list[DecisionRow], line: str) -> None:
    summary = Summary("finished", elapsed=90, duration=90, decisions=decisions, killed="web-k")
    assert f"  {line}" in summary.lines()


def test_a_decisions_members_come_from_its_alerts_or_its_judgement() -> None:
    data = {"id": 9, "policy": "heal", "trigger": "notification", "outcome": "skipped", "reason": "batched",
            "message": "", "alerts": [{"labels": {"alertscaler_member": "web-1", "instance": "127.0.0.1:1"}},
                                      {"labels": {"instance": "127.0.0.1:2"}}, {"member": "web-3"},
                                      {"labels": {"alertscaler_member": "web-1"}}, "junk"]}
    assert parse_decision(data, None).members == ("web-1", "127.0.0.1:2", "web-3")
