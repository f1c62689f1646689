"""The ``tosca`` provider with the REAL xOpera 0.7 (``make opera-venv``) on ``tests/tosca/service``.

The service's playbooks start and stop real local web servers (``python3 -m http.server`` on
``127.0.0.1:base_port+I``, pid files in a run directory), so every check here looks at real processes and
ports, and at ``opera info`` run independently of the provider. The contract suite runs the same provider
through ``tests/contract/test_providers.py`` (entry ``tosca``).

Every server carries the test-run marker in its environment: ``no_leftover_processes`` fails the module if one
survives; each group is undeployed in teardown (and its servers killed by pid file as a last resort, which
fails the test: undeploy must have stopped them).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alertscaler.config import load_policy, load_policy_file
from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import MemberState
from alertscaler.providers import registry
from alertscaler.providers.base import Healer, Provider, ProviderContext, Rebooter, ScaleRequest
from alertscaler.providers.tosca import provider as tosca_module
from alertscaler.providers.tosca.provider import ToscaConfig, ToscaProvider, ToscaRebooter, create
from tests.contract.provider_fixtures import CASE_VAR, MARKER_VAR, RUN_MARKER, marked_processes, scale_to
from tests.integration.tosca_fixtures import (
    REPO,
    SERVICE_TEMPLATE,
    ToscaGroup,
    answers,
    http_body,
    new_group,
    server_command_line,
)

pytest_plugins = ["tests.contract.provider_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_leftover_processes")]


@pytest.fixture
def tosca(tmp_path: Path) -> Iterator[ToscaGroup]:
    group = new_group(tmp_path / "state")
    try:
        yield group
    finally:
        killed = group.teardown()
    if killed:
        pytest.fail(f"opera undeploy left servers running (killed now): {killed}; status {group.opera_status()}")


def scale(provider: Provider, tosca: ToscaGroup, desired: int) -> str:
    return scale_to(provider, desired, tosca.group)


def assert_servers(tosca: ToscaGroup, count: int) -> dict[int, int]:
    """Exactly servers web-0 .. web-(count-1) run and answer (with their own page); the next ports are closed.
    Returns {index: pid}."""
    pids = tosca.server_pids()
    assert sorted(pids) == list(range(count)), pids
    for index in range(count):
        assert http_body(tosca.port(index)).strip() == f"web-{index}"
    for index in range(count, count + 2):
        assert not answers(tosca.port(index)), f"port of web-{index} still answers"
    return pids


def test_scale_1_3_1_real_processes(tosca: ToscaGroup) -> None:
    provider = tosca.provider()
    assert provider.idempotent is True

    message = scale(provider, tosca, 1)
    assert message.startswith("opera deployed: instance_count 0 -> 1"), message
    first = assert_servers(tosca, 1)
    assert tosca.opera_status() == "deployed"
    status = provider.status()
    assert status.current == 1
    assert [(m.id, m.address, m.state) for m in status.members] == [
        ("web-0", f"127.0.0.1:{tosca.port(0)}", MemberState.RUNNING)
    ]

    message = scale(provider, tosca, 3)
    assert message.startswith("opera updated: instance_count 1 -> 3"), message
    grown = assert_servers(tosca, 3)
    assert grown[0] == first[0], "scaling out must not restart the running server"
    assert tosca.opera_status() == "deployed"
    assert provider.status().current == 3
    assert [m.id for m in provider.members()] == ["web-0", "web-1", "web-2"]

    message = scale(provider, tosca, 1)
    assert message.startswith("opera updated: instance_count 3 -> 1"), message
    shrunk = assert_servers(tosca, 1)
    assert shrunk[0] == first[0]
    for index in (1, 2):
        assert not server_command_line(grown[index]), f"web-{index} (pid {grown[index]}) still runs"
    assert tosca.opera_status() == "deployed"
    assert provider.status().current == 1

    assert scale(provider, tosca, 1).startswith("opera: already converged"), "same size twice must not run opera"
    log = (tosca.state_dir / "tosca.log").read_text()
    assert log.count(" deploy -p ") == 1 and log.count(" update -p ") == 2, log


def test_status_is_reused_until_operas_storage_changes(tosca: ToscaGroup, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = tosca.provider()
    scale(provider, tosca, 2)
    runs: list[str] = []
    real = tosca_module.run_opera

    def counting(opera: Any, args: Any, timeout: float, record: bool = True) -> Any:
        runs.append(args[0])
        return real(opera, args, timeout, record)

    monkeypatch.setattr(tosca_module, "run_opera", counting)
    first = provider.status()
    assert runs == ["info", "outputs"]
    assert provider.status() == first and provider.members() == list(first.members)
    assert runs == ["info", "outputs"], "nothing changed: opera is not asked again"
    os.kill(tosca.server_pids()[1], signal.SIGKILL)
    provider.reboot("web-1")  # opera notify writes the instance files
    runs.clear()
    assert provider.status().current == 2
    assert runs == ["info", "outputs"]


def test_a_failing_playbook_is_permanent_with_its_reason_then_recovers(tosca: ToscaGroup) -> None:
    provider = tosca.provider()
    scale(provider, tosca, 1)
    own_log = tosca.run_dir / "operation.log"  # as a playbook that keeps a log of its own would
    own_log.write_text("converge: checking the disk\nconverge: the disk is full\n")
    failing = tosca.provider(inputs={"fail_with": "disk full on purpose"}, operation_log=str(own_log))

    with pytest.raises(PermanentProviderError) as caught:
        scale(failing, tosca, 2)
    message = str(caught.value)
    assert "opera update failed: status error" in message
    assert f"{own_log} (end):\nconverge: checking the disk\nconverge: the disk is full" in message
    assert 'task "Refuse when told to (tests of failed operations)" failed on opera: disk full on purpose' in message
    assert "Traceback" not in message, "opera's traceback is reduced to its exception line"
    assert tosca.opera_status() == "error"
    status = provider.status()
    assert status.current is None and "error" in status.detail

    # Other inputs than the failed ones: opera update redeploys the failed node.
    assert scale(provider, tosca, 2).startswith("opera updated: instance_count ? -> 2")
    assert_servers(tosca, 2)
    assert tosca.opera_status() == "deployed"
    assert provider.status().current == 2


def test_same_inputs_after_a_failure_resume_and_really_run(tosca: ToscaGroup) -> None:
    """A failure that goes away by itself (a port taken by someone else), retried with the SAME inputs:
    ``opera update`` would mark the deployment deployed without running anything (opera 0.7), so the
    provider resumes the deployment; the server must really run afterwards."""
    provider = tosca.provider()
    scale(provider, tosca, 1)
    squatter = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(tosca.port(1)), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not answers(tosca.port(1)):
            assert time.monotonic() < deadline, "the squatting server did not start"
            time.sleep(0.05)
        with pytest.raises(PermanentProviderError) as caught:
            scale(provider, tosca, 2)
        message = str(caught.value)
        assert 'task "Start the missing servers, stop the extra ones" failed on opera' in message
        assert f"127.0.0.1:{tosca.port(1)} is already taken by another process" in message
        assert "rc=1" in message
    finally:
        squatter.terminate()
        squatter.wait(10)
    assert tosca.opera_status() == "error"

    assert scale(provider, tosca, 2).startswith("opera resumed: instance_count ? -> 2")
    assert_servers(tosca, 2)
    assert tosca.opera_status() == "deployed"
    assert " deploy --resume --force -p " in (tosca.state_dir / "tosca.log").read_text()


def test_reboot_restarts_the_member_by_opera_notify(tosca: ToscaGroup) -> None:
    provider = tosca.provider()  # heal_event heal_member, heal_action reboot (the default)
    assert isinstance(provider, ToscaRebooter) and isinstance(provider, Rebooter)
    assert not isinstance(provider, Healer), "restarting in place is no replacement"
    scale(provider, tosca, 2)
    before = assert_servers(tosca, 2)
    os.kill(before[1], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while answers(tosca.port(1)):
        assert time.monotonic() < deadline
        time.sleep(0.05)

    message = provider.reboot("web-1")
    assert message.startswith("opera notify -e heal_member: reboot web-1"), message
    after = assert_servers(tosca, 2)
    assert after[0] == before[0] and after[1] != before[1]
    notification = json.loads((tosca.state_dir / "tosca-notification.json").read_text())
    assert notification == {"group": tosca.group, "member": "web-1", "address": f"127.0.0.1:{tosca.port(1)}",
                            "action": "reboot"}
    assert tosca.opera_status() == "deployed"

    with pytest.raises(PermanentProviderError, match=r"cannot reboot web-7: not a member .*members: web-0, web-1"):
        provider.reboot("web-7")


def test_without_heal_event_the_provider_cannot_heal(tosca: ToscaGroup) -> None:
    provider = tosca.provider(heal_event=None)
    assert type(provider) is ToscaProvider
    assert isinstance(provider, Provider) and not isinstance(provider, Healer | Rebooter)
    assert not hasattr(provider, "heal") and not hasattr(provider, "reboot")


def test_a_hung_operation_is_killed_after_timeout_and_is_temporary(tosca: ToscaGroup) -> None:
    provider = tosca.provider()
    scale(provider, tosca, 1)
    case = f"{tosca.state_dir}-hung"  # what the hung operation starts carries it: counted here, not others'
    slow = tosca.provider(inputs={"sleep_seconds": 300}, timeout="6s", env={MARKER_VAR: RUN_MARKER, CASE_VAR: case})
    started = time.monotonic()
    with pytest.raises(TemporaryProviderError, match=r"opera update timed out after .*process group was killed"):
        scale(slow, tosca, 2)
    assert time.monotonic() - started < 20
    leftovers = [pid for pid in marked_processes(case, CASE_VAR) if "http.server" not in server_command_line(pid)]
    assert leftovers == [], [server_command_line(pid) for pid in leftovers]

    assert scale(provider, tosca, 2).startswith("opera updated: instance_count ? -> 2")
    assert_servers(tosca, 2)
    assert tosca.opera_status() == "deployed"


def test_a_group_busy_in_another_process_is_temporary(tosca: ToscaGroup) -> None:
    lock = tosca.state_dir / "tosca.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('locked', flush=True); time.sleep(60)", str(lock)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        provider = tosca.provider(timeout="1s")
        request = ScaleRequest(group=tosca.group, from_capacity=0, desired=1, action_id=1, decision_id=1)
        started = time.monotonic()
        with pytest.raises(TemporaryProviderError, match=r"cannot scale to 1: another opera command .* still runs"):
            provider.scale(request)
        assert 0.9 < time.monotonic() - started < 5, "waits for the lock until the timeout"
        with pytest.raises(TemporaryProviderError, match=r"cannot read the group's status"):
            provider.status()
    finally:
        holder.kill()
        holder.wait(10)
    with lock.open("a") as handle:  # free again
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert tosca.server_pids() == {}


def test_missing_opera_is_permanent(tosca: ToscaGroup) -> None:
    provider = tosca.provider(opera=str(tosca.state_dir / "no-such-venv" / "bin" / "opera"))
    with pytest.raises(PermanentProviderError, match=r"opera not found: .*no-such-venv/bin/opera .*make opera-venv"):
        scale(provider, tosca, 1)


def test_registry_builds_it_from_a_policy_file(tosca: ToscaGroup, tmp_path: Path) -> None:
    """Through the registry, as the service does: the template path relative to the policy file."""
    policy = tmp_path / "policy"
    policy.mkdir()
    relative = os.path.relpath(SERVICE_TEMPLATE, policy)
    text = f"""
server: {{auth: {{insecure_no_auth: true}}}}
groups:
  web:
    min_size: 0
    max_size: 3
    provider:
      type: tosca
      service_template: {relative}
      opera: {tosca.opera}
      members_output: members
      inputs: {{base_port: {tosca.base_port}, run_dir: {tosca.run_dir}}}
"""
    config = load_policy(text, base_dir=policy).groups["web"].provider
    assert config is not None and config.model_dump()["service_template"] == str(SERVICE_TEMPLATE)
    provider = registry.create(config, ProviderContext(group=tosca.group, state_dir=tosca.state_dir))
    assert isinstance(provider.inner, ToscaProvider) and not isinstance(provider, Healer)
    scale(provider, tosca, 1)
    assert_servers(tosca, 1)


def test_the_example_service_deploys_scales_and_reboots(tosca: ToscaGroup, tmp_path: Path) -> None:
    """examples/tosca as its policy file configures it (ports, directory and opera changed for the test): a
    Compute host (localhost) with web servers that serve /metrics; opera undeploy stops them all."""
    example = load_policy_file(REPO / "examples" / "tosca" / "alertscaler.yml").groups["web"].provider
    assert isinstance(example, ToscaConfig)
    install_dir = tmp_path / "example"
    state_dir = tmp_path / "example-state"  # also the marker of the processes this test starts
    values = example.model_dump()
    values.update(
        opera=str(tosca.opera), timeout="120s", env={MARKER_VAR: RUN_MARKER, CASE_VAR: str(state_dir)},
        inputs={**example.inputs, "base_port": tosca.base_port, "install_dir": str(install_dir)},
    )
    config = ToscaConfig.model_validate(values)
    provider = create(config, ProviderContext(group="web", state_dir=state_dir))
    assert isinstance(provider, ToscaRebooter)
    try:
        scale(provider, tosca, 2)
        members = provider.members()
        assert [(m.id, m.address) for m in members] == [
            ("web-0", f"127.0.0.1:{tosca.port(0)}"), ("web-1", f"127.0.0.1:{tosca.port(1)}")]
        assert http_body(tosca.port(1)).strip() == "web-1"
        metrics = http_body(tosca.port(1), "/metrics")
        assert "process_cpu_seconds_total " in metrics and "web_requests_total 2" in metrics, metrics
        scale(provider, tosca, 1)
        assert provider.status().current == 1 and not answers(tosca.port(1))
        pid = int((install_dir / "run" / "web-0.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        assert provider.reboot("web-0").startswith("opera notify -e instance_down: reboot web-0")
        assert http_body(tosca.port(0)).strip() == "web-0"
        assert int((install_dir / "run" / "web-0.pid").read_text()) != pid
    finally:
        undeploy = tosca.opera_command("undeploy", "-p", str(state_dir / "opera"), "--resume", "--force")
    assert undeploy.returncode == 0, undeploy.stdout + undeploy.stderr
    assert not answers(tosca.port(0))
    servers = [p for p in marked_processes(str(state_dir), CASE_VAR)
               if any(a.endswith("web.py") for a in server_command_line(p))]
    assert servers == [], "opera undeploy must stop the example's servers"
