"""The CLI: exit codes scripts can rely on, every problem listed, never a traceback for a user's mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from alertscaler.cli import EXIT_NO, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "local.yml"


def test_check_accepts_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(EXAMPLE)]) == EXIT_OK
    assert "ok" in capsys.readouterr().out


def test_check_accepts_the_sized_and_scheduled_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(EXAMPLE.with_name("sized-and-scheduled.yml"))]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "web window business-hours: '0 8 * * mon-fri' for 10h: min_size 3; next opens" in printed
    if "skipped promtool" not in printed:  # promtool installed (as in CI): the four queries are valid PromQL
        assert "ok promtool check rules (queries): 4 queries valid PromQL" in printed


def test_check_lists_every_problem_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("server: {listen: nowhere, auth: {bearer_token: hunter2hunter2}}\ngroups:\n"
                   "  web:\n    provider: {type: local}\n    max_size: 2\n"
                   "    scale_out: {matchers: ['alertname=\"H\"'], adjustment: 1, cooldown: soon}\n"
                   "    scale_in: {matchers: ['alertname=\"L\"'], adjustment: 1}\n")
    assert main(["check", str(bad)]) == EXIT_NO
    err = capsys.readouterr().err
    assert "3 problem(s)" in err
    assert "groups.web.scale_out.cooldown: must be a duration like 60s" in err
    assert "groups.web.scale_in.adjustment: must be negative for scale_in" in err
    assert "server.listen" in err
    assert "hunter2" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["check", "/nonexistent/policy.yml"], EXIT_USAGE, "not found"),
        (["status", "--url", "http://127.0.0.1:1", "-c", "/nonexistent.yml"], EXIT_UNREACHABLE, "cannot reach"),
        (["decisions", "-c", "/nonexistent.yml"], EXIT_USAGE, "no --url"),
        (["decisions", "--url", "http://127.0.0.1:1", "-c", "/x.yml", "--since", "5parsecs"], EXIT_USAGE, "--since"),
    ],
    ids=["check-missing-file", "service-down", "no-url", "bad-since"],
)
def test_user_mistakes_get_a_message_and_a_code(argv: list[str], code: int, fragment: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["scale", "web", "minus-one"])
    assert info.value.code == EXIT_USAGE
    assert "non-negative integer" in capsys.readouterr().err
    assert main([]) == EXIT_USAGE


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("alertscaler 0.")


SCHEDULED = """
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: fake}
    max_size: 10
    schedule:
      timezone: Europe/Berlin
      windows:
        - {name: business-hours, cron: "0 8 * * mon-fri", duration: 10h, min_size: 4}
        - {name: never, cron: "0 0 31 2 *", duration: 1h, desired: 3}
"""


def test_check_shows_when_each_schedule_window_next_opens(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import re
    policy = tmp_path / "s.yml"
    policy.write_text(SCHEDULED)
    assert main(["check", str(policy)]) == EXIT_OK  # a window that never opens is a warning, not an error
    captured = capsys.readouterr()
    assert re.search(r"web window business-hours: '0 8 \* \* mon-fri' for 10h: min_size 4; next opens "
                     r"(Mon|Tue|Wed|Thu|Fri) \d{4}-\d\d-\d\d 08:00 Europe/Berlin", captured.out), captured.out
    assert ("web window never: '0 0 31 2 *' for 1h: desired 3; WARNING: never opens (no date in the next 400 days "
            "matches)") in captured.err


BAD_URL = ("server: {auth: {insecure_no_auth: true}}\nprometheus: {url: 'not a url'}\n"
           "groups: {web: {provider: {type: fake}, max_size: 2}}\n")


@pytest.mark.parametrize("command", [["check"], ["serve", "-c"], ["rules", "sync", "-c"]],
                         ids=["check", "serve", "rules-sync"])
def test_a_bad_prometheus_url_is_a_config_problem_never_a_traceback(
        command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "bad.yml"
    policy.write_text(BAD_URL)
    assert main([*command, str(policy)]) == EXIT_NO
    err = capsys.readouterr().err
    assert "prometheus.url: must be an http:// or https:// URL with a host" in err
    assert "Traceback" not in err


HEALING = """
server: {auth: {insecure_no_auth: true}}
PROMETHEUS
groups:
  web:
    provider: {type: fake}
    max_size: 4
    heal: {matchers: ['alertname="InstanceDown"']FREEZE}
"""


@pytest.mark.parametrize(
    ("prometheus", "freeze", "warned"),
    [("", "", True), ("prometheus: {url: 'http://127.0.0.1:9090'}", "", False),
     ("", ", freeze: {prometheus: false}", False)],
    ids=["no-url-freeze-on", "url-set", "freeze-off"],
)
def test_check_warns_when_the_heal_freeze_has_no_prometheus_to_ask(
        prometheus: str, freeze: str, warned: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "heal.yml"
    policy.write_text(HEALING.replace("PROMETHEUS", prometheus).replace("FREEZE", freeze))
    assert main(["check", str(policy)]) == EXIT_OK  # a warning, not an error
    err = capsys.readouterr().err
    assert ("web: WARNING: heal.freeze.prometheus is on but prometheus.url is not set" in err) is warned, err


DRAINING = """
server: {auth: {insecure_no_auth: true}}
scrape: {refresh_interval: 10s, scrape_interval: 5s}
groups:
  web:
    provider: {type: fake}
    max_size: 4
    DRAIN
"""


@pytest.mark.parametrize(
    ("drain", "warned"),
    [("", False), ("drain: 25s", False), ("drain: 24s", True), ("drain: 0s", True)],
    ids=["default", "at-the-discovery-lag", "shorter", "none"],
)
def test_check_warns_when_a_drain_is_shorter_than_prometheus_needs_to_drop_a_target(
        drain: str, warned: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "drain.yml"
    policy.write_text(DRAINING.replace("DRAIN", drain))
    assert main(["check", str(policy)]) == EXIT_OK  # a warning, not an error
    err = capsys.readouterr().err
    assert ("web: WARNING: drain" in err) is warned, err
    if warned:
        assert "shorter than the 25s Prometheus needs" in err and "default: 30s" in err, err
