"""The operator commands of the CLI — ``pause``, ``resume``, ``scale [--hold]``, ``alerts``, ``alerts clear`` and
``status`` — against a real service: the app served by uvicorn on 127.0.0.1 in this process (real SQLite store,
``fake`` providers, a clock the test sets), the CLI's ``main`` run in a thread as a user would run it. Their
output, their exit codes, and a clear message without a traceback for every mistake (unknown group, bad
duration, missing credentials, no service).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alertscaler.cli import EXIT_NO, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from tests.api.conftest import TOKEN, make_harness
from tests.support.cli import CliRunner, serving
from tests.support.webhooks import alert, body

HIGH = alert("HighLoad", service="web")


@pytest.fixture
async def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
              ) -> AsyncIterator[CliRunner]:
    monkeypatch.setenv("ALERTSCALER_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables on one line each
    engine, _, _, store, _ = make_harness(tmp_path)  # the clock stays at 2026-11-21 12:00 UTC
    try:
        async with serving(engine) as url:
            yield CliRunner(url, capsys)
    finally:
        await engine.stop()
        store.close()


async def test_pause_resume_and_status(cli: CliRunner) -> None:
    code, out, _ = await cli.run("pause", "web", "--for", "2h", "--reason", "incident 42")
    assert (code, out.strip()) == (EXIT_OK, "paused web until 2026-11-21T14:00:00 UTC: decisions are recorded as "
                                            "paused, nothing is executed")
    code, out, _ = await cli.run("status")
    assert code == EXIT_OK and "web: PAUSED until 2026-11-21T14:00:00 UTC: incident 42" in out
    code, out, _ = await cli.run("status", "--json")
    paused = {g["name"]: g["paused"] for g in json.loads(out)}
    assert paused["batch"] is None and (paused["web"]["group"], paused["web"]["reason"]) == ("web", "incident 42")

    code, out, _ = await cli.run("pause", "--all", "--reason", "provider outage")
    assert (code, out.strip()) == (EXIT_OK, "paused every group until resumed: decisions are recorded as paused, "
                                            "nothing is executed")
    code, out, _ = await cli.run("status")
    assert "batch: PAUSED (every group) until resumed: provider outage" in out
    code, out, _ = await cli.run("resume", "--all")
    assert (code, out.strip()) == (EXIT_OK, "resumed every group")
    code, out, _ = await cli.run("resume", "web")
    assert (code, out.strip()) == (EXIT_OK, "resumed web")
    code, out, _ = await cli.run("resume", "web")
    assert (code, out.strip()) == (EXIT_OK, "web was not paused")
    code, out, _ = await cli.run("status")
    assert "PAUSED" not in out


async def test_scale_says_how_long_policies_keep_off(cli: CliRunner) -> None:
    code, out, _ = await cli.run("scale", "web", "3", "--hold", "30m")
    assert code == EXIT_OK
    assert out.splitlines()[-1] == "held: policies may not move web before 2026-11-21T12:30:00 UTC"
    code, out, _ = await cli.run("status")
    assert "2026-11-21T12:30:00" in out  # the held-until column
    code, out, _ = await cli.run("scale", "web", "2")  # a new manual scale without --hold ends the hold
    assert code == EXIT_OK
    assert out.splitlines()[-1] == ("no hold: policies may move web again from 2026-11-21T12:00:00 UTC "
                                    "(scale web N --hold 30m keeps them off)")
    code, out, _ = await cli.run("status", "web", "--json")
    assert json.loads(out)["held_until"] is None and json.loads(out)["desired"] == 2

    await cli.run("pause", "web")
    code, out, _ = await cli.run("scale", "web", "4")
    assert code == EXIT_NO  # refused: nothing executed
    assert out.splitlines()[-1] == "web is paused: nothing was executed (alertscaler resume web)"


async def test_alerts_listed_and_cleared(cli: CliRunner) -> None:
    assert (await cli.post("/api/v1/alerts", body(HIGH), TOKEN)).status_code == 200
    code, out, _ = await cli.run("alerts", "--json")
    (listed,) = json.loads(out)
    assert (code, listed["group"], listed["policy"], listed["fingerprint"]) == (
        EXIT_OK, "web", "scale_out", HIGH["fingerprint"])
    code, out, _ = await cli.run("alerts", "web")
    assert code == EXIT_OK and out.startswith("group\tpolicy\tfingerprint") and HIGH["fingerprint"] in out
    code, out, _ = await cli.run("alerts", "batch", "--json")
    assert (code, json.loads(out)) == (EXIT_OK, [])

    code, out, _ = await cli.run("alerts", "clear", "web", str(HIGH["fingerprint"]))
    assert code == EXIT_OK
    assert out.startswith(f"cleared {HIGH['fingerprint']} of web (decision ") and "no longer believed firing" in out
    code, out, _ = await cli.run("alerts", "--json")
    assert json.loads(out) == []
    code, _, err = await cli.run("alerts", "clear", "web", str(HIGH["fingerprint"]))
    assert code == EXIT_NO and f"group 'web' has no active alert with fingerprint '{HIGH['fingerprint']}'" in err


MISTAKES = [
    # (argv, exit code, what stderr says)
    (["pause", "nope"], EXIT_NO, "POST /api/v1/groups/nope/pause: HTTP 404: no group named 'nope'"),
    (["resume", "nope"], EXIT_NO, "HTTP 404: no group named 'nope'"),
    (["scale", "nope", "2"], EXIT_NO, "HTTP 404: no group named 'nope'"),
    (["alerts", "nope"], EXIT_NO, "HTTP 404: no group named 'nope'"),
    (["alerts", "clear", "nope", "abc"], EXIT_NO, "HTTP 404: no group named 'nope'"),
    (["pause"], EXIT_USAGE, "pause: name a group, or --all for every group"),
    (["pause", "web", "--all"], EXIT_USAGE, "pause: name a group, or --all for every group"),
    (["resume"], EXIT_USAGE, "resume: name a group, or --all for every group"),
    (["pause", "web", "--for", "soon"], EXIT_USAGE,
     "argument --for: must be a duration like 300, 90s or 5m, got 'soon'"),
    (["pause", "web", "--for", "0s"], EXIT_USAGE, "argument --for: must be more than 0s, got '0s'"),
    (["pause", "web", "--for", "31d"], EXIT_USAGE, "argument --for: must be at most 30d, got '31d'"),
    (["scale", "web", "2", "--hold", "5parsecs"], EXIT_USAGE,
     "argument --hold: must be a duration like 300, 90s or 5m, got '5parsecs'"),
    (["scale", "web", "2", "--hold", "721h"], EXIT_USAGE, "argument --hold: must be at most 30d, got '721h'"),
    (["scale", "web", "-1"], EXIT_USAGE, "argument desired: must be a non-negative integer, got '-1'"),
    (["alerts", "clear", "web"], EXIT_USAGE, "usage: alertscaler alerts clear GROUP FINGERPRINT"),
    (["alerts", "web", "batch"], EXIT_USAGE, "usage: alertscaler alerts [GROUP]"),
]


@pytest.mark.parametrize(("argv", "code", "message"), MISTAKES, ids=[
    "pause-unknown-group", "resume-unknown-group", "scale-unknown-group", "alerts-unknown-group",
    "clear-unknown-group", "pause-no-group", "pause-group-and-all", "resume-no-group", "pause-bad-duration",
    "pause-zero-duration", "pause-over-30d", "hold-bad-duration", "hold-over-30d", "scale-negative",
    "clear-missing-fingerprint", "alerts-two-groups"])
async def test_mistakes_get_a_clear_message_and_a_code(cli: CliRunner, argv: list[str], code: int,
                                                       message: str) -> None:
    got, out, err = await cli.run(*argv)
    assert (got, message in err) == (code, True), err
    assert out == ""


async def test_credentials_and_an_unreachable_service(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALERTSCALER_TOKEN")
    code, out, err = await cli.run("pause", "web")
    assert (code, out) == (EXIT_NO, "") and "POST /api/v1/groups/web/pause: HTTP 401" in err
    code, out, _ = await cli.run("status", "--json")  # reads are open unless server.auth.protect_reads
    assert code == EXIT_OK and json.loads(out)[0]["paused"] is None
    code, _, err = await cli.run("resume", "--all", url="http://127.0.0.1:1")
    assert code == EXIT_UNREACHABLE and "cannot reach alertscaler at http://127.0.0.1:1" in err
