"""``alertscaler alarms [NAME]`` against a real service: the app served by uvicorn on 127.0.0.1 in this process (real
SQLite store, ``fake`` provider), alarm alerts posted to its webhook; the CLI's ``main`` run in a thread as a user
would run it: tables, --json, --state, exit codes, a clear message without a traceback for a mistake."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn

from alertscaler.api.app import create_app
from alertscaler.cli import EXIT_NO, EXIT_OK, main
from tests.api.conftest import TOKEN, make_harness
from tests.api.test_alarms import POLICY, T0, alarm_alert
from tests.support.webhooks import body


@dataclass
class Cli:
    url: str
    capsys: pytest.CaptureFixture[str]

    async def run(self, *argv: str) -> tuple[int, str, str]:
        args = [*argv, "--url", self.url, "-c", "/nonexistent/alertscaler.yml"]

        def call() -> int:
            try:
                return main(args)
            except SystemExit as exc:
                return int(exc.code or 0)

        self.capsys.readouterr()
        code = await anyio.to_thread.run_sync(call)
        captured = self.capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out
        return code, captured.out, captured.err


@pytest.fixture
async def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
              ) -> AsyncIterator[Cli]:
    monkeypatch.setenv("ALERTSCALER_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "250")  # rich tables on one line each
    engine, clock, _, store, _ = make_harness(tmp_path, POLICY)
    clock.now = T0 + timedelta(seconds=5)
    config = uvicorn.Config(create_app(engine, manage_engine=False), log_config=None, lifespan="off")
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await server.startup(sockets=[sock])
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            response = await client.post("/api/v1/alerts", json=body(
                alarm_alert("cpu_high"), alarm_alert("web_busy", "insufficient_data", instance="b:9100")))
            assert response.status_code == 200, response.text
        yield Cli(url, capsys)
    finally:
        await server.shutdown(sockets=[sock])
        sock.close()
        await engine.stop()
        store.close()


async def test_list_filter_and_show_one(cli: Cli) -> None:
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
async def test_mistakes_are_clear(cli: Cli, argv: tuple[str, ...], code: int, says: str) -> None:
    got, output, errors = await cli.run(*argv)

    assert got == code and says in output + errors
