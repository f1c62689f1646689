"""The CLI never breaks (issue 17 item 6): tables that fit the terminal (cut, never wrapped) and a plain
tab-separated layout when piped; ``-o json|yaml`` (``--json`` kept); no traceback when the reader of stdout goes
away (a real ``alertscaler decisions --json | head -1`` pipeline against a served engine); ``--reason`` lists
its values; ``completion bash|zsh`` scripts that the shells parse."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from rich.console import Console
from rich.table import Table

from alertscaler.cli import EXIT_OK, EXIT_USAGE, main
from alertscaler.cli.tables import print_table
from alertscaler.model.decisions import Reason
from tests.api.conftest import TOKEN, make_harness
from tests.support.cli import CliRunner, serving

ALERTSCALER = str(Path(sys.executable).with_name("alertscaler"))
COLUMNS = ("id", "time", "group", "policy", "trigger", "outcome", "reason", "from→to", "message")
ROWS = [
    ("1", "2026-12-07T23:41:02", "web", "scale_out", "notification", "[green]acted[/green]", "scaled", "1→2",
     "HighLoad fired on web: scaling out by one instance, the group stays within its bounds"),
    ("22", "2026-12-07T23:45:10", "batch-workers", "scale_in", "timer", "[yellow]skipped[/yellow]", "cooldown", "",
     "scale_in is cooling down until 23:50:10 (cooldown 5m)"),
]


def table() -> Table:
    t = Table(title="decisions (newest first)")
    for col in COLUMNS:
        t.add_column(col)
    for row in ROWS:
        t.add_row(*row)
    return t


@pytest.mark.parametrize("width", [40, 80, 200], ids=["w40", "w80", "w200"])
def test_a_table_fits_the_terminal(width: int) -> None:
    buf = io.StringIO()
    print_table(table(), Console(file=buf, width=width, force_terminal=True, color_system=None, soft_wrap=True))
    lines = buf.getvalue().splitlines()
    assert lines and max(len(line) for line in lines) <= width
    data_lines = [line for line in lines if "2026-" in line or "20…" in line or line.lstrip().startswith(("1", "22"))]
    assert len(data_lines) == len(ROWS)  # one line per row: nothing wrapped
    whole = "\n".join(lines)
    if width == 200:  # room for everything: nothing cut
        assert "…" not in whole and ROWS[0][-1] in whole
    else:
        assert "…" in whole
    if width == 80:  # narrow columns stay whole, the long ones are cut
        for short in ("web", "scale_out", "scaled", "cooldown", "1→2"):
            assert short in whole


def test_piped_a_table_is_plain_tab_separated() -> None:
    buf = io.StringIO()
    print_table(table(), Console(file=buf, width=40))  # not a terminal
    lines = buf.getvalue().splitlines()
    assert lines[0].split("\t") == list(COLUMNS)
    assert lines[1].split("\t") == [*ROWS[0][:5], "acted", *ROWS[0][6:]]  # markup gone, nothing cut
    assert lines[2].split("\t")[7] == ""
    assert len(lines) == 3 and "…" not in buf.getvalue()


@pytest.fixture
async def served(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
                 ) -> AsyncIterator[CliRunner]:
    monkeypatch.setenv("ALERTSCALER_TOKEN", TOKEN)
    engine, _, _, store, _ = make_harness(tmp_path)
    try:
        async with serving(engine) as url:
            yield CliRunner(url, capsys)
    finally:
        await engine.stop()
        store.close()


async def scale_many(url: str, times: int) -> None:
    async with httpx.AsyncClient(base_url=url, trust_env=False,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for i in range(times):
            response = await client.post("/api/v1/groups/web/scale", json={"desired": 2 + i % 3})
            assert response.status_code in (200, 202), response.text


@pytest.mark.parametrize(
    ("argv", "load"),
    [
        (("decisions", "--json"), json.loads),
        (("decisions", "-o", "json"), json.loads),
        (("decisions", "-o", "yaml"), yaml.safe_load),
        (("status", "-o", "yaml"), yaml.safe_load),
    ],
    ids=["--json", "-o-json", "-o-yaml", "status-yaml"],
)
async def test_structured_output(served: CliRunner, argv: tuple[str, ...], load: Callable[[str], Any]) -> None:
    await scale_many(served.url, 2)
    code, out, _ = await served.run(*argv)
    data = load(out)
    assert code == EXIT_OK and isinstance(data, list) and data
    if argv[0] == "decisions":
        assert {d["reason"] for d in data} == {"manual"} and len(data) == 2
    else:
        assert [g["name"] for g in data] == ["web", "batch"]


async def test_piped_decisions_are_plain(served: CliRunner) -> None:
    await scale_many(served.url, 1)
    code, out, _ = await served.run("decisions")
    assert code == EXIT_OK
    header, row = out.splitlines()
    assert header.split("\t") == list(COLUMNS)
    assert row.split("\t")[2:8] == ["web", "-", "manual", "acted", "manual", "1→2"]


async def test_a_closed_pipe_is_no_error(served: CliRunner) -> None:
    await scale_many(served.url, 250)  # --json of 250 decisions (~150 KB): more than a pipe holds (64 KiB)
    code, out, _ = await served.run("decisions", "--json", "--limit", "1000")
    assert code == EXIT_OK and len(out) > 2 * 65536
    script = '"$0" decisions --json --limit 1000 --url "$1" -c /nonexistent 2>"$2" | head -1; echo "${PIPESTATUS[0]}"'
    errors = Path(served.url.rsplit(":", 1)[1] + ".stderr")
    env = {**os.environ, "ALERTSCALER_TOKEN": TOKEN}
    try:
        done = await anyio.to_thread.run_sync(lambda: subprocess.run(
            ["bash", "-c", script, ALERTSCALER, served.url, str(errors)], capture_output=True, text=True, env=env,
            timeout=120))
        first, status = done.stdout.splitlines()
        assert first == "["
        assert errors.read_text() == "" and done.stderr == ""  # no traceback, no "Exception ignored"
        assert status == "141"  # like a command SIGPIPE ended
    finally:
        errors.unlink(missing_ok=True)


def test_reason_lists_its_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["decisions", "--reason", "bogus"])
    assert exc.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "invalid choice: 'bogus'" in err and all(f"'{r.value}'" in err for r in Reason)
    with pytest.raises(SystemExit):
        main(["decisions", "--help"])
    assert "one of: scaled, clamped" in capsys.readouterr().out


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script(shell: str, tmp_path: Path) -> None:
    done = subprocess.run([ALERTSCALER, "completion", shell], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == ""
    script = tmp_path / f"alertscaler.{shell}"
    script.write_text(done.stdout)
    for word in ("decisions", "--reason", "scaled", "completion"):
        assert word in done.stdout
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed: the script was generated but not syntax-checked")
    check = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
