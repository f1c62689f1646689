"""The fault suite's harness: the real service as child processes (``python -m alertscaler.cli serve``) on
127.0.0.1 with free ports, an ``exec`` provider whose commands are the fake cloud of ``fake_cloud.py``, senders
that behave like Alertmanager (retries on errors and 503), and the collection of evidence for ``ledger.check``.

Every process started here leads its own process group (``start_new_session``) and is killed by that group
only; the fake cloud's commands carry ``FAULT_MARK=<the run's directory>`` in their environment, which is how
orphans (commands that outlived a ``kill -9`` of the service) are found and, at the end, killed — never by name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.fault.ledger import Accepted, Answer, Evidence, read_ledger

TOKEN = "fault-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAKE_CLOUD = str(Path(__file__).with_name("fake_cloud.py"))
REPO = Path(__file__).resolve().parents[2]
# The service's source: this tree's src/ (``ALERTSCALER_FAULT_SRC`` points elsewhere, e.g. at a `git archive` of a
# commit, to measure that commit).
SRC = os.environ.get("ALERTSCALER_FAULT_SRC") or str(REPO / "src")
LONG = os.environ.get("ALERTSCALER_FAULT_LONG", "") not in ("", "0")
T = TypeVar("T")


def scaled(bounded: T, long: T) -> T:
    """The bounded figure in ``make test``, the long one with ``ALERTSCALER_FAULT_LONG=1``."""
    return long if LONG else bounded


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something true; AssertionError naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except (httpx.HTTPError, OSError, ValueError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def marked_pids(mark: str) -> list[int]:
    """Live processes whose environment has ``FAULT_MARK=mark``: this run's fake cloud commands."""
    needle = f"FAULT_MARK={mark}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            found.append(int(proc.name))
    return found


def alert(name: str, group: str, key: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    all_labels = {"alertname": name, "alertscaler_group": group, "key": key, **labels}
    fingerprint = hashlib.sha256(json.dumps(all_labels, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "status": status, "labels": all_labels, "annotations": {"summary": "fault suite"},
        "startsAt": "2026-11-21T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-21T12:05:00Z",
        "generatorURL": "http://127.0.0.1:19090/graph", "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any], group_key: str | None = None) -> dict[str, Any]:
    first = alerts[0]["labels"]
    return {
        "receiver": "alertscaler", "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": list(alerts), "groupLabels": {"alertname": first["alertname"]},
        "commonLabels": {"alertname": first["alertname"]}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:19093", "version": "4",
        "groupKey": group_key or f'{{}}:{{alertname="{first["alertname"]}",key="{first["key"]}"}}',
        "truncatedAlerts": 0,
    }


@dataclass
class Service:
    """One replica: ``alertscaler serve`` in its own process group."""

    name: str
    config: Path
    port: int
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout: float = 60.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        with open(self.log, "ab") as log:
            log.write(f"\n===== start {self.starts} at {time.time():.3f} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "alertscaler.cli", "serve", "-c", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.config.parent,
                env=self.env, start_new_session=True)
        self.starts += 1
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}; see {self.log}")
            return httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200
        wait_for(ready, timeout, f"{self.name} ready")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """``kill -9`` of the service's process group (the fake cloud's commands run in sessions of their own,
        as the exec provider starts them, so they survive as they would in production)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()


@dataclass
class Sender:
    """Posts notifications like Alertmanager: on a connection error, a timeout or a 5xx it retries (with a
    short back-off) until it gets an answer below 500 or ``give_up`` seconds pass. Keeps what was accepted and
    every 5xx that was not a 503 (503 means "retry later" and is retried, counted in ``retried_503``)."""

    urls: list[str]
    give_up: float = 120.0
    accepted: list[Accepted] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    retried_503: int = 0
    connection_errors: int = 0
    rng: random.Random = field(default_factory=random.Random)
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0, headers=AUTH))

    def send(self, body: dict[str, Any], url: str | None = None) -> int | None:
        """Deliver ``body`` to ``url`` (default: a random replica); the notification id once answered 200."""
        deadline = time.monotonic() + self.give_up
        delay = 0.05
        while True:
            target = url or self.rng.choice(self.urls)
            try:
                r = self.client.post(f"{target}/api/v1/alerts", json=body)
            except httpx.HTTPError:
                self.connection_errors += 1
                r = None
            if r is not None:
                if r.status_code == 503:
                    self.retried_503 += 1
                elif r.status_code >= 500:
                    self.answers.append(Answer(f"valid webhook {body['groupKey']}", r.status_code, r.text))
                if r.status_code == 200:
                    nid = int(r.json()["notification_id"])
                    self.accepted.append(Accepted(nid, tuple(a["fingerprint"] for a in body["alerts"])))
                    return nid
                if r.status_code < 500:
                    raise AssertionError(f"valid webhook refused: {r.status_code} {r.text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook {body['groupKey']} not accepted in {self.give_up}s")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def close(self) -> None:
        self.client.close()


@dataclass
class Run:
    """One scenario's working directory: policy, fake cloud, replicas."""

    dir: Path
    groups: list[str]
    initial: int = 1
    min_size: int = 0
    max_size: int = 6
    timeout: str = "30s"
    store_url: str | None = None
    lease: str = "4s"
    heartbeat: str = "1s"
    status_command: bool = True
    services: list[Service] = field(default_factory=list)
    extra_server: str = ""

    @property
    def mark(self) -> str:
        return str(self.dir)

    def set_knobs(self, **knobs: Any) -> None:
        tmp = self.dir / "knobs.json.tmp"
        tmp.write_text(json.dumps(knobs))
        os.replace(tmp, self.dir / "knobs.json")

    def real(self) -> dict[str, int]:
        out = {}
        for g in self.groups:
            try:
                out[g] = int((self.dir / "real" / g).read_text().strip())
            except (OSError, ValueError):
                out[g] = 0
        return out

    def policy(self, port: int, replica: str = "") -> str:
        groups = []
        status = (f"      status_command: [{sys.executable}, {FAKE_CLOUD}, status, {self.dir}]\n"
                  if self.status_command else "")
        for g in self.groups:
            groups.append(f"""  {g}:
    provider:
      type: exec
      command: [{sys.executable}, {FAKE_CLOUD}, scale, {self.dir}]
{status}      timeout: {self.timeout}
      env: {{FAULT_MARK: "{self.mark}", FAULT_REPLICA: "{replica}"}}
    min_size: {self.min_size}
    max_size: {self.max_size}
    desired: {self.initial}
    scale_out: {{matchers: ['alertname="Up"', 'alertscaler_group="{g}"'], adjustment: 1, cooldown: 0s}}
    scale_in: {{matchers: ['alertname="Down"', 'alertscaler_group="{g}"'], adjustment: -1, cooldown: 0s}}
""")
        # A short lease (the service's minimum is 3 s; heartbeat at most a third of it): a dead replica's
        # actions and groups are taken over within lease + heartbeat, so a kill costs seconds, not the default
        # 30 s. What is checked is the same whatever the lease.
        lease = f"lease: {self.lease}, heartbeat_interval: {self.heartbeat}"
        store = (f"store: {{url_env: FAULT_STORE_URL, {lease}}}\n" if self.store_url
                 else f"store: {{path: {self.dir / 'state' / 'alertscaler.db'}, {lease}}}\n")
        return f"""server:
  listen: 127.0.0.1:{port}
  auth: {{bearer_token: {TOKEN}}}
  state_dir: {self.dir / 'state'}
  reevaluate_interval: 1h
{self.extra_server}{store}actions:
  max_attempts: 8
  backoff_initial: 200ms
  backoff_max: 1s
groups:
{"".join(groups)}"""

    def add_service(self) -> Service:
        port = free_port()
        name = f"r{len(self.services)}"
        config = self.dir / f"{name}.yml"
        config.write_text(self.policy(port, name))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AMX_", "AS_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
        if self.store_url:
            env["FAULT_STORE_URL"] = self.store_url
        svc = Service(name, config, port, self.dir / f"{name}.log", env)
        self.services.append(svc)
        return svc

    def prepare(self) -> None:
        (self.dir / "state").mkdir(parents=True, exist_ok=True)
        (self.dir / "real").mkdir(exist_ok=True)
        for g in self.groups:
            (self.dir / "real" / g).write_text(f"{self.initial}\n")
        self.set_knobs()

    def orphans(self) -> list[int]:
        return marked_pids(self.mark)

    def cleanup(self) -> None:
        for svc in self.services:
            if svc.alive():
                svc.kill9()
        for pid in self.orphans():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # each command leads its own process group
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    # --- reading the service ----------------------------------------------------------------------------
    def api(self) -> str:
        live = [s for s in self.services if s.alive()]
        assert live, "no replica running"
        return live[0].url

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.api()}{path}", params=params, headers=AUTH, timeout=30)
        r.raise_for_status()
        return r.json()

    def decisions(self, unverifiable: list[str]) -> list[dict[str, Any]]:
        """Every decision, paged by ``until`` (exclusive, on decided_at); a page of one instant is read whole
        with ``since`` = ``until`` - 1 µs... unless 1,000 share one instant, which is reported unverifiable."""
        out: dict[int, dict[str, Any]] = {}
        until: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if until:
                params["until"] = until
            page = self.get("/api/v1/decisions", **params)
            for d in page:
                out[d["id"]] = d
            if len(page) < 1000:
                return list(out.values())
            oldest = page[-1]["decided_at"]
            same = self.get("/api/v1/decisions", since=oldest, until=_plus_1us(oldest), limit=1000)
            if len(same) >= 1000:
                unverifiable.append(f"1,000 or more decisions decided at {oldest}: cannot page past them")
                return list(out.values())
            for d in same:
                out[d["id"]] = d
            until = oldest

    def actions(self, unverifiable: list[str]) -> list[dict[str, Any]]:
        out = []
        for g in self.groups:
            page = self.get("/api/v1/actions", group=g, limit=1000)
            if len(page) >= 1000:
                unverifiable.append(f"group {g} has 1,000 actions or more: the API shows only the newest 1,000")
            out += page
        return out

    def desired(self) -> dict[str, int]:
        return {g["name"]: int(g["desired"]) for g in self.get("/api/v1/groups") if g["name"] in self.groups}

    def unfinished(self) -> list[tuple[int, str, int]]:
        """Actions pending or running: (id, state, attempts)."""
        rows = self.get("/api/v1/actions", state="pending", limit=1000) + self.get(
            "/api/v1/actions", state="running", limit=1000)
        return sorted((a["id"], a["state"], a["attempts"]) for a in rows)

    def settle(self, timeout: float, stuck_after: float | None = None) -> bool:
        """Failures off, then wait (by condition) until no command runs, no action is pending or running and
        desired = real for every group. False at ``timeout``, or once no command has run and nothing has changed
        (unfinished actions and their attempts, desired, real) for ``stuck_after`` seconds (default 12 s, 60 s in
        the long form): then nothing is moving, and nothing will bring desired and real together."""
        self.set_knobs()
        stuck_after = stuck_after if stuck_after is not None else scaled(12.0, 60.0)
        deadline = time.monotonic() + timeout
        still: tuple[Any, ...] | None = None
        still_since = time.monotonic()
        while time.monotonic() < deadline:
            try:
                orphans = self.orphans()
                unfinished = self.unfinished()
                desired, real = self.desired(), self.real()
            except httpx.HTTPError:
                time.sleep(0.25)
                continue
            if not orphans and not unfinished and desired == real:
                return True
            state = (tuple(unfinished), tuple(sorted(desired.items())), tuple(sorted(real.items())))
            if orphans or state != still:
                still, still_since = state, time.monotonic()
            elif time.monotonic() - still_since > stuck_after:
                return False
            time.sleep(0.25)
        return False

    def evidence(self, sender: Sender | None, extra_answers: list[Answer] | None = None) -> Evidence:
        unverifiable: list[str] = []
        decisions = self.decisions(unverifiable)
        actions = self.actions(unverifiable)
        return Evidence(
            ledger=read_ledger(self.dir / "ledger.jsonl"),
            accepted=list(sender.accepted) if sender else [],
            decisions=decisions, actions=actions, desired=self.desired(), real=self.real(),
            answers=(list(sender.answers) if sender else []) + list(extra_answers or []),
            retried_503=sender.retried_503 if sender else 0, unverifiable=unverifiable)


def _plus_1us(iso: str) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(iso) + timedelta(microseconds=1)).isoformat()


@contextlib.contextmanager
def run_dir(tmp_path: Path, groups: list[str], **kw: Any) -> Iterator[Run]:
    run = Run(tmp_path / "run", groups, **kw)
    run.prepare()
    try:
        yield run
    finally:
        run.cleanup()


def in_flight(run: Run) -> list[dict[str, Any]]:
    """Commands that began and have not finished (no ledger line) and whose process still lives."""
    done = {(c.action, c.pid) for c in read_ledger(run.dir / "ledger.jsonl")}
    begun_path = run.dir / "begun.jsonl"
    if not begun_path.exists():
        return []
    live = set(run.orphans())
    out = []
    for line in begun_path.read_text().splitlines():
        if not line.strip():
            continue
        b = json.loads(line)
        if (b["action"], b["pid"]) not in done and b["pid"] in live:
            out.append(b)
    return out


class Stream:
    """A thread sending a stream of scale-out / scale-in notifications (new alerts each time, a random group),
    like several Alertmanager groups firing and resolving, until ``stop()``."""

    def __init__(self, sender: Sender, groups: list[str], pause: tuple[float, float] = (0.05, 0.3),
                 per_notification: int = 1, seed: int | None = None) -> None:
        import threading

        self.sender, self.groups, self.pause, self.per = sender, groups, pause, per_notification
        self.rng = random.Random(seed)
        self.sent = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Stream:
        self._thread.start()
        return self

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                group = self.rng.choice(self.groups)
                name = self.rng.choice(["Up", "Down"])
                alerts = [alert(name, group, f"s{self.sent}-{i}") for i in range(self.per)]
                self.sender.send(notification(*alerts))
                self.sent += 1
                self._stop.wait(self.rng.uniform(*self.pause))
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(300)
        if self.error is not None:
            raise self.error
