"""A real OpenStack Heat (API + engine) for the test suite: the session fixture ``heat`` and ``heat_stack``.

Load with ``pytest_plugins = ["tests.integration.heat_fixtures"]`` in a test module; its classes may also be
imported from here (hence PYTEST_DONT_REWRITE: the module is imported before pytest could rewrite it, so it
uses ``pytest.fail`` rather than ``assert``).

``heat`` (session scope) starts ONE Heat 27 for the whole test session: ``tests/heat/launcher.py`` under the
Heat environment's python (``ALERTSCALER_HEAT_PYTHON``, else ``<repo>/.heat-venv/bin/python``, built by
``make heat-venv``), with a fresh SQLite database in a temporary directory, ``transport_url = fake://`` and
the ``noauth`` paste pipeline: no Keystone, RabbitMQ, Nova or Docker. It yields a :class:`HeatServer`;
``base_url`` is ``http://127.0.0.1:PORT/v1/admin`` (project ``admin``, no auth headers needed). Without
the Heat environment the tests that use it are skipped (``make heat-venv`` builds it), unless
``ALERTSCALER_REQUIRE_HEAT=1`` (set by ``.ci/run``): then they fail. At the end of the session Heat gets
SIGTERM, SIGKILL after 5 s, and the fixture checks that the process is gone.

``heat_stack`` (function scope) creates a fresh stack from ``tests/heat/templates/asg.yaml`` (an
AutoScalingGroup ``asg`` of ``OS::Heat::TestResource`` members, policies ``scaleup_policy`` and
``scaledown_policy``, parameters ``cooldown``/``min_size``/``max_size``/``desired_capacity`` = 5/1/3/1) and
deletes it afterwards. ``heat_stacks`` is the factory behind it, for other parameters or templates. Their
deletes are not waited for by each test (a delete takes 2-4 s): the ``heat`` fixture checks at the end of the
session that every one of them reached DELETE_COMPLETE.

Reads that resolve a stack while it is being updated can fail transiently (seen once in about 50 updates:
``GET {stack}`` during a resize answered without a ``stack`` body; the error was not captured), so
:meth:`HeatServer.wait_for` treats a :class:`HeatError` raised by its predicate as "not yet" until the
deadline, while single calls raise it. Stack states are read from the stack list (``GET /stacks?id=...``),
which does not resolve outputs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
HEAT_TESTS = REPO / "tests" / "heat"
LAUNCHER = HEAT_TESTS / "launcher.py"
ASG_TEMPLATE = HEAT_TESTS / "templates" / "asg.yaml"

PYTHON_VAR = "ALERTSCALER_HEAT_PYTHON"
REQUIRE_VAR = "ALERTSCALER_REQUIRE_HEAT"
DEFAULT_PYTHON = REPO / ".heat-venv" / "bin" / "python"

START_TIMEOUT = 60.0  # seconds to the first 200 on /healthcheck (about 2-3 s here)
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
STACK_TIMEOUT = 60.0  # default deadline for a stack create/update/delete (about 1.5-4 s here)
AUTH_ENCRYPTION_KEY = "alertscaler-heat-test-key-32char"  # Heat requires exactly 32 characters

T = TypeVar("T")


class HeatError(Exception):
    """Heat answered an HTTP error; ``status_code`` and Heat's JSON ``error`` message are kept."""

    def __init__(self, method: str, url: str, status_code: int, body: str) -> None:
        self.status_code = status_code
        self.body = body
        try:
            error = json.loads(body).get("error", {})
            detail = f"{error.get('type')}: {error.get('message')}"
        except (ValueError, AttributeError):
            detail = body[:300]
        super().__init__(f"{method} {url} -> {status_code} {detail}")


@dataclass
class HeatServer:
    """A running Heat (API + engine in one process) and small httpx helpers for its API."""

    port: int
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    startup_seconds: float = 0.0
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0), repr=False)
    pending_deletes: list[tuple[str, str]] = field(default_factory=list, repr=False)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The orchestration endpoint of project ``admin``: ``http://127.0.0.1:PORT/v1/admin``."""
        return f"{self.root_url}/v1/admin"

    def stack_url(self, name: str, stack_id: str) -> str:
        """``{base}/stacks/{name}/{id}``: most stack calls (signals above all) need both name and id."""
        return f"{self.base_url}/stacks/{name}/{stack_id}"

    # -- diagnostics ----------------------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of Heat's log (its stdout and stderr), for failure messages."""
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_lines(self, *needles: str) -> list[str]:
        """Lines of Heat's log that contain every one of ``needles`` (e.g. a request id and a message)."""
        return [line for line in self.log_text().splitlines() if all(needle in line for needle in needles)]

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n--- last lines of {self.log_path} ---\n{self.log_tail()}", pytrace=False)

    # -- HTTP -------------------------------------------------------------------------------------------------

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One call to Heat; ``url`` is absolute or relative to ``base_url``. Raises HeatError on 4xx/5xx."""
        if not url.startswith("http"):
            url = f"{self.base_url}/{url.lstrip('/')}"
        response = self.client.request(method, url, **kwargs)
        if response.status_code >= 400:
            raise HeatError(method, url, response.status_code, response.text)
        return response

    def get_json(self, url: str, **params: Any) -> Any:
        return self.request("GET", url, params=params or None).json()

    def wait_for(
        self, predicate: Callable[[], T | None], timeout: float, *, interval: float = 0.1, what: str = "condition"
    ) -> T:
        """Call ``predicate`` until it returns a truthy value (returned) or ``timeout`` seconds pass (fail).

        A HeatError raised by ``predicate`` counts as "not yet" (Heat answers some reads with an error while
        the stack is being changed); the last value or error is in the failure message.
        """
        return wait_for(predicate, timeout=timeout, what=what, interval=interval, retry_on=(HeatError,),
                        abort=self._exited, details=self._log_for_failure)

    def _exited(self) -> str | None:
        code = self.process.poll()
        return None if code is None else f"heat exited with {code}"

    def _log_for_failure(self) -> str:
        return f"--- last lines of {self.log_path} ---\n{self.log_tail()}"

    # -- stacks -----------------------------------------------------------------------------------------------

    def stack_status(self, stack_id: str) -> tuple[str, str] | None:
        """``(stack_status, stack_status_reason)`` from the stack list, or None once the stack is gone."""
        stacks = self.get_json("stacks", id=stack_id)["stacks"]
        if not stacks:
            return None
        return stacks[0]["stack_status"], stacks[0]["stack_status_reason"]

    def wait_for_stack(self, stack_id: str, timeout: float = STACK_TIMEOUT) -> tuple[str, str]:
        """Wait until the stack's action has finished; returns ``(stack_status, stack_status_reason)``."""

        def settled() -> tuple[str, str] | None:
            status = self.stack_status(stack_id)
            if status is None:
                return ("DELETE_COMPLETE", "stack is gone")
            return None if status[0].endswith("_IN_PROGRESS") else status

        return self.wait_for(settled, timeout, interval=0.05, what=f"stack {stack_id} to settle")

    def create_stack(
        self,
        name: str,
        template_text: str,
        parameters: dict[str, Any] | None = None,
        timeout: float = STACK_TIMEOUT,
    ) -> tuple[str, str]:
        """Create a stack and wait for CREATE_COMPLETE; returns ``(name, id)``. Fails with Heat's reason."""
        body = {"stack_name": name, "template": template_text, "parameters": parameters or {}}
        stack_id: str = self.request("POST", "stacks", json=body).json()["stack"]["id"]
        status, reason = self.wait_for_stack(stack_id, timeout)
        if status != "CREATE_COMPLETE":
            self.fail(f"stack {name} ({stack_id}): {status}: {reason}")
        return name, stack_id

    def update_stack(
        self, name: str, stack_id: str, parameters: dict[str, Any], timeout: float = STACK_TIMEOUT
    ) -> tuple[str, str]:
        """PATCH the stack (existing template, other parameters kept) and wait for UPDATE_COMPLETE."""
        self.request("PATCH", self.stack_url(name, stack_id), json={"parameters": parameters})
        status, reason = self.wait_for_stack(stack_id, timeout)
        if status != "UPDATE_COMPLETE":
            self.fail(f"stack {name} ({stack_id}) update {parameters}: {status}: {reason}")
        return status, reason

    def delete_stack(self, name: str, stack_id: str, timeout: float = STACK_TIMEOUT, *, wait: bool = True) -> None:
        """Delete a stack and wait until Heat no longer lists it (fails on DELETE_FAILED).

        With ``wait=False`` the delete is only started and recorded; :meth:`finish_deletes` checks it.
        """
        try:
            self.request("DELETE", self.stack_url(name, stack_id))
        except HeatError as error:
            if error.status_code == 404:
                return
            raise
        if not wait:
            self.pending_deletes.append((name, stack_id))
            return
        status, reason = self.wait_for_stack(stack_id, timeout)
        if status != "DELETE_COMPLETE":
            self.fail(f"stack {name} ({stack_id}) delete: {status}: {reason}")

    def finish_deletes(self, timeout: float = STACK_TIMEOUT) -> None:
        """Wait for the deletes started with ``wait=False``; fails on the first that did not complete."""
        while self.pending_deletes:
            name, stack_id = self.pending_deletes.pop(0)
            status, reason = self.wait_for_stack(stack_id, timeout)
            if status != "DELETE_COMPLETE":
                self.fail(f"stack {name} ({stack_id}) delete: {status}: {reason}")

    def output(self, name: str, stack_id: str, key: str) -> Any:
        """The value of one stack output (``GET .../outputs/KEY``; ``GET .../outputs`` lists keys only)."""
        body = self.get_json(f"{self.stack_url(name, stack_id)}/outputs/{key}")["output"]
        if body.get("output_error"):
            raise HeatError("GET", f"outputs/{key}", 200, json.dumps({"error": {"message": body["output_error"]}}))
        return body["output_value"]

    def signal(self, name: str, stack_id: str, resource: str, details: dict[str, Any] | None = None) -> str:
        """POST a signal to a resource (asynchronous: 200 once the resource exists); returns the request id."""
        url = f"{self.stack_url(name, stack_id)}/resources/{resource}/signal"
        response = self.request("POST", url, json=details)
        return str(response.headers.get("x-openstack-request-id", ""))

    def events(self, name: str, stack_id: str, resource: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Events, newest first: the stack's, or one resource's; filters e.g. ``resource_action="SIGNAL"``."""
        url = self.stack_url(name, stack_id) + (f"/resources/{resource}" if resource else "") + "/events"
        events: list[dict[str, Any]] = self.get_json(url, **filters)["events"]
        return events

    def members(self, name: str, stack_id: str, group: str = "asg") -> list[dict[str, Any]]:
        """The group's member resources (``GET .../resources?nested_depth=1``, ``parent_resource == group``)."""
        resources = self.get_json(f"{self.stack_url(name, stack_id)}/resources", nested_depth=1)["resources"]
        return [r for r in resources if r.get("parent_resource") == group]


@dataclass
class HeatStack:
    """A stack created by ``heat_stack``/``heat_stacks``, with shortcuts to the server's helpers."""

    server: HeatServer
    name: str
    id: str

    @property
    def url(self) -> str:
        return self.server.stack_url(self.name, self.id)

    def output(self, key: str) -> Any:
        return self.server.output(self.name, self.id, key)

    def current_size(self) -> int:
        return int(self.output("current_size"))

    def wait_for_size(self, size: int, timeout: float = 30.0) -> float:
        """Wait until ``current_size`` is ``size``; returns the seconds it took."""
        started = time.monotonic()
        self.server.wait_for(lambda: self.current_size() == size, timeout, what=f"{self.name} current_size {size}")
        return time.monotonic() - started

    def signal(self, resource: str, details: dict[str, Any] | None = None) -> str:
        return self.server.signal(self.name, self.id, resource, details)

    def events(self, resource: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        return self.server.events(self.name, self.id, resource, **filters)

    def members(self, group: str = "asg") -> list[dict[str, Any]]:
        return self.server.members(self.name, self.id, group)

    def update(self, **parameters: Any) -> tuple[str, str]:
        return self.server.update_stack(self.name, self.id, parameters)


# -- starting Heat -------------------------------------------------------------------------------------------


def _heat_python() -> Path | None:
    configured = os.environ.get(PYTHON_VAR)
    python = Path(configured) if configured else DEFAULT_PYTHON
    return python if python.exists() else None


def _api_paste_ini(python: Path) -> Path:
    """The ``api-paste.ini`` installed with openstack-heat (``<venv>/etc/heat/``), found via its metadata."""
    script = (
        "import importlib.metadata as m\n"
        "files = m.distribution('openstack-heat').files or []\n"
        "print(next(str(f.locate()) for f in files if f.name == 'api-paste.ini'))\n"
    )
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        pytest.fail(f"{python} has no openstack-heat with an api-paste.ini:\n{result.stderr}", pytrace=False)
    return Path(result.stdout.strip()).resolve()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_heat_conf(workdir: Path, port: int, paste_ini: Path) -> Path:
    """heat.conf for a standalone Heat: fake RPC, noauth API, fake Keystone, SQLite in ``workdir``."""
    (workdir / "locks").mkdir(exist_ok=True)
    conf = workdir / "heat.conf"
    conf.write_text(
        f"""[DEFAULT]
debug = false
host = alertscaler-test-heat
# In-memory RPC: API and engine must live in one process (tests/heat/launcher.py).
transport_url = fake://
num_engine_workers = 1
keystone_backend = heat.engine.clients.os.keystone.fake_keystoneclient.FakeKeystoneClient
deferred_auth_method = password
auth_encryption_key = {AUTH_ENCRYPTION_KEY}

[paste_deploy]
flavor = noauth
api_paste_config = {paste_ini}

[database]
connection = sqlite:///{workdir / "heat.sqlite"}?timeout=30

[oslo_concurrency]
lock_path = {workdir / "locks"}

[clients_heat]
# Makes the ScalingPolicy attribute signal_url point at this API.
url = http://127.0.0.1:{port}/v1/%(tenant_id)s

[oslo_policy]
# noauth gives every request the single role "admin"; Heat 27's new default rules want "member" (which
# Keystone would imply from "admin"). The legacy rules accept any role but heat_stack_user.
enforce_new_defaults = false
enforce_scope = false
"""
    )
    return conf


def _db_sync(python: Path, conf: Path, log_path: Path) -> None:
    script = "import sys; from heat.cmd.manage import main; sys.exit(main())"
    with log_path.open("ab") as log:
        result = subprocess.run(
            [str(python), "-c", script, "--config-file", str(conf), "db_sync"],
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        pytest.fail(f"heat-manage db_sync failed ({result.returncode}):\n{tail}", pytrace=False)


def _healthy(server: HeatServer) -> bool:
    try:
        return httpx.get(f"{server.root_url}/healthcheck", timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False


def stop_heat(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, SIGKILL after STOP_GRACE seconds; fails if the process is still there."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                pass
    if process.poll() is None:
        pytest.fail(f"heat (pid {process.pid}) survived SIGTERM and SIGKILL", pytrace=False)


def start_heat(python: Path, workdir: Path, attempts: int = 3) -> HeatServer:
    """Write heat.conf, create the database, start the launcher and wait for ``/healthcheck``."""
    paste_ini = _api_paste_ini(python)
    log_path = workdir / "heat.log"
    for attempt in range(1, attempts + 1):
        port = _free_port()
        conf = write_heat_conf(workdir, port, paste_ini)
        if attempt == 1:
            _db_sync(python, conf, workdir / "db_sync.log")
        started = time.monotonic()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [str(python), str(LAUNCHER), "--config-file", str(conf), "--port", str(port), "--exit-with-parent"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=workdir,
            )
        server = HeatServer(port=port, workdir=workdir, log_path=log_path, process=process)
        deadline = started + START_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline and not _healthy(server):
            time.sleep(0.1)
        if process.poll() is None and _healthy(server):
            server.startup_seconds = time.monotonic() - started
            return server
        stop_heat(process)
        port_taken = "Address already in use" in server.log_tail(20)
        if not port_taken or attempt == attempts:
            server.fail(f"heat did not answer /healthcheck on port {port} within {START_TIMEOUT:.0f} s")
    raise AssertionError("unreachable")


# -- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def heat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeatServer]:
    """One real Heat for the session (see the module docstring); skipped without ``make heat-venv``."""
    python = _heat_python()
    if python is None:
        where = os.environ.get(PYTHON_VAR) or str(DEFAULT_PYTHON)
        message = f"no Heat environment at {where}: run `make heat-venv` (or set {PYTHON_VAR})"
        if os.environ.get(REQUIRE_VAR) == "1":
            pytest.fail(f"{message}; {REQUIRE_VAR}=1 requires the Heat tests", pytrace=False)
        pytest.skip(message)
    server = start_heat(python, tmp_path_factory.mktemp("heat"))
    try:
        yield server
        server.finish_deletes()
    finally:
        server.client.close()
        stop_heat(server.process)


@pytest.fixture
def heat_stacks(heat: HeatServer) -> Iterator[Callable[..., HeatStack]]:
    """Factory: ``heat_stacks(parameters=None, template=None)`` creates a uniquely named stack (default
    template ``tests/heat/templates/asg.yaml``); every stack it made is deleted after the test (the ``heat``
    fixture checks at the end of the session that the deletes completed)."""
    created: list[HeatStack] = []

    def create(parameters: dict[str, Any] | None = None, template: str | None = None) -> HeatStack:
        name = f"as-test-{uuid.uuid4().hex[:10]}"
        text = template if template is not None else ASG_TEMPLATE.read_text()
        _, stack_id = heat.create_stack(name, text, parameters)
        stack = HeatStack(heat, name, stack_id)
        created.append(stack)
        return stack

    yield create
    for stack in created:
        heat.delete_stack(stack.name, stack.id, wait=False)


@pytest.fixture
def heat_stack(heat_stacks: Callable[..., HeatStack]) -> HeatStack:
    """A fresh stack from ``tests/heat/templates/asg.yaml`` with its default parameters; deleted after."""
    return heat_stacks()
