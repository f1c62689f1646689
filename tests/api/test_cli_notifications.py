"""``alertscaler notifications [ID]`` against a real service: the app served by uvicorn on 127.0.0.1 in this process
(real SQLite store, ``fake`` provider, the test's clock), an alarm's alert posted to it, the notifications delivered
to a real webhook receiver on loopback (failing once); the CLI's ``main`` run in a thread as a user would run it:
output, exit codes, a clear message without a traceback for every mistake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from alertscaler.act.engine import Engine
from alertscaler.cli import EXIT_NO, EXIT_OK, EXIT_USAGE
from tests.api.conftest import TOKEN, Clock, make_harness
from tests.api.test_notifications import alarm_alert
from tests.support.cli import CliRunner, serving
from tests.support.receivers import WebhookReceiver
from tests.support.webhooks import body

SECRET = "cli-notification-secret-0123456789"


def policy(hook: WebhookReceiver) -> str:
    return f"""
server: {{auth: {{bearer_token: {TOKEN}}}}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 4
notification_methods:
  hook: {{type: webhook, url: "{hook.url}/x?token=hidden", secret: {SECRET}, retries: 1, backoff: 10s}}
alarms:
  cpu_high:
    expression: avg(cpu.user_perc) > 85
    group: web
    alarm_actions: ['notify:hook', '{hook.url.replace("http://", "http://user:pw@")}/aodh?sig=hidden']
"""


@dataclass
class Cli(CliRunner):
    engine: Engine
    clock: Clock



@pytest.fixture
async def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
              ) -> AsyncIterator[tuple[Cli, WebhookReceiver]]:
    monkeypatch.setenv("ALERTSCALER_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "250")  # rich tables on one line each
    with WebhookReceiver() as hook:
        engine, clock, _, store, _ = make_harness(tmp_path, policy(hook))
        try:
            async with serving(engine) as url:
                yield Cli(url, capsys, engine, clock), hook
        finally:
            await engine.stop()
            store.close()


async def test_list_and_show_notifications(cli: tuple[Cli, WebhookReceiver]) -> None:
    c, hook = cli
    code, printed, _ = await c.run("notifications")
    assert (code, printed.strip()) == (EXIT_OK, "no notification yet")

    hook.answer(503, path="/x")
    async with httpx.AsyncClient(base_url=c.url, trust_env=False) as client:
        response = await client.post("/api/v1/alerts", json=body(alarm_alert()),
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    await c.engine.run_once()

    code, printed, _ = await c.run("notifications")
    assert code == EXIT_OK
    rows = [line for line in printed.splitlines() if "cpu_high" in line]
    assert len(rows) == 2
    (hook_row,) = [r for r in rows if "hook (webhook)" in r]
    assert "pending" in hook_row and "1/2" in hook_row and "HTTP 503: Service Unavailable" in hook_row
    (url_row,) = [r for r in rows if "url (webhook)" in r]
    assert "delivered" in url_row and "HTTP 200" in url_row
    assert "hidden" not in printed and "pw@" not in printed

    code, printed, _ = await c.run("notifications", "--status", "pending", "--json")
    (pending,) = json.loads(printed)
    assert pending["method"] == "hook" and pending["attempt_history"][0]["status"] == "HTTP 503"

    c.clock.advance(10)
    await c.engine.run_once()
    code, printed, _ = await c.run("notifications", str(pending["id"]))
    assert code == EXIT_OK
    assert f"notification {pending['id']} ({pending['uid']}): alarm cpu_high insufficient_data -> alarm" in printed
    assert "via hook (webhook, hook): delivered, 2/2 attempt(s)" in printed
    assert "HTTP 503" in printed and "HTTP 200" in printed

    code, printed, _ = await c.run("notifications", "--method", "url", "--json")
    (url,) = json.loads(printed)
    assert url["target"] == f"{hook.url}/aodh?..."  # no credentials, no query


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [(("notifications", "999"), EXIT_NO, "HTTP 404: no notification 999"),
     (("notifications", "x1"), EXIT_USAGE, "'x1' is not a notification's id"),
     (("notifications", "--status", "lost"), EXIT_USAGE, "invalid choice: 'lost'")],
    ids=["unknown-id", "bad-id", "bad-status"],
)
async def test_mistakes_are_clear(cli: tuple[Cli, WebhookReceiver], argv: tuple[str, ...], code: int,
                                  message: str) -> None:
    got, printed, err = await cli[0].run(*argv)
    assert got == code and message in err + printed
