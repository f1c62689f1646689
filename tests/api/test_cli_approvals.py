"""``alertscaler approvals``, ``approve ID``, ``reject ID`` and what ``status`` shows of them, against a real service:
the app served by uvicorn on 127.0.0.1 in this process (real SQLite store, ``fake`` providers, the test's clock at
Saturday 2026-11-21 12:00 UTC, inside the group's weekend freeze), the CLI's ``main`` run in a thread as a user would
run it: output, exit codes, a clear message without a traceback for every mistake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from alertscaler.act.engine import Engine
from alertscaler.cli import EXIT_NO, EXIT_OK, EXIT_USAGE, main
from alertscaler.cli.local import print_freezes
from alertscaler.config import load_policy
from tests.api.conftest import TOKEN, make_harness
from tests.support.cli import CliRunner, serving
from tests.support.webhooks import alert, body

POLICY = f"""
server: {{auth: {{bearer_token: {TOKEN}}}, alert_stale_after: 1h}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 20
    desired: 2
    scale_out: {{matchers: ['alertname="Surge"'], adjustment_type: exact_capacity, adjustment: 9, cooldown: 60s}}
    approval: {{over_change: 3}}
    change_freeze:
      windows: [{{name: weekend, cron: "0 18 * * FRI", duration: 62h, reason: weekend freeze}}]
"""


@dataclass
class Cli(CliRunner):
    engine: Engine

    async def surge(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, trust_env=False) as client:
            response = await client.post("/api/v1/alerts", json=body(alert("Surge")),
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        await self.engine.run_once()


@pytest.fixture
async def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
              ) -> AsyncIterator[Cli]:
    monkeypatch.setenv("ALERTSCALER_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "250")  # rich tables on one line each
    engine, _, _, store, _ = make_harness(tmp_path, POLICY)
    try:
        async with serving(engine) as url:
            yield Cli(url, capsys, engine)
    finally:
        await engine.stop()
        store.close()


async def test_list_approve_and_status(cli: Cli) -> None:
    code, printed, _ = await cli.run("approvals")
    assert (code, printed.strip()) == (EXIT_OK, "no change waits for approval")
    await cli.surge()
    code, printed, _ = await cli.run("approvals", "web")
    assert code == EXIT_OK
    (row,) = [line for line in printed.splitlines() if "scale 2 -> 9" in line]
    assert "pending" in row and "a scale-out of 7 instances is over the approval limit of 3" in row
    code, printed, _ = await cli.run("approvals", "--json")
    (pending,) = json.loads(printed)
    approval_id = str(pending["id"])

    code, printed, _ = await cli.run("status")
    assert code == EXIT_OK
    assert f"web: waits for approval {approval_id}: scale 2 -> 9" in printed
    assert f"alertscaler approve {approval_id}" in printed
    assert "web: CHANGE FREEZE 'weekend' until 2026-11-23T08:00:00 UTC (weekend freeze): nothing but scale-out runs" \
        in printed

    code, printed, _ = await cli.run("approve", approval_id, "--by", "alice")
    assert code == EXIT_OK
    assert f"approved {approval_id}: scale 2 -> 9 of web (decision " in printed and "acted, approved, action" in printed
    await cli.engine.run_once()
    code, printed, err = await cli.run("approve", approval_id)
    assert code == EXIT_NO and f"HTTP 409: approval {approval_id}" in err and "is already approved by alice" in err
    code, printed, _ = await cli.run("approvals", "--all", "--json")
    assert [(a["id"], a["state"], a["resolved_by"]) for a in json.loads(printed)] == \
        [(pending["id"], "approved", "alice")]


async def test_reject(cli: Cli) -> None:
    await cli.surge()
    code, printed, _ = await cli.run("approvals", "--json")
    approval_id = str(json.loads(printed)[0]["id"])
    code, printed, _ = await cli.run("reject", approval_id, "--by", "bob")
    assert code == EXIT_OK and f"rejected {approval_id}: scale 2 -> 9 of web is not carried out" in printed
    code, printed, _ = await cli.run("approvals")
    assert printed.strip() == "no change waits for approval"


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["approve", "999"], EXIT_NO, "HTTP 404: no approval 999"),
        (["reject", "999"], EXIT_NO, "HTTP 404: no approval 999"),
        (["approve", "abc"], EXIT_USAGE, "'abc' is not an approval's id"),
        (["approvals", "nosuch"], EXIT_NO, "no group named 'nosuch'"),
    ],
    ids=["approve-unknown", "reject-unknown", "approve-not-an-id", "approvals-unknown-group"],
)
async def test_mistakes_get_a_message_and_a_code(cli: Cli, argv: list[str], code: int, fragment: str) -> None:
    got, _, err = await cli.run(*argv)
    assert got == code and fragment in err


def test_check_shows_approval_rules_and_when_each_freeze_window_is_open(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = POLICY.replace("approval: {over_change: 3}", "approval: {over_change: 3, scale_out: false, heal: [replace]}")
    text = text.replace("reason: weekend freeze}]", "reason: weekend freeze}, {name: xmas, cron: '0 0 24 12 *', "
                                                    "duration: 3d}]\n      timezone: Europe/Berlin")
    policy = load_policy(text)
    print_freezes(policy, datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
    printed = capsys.readouterr().out
    assert "web approval: a change of more than 3 (scale-in only) and heals by replace wait up to 1h" in printed
    assert "web change freeze weekend: '0 18 * * FRI' for 62h; OPEN now, until Mon 2026-11-23 08:00 Europe/Berlin" \
        in printed
    assert "web change freeze xmas: '0 0 24 12 *' for 72h; next opens Thu 2026-12-24 00:00 Europe/Berlin" in printed
    policy_file = tmp_path / "policy.yml"
    policy_file.write_text(text.replace(f"bearer_token: {TOKEN}", "insecure_no_auth: true"))
    assert main(["check", str(policy_file)]) == EXIT_OK
    assert "web change freeze weekend: '0 18 * * FRI' for 62h;" in capsys.readouterr().out
