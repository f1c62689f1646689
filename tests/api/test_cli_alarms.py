"""``alertscaler alarms [NAME]`` against a real service: the app served by uvicorn on 127.0.0.1 in this process (real
SQLite store, ``fake`` provider), alarm alerts posted to its webhook; the CLI's ``main`` run in a thread as a user
would run it: tables, --json, --state, exit codes, a clear message without a traceback for a mistake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from alertscaler.cli import EXIT_NO, EXIT_OK
from tests.api.conftest import TOKEN, make_harness
from tests.api.test_alarms import POLICY, T0, alarm_alert
from tests.support.cli import CliRunner, serving
from tests.support.webhooks import body


@pytest.fixture
async def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
              ) -> AsyncIterator[CliRunner]:
    monkeypatch.setenv("ALERTSCALER_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "250")  # rich tables on one line each
    engine, clock, _, store, _ = make_harness(tmp_path, POLICY)
    clock.now = T0 + timedelta(seconds=5)
    try:
        async with serving(engine) as url:
            async with httpx.AsyncClient(base_url=url) as client:
                response = await client.post("/api/v1/alerts", json=body(
                    alarm_alert("cpu_high"), alarm_alert("web_busy", "insufficient_data", instance="b:9100")))
                assert response.status_code == 200, response.text
            yield CliRunner(url, capsys)
    finally:
        await engine.stop()
        store.close()


async def test_list_filter_and_show_one(cli: CliRunner) -> None:
    code, listed, _ = await cli.run("alarms")
    assert code == EXIT_OK
    lines = {line.split("\t")[0]: line for line in listed.splitlines() if line.count("\t") > 3}  # piped: plain
    assert "alarm" in lines["cpu_high"] and "avg(cpu_util, 600) > 70 times 3" in lines["cpu_high"]
    assert "scale web scale_out, log" in lines["cpu_high"]
    assert "UNDETERMINED (1 set of instance)" in lines["web_busy"]
    assert "OK" in lines["errors"]

    code, filtered, _ = await cli.run("alarms", "--state", "UNDETERMINED", "--json")
    assert code == EXIT_OK and [a["name"] for a in json.loads(filtered)] == ["web_busy"]

    code, one, _ = await cli.run("alarms", "cpu_high")
    assert code == EXIT_OK
    assert "cpu_high (aodh, severity low): avg(cpu_util, 600) > 70 times 3" in one
    assert "instance running hot" in one
    assert "insufficient data\talarm" in one and "scale web scale_out, log" in one

    code, as_json, _ = await cli.run("alarms", "web_busy", "--json")
    data = json.loads(as_json)
    assert code == EXIT_OK and data["alarm"]["states"][0]["dimensions"] == {"instance": "b:9100"}
    assert data["history"] == []  # the initial UNDETERMINED, confirmed by its missing-data alert: no transition


@pytest.mark.parametrize(("argv", "code", "says"), [
    (("alarms", "nope"), EXIT_NO, "HTTP 404: no alarm named 'nope'"),
    (("alarms", "--state", "sideways"), EXIT_NO, "state: must be ok, alarm or insufficient_data"),
    (("alarms", "cpu_high", "--state", "ok"), EXIT_NO, "cpu_high is not in state ok"),
], ids=["unknown-alarm", "bad-state", "not-in-state"])
async def test_mistakes_are_clear(cli: CliRunner, argv: tuple[str, ...], code: int, says: str) -> None:
    got, output, errors = await cli.run(*argv)

    assert got == code and says in output + errors
