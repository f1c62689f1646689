"""The ``exec`` provider with real processes: environment, stdin, exit statuses, timeouts, concurrency."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pydantic
import pytest

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import MemberState
from alertscaler.providers.base import Provider, ProviderContext, ScaleRequest, Settler
from alertscaler.providers.boundary import Guarded
from alertscaler.providers.exec import provider as exec_provider
from alertscaler.providers.exec.provider import ExecConfig, ExecProvider
from alertscaler.providers.registry import config_model, create

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]

RECORD = str(Path(__file__).parent / "data" / "record_env.py")

NOTIFICATION: dict[str, Any] = {
    "receiver": "pyhook",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "QuickFire", "group": "web"},
            "annotations": {"scale_by": "1"},
            "startsAt": "2026-11-21T22:44:17.812Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://127.0.0.1:19090/graph?g0.expr=vector%281%29",
            "fingerprint": "6f946de853c59d1d",
        }
    ],
    "groupLabels": {"group": "web"},
    "commonLabels": {"alertname": "QuickFire", "group": "web"},
    "commonAnnotations": {"scale_by": "1"},
    "externalURL": "http://127.0.0.1:19093",
    "version": "4",
    "groupKey": '{}:{group="web"}',
    "truncatedAlerts": 0,
}


def _request(notification: dict[str, Any] | None = NOTIFICATION, **kw: Any) -> ScaleRequest:
    return ScaleRequest(
        group="web", from_capacity=2, desired=3, action_id=41, decision_id=17, notification=notification, **kw
    )


def _provider(tmp_path: Path, **config: Any) -> ExecProvider:
    config.setdefault("command", [sys.executable, RECORD, str(tmp_path / "out")])
    (tmp_path / "out").mkdir(exist_ok=True)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return ExecProvider(ExecConfig(type="exec", **config), ProviderContext(group="web", state_dir=state))


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("*.json"))]


def _live_members_of_group(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that are still running (zombies count as gone)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            live.append(int(stat.parent.name))
    return live


def test_registry_builds_an_exec_provider(tmp_path: Path) -> None:
    model = config_model("exec")
    config = model.model_validate({"type": "exec", "command": ["/bin/true"]})
    provider = create(config, ProviderContext(group="web", state_dir=tmp_path))
    assert isinstance(provider, Guarded) and isinstance(provider.inner, ExecProvider)  # behind the one boundary
    assert isinstance(provider, Provider) and isinstance(provider, Settler)
    assert provider.idempotent is False
    assert config == ExecConfig(type="exec", command=["/bin/true"], timeout="60s", temporary_exit_codes=[75])


def test_variables_and_stdin_reach_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMX_ALERT_9_STATUS", "stale, inherited")
    monkeypatch.setenv("INHERITED_SETTING", "kept")
    provider = _provider(tmp_path, env={"API_REGION": "eu-west"}, workdir=str(tmp_path))

    result = provider.scale(_request())

    assert result == "exit 0 (no output)"
    (record,) = _records(tmp_path)
    env = record["env"]
    assert {k: v for k, v in env.items() if k.startswith(("AMX_", "AS_"))} == {
        "AMX_RECEIVER": "pyhook",
        "AMX_STATUS": "firing",
        "AMX_EXTERNAL_URL": "http://127.0.0.1:19093",
        "AMX_ALERT_LEN": "1",
        "AMX_LABEL_alertname": "QuickFire",
        "AMX_LABEL_group": "web",
        "AMX_GLABEL_group": "web",
        "AMX_ANNOTATION_scale_by": "1",
        "AMX_ALERT_1_STATUS": "firing",
        "AMX_ALERT_1_START": "1795301057",
        "AMX_ALERT_1_END": "0",
        "AMX_ALERT_1_URL": "http://127.0.0.1:19090/graph?g0.expr=vector%281%29",
        "AMX_ALERT_1_FINGERPRINT": "6f946de853c59d1d",
        "AMX_ALERT_1_LABEL_alertname": "QuickFire",
        "AMX_ALERT_1_LABEL_group": "web",
        "AMX_ALERT_1_ANNOTATION_scale_by": "1",
        "AS_GROUP": "web",
        "AS_FROM": "2",
        "AS_TO": "3",
        "AS_ACTION_ID": "41",
        "AS_DECISION_ID": "17",
    }
    assert env["API_REGION"] == "eu-west" and env["INHERITED_SETTING"] == "kept"
    assert json.loads(record["stdin"]) == NOTIFICATION
    assert record["cwd"] == str(tmp_path)
    assert record["pgid"] == record["pid"], "the command leads a process group of its own"


def test_timer_decision_gets_a_synthetic_body(tmp_path: Path) -> None:
    alerts = [{"status": "firing", "labels": {"alertname": "X"}, "annotations": {}}]
    _provider(tmp_path).scale(_request(notification=None, alerts=alerts))
    (record,) = _records(tmp_path)
    body = json.loads(record["stdin"])
    assert body["receiver"] == "alertscaler" and body["alerts"] == alerts and body["version"] == "4"
    assert record["env"]["AMX_RECEIVER"] == "alertscaler"
    assert record["env"]["AMX_ALERT_1_LABEL_alertname"] == "X"


def test_first_line_of_stdout_is_the_result(tmp_path: Path) -> None:
    command = [sys.executable, RECORD, str(tmp_path / "out"), "--stdout", "\n  scaled web to 3  \nmore"]
    assert _provider(tmp_path, command=command).scale(_request()) == "exit 0: scaled web to 3"


def test_hostile_labels_arrive_verbatim_and_nothing_is_executed(tmp_path: Path) -> None:
    hostile = {
        "quote": 'x"; touch /tmp/pwned-$$; echo "',
        "quote2": f"x'; touch {tmp_path}/pwned-quote; echo '",
        "subst": f"$(touch {tmp_path}/pwned-subst)",
        "tick": f"`touch {tmp_path}/pwned-tick`",
        "newline": f"a\ntouch {tmp_path}/pwned-newline\n",
        "semi": f"; touch {tmp_path}/pwned-semi &&",
        "id": "$(id)",
    }
    notification = json.loads(json.dumps(NOTIFICATION))
    notification["commonLabels"] = hostile
    notification["alerts"][0]["labels"] = hostile
    before = set(Path("/tmp").glob("pwned-*"))
    # A shell that uses the variable, quoted as a script should: still data, never code.
    shell_user = [
        "/bin/sh", "-c", 'printf %s "$AMX_LABEL_subst$AMX_LABEL_tick" > "$1"; exec "$2" "$3" "$4"', "sh",
        str(tmp_path / "via-sh"), sys.executable, RECORD, str(tmp_path / "out"),
    ]  # fmt: skip

    for command in ([sys.executable, RECORD, str(tmp_path / "out")], shell_user):
        _provider(tmp_path, command=command).scale(_request(notification))

    records = _records(tmp_path)
    assert len(records) == 2
    for record in records:
        for name, value in hostile.items():
            assert record["env"][f"AMX_LABEL_{name}"] == value
            assert record["env"][f"AMX_ALERT_1_LABEL_{name}"] == value
        assert json.loads(record["stdin"])["commonLabels"] == hostile
    assert (tmp_path / "via-sh").read_text() == hostile["subst"] + hostile["tick"]
    assert not list(tmp_path.glob("pwned-*"))
    assert set(Path("/tmp").glob("pwned-*")) == before


def test_non_zero_exit_is_permanent_with_the_stderr_tail(tmp_path: Path) -> None:
    command = [sys.executable, RECORD, str(tmp_path / "out"), "--stderr-lines", "30", "--exit", "3"]
    with pytest.raises(PermanentProviderError) as caught:
        _provider(tmp_path, command=command).scale(_request())
    message = str(caught.value)
    assert "exited with status 3" in message and sys.executable in message
    assert "stderr line 30" in message and "stderr line 11" in message
    assert "stderr line 10\n" not in message and "stderr line 1\n" not in message


def test_exit_75_is_temporary(tmp_path: Path) -> None:
    command = [sys.executable, RECORD, str(tmp_path / "out"), "--stderr-lines", "1", "--exit", "75"]
    with pytest.raises(TemporaryProviderError, match=r"(?s)exited with status 75.*stderr line 1"):
        _provider(tmp_path, command=command).scale(_request())


def test_temporary_exit_codes_are_configurable(tmp_path: Path) -> None:
    command = [sys.executable, RECORD, str(tmp_path / "out"), "--exit", "9"]
    provider = _provider(tmp_path, command=command, temporary_exit_codes=[9])
    with pytest.raises(TemporaryProviderError, match="status 9"):
        provider.scale(_request())
    command[-1] = "75"
    with pytest.raises(PermanentProviderError, match="status 75"):
        _provider(tmp_path, command=command, temporary_exit_codes=[9]).scale(_request())


def test_death_by_signal_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(PermanentProviderError, match="killed by SIGKILL"):
        _provider(tmp_path, command=["/bin/sh", "-c", "kill -KILL $$"]).scale(_request())


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = 'echo $$ > "$1"; sleep 30 & echo $! >> "$1"; wait'
    provider = _provider(tmp_path, command=["/bin/sh", "-c", script, "sh", str(pids)], timeout="500ms")

    with pytest.raises(TemporaryProviderError, match=r"timed out after 0\.5s"):
        provider.scale(_request())

    leader, child = (int(p) for p in pids.read_text().split())
    assert _live_members_of_group(leader) == []
    assert not Path(f"/proc/{child}").exists() or _live_members_of_group(leader) == []


def test_timeout_escalates_to_sigkill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exec_provider, "_KILL_GRACE", 0.3)
    pids = tmp_path / "pids"
    script = 'trap \'\' TERM; echo $$ > "$1"; sleep 30 & echo $! >> "$1"; wait; wait'
    provider = _provider(tmp_path, command=["/bin/sh", "-c", script, "sh", str(pids)], timeout=0.5)

    with pytest.raises(TemporaryProviderError, match="timed out"):
        provider.scale(_request())

    leader, _child = (int(p) for p in pids.read_text().split())
    assert _live_members_of_group(leader) == []


def test_max_concurrent_1_serialises_scale_calls(tmp_path: Path) -> None:
    command = [sys.executable, RECORD, str(tmp_path / "out"), "--sleep", "0.3"]
    provider = _provider(tmp_path, command=command, max_concurrent=1)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(provider.scale, _request()) for _ in range(2)]
        results = [f.result() for f in futures]
    assert results == ["exit 0 (no output)"] * 2
    first, second = sorted(_records(tmp_path), key=lambda r: r["start"])
    assert first["end"] < second["start"], "the two commands overlapped"


def test_max_concurrent_2_lets_two_commands_run_together(tmp_path: Path) -> None:
    # Each command waits until both have started: only possible when they really run at the same time.
    command = [sys.executable, RECORD, str(tmp_path / "out"), "--rendezvous", "2"]
    provider = _provider(tmp_path, command=command, max_concurrent=2, timeout=30)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(provider.scale, _request()) for _ in range(2)]
        assert [f.result() for f in futures] == ["exit 0 (no output)"] * 2


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda d: [str(d / "missing.sh")], "command not found: {d}/missing.sh", id="missing"),
        pytest.param(
            lambda d: ["no-such-program-alertscaler"], "no-such-program-alertscaler", id="not-on-path"
        ),
        pytest.param(
            lambda d: [str(d / "plain.txt")], "command not executable: {d}/plain.txt", id="no-x-bit"
        ),
        pytest.param(lambda d: [str(d)], "{d}", id="directory"),
    ],
)
def test_command_that_cannot_start_is_permanent(tmp_path: Path, make: Any, expected: str) -> None:
    (tmp_path / "plain.txt").write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(PermanentProviderError) as caught:
        _provider(tmp_path, command=make(tmp_path)).scale(_request())
    assert expected.format(d=tmp_path) in str(caught.value)


def test_missing_workdir_is_permanent(tmp_path: Path) -> None:
    with pytest.raises(PermanentProviderError, match=r"workdir .*nowhere does not exist"):
        _provider(tmp_path, workdir=str(tmp_path / "nowhere")).scale(_request())


def test_env_values_are_secret(tmp_path: Path) -> None:
    secret = "tok-4f9e-SECRET"
    script = 'echo "auth failed for $API_TOKEN" >&2; exit 1'
    provider = _provider(tmp_path, command=["/bin/sh", "-c", script], env={"API_TOKEN": secret})
    with pytest.raises(PermanentProviderError) as caught:
        provider.scale(_request())
    assert "auth failed for ***" in str(caught.value) and secret not in str(caught.value)
    assert secret not in repr(provider.config)
    with pytest.raises(pydantic.ValidationError) as invalid:
        ExecConfig(type="exec", command=["/bin/true"], env={"AS_TOKEN": secret})
    assert secret not in str(invalid.value) and "AS_TOKEN" in str(invalid.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param({"command": "/path/scale.sh --up"}, "must be a list of arguments", id="shell-string"),
        pytest.param({"command": []}, "at least 1 item", id="empty"),
        pytest.param({"command": [""]}, "must not be empty", id="empty-program"),
        pytest.param({"status_command": "echo 3"}, "must be a list of arguments", id="status-string"),
        pytest.param({"max_concurrent": 0}, "greater than or equal to 1", id="max-concurrent"),
        pytest.param({"timeout": "0s"}, "longer than 0s", id="zero-timeout"),
        pytest.param({"timeout": "soon"}, "duration like 60s", id="bad-timeout"),
        pytest.param({"env": {"AMX_STATUS": "x"}}, "set by alertscaler", id="reserved-amx"),
        pytest.param({"env": {"bad-name": "x"}}, "not an environment variable name", id="bad-env-name"),
        pytest.param({"temporary_exit_codes": [0]}, "greater than or equal to 1", id="exit-0"),
        pytest.param({"shell": True}, "Extra inputs are not permitted", id="extra"),
    ],
)
def test_config_rejects(config: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        ExecConfig.model_validate({"type": "exec", "command": ["/bin/true"], **config})


# ----------------------------------------------------------------------------------------- status


def _status_provider(tmp_path: Path, output: str, code: int = 0) -> ExecProvider:
    program = f"import sys; sys.stdout.write({output!r}); sys.exit({code})"
    return _provider(tmp_path, status_command=[sys.executable, "-c", program])


def test_status_without_status_command(tmp_path: Path) -> None:
    provider = _provider(tmp_path)
    status = provider.status()
    assert status.current is None and status.detail == "exec provider has no status_command"
    assert provider.members() == []


def test_status_integer(tmp_path: Path) -> None:
    provider = _status_provider(tmp_path, " 3\n")
    assert provider.status().current == 3
    assert provider.members() == []


def test_status_json_with_members(tmp_path: Path) -> None:
    output = json.dumps(
        {
            "current": 2,
            "members": [
                {"id": "web-1", "address": "10.0.0.1:8080"},
                {"id": "web-2", "address": None, "state": "starting", "labels": {"zone": "a"}},
            ],
        }
    )
    provider = _status_provider(tmp_path, output)
    status = provider.status()
    assert status.current == 2
    assert [(m.id, m.address, m.state, m.labels) for m in status.members] == [
        ("web-1", "10.0.0.1:8080", MemberState.RUNNING, {}),
        ("web-2", None, MemberState.STARTING, {"zone": "a"}),
    ]
    assert provider.members() == list(status.members)


def test_status_json_members_only_counts_them(tmp_path: Path) -> None:
    assert _status_provider(tmp_path, '{"members": [{"id": "a"}]}').status().current == 1


def test_status_gets_the_group_name(tmp_path: Path) -> None:
    program = "import os; print(3 if os.environ['AS_GROUP'] == 'web' else 'wrong group')"
    assert _provider(tmp_path, status_command=[sys.executable, "-c", program]).status().current == 3


@pytest.mark.parametrize(
    "output",
    [
        pytest.param("three instances", id="words"),
        pytest.param("-1", id="negative"),
        pytest.param('{"current": "3"}', id="string-current"),
        pytest.param('{"current": true}', id="bool-current"),
        pytest.param('{"members": [{"address": "x"}]}', id="member-without-id"),
        pytest.param('{"members": [{"id": "a", "state": "dancing"}]}', id="bad-state"),
        pytest.param("[1, 2]", id="json-list"),
        pytest.param("", id="empty"),
    ],
)
def test_status_garbage_is_permanent_and_names_the_output(tmp_path: Path, output: str) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        _status_provider(tmp_path, output).status()
    assert repr(output) in str(caught.value)


def test_status_command_failures(tmp_path: Path) -> None:
    with pytest.raises(TemporaryProviderError, match="status 75"):
        _status_provider(tmp_path, "", code=75).status()
    with pytest.raises(PermanentProviderError, match="status 2"):
        _status_provider(tmp_path, "3", code=2).status()


def test_a_label_over_128_kib_still_runs_the_command(tmp_path: Path) -> None:
    """Linux refuses an environment string over 128 KiB ("Argument list too long"): the value is cut, the
    command runs, and AS_ENV_TRUNCATED says so; stdin still carries the whole notification."""
    body = json.loads(json.dumps(NOTIFICATION))
    body["alerts"][0]["labels"]["huge"] = "x" * (200 * 1024)
    result = _provider(tmp_path).scale(_request(body))
    assert result.startswith("exit 0")
    record = _records(tmp_path)[-1]
    assert record["env"]["AS_ENV_TRUNCATED"] == "values"
    assert len(record["env"]["AMX_ALERT_1_LABEL_huge"]) == 32 * 1024
    assert len(json.loads(record["stdin"])["alerts"][0]["labels"]["huge"]) == 200 * 1024
