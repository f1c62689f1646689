"""Healing with the ``exec`` provider and real commands: the member in the environment and on stdin, membership
checked against ``status_command``, hostile ids kept as data, the scale command's exit-status and timeout rules,
and a clear error for an action whose command is not configured.

Every command carries the test marker (``config.env``); ``no_leftover_processes`` fails the module if any
survives it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.providers.base import Healer, ProviderContext, Quarantiner, Rebooter
from alertscaler.providers.exec.provider import ExecConfig, ExecProvider
from tests.contract.provider_fixtures import MARKER_VAR, RUN_MARKER

pytest_plugins = ["tests.contract.provider_fixtures"]
pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("no_leftover_processes"),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]

RECORD = str(Path(__file__).parent / "data" / "record_env.py")
ACTIONS = {"replace": "heal_command", "reboot": "reboot_command", "quarantine": "quarantine_command"}
METHODS = {"replace": "heal", "reboot": "reboot", "quarantine": "quarantine"}
MEMBERS = {"current": 2, "members": [{"id": "web-1", "address": "10.0.0.1:8080", "labels": {"zone": "a"}},
                                     {"id": "web-2", "address": None, "state": "failed"}]}


def _status_command(output: Any) -> list[str]:
    text = output if isinstance(output, str) else json.dumps(output)
    return [sys.executable, "-c", f"import sys; sys.stdout.write({text!r})"]


def _provider(tmp_path: Path, **config: Any) -> ExecProvider:
    (tmp_path / "out").mkdir(exist_ok=True)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    config.setdefault("command", ["/bin/true"])
    config["env"] = {**config.get("env", {}), MARKER_VAR: RUN_MARKER}
    return ExecProvider(ExecConfig(type="exec", **config), ProviderContext(group="web", state_dir=state))


def _record(tmp_path: Path) -> list[str]:
    return [sys.executable, RECORD, str(tmp_path / "out")]


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("*.json"))]


def _call(provider: ExecProvider, action: str, member_id: str) -> str:
    result: str = getattr(provider, METHODS[action])(member_id)
    return result


def test_the_class_has_every_heal_ability(tmp_path: Path) -> None:
    provider = _provider(tmp_path)
    assert isinstance(provider, Healer) and isinstance(provider, Rebooter) and isinstance(provider, Quarantiner)


@pytest.mark.parametrize("action", list(ACTIONS), ids=list(ACTIONS))
def test_the_member_reaches_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str) -> None:
    monkeypatch.setenv("AMX_STATUS", "stale, inherited")
    provider = _provider(tmp_path, status_command=_status_command(MEMBERS), env={"API_REGION": "eu"},
                         **{ACTIONS[action]: _record(tmp_path)})

    assert _call(provider, action, "web-1") == f"{action} web-1: exit 0 (no output)"

    (record,) = _records(tmp_path)
    env = record["env"]
    assert {k: v for k, v in env.items() if k.startswith(("AS_", "AMX_"))} == {
        "AS_GROUP": "web", "AS_MEMBER": "web-1", "AS_MEMBER_ADDRESS": "10.0.0.1:8080", "AS_HEAL_ACTION": action}
    assert env["API_REGION"] == "eu"
    assert json.loads(record["stdin"]) == {"group": "web", "action": action, "member": {
        "id": "web-1", "address": "10.0.0.1:8080", "state": "running", "labels": {"zone": "a"}}}
    assert record["pgid"] == record["pid"], "run in a process group of its own, like the scale command"


def test_a_member_without_address_gets_no_address_variable(tmp_path: Path) -> None:
    provider = _provider(tmp_path, status_command=_status_command(MEMBERS), heal_command=_record(tmp_path))
    provider.heal("web-2")
    (record,) = _records(tmp_path)
    assert "AS_MEMBER_ADDRESS" not in record["env"] and record["env"]["AS_MEMBER"] == "web-2"
    assert json.loads(record["stdin"])["member"]["state"] == "failed"


@pytest.mark.parametrize("status_command", [None, _status_command("2"), _status_command({"current": 2})],
                         ids=["no-status-command", "integer-status", "json-without-members"])
def test_without_a_member_list_the_command_checks_the_id(tmp_path: Path, status_command: list[str] | None) -> None:
    provider = _provider(tmp_path, status_command=status_command, heal_command=_record(tmp_path))
    provider.heal("anything-7")
    (record,) = _records(tmp_path)
    assert record["env"]["AS_MEMBER"] == "anything-7" and "AS_MEMBER_ADDRESS" not in record["env"]
    assert json.loads(record["stdin"])["member"] == {"id": "anything-7", "address": None}


@pytest.mark.parametrize("member_id", ["web-3", "", "web-1\x00; reboot"], ids=["not-listed", "empty", "nul"])
def test_a_non_member_is_permanent_and_nothing_runs(tmp_path: Path, member_id: str) -> None:
    provider = _provider(tmp_path, status_command=_status_command(MEMBERS),
                         **{key: _record(tmp_path) for key in ACTIONS.values()})
    for action in ACTIONS:
        with pytest.raises(PermanentProviderError, match=r"not a member|empty or contains a NUL"):
            _call(provider, action, member_id)
    assert _records(tmp_path) == []


def test_hostile_member_ids_are_data_never_code(tmp_path: Path) -> None:
    hostile = [
        f'x"; touch {tmp_path}/pwned-quote; echo "',
        f"x'; touch {tmp_path}/pwned-quote2; echo '",
        f"$(touch {tmp_path}/pwned-subst)",
        f"`touch {tmp_path}/pwned-tick`",
        f"a\ntouch {tmp_path}/pwned-newline\n",
        f"; touch {tmp_path}/pwned-semi &&",
        "--help",
        "-rf /",
    ]
    listed = {"members": [{"id": h, "address": f"{h}:1"} for h in hostile]}
    # A command that hands the variable to a shell the way a script should (quoted): still data.
    shell_user = ["/bin/sh", "-c", 'printf %s "$AS_MEMBER" >> "$1"; exec "$2" "$3" "$4"', "sh",
                  str(tmp_path / "via-sh"), *_record(tmp_path)]
    provider = _provider(tmp_path, status_command=_status_command(listed), heal_command=shell_user)

    for member_id in hostile:
        assert provider.heal(member_id) == f"replace {member_id}: exit 0 (no output)"

    records = _records(tmp_path)
    assert sorted(r["env"]["AS_MEMBER"] for r in records) == sorted(hostile)
    assert sorted(r["env"]["AS_MEMBER_ADDRESS"] for r in records) == sorted(f"{h}:1" for h in hostile)
    assert all(r["argv"][1:] == [str(tmp_path / "out")] for r in records), "ids never reach the argv"
    assert (tmp_path / "via-sh").read_text() == "".join(hostile)
    assert not list(tmp_path.glob("pwned-*"))


def test_first_line_of_stdout_is_the_result(tmp_path: Path) -> None:
    provider = _provider(tmp_path, heal_command=[*_record(tmp_path), "--stdout", "\n created web-9 \nmore"])
    assert provider.heal("web-1") == "replace web-1: exit 0: created web-9"


@pytest.mark.parametrize(("code", "error"), [(75, TemporaryProviderError), (9, TemporaryProviderError),
                                             (1, PermanentProviderError)], ids=["ex-tempfail", "configured", "other"])
def test_exit_statuses_follow_the_scale_rules(tmp_path: Path, code: int, error: type[Exception]) -> None:
    command = [*_record(tmp_path), "--stderr-lines", "2", "--exit", str(code)]
    provider = _provider(tmp_path, reboot_command=command, temporary_exit_codes=[75, 9])
    with pytest.raises(error, match=rf"(?s)exited with status {code}.*stderr line 2"):
        provider.reboot("web-1")


def test_timeout_kills_the_heal_command(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = 'echo $$ > "$1"; sleep 30 & echo $! >> "$1"; wait'
    provider = _provider(tmp_path, heal_command=["/bin/sh", "-c", script, "sh", str(pids)], timeout="500ms")
    with pytest.raises(TemporaryProviderError, match=r"timed out after 0\.5s"):
        provider.heal("web-1")
    for pid in (int(p) for p in pids.read_text().split()):
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.mark.parametrize("action", list(ACTIONS), ids=list(ACTIONS))
def test_an_action_without_its_command_names_the_key(tmp_path: Path, action: str) -> None:
    others = {key: _record(tmp_path) for a, key in ACTIONS.items() if a != action}
    provider = _provider(tmp_path, status_command=_status_command(MEMBERS), **others)
    with pytest.raises(PermanentProviderError, match=rf"no {ACTIONS[action]}: set provider\.{ACTIONS[action]}"):
        _call(provider, action, "web-1")
    assert _records(tmp_path) == []
