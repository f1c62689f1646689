"""Fixtures for the provider contract suite: one factory per provider type, and leak checks.

Load with ``pytest_plugins = ["tests.contract.provider_fixtures"]`` in a test module; helpers may also be
imported from here (hence PYTEST_DONT_REWRITE: the module is imported before pytest could rewrite it, so it
uses ``pytest.fail`` rather than ``assert``).

``PROVIDER_FACTORIES`` maps a provider type to ``factory(state_dir) -> (provider, cleanup)``: every provider
type but ``openstack-heat``, whose real Heat is too slow for this suite's many scale calls (tests/integration/
test_heat_provider.py covers it against the real Heat instead). Every call
returns a NEW provider object on ``state_dir`` (a second call on the same directory is how the suite
simulates an alertscaler restart); ``cleanup()`` must leave no instance of that directory running, even
after a failed test. Adding a provider to the suite = adding one entry here.

Every process started by a ``local`` provider under test carries ``ALERTSCALER_TEST_RUN=<RUN_MARKER>`` in
its environment; ``no_leftover_processes`` (module scope: ``pytestmark = pytest.mark.usefixtures(...)``)
kills and reports any left behind.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from alertscaler.providers.base import Provider, ProviderContext, ScaleRequest
from alertscaler.providers.common.processes import processes_with_env
from alertscaler.providers.exec.provider import ExecConfig, ExecProvider
from alertscaler.providers.local.provider import LocalConfig, LocalProvider

Cleanup = Callable[[], None]
ProviderFactory = Callable[[Path], tuple[Provider, Cleanup]]

GROUP = "contract"
MARKER_VAR = "ALERTSCALER_TEST_RUN"
RUN_MARKER = f"alertscaler-test-{uuid.uuid4().hex}"
# A test that counts processes counts only its own: it gives what it starts ``CASE_VAR=<a value of its own>``
# (its state directory, say) and asks ``marked_processes(<that value>, CASE_VAR)``.
CASE_VAR = "ALERTSCALER_TEST_CASE"

_action_ids = itertools.count(1)


def scale_to(provider: Provider, desired: int, group: str = GROUP) -> str:
    """``provider.scale`` with a well-formed request (``from_capacity`` as the provider reports it now)."""
    current = provider.status().current
    action_id = next(_action_ids)
    request = ScaleRequest(
        group=group, from_capacity=current or 0, desired=desired, action_id=action_id, decision_id=action_id
    )
    return provider.scale(request)


# -- local --------------------------------------------------------------------------------------------------


def local_config(**overrides: Any) -> LocalConfig:
    """A ``local`` config for tests: quick workload, generous start timeout, marked processes."""
    values: dict[str, Any] = {
        "type": "local",
        "workload": {"service_time": "10ms", "concurrency": 4, "queue_limit": 16},
        "start_timeout": "20s",
        "stop_timeout": "3s",
        "env": {MARKER_VAR: RUN_MARKER},
    }
    values.update(overrides)
    values["env"] = {**values["env"], MARKER_VAR: RUN_MARKER}
    return LocalConfig.model_validate(values)


def local_provider(state_dir: Path, group: str = GROUP, **overrides: Any) -> tuple[LocalProvider, Cleanup]:
    provider = LocalProvider(local_config(**overrides), ProviderContext(group=group, state_dir=state_dir))

    def cleanup() -> None:
        with contextlib.suppress(Exception):
            scale_to(provider, 0, group)
        kill_recorded(state_dir)

    return provider, cleanup


def kill_recorded(state_dir: Path) -> None:
    """SIGKILL the process group of every instance still recorded in ``state_dir`` (if it is still ours)."""
    from alertscaler.providers.local import provider as local

    provider = LocalProvider(local_config(), ProviderContext(group=GROUP, state_dir=state_dir))
    for record in provider._load():
        if local._is_alive(record):
            with contextlib.suppress(OSError):
                os.killpg(record.pid, signal.SIGKILL)
            local.LocalProvider._reap(record)
        provider._forget(record, keep_log=True)


def marked_processes(marker: str = RUN_MARKER, var: str = MARKER_VAR) -> list[int]:
    """Pids of live (non-zombie) processes whose environment holds ``<var>=<marker>``."""
    return processes_with_env(var, marker)


def kill_marked(marker: str = RUN_MARKER, var: str = MARKER_VAR) -> list[int]:
    """SIGKILL (and reap, when they are our children) the marked processes; return their pids."""
    pids = marked_processes(marker, var)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        if not marked_processes(marker, var):
            break
        time.sleep(0.05)
    return pids


# -- exec ---------------------------------------------------------------------------------------------------

EXEC_COUNTER = Path(__file__).parent / "data" / "exec_counter.py"


def exec_provider(state_dir: Path, group: str = GROUP) -> tuple[ExecProvider, Cleanup]:
    """An ``exec`` group whose size is a count file in ``state_dir`` (see ``data/exec_counter.py``)."""
    config = ExecConfig(
        type="exec",
        command=[sys.executable, str(EXEC_COUNTER), "scale"],
        status_command=[sys.executable, str(EXEC_COUNTER), "status"],
        timeout="20s",
        env={"EXEC_COUNTER_DIR": str(state_dir), MARKER_VAR: RUN_MARKER},
    )
    return ExecProvider(config, ProviderContext(group=group, state_dir=state_dir)), lambda: None


# -- openstack-nova ---------------------------------------------------------------------------------------
#
# The real openstacksdk against the Keystone + Nova stand-in of tests/support/openstack_standin.py. One
# stand-in per state directory, shared by every provider made on it (a "restart" sees the same servers), and
# stopped with the last cleanup.

_nova_clouds: dict[Path, list[Any]] = {}  # state_dir -> [stand-in, number of providers using it]


def nova_config(cloud: Any, **overrides: Any) -> Any:
    """An ``openstack-nova`` config for ``cloud`` (application credential via its Keystone), quick polling."""
    from alertscaler.providers.openstack.nova.provider import NovaConfig
    from tests.support import openstack_standin as standin

    values: dict[str, Any] = {
        "type": "openstack-nova",
        "auth": {"auth_url": cloud.identity_url, "application_credential_id": standin.APP_CRED_ID,
                 "application_credential_secret": standin.APP_CRED_SECRET, "region_name": standin.REGION},
        "image": standin.IMAGE_NAME,
        "flavor": "m1.small",
        "networks": [{"uuid": standin.NETWORK_ID}],
        "port": 9100,
        "boot_timeout": "10s",
        "delete_timeout": "10s",
        "poll_interval": "10ms",
    }
    values.update(overrides)
    return NovaConfig.model_validate(values)


def nova_provider(state_dir: Path, group: str = GROUP) -> tuple[Provider, Cleanup]:
    from alertscaler.providers.openstack.nova.provider import NovaProvider
    from tests.support.openstack_standin import OpenStackStandin

    entry = _nova_clouds.get(state_dir)
    if entry is None:
        entry = _nova_clouds[state_dir] = [OpenStackStandin().start(), 0]
    entry[1] += 1
    cloud = entry[0]
    provider = NovaProvider(nova_config(cloud), ProviderContext(group=group, state_dir=state_dir))

    def cleanup() -> None:
        with contextlib.suppress(Exception):
            scale_to(provider, 0, group)
        provider.close()
        entry[1] -= 1
        if entry[1] == 0:
            cloud.stop()
            _nova_clouds.pop(state_dir, None)

    return provider, cleanup


# -- tosca --------------------------------------------------------------------------------------------------
#
# The real opera (``make opera-venv``; skipped without it unless ALERTSCALER_REQUIRE_OPERA=1) deploying the test
# service tests/tosca/service: local web servers. One ToscaGroup (ports, run directory) per state directory,
# shared by every provider made on it (a "restart" sees the same deployment); the last cleanup undeploys it
# and kills by pid file whatever survived.

_tosca_groups: dict[Path, list[Any]] = {}  # state_dir -> [ToscaGroup, number of providers using it]


def tosca_provider(state_dir: Path, group: str = GROUP) -> tuple[Provider, Cleanup]:
    from tests.integration.tosca_fixtures import new_group

    entry = _tosca_groups.get(state_dir)
    if entry is None:
        entry = _tosca_groups[state_dir] = [new_group(state_dir, group), 0]
    entry[1] += 1
    tosca = entry[0]

    def cleanup() -> None:
        entry[1] -= 1
        if entry[1] == 0:
            tosca.teardown()
            _tosca_groups.pop(state_dir, None)

    return tosca.provider(), cleanup


# -- fake ---------------------------------------------------------------------------------------------------
#
# The ``fake`` group lives in the provider object's memory (nothing runs): that memory is its cloud, so a
# "restart" on the same state directory is handed the same object, as the nova stand-in is shared.

_fake_groups: dict[Path, Provider] = {}


def fake_provider(state_dir: Path, group: str = GROUP) -> tuple[Provider, Cleanup]:
    from alertscaler.providers.fake import FakeConfig, FakeProvider

    provider = _fake_groups.get(state_dir)
    if provider is None:
        provider = _fake_groups[state_dir] = FakeProvider(
            FakeConfig(type="fake"), ProviderContext(group=group, state_dir=state_dir))

    def cleanup() -> None:
        _fake_groups.pop(state_dir, None)

    return provider, cleanup


PROVIDER_FACTORIES: dict[str, ProviderFactory] = {
    "exec": exec_provider,
    "fake": fake_provider,
    "local": local_provider,
    "tosca": tosca_provider,
}
if importlib.util.find_spec("openstack") is not None:  # the ``openstack`` extra is installed
    PROVIDER_FACTORIES["openstack-nova"] = nova_provider
if importlib.util.find_spec("linode_api4") is not None:  # the ``linode`` extra: the SDK against its stand-in
    from tests.support.linode_standin import linode_contract_provider

    PROVIDER_FACTORIES["linode"] = linode_contract_provider
if importlib.util.find_spec("kubernetes") is not None:  # the ``kubernetes`` extra: the client against its stand-in
    from tests.support.kubernetes_standin import kubernetes_contract_provider

    PROVIDER_FACTORIES["kubernetes"] = kubernetes_contract_provider


# -- fixtures -------------------------------------------------------------------------------------------------


@dataclass
class ProviderHarness:
    """One provider type on one state directory. ``new()`` = a fresh provider object (a restart)."""

    name: str
    state_dir: Path
    factory: ProviderFactory
    cleanups: list[Cleanup] = field(default_factory=list)

    def new(self) -> Provider:
        provider, cleanup = self.factory(self.state_dir)
        self.cleanups.append(cleanup)
        return provider

    def scale(self, provider: Provider, desired: int) -> str:
        return scale_to(provider, desired)

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()


@pytest.fixture(params=sorted(PROVIDER_FACTORIES))
def provider_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProviderHarness]:
    harness = ProviderHarness(request.param, tmp_path / "state", PROVIDER_FACTORIES[request.param])
    harness.state_dir.mkdir()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="module")
def no_leftover_processes() -> Iterator[None]:
    """After a module: no process started by a provider under test may still run."""
    yield
    deadline = time.monotonic() + 3  # give processes being stopped a moment
    while marked_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    leaked = kill_marked()
    if leaked:
        pytest.fail(f"processes left running after the tests (now killed): {leaked}")
