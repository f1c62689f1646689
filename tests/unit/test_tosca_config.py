"""tosca provider without opera: configuration against the service template, and the pure helpers (which opera
command converges, what opera's output and outputs mean, the environment opera gets, the group lock)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest

from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError
from alertscaler.model.groups import MemberState
from alertscaler.providers import registry
from alertscaler.providers.base import Healer, ProviderContext, Rebooter
from alertscaler.providers.tosca import opera as opera_module
from alertscaler.providers.tosca.opera import (
    CALLBACK_NAME,
    NO_DEPLOYMENT,
    Deployment,
    LockBusy,
    OperaEnv,
    OperaRun,
    describe_failures,
    group_lock,
    parse_info,
    parse_members,
    parse_outputs,
    plan,
    read_failures,
    summarize_output,
)
from alertscaler.providers.tosca.provider import (
    ToscaConfig,
    ToscaProvider,
    ToscaRebooter,
    ToscaReplacer,
    create,
    heal_actions,
)

TEMPLATE = """\
tosca_definitions_version: tosca_simple_yaml_1_3
topology_template:
  inputs:
    instance_count: {type: integer, default: 1}
    run_dir: {type: string}
    flavor: {type: string, required: false}
  node_templates: {}
  outputs:
    members: {value: []}
  policies:
    - heal:
        type: tosca.policies.Root
        triggers:
          restart_member: {event: heal_member, action: []}
"""


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    (tmp_path / "tosca").mkdir()
    (tmp_path / "tosca" / "service.yaml").write_text(TEMPLATE)
    return tmp_path


def _policy(provider: str) -> str:
    return ("server: {auth: {insecure_no_auth: true}}\ngroups:\n  web:\n"
            f"    provider: {{type: tosca, {provider}}}\n    min_size: 0\n    max_size: 3\n")


def _problems(provider: str, base: Path) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_policy(_policy(provider), base_dir=base)
    return {p.path: p.message for p in info.value.problems}


def test_defaults_and_paths_relative_to_the_policy_file(policy_dir: Path) -> None:
    text = _policy("service_template: tosca/service.yaml, inputs: {run_dir: /srv/web}, opera: venv/bin/opera, "
                   "operation_log: logs/../web.log")
    config = load_policy(text, base_dir=policy_dir).groups["web"].provider
    assert isinstance(config, ToscaConfig)
    assert config.service_template == str(policy_dir / "tosca" / "service.yaml")
    assert config.opera == str(policy_dir / "venv" / "bin" / "opera")
    assert config.operation_log == str(policy_dir / "web.log")
    assert (config.count_input, config.timeout, config.members_output, config.heal_event) == (
        "instance_count", 900.0, None, None)
    bare = load_policy(_policy("service_template: tosca/service.yaml, inputs: {run_dir: x}"), base_dir=policy_dir)
    assert bare.groups["web"].provider.opera == "opera"  # looked up on PATH when run


def test_heal_abilities_follow_heal_event_and_heal_action(policy_dir: Path, tmp_path: Path) -> None:
    context = ProviderContext(group="web", state_dir=tmp_path / "state")
    values = {"type": "tosca", "service_template": str(policy_dir / "tosca" / "service.yaml"),
              "inputs": {"run_dir": "x"}}
    plain_config = ToscaConfig.model_validate(values)
    plain = create(plain_config, context)
    assert type(plain) is ToscaProvider and not isinstance(plain, Healer | Rebooter)
    assert heal_actions(plain_config) == frozenset()

    reboot_config = ToscaConfig.model_validate({**values, "heal_event": "heal_member"})
    rebooter = create(reboot_config, context)
    assert isinstance(rebooter, ToscaRebooter) and isinstance(rebooter, Rebooter) and not isinstance(rebooter, Healer)
    assert heal_actions(reboot_config) == {"reboot"}

    replace_config = ToscaConfig.model_validate({**values, "heal_event": "restart_member", "heal_action": "replace"})
    replacer = create(replace_config, context)  # heal_event may be a trigger's name too
    assert isinstance(replacer, ToscaReplacer) and isinstance(replacer, Healer) and not isinstance(replacer, Rebooter)
    assert registry.heal_actions(replace_config) == {"replace"}
    assert plain.status().current == 0  # never deployed: answered without running opera


def test_a_heal_policy_needs_a_matching_heal_action(policy_dir: Path) -> None:
    provider = "service_template: tosca/service.yaml, inputs: {run_dir: x}, heal_event: heal_member"
    text = _policy(provider) + "    heal: {matchers: ['alertname=\"InstanceDown\"'], action: reboot}\n"
    assert load_policy(text, base_dir=policy_dir).groups["web"].heal is not None
    with pytest.raises(ConfigError, match=r"the tosca provider cannot replace a member \(it can: reboot\)"):
        load_policy(text.replace("action: reboot", "action: replace"), base_dir=policy_dir)
    without = _policy("service_template: tosca/service.yaml, inputs: {run_dir: x}") + (
        "    heal: {matchers: ['alertname=\"InstanceDown\"'], action: reboot}\n")
    with pytest.raises(ConfigError, match=r"cannot reboot a member \(it can: nothing\)"):
        load_policy(without, base_dir=policy_dir)


@pytest.mark.parametrize(
    ("provider", "fragment"),
    [
        ("service_template: nowhere.yaml", "no such file: "),
        ("service_template: tosca/service.yaml", "requires input 'run_dir' (it has no default)"),
        ("service_template: tosca/service.yaml, count_input: replicas, inputs: {run_dir: x}",
         "declares no input 'replicas' (inputs: flavor, instance_count, run_dir)"),
        ("service_template: tosca/service.yaml, inputs: {run_dir: x, size: 3}",
         "inputs.size: the service template declares no such input"),
        ("service_template: tosca/service.yaml, inputs: {run_dir: x, instance_count: 3}",
         "instance_count is the count input, set by alertscaler"),
        ("service_template: tosca/service.yaml, inputs: {run_dir: x}, members_output: servers",
         "no output 'servers' (outputs: members)"),
        ("service_template: tosca/service.yaml, inputs: {run_dir: x}, heal_event: restart",
         "no policy trigger of the service template has the name or event 'restart' "
         "(triggers and events: heal_member, restart_member)"),
        ("service_template: tosca/service.yaml, inputs: {run_dir: x}, timeout: 0s", "must be longer than 0s"),
        ("service_template: tosca/service.yaml, inputs: {run_dir: x}, env: {ANSIBLE_STDOUT_CALLBACK: json}",
         "ANSIBLE_STDOUT_CALLBACK is set by opera or alertscaler"),
        ("service_template: tosca/service.yaml, inputs: {run_dir: x}, env: {'A-B': x}",
         "'A-B' is not an environment variable name"),
        ("service_template: tosca/service.yaml, inputs: {run_dir: x}, members: x", "unknown key"),
    ],
)
def test_problems_are_reported_at_the_provider(policy_dir: Path, provider: str, fragment: str) -> None:
    problems = _problems(provider, policy_dir)
    assert any(path.startswith("groups.web.provider") and fragment in message for path, message in problems.items()), (
        problems)


def test_a_file_that_is_no_tosca_template(policy_dir: Path) -> None:
    (policy_dir / "other.yaml").write_text("groups: {}\n")
    problems = _problems("service_template: other.yaml", policy_dir)
    assert "not a TOSCA service template (no tosca_definitions_version)" in " ".join(problems.values())


# -- planning --------------------------------------------------------------------------------------------------

T = "/srv/service.yaml"


def _deployment(status: str | None, **inputs: object) -> Deployment:
    return Deployment(status=status, inputs=dict(inputs), service_template=T)


@pytest.mark.parametrize(
    ("deployment", "desired", "step"),
    [
        (NO_DEPLOYMENT, 2, "deploy"),
        (NO_DEPLOYMENT, 0, "none"),
        (_deployment("initialized", instance_count=2), 2, "deploy"),
        (_deployment("undeployed", instance_count=2), 1, "deploy"),
        (_deployment("deployed", instance_count=2), 2, "none"),
        (_deployment("deployed", instance_count=2), 3, "update"),
        (_deployment("error", instance_count=3), 2, "update"),
        (_deployment("error", instance_count=2), 2, "resume"),
        (_deployment("deploying", instance_count=2), 2, "resume"),
        (_deployment("undeploying", instance_count=2), 2, "stuck"),
        (_deployment("undeploying", instance_count=1), 2, "update"),
    ],
)
def test_plan(deployment: Deployment, desired: int, step: str) -> None:
    assert plan(deployment, {"instance_count": desired}, T, "instance_count") == step


def test_plan_sees_other_inputs_and_another_template() -> None:
    deployed = _deployment("deployed", instance_count=2, flavor="small")
    assert plan(deployed, {"instance_count": 2, "flavor": "small"}, T, "instance_count") == "none"
    assert plan(deployed, {"flavor": "small", "instance_count": 2}, T, "instance_count") == "none"
    assert plan(deployed, {"instance_count": 2, "flavor": "large"}, T, "instance_count") == "update"
    assert plan(deployed, {"instance_count": 2, "flavor": "small"}, "/srv/v2.yaml", "instance_count") == "update"


# -- opera's answers ------------------------------------------------------------------------------------------

FAILED_UPDATE = """\
[Worker_0]   Undeploying web_0
[Worker_0]   Undeployment of web_0 complete
[Worker_0]   Deploying web_0
[Worker_0]     Executing configure on web_0
[Worker_0] ------------
{
  "custom_stats": {},
  "global_custom_stats": {},
  "stats": {
    "opera": {"changed": 0, "failures": 1, "ignored": 0, "ok": 0, "rescued": 0, "skipped": 0, "unreachable": 0}
  }
}
[Worker_0] ------------
[WARNING]: Platform linux on host opera is using the discovered Python interpreter
[Worker_0] ============
Error processing node web_0: Failed in web, interface Standard, operation <Operation object at 0x7f>.
Traceback (most recent call last):
  File "/venv/bin/opera", line 6, in <module>
    sys.exit(main())
  File "/venv/lib/python3.11/site-packages/opera/threading/node_executor.py", line 48, in wait_results
    raise AggregatedOperationError("Failed", errors)
opera.error.AggregatedOperationError: Failed
"""


def test_summarize_output_drops_stats_separators_and_traceback_frames() -> None:
    assert summarize_output(FAILED_UPDATE) == [
        "[Worker_0]   Undeploying web_0",
        "[Worker_0]   Undeployment of web_0 complete",
        "[Worker_0]   Deploying web_0",
        "[Worker_0]     Executing configure on web_0",
        "[WARNING]: Platform linux on host opera is using the discovered Python interpreter",
        "Error processing node web_0: Failed in web, interface Standard, operation <Operation object at 0x7f>.",
        "opera.error.AggregatedOperationError: Failed",
    ]
    run = OperaRun(argv=("opera", "update"), returncode=1, output=FAILED_UPDATE, seconds=1.0)
    assert run.tail(2).splitlines() == [
        "Error processing node web_0: Failed in web, interface Standard, operation <Operation object at 0x7f>.",
        "opera.error.AggregatedOperationError: Failed",
    ]


def test_describe_failures() -> None:
    failures = [
        {"kind": "failed", "task": "Start", "host": "opera", "msg": "non-zero return code", "rc": 1,
         "stderr": "line 1\nport 8000 taken"},
        {"kind": "unreachable", "task": "Gather", "host": "web-1", "msg": "ssh: connect to host timed out"},
        {"kind": "failed", "task": "Secret", "host": "opera", "censored": "the output has been hidden"},
        {"kind": "failed", "task": "Fourth", "host": "opera"},
    ]
    assert describe_failures(failures).splitlines() == [
        'task "Start" failed on opera: non-zero return code; rc=1; stderr: line 1 | port 8000 taken',
        'task "Gather" unreachable on web-1: ssh: connect to host timed out',
        'task "Secret" failed on opera: the output has been hidden',
        "(+1 more failed tasks)",
    ]


def test_parse_info_and_outputs() -> None:
    info = parse_info('some warning\n{"service_template": "/s.yaml", "inputs": {"instance_count": 2}, '
                      '"status": "deployed"}')
    assert info == Deployment(status="deployed", inputs={"instance_count": 2}, service_template="/s.yaml")
    assert info.deployed and not info.empty
    assert parse_info('{"status": null, "inputs": null}').empty
    with pytest.raises(ValueError, match="printed no JSON object"):
        parse_info("Traceback ...")
    assert parse_outputs('{"members": {"description": "d", "value": ["a"]}, "n": {"value": 1}}') == {
        "members": ["a"], "n": 1}


def test_parse_members() -> None:
    members = parse_members(["a", 7, {"id": "b", "address": "10.0.0.2:80", "state": "starting",
                                      "labels": {"zone": "z1"}}], "members")
    assert [(m.id, m.address, m.state, m.labels) for m in members] == [
        ("a", None, MemberState.RUNNING, {}), ("7", None, MemberState.RUNNING, {}),
        ("b", "10.0.0.2:80", MemberState.STARTING, {"zone": "z1"})]
    for value, fragment in [
        (None, "output 'members' is null: expected a list"),
        ([{"address": "x"}], "expected an id or an object with an id"),
        ([{"id": "a", "state": "sleeping"}], "state 'sleeping' is not one of"),
        ([{"id": "a", "labels": {"n": 1}}], "labels must be an object of strings"),
        (["a", "a"], "lists a member twice"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            parse_members(value, "members")


# -- environment and lock ---------------------------------------------------------------------------------------


def test_environment_puts_operas_directory_first_and_enables_the_callback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin")
    monkeypatch.setenv("ANSIBLE_CALLBACKS_ENABLED", "profile_tasks")
    monkeypatch.delenv("ANSIBLE_COLLECTIONS_PATH", raising=False)
    env = OperaEnv("/opt/opera/bin/opera", tmp_path, {"OPERA_SSH_USER": "ubuntu"}).environment()
    assert env["PATH"] == "/opt/opera/bin:/usr/bin"
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == f"profile_tasks,{CALLBACK_NAME}"
    assert env["ANSIBLE_COLLECTIONS_PATH"].startswith(f"{tmp_path / 'ansible'}:~/.ansible/collections")
    assert env["OPERA_SSH_USER"] == "ubuntu"
    assert OperaEnv("opera", tmp_path).environment()["PATH"] == "/usr/bin"  # found on PATH as it is


@pytest.mark.parametrize(
    ("variables", "lc_all"),
    [
        ({"LANG": "C.UTF-8"}, None),
        ({"LANG": "en_US.utf8"}, None),
        ({"LC_CTYPE": "de_DE.UTF-8", "LANG": "C"}, None),
        ({"LC_ALL": "C", "LANG": "C.UTF-8"}, "C.UTF-8"),  # an explicit C wins over LANG: ansible would refuse
        ({"LANG": "C"}, "C.UTF-8"),
        ({}, "C.UTF-8"),
    ],
)
def test_opera_gets_a_utf8_locale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], lc_all: str | None
) -> None:
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert OperaEnv("opera", tmp_path).environment().get("LC_ALL") == (lc_all or variables.get("LC_ALL"))


class LockClock:
    """Stands in for ``time`` in the opera module: ``sleep`` advances ``monotonic``; after ``release_after``
    sleeps it runs ``release`` (the holder lets go while the second caller polls)."""

    def __init__(self, release_after: int | None = None, release: Callable[[], None] = lambda: None) -> None:
        self.now = 1000.0
        self.sleeps = 0
        self.release_after = release_after
        self.release = release

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        if self.sleeps == self.release_after:
            self.release()


def test_the_lock_excludes_a_second_holder_until_its_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = LockClock()
    monkeypatch.setattr(opera_module, "time", clock)
    monkeypatch.setattr(opera_module, "LOCK_POLL", 0.25)  # exact in binary: the fake clock adds up exactly
    path = tmp_path / "tosca.lock"
    with group_lock(path, clock.now):
        assert path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(LockBusy), group_lock(path, clock.now + 1.0):
            pass
        assert (clock.now, clock.sleeps) == (1001.0, 4)  # polled every 0.25 s until the deadline, not longer
    with group_lock(path, clock.now):  # free again
        pass


def test_the_lock_is_taken_as_soon_as_the_holder_releases_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tosca.lock"
    holder = ExitStack()
    clock = LockClock(release_after=3, release=holder.close)
    monkeypatch.setattr(opera_module, "time", clock)
    holder.enter_context(group_lock(path, clock.now))
    with group_lock(path, clock.now + 60):
        assert clock.sleeps == 3  # the poll after the release took it


def test_installed_callback_is_valid_python(tmp_path: Path) -> None:
    opera = OperaEnv("opera", tmp_path)
    failures = opera.install_callback()
    plugin = tmp_path / "ansible" / "ansible_collections" / "alertscaler" / "opera" / "plugins" / "callback"
    compile((plugin / "failures.py").read_text(), "failures.py", "exec")
    assert failures == tmp_path / "ansible" / "failures.jsonl" and not failures.exists()
    failures.write_text(json.dumps({"kind": "failed", "task": "t"}) + "\nnot json\n")
    assert read_failures(failures) == [{"kind": "failed", "task": "t"}]
