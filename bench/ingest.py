#!/usr/bin/env python3
"""Webhook ingest benchmark: alertscaler's ``POST /api/v1/alerts`` against a bare Starlette baseline.

A benchmark, not a test: it prints figures and never fails on them. Everything runs in the same
invocation on the same machine, each party in its own process (so nobody shares a GIL):

* **baseline**: a bare Starlette app whose only route ``POST /api/v1/alerts`` does ``json.loads`` of the
  body and answers 200 ``{"status":"ok"}``, under uvicorn with the settings ``alertscaler serve`` uses;
* **alertscaler**: the real service, started exactly as ``alertscaler serve -c <policy>`` (SQLite store in
  a fresh temporary directory, ``sqlite_synchronous`` ``full`` then ``normal``, one group ``web`` with the
  ``exec`` provider running ``/bin/true``, a scale_out policy matching the alerts, bearer auth on), fed
  with Alertmanager 0.25 webhook bodies that are either all new (``unique``: a fresh fingerprint and
  startsAt per request) or all re-sends of one notification (``duplicate``). The engine's background
  processing (decisions, cooldown skips, the provider action) stays on: it is part of the cost.

For each target, in this order (the engine drains its backlog after each phase):

1. **ack latency at a sustainable rate**: the open-loop generator of 3. at ``--low-rate`` (100/s) on the
   fresh store — what an alert storm the service keeps up with costs.
2. **max throughput**: ``wrk`` (closed loop, ``--concurrency`` keep-alive HTTP/1.1 connections, one
   thread, a Lua script generating the bodies and counting status codes) for ``--warmup`` s, then for
   ``--duration`` s → answers 200 per second. For alertscaler the store is then read (after the
   background processing has drained) to check that every 200 was durably recorded; the newest
   decision is also read through ``GET /api/v1/decisions?limit=1``.
3. **ack latency at a fixed rate**: an open-loop generator (a minimal asyncio HTTP/1.1 client in a
   subprocess, keep-alive connections opened as needed; sends are scheduled on a timer and never wait
   for earlier answers) at ``--rate`` notifications/s for ``--duration`` s after ``--warmup`` s; latency
   is measured from the *scheduled* send time (no coordinated omission) to the end of the answer →
   p50/p90/p99/max and the count of non-200 answers.

Before each phase the script waits (up to ``--quiet-wait`` s) for the machine to be idle, and it reports
how much CPU other processes used during each phase (``other_pct``): on a shared machine, read the
figures with that column.

Usage::

    python bench/ingest.py [--duration 10] [--rate 500] [--concurrency 32] [--json out.json]

Needs ``wrk`` on PATH (``apt-get install -y wrk``). Every subprocess is killed on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
ALERTS_PATH = "/api/v1/alerts"
GOAL_RATIO = 0.4  # alertscaler ingest >= 0.4 x the bare baseline
GOAL_P99_MS = 20.0  # ack p99 <= 20 ms at --rate (500/s)

# The body Alertmanager 0.25 sends (captured), split around startsAt and fingerprint so that each request
# can carry new values; everything else is byte for byte what Alertmanager sends.
_BODY_PRE = (
    r'{"receiver":"pyhook","status":"firing","alerts":[{"status":"firing","labels":{"action":"scale_up",'
    r'"alertname":"QuickFire","env":"probe","group":"web","severity":"page"},"annotations":{"scale_by":"1",'
    r'"summary":"always firing test alert"},"startsAt":"'
)
_BODY_MID = (
    r'","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://127.0.0.1:19090/graph?g0.expr=vector%281%29'
    r'+%3E+0\u0026g0.tab=1","fingerprint":"'
)
_BODY_POST = (
    r'"}],"groupLabels":{"alertname":"QuickFire","group":"web"},"commonLabels":{"action":"scale_up",'
    r'"alertname":"QuickFire","env":"probe","group":"web","severity":"page"},"commonAnnotations":'
    r'{"scale_by":"1","summary":"always firing test alert"},"externalURL":"http://127.0.0.1:19093",'
    r'"version":"4","groupKey":"{}/{}:{alertname=\"QuickFire\", group=\"web\"}","truncatedAlerts":0}'
)
REAL_STARTS_AT = "2026-11-21T22:44:17.812Z"
REAL_FINGERPRINT = "6f946de853c59d1d"
REAL_BODY = _BODY_PRE + REAL_STARTS_AT + _BODY_MID + REAL_FINGERPRINT + _BODY_POST


def unique_body(run: int, tid: int, n: int) -> str:
    """The real body with a fingerprint and startsAt no other request of this server gets.

    Same formula as the wrk Lua script below (``run`` tells the phases apart, ``tid`` the wrk threads)."""
    starts = (f"2026-11-{1 + run % 28:02d}T{tid % 24:02d}:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}"
              f".{n % 1000:03d}Z")
    return f"{_BODY_PRE}{starts}{_BODY_MID}{run:04x}{tid:04x}{n:08x}{_BODY_POST}"


WRK_LUA = """
local PRE = [==[%(pre)s]==]
local MID = [==[%(mid)s]==]
local POST = [==[%(post)s]==]
local DUP = [==[%(dup)s]==]
local HEADERS = {
  ["Content-Type"] = "application/json",
  ["User-Agent"] = "Alertmanager/0.25.0",
  ["Authorization"] = "Bearer %(token)s",
}
local threads = {}
local next_tid = 0

function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end

tid = 0
run = 0
mode = "unique"
n = 0
ok = 0
bad = 0

function init(args)
  run = tonumber(args[1])
  mode = args[2]
end

function request()
  n = n + 1
  local body = DUP
  if mode == "unique" then
    local starts = string.format("2026-11-%%02dT%%02d:%%02d:%%02d.%%03dZ", 1 + run %% 28, tid %% 24,
      math.floor(n / 60000) %% 60, math.floor(n / 1000) %% 60, n %% 1000)
    body = PRE .. starts .. MID .. string.format("%%04x%%04x%%08x", run, tid, n) .. POST
  end
  return wrk.format("POST", "%(path)s", HEADERS, body)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local t_ok, t_bad = 0, 0
  for _, t in ipairs(threads) do
    t_ok = t_ok + t:get("ok")
    t_bad = t_bad + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"ok":%%d,"non200":%%d,"completed":%%d,"duration_us":%%d,"connect_errors":%%d,' ..
    '"read_errors":%%d,"write_errors":%%d,"timeouts":%%d,"p50_ms":%%.3f,"p99_ms":%%.3f,"max_ms":%%.3f}\\n',
    t_ok, t_bad, summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


# --- subprocess bookkeeping -------------------------------------------------------------------------

_CHILDREN: list[subprocess.Popen[Any]] = []


def spawn(argv: Sequence[str], *, env: dict[str, str] | None = None, stdout: Any = None,
          stderr: Any = None) -> subprocess.Popen[Any]:
    """Start a child in a session of its own (so Ctrl-C reaches only us, and we kill its whole group)."""
    proc = subprocess.Popen(list(argv), env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    _CHILDREN.append(proc)
    return proc


def stop(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``grace`` seconds, reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with contextlib.suppress(ProcessLookupError):  # stragglers of the group (exec provider's children)
        os.killpg(proc.pid, signal.SIGKILL)
    if proc in _CHILDREN:
        _CHILDREN.remove(proc)


def stop_all() -> None:
    for proc in list(reversed(_CHILDREN)):
        stop(proc, grace=10.0)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def src_digest() -> str:
    """A short sha256 of the measured code (every ``src/alertscaler/**/*.py``): which version the figures
    belong to, and whether it changed during a run (each server loads the code when it starts)."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted((SRC / "alertscaler").rglob("*.py")):
        h.update(str(path.relative_to(SRC)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env() -> dict[str, str]:
    """Our environment with the working tree's ``src`` first on PYTHONPATH (measure this checkout)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.pop("PYTHONASYNCIODEBUG", None)
    env.pop("PYTHONDEVMODE", None)
    return env


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def system_cpu() -> tuple[float, float, float]:
    """Machine-wide (busy, steal, total) CPU seconds since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = values
    tick = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq
    return busy / tick, steal / tick, (busy + idle + iowait + steal) / tick


def machine_load(before: tuple[float, float, float], seconds: float, ours: float) -> dict[str, float]:
    """CPU use of the whole machine during a phase, in % of one core (2 cores = 200%), and how much of it
    was neither the server nor the load generator (other processes: a noisy machine shows here)."""
    busy, steal, _ = system_cpu()
    busy_pct = 100 * (busy - before[0]) / seconds
    return {"machine_busy_pct": round(busy_pct, 1), "steal_pct": round(100 * (steal - before[1]) / seconds, 1),
            "other_pct": round(max(0.0, busy_pct - ours), 1)}


def wait_quiet(threshold: float, max_wait: float) -> dict[str, float]:
    """Wait (up to ``max_wait`` s) until the machine is nearly idle (busy < ``threshold`` % of a core over
    1 s), so that other work on a shared machine does not end up in the figures. Reports what it saw."""
    t0 = time.monotonic()
    busy = 0.0
    while True:
        before = system_cpu()
        time.sleep(1.0)
        after = system_cpu()
        busy = 100 * (after[0] - before[0]) / max(1e-9, (after[2] - before[2]) / (os.cpu_count() or 1))
        waited = time.monotonic() - t0
        if busy < threshold or waited >= max_wait:
            return {"busy_before_pct": round(busy, 1), "waited_s": round(waited, 1)}


def loaded_impls(pid: int) -> dict[str, str]:
    """Which uvicorn loop / HTTP implementation a live server uses, from the libraries it has mapped."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {"loop": "uvloop" if "/uvloop/" in maps else "asyncio",
            "http": "httptools" if "/httptools/" in maps else "h11"}


# --- servers ----------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[Any]
    url: str
    token: str | None
    log: Path
    db: Path | None = None
    impls: dict[str, str] = field(default_factory=dict)
    digest: str = field(default_factory=src_digest)  # the code this server loaded (computed at start)

    def wait_ready(self, path: str, ok: Sequence[int], timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} during start-up:\n"
                                   + tail(self.log))
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + path, timeout=2.0).status_code in ok:
                    self.impls = loaded_impls(self.proc.pid)
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout}s:\n" + tail(self.log))
            time.sleep(0.1)


def log_problems(path: Path, limit: int = 20) -> dict[str, int]:
    """WARNING / ERROR lines of a server log (timestamps cut, so repeats collapse), with their counts."""
    seen: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        if " WARNING " in line or " ERROR " in line or line.startswith("Traceback"):
            seen[line[24:] if line[:4].isdigit() else line] += 1
    return dict(seen.most_common(limit))


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_baseline(work: Path) -> Server:
    port = free_port()
    log = work / "baseline.log"
    with log.open("wb") as out:
        proc = spawn([sys.executable, __file__, "_baseline", "--port", str(port)], env=child_env(),
                     stdout=out, stderr=subprocess.STDOUT)
    server = Server("baseline", proc, f"http://127.0.0.1:{port}", None, log)
    server.wait_ready(ALERTS_PATH, ok=(405,))  # GET on the POST-only route: it answers, so it is up
    return server


POLICY = """\
server:
  listen: 127.0.0.1:{port}
  state_dir: {state}
  auth:
    bearer_token: {token}
store:
  path: {state}/alertscaler.db
  sqlite_synchronous: {sync}
groups:
  web:
    provider: {{type: exec, command: [/bin/true]}}
    min_size: 1
    max_size: 1000
    scale_out:
      matchers: ['alertname="QuickFire"', 'group="web"']
      adjustment: 1
      cooldown: 60s
"""


def start_alertscaler(work: Path, sync: str, variant: str) -> Server:
    """``alertscaler serve -c <policy>`` (the console script's code, from this checkout's src)."""
    port, token = free_port(), secrets.token_hex(16)
    home = work / f"alertscaler-{sync}-{variant}"
    state = home / "state"
    state.mkdir(parents=True)
    config = home / "alertscaler.yml"
    config.write_text(POLICY.format(port=port, state=state, token=token, sync=sync))
    log = home / "serve.log"
    with log.open("wb") as out:
        proc = spawn([sys.executable, "-c", "import sys; from alertscaler.cli import main; sys.exit(main())",
                      "serve", "-c", str(config)], env=child_env(), stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"alertscaler sync={sync} {variant}", proc, f"http://127.0.0.1:{port}", token, log,
                    db=state / "alertscaler.db")
    server.wait_ready("/readyz", ok=(200,))
    return server


def run_baseline_server(port: int) -> None:
    """The baseline: one route that parses the JSON body; uvicorn configured as ``service.serve`` does."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def alerts(request: Request) -> Response:
        json.loads(await request.body())
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route(ALERTS_PATH, alerts, methods=["POST"])])
    uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, log_level="info", access_log=False,
        lifespan="on", timeout_graceful_shutdown=10,
    )).run()


# --- load generators --------------------------------------------------------------------------------


def run_wrk(server: Server, work: Path, *, seconds: float, concurrency: int, run: int,
            mode: str, profile: Path | None = None) -> dict[str, Any]:
    script = work / f"wrk-{server.proc.pid}-{run}.lua"
    script.write_text(WRK_LUA % {"pre": _BODY_PRE, "mid": _BODY_MID, "post": _BODY_POST, "dup": REAL_BODY,
                                 "token": server.token or "none", "path": ALERTS_PATH})
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    argv = [wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(script), server.url + ALERTS_PATH, "--", str(run), mode]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = cpu_seconds(server.proc.pid)
    sys0 = system_cpu()
    t0 = time.monotonic()
    proc = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    spy = start_profile(server, profile, seconds) if profile else None
    out, err = proc.communicate()
    _CHILDREN.remove(proc)
    cpu1 = cpu_seconds(server.proc.pid)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if spy is not None:
        spy.wait()
        _CHILDREN.remove(spy)
    line = next((ln for ln in out.decode().splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()}\n{out.decode()}")
    res: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    secs = res["duration_us"] / 1e6
    res["seconds"] = round(secs, 3)
    res["ok_per_s"] = round(res["ok"] / secs, 1)
    res["server_cpu_pct"] = round(100 * (cpu1 - cpu0) / secs, 1)
    res["client_cpu_pct"] = round(100 * (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
                                  / secs, 1)
    elapsed = time.monotonic() - t0
    res.update(machine_load(sys0, elapsed, (cpu1 - cpu0 + after.ru_utime + after.ru_stime - before.ru_utime
                                            - before.ru_stime) * 100 / elapsed))
    return res


def start_profile(server: Server, out: Path, seconds: float) -> subprocess.Popen[Any] | None:
    """``py-spy record`` of the server for ``seconds`` (raw collapsed stacks, one line per stack, per thread)."""
    spy = shutil.which("py-spy")
    if spy is None:
        log("py-spy not installed (pip install py-spy): not profiling")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return spawn([spy, "record", "--pid", str(server.proc.pid), "--duration", str(max(1, round(seconds) - 1)),
                  "--rate", "250", "--nonblocking", "--threads", "--format", "raw", "--output", str(out)],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_openloop(server: Server, *, rate: float, seconds: float, warmup: float, mode: str,
                 run: int) -> dict[str, Any]:
    argv = [sys.executable, __file__, "_openloop", "--url", server.url, "--rate", str(rate),
            "--duration", str(seconds), "--warmup", str(warmup), "--mode", mode, "--run", str(run)]
    if server.token:
        argv += ["--token", server.token]
    cpu0 = cpu_seconds(server.proc.pid)
    sys0 = system_cpu()
    t0 = time.monotonic()
    proc = spawn(argv, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    _CHILDREN.remove(proc)
    cpu1 = cpu_seconds(server.proc.pid)
    if proc.returncode != 0:
        raise RuntimeError(f"open-loop client failed ({proc.returncode}): {err.decode()}")
    res: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    elapsed = time.monotonic() - t0  # includes the client's start-up (its imports show in other_pct)
    res["server_cpu_pct"] = round(100 * (cpu1 - cpu0) / elapsed, 1)
    res.update(machine_load(sys0, elapsed, res["server_cpu_pct"] + res["client_cpu_pct"]))
    return res


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


IDLE_REUSE_S = 4.0  # uvicorn closes keep-alive connections idle for 5 s (timeout_keep_alive); do not race it


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection of the open-loop client, one request at a time.

    A minimal client on purpose: ``httpx.AsyncClient`` costs ~1-2 ms of CPU per request on this class of
    machine, so at 500/s it measures itself; this one writes each request in one ``write`` (asyncio sets
    TCP_NODELAY) and parses just the status line and Content-Length of the answer."""

    def __init__(self, client: _OpenLoop) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.need: int | None = None
        self.status = 0
        self.current: tuple[int, float] | None = None  # (request number, scheduled time)
        self.closed = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need is None:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).decode("latin-1")
                self.status = int(head[9:12])
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                self.need = end + 4 + length
            if len(self.buf) < self.need:
                return
            del self.buf[:self.need]
            self.need = None
            current, self.current = self.current, None
            if current is not None:
                self.client.finished(self, current, str(self.status))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        current, self.current = self.current, None
        if current is not None:
            self.client.finished(self, current, "connection_lost")


class _OpenLoop:
    def __init__(self, url: str, token: str | None, rate: float, seconds: float, warmup: float, mode: str,
                 run: int) -> None:
        host_port = url.removeprefix("http://").rstrip("/")
        self.host, _, port = host_port.rpartition(":")
        self.port = int(port)
        self.headers = (f"POST {ALERTS_PATH} HTTP/1.1\r\nHost: {host_port}\r\nUser-Agent: Alertmanager/0.25.0\r\n"
                        "Content-Type: application/json\r\n"
                        + (f"Authorization: Bearer {token}\r\n" if token else ""))
        self.rate, self.seconds, self.warmup, self.mode, self.run = rate, seconds, warmup, mode, run
        self.first_measured = int(warmup * rate)
        self.idle: list[_Conn] = []
        self.opened = 0
        self.latencies: list[float] = []
        self.timeline: list[tuple[float, float]] = []  # (scheduled time, latency) of measured requests
        self.statuses: Counter[str] = Counter()
        self.all_ok = 0
        self.outstanding = 0
        self.all_done = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def finished(self, conn: _Conn, current: tuple[int, float], status: str) -> None:
        i, scheduled = current
        now = self.loop.time()
        self.all_ok += status == "200"
        if i >= self.first_measured:
            self.latencies.append(now - scheduled)
            self.timeline.append((scheduled, now - scheduled))
            self.statuses[status] += 1
        if not conn.closed:
            conn.idle_since = now
            self.idle.append(conn)  # LIFO: the fewest connections stay busy, the rest time out
        self.outstanding -= 1
        if self.outstanding == 0:
            self.all_done.set()

    def request(self, i: int) -> bytes:
        body = (unique_body(self.run, 0, i) if self.mode == "unique" else REAL_BODY).encode()
        return f"{self.headers}Content-Length: {len(body)}\r\n\r\n".encode() + body

    async def send(self, i: int, scheduled: float) -> None:
        conn = None
        while self.idle:
            candidate = self.idle.pop()
            if candidate.closed:
                continue
            if self.loop.time() - candidate.idle_since > IDLE_REUSE_S:  # the server may be closing it
                assert candidate.transport is not None
                candidate.transport.close()
                continue
            conn = candidate
            break
        if conn is None:
            try:
                _, conn = await self.loop.create_connection(lambda: _Conn(self), self.host, self.port)
            except OSError:
                self.finished(_Conn(self), (i, scheduled), "connect_error")
                return
            self.opened += 1
        conn.current = (i, scheduled)
        assert conn.transport is not None
        conn.transport.write(self.request(i))

    async def go(self) -> dict[str, Any]:
        total = int((self.warmup + self.seconds) * self.rate)
        tasks: set[asyncio.Task[None]] = set()
        max_send_lag = 0.0
        cpu0 = time.process_time()
        start = self.loop.time() + 0.05
        for i in range(total):
            scheduled = start + i / self.rate
            delay = scheduled - self.loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                max_send_lag = max(max_send_lag, -delay)
            self.outstanding += 1
            self.all_done.clear()
            task = self.loop.create_task(self.send(i, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        try:
            await asyncio.wait_for(self.all_done.wait(), timeout=60)
        except TimeoutError:  # answers that never came count as failures
            self.statuses["no_answer_after_60s"] += self.outstanding
        end = self.loop.time()
        cpu = time.process_time() - cpu0
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()
        ms = sorted(x * 1000 for x in self.latencies)
        measured_from = start + self.first_measured / self.rate
        slowest = sorted(self.timeline, key=lambda e: -e[1])[:10]
        unanswered = self.statuses.get("no_answer_after_60s", 0)
        ok = self.statuses.get("200", 0)
        return {
            "sent": len(ms) + unanswered, "ok": ok, "non200": len(ms) + unanswered - ok,
            "statuses": dict(self.statuses),
            "ok_including_warmup": self.all_ok, "connections_opened": self.opened,
            "achieved_per_s": round(len(ms) / max(1e-9, end - measured_from), 1),
            "p50_ms": round(percentile(ms, 50), 3), "p90_ms": round(percentile(ms, 90), 3),
            "p99_ms": round(percentile(ms, 99), 3), "p999_ms": round(percentile(ms, 99.9), 3),
            "max_ms": round(ms[-1] if ms else 0.0, 3),
            "mean_ms": round(statistics.fmean(ms) if ms else 0.0, 3),
            "max_client_send_lag_ms": round(max_send_lag * 1000, 3),
            "client_cpu_pct": round(100 * cpu / (end - start), 1),
            "slowest": [{"at_s": round(t - measured_from, 3), "ms": round(lat * 1000, 1)} for t, lat in slowest],
        }


async def openloop(url: str, token: str | None, rate: float, seconds: float, warmup: float, mode: str,
                   run: int) -> dict[str, Any]:
    """Send at ``rate``/s on a fixed schedule; latency from the scheduled time to the end of the answer."""
    return await _OpenLoop(url, token, rate, seconds, warmup, mode, run).go()


# --- the store, read directly -----------------------------------------------------------------------


@contextlib.contextmanager
def _db(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        yield conn
    finally:
        conn.close()


def store_counts(path: Path) -> dict[str, Any]:
    with _db(path) as conn:
        total, processed, max_id = conn.execute(
            "SELECT count(*), count(processed_at), coalesce(max(id), 0) FROM notifications").fetchone()
        reasons = dict(conn.execute("SELECT reason, count(*) FROM decisions GROUP BY reason").fetchall())
        from_notifications = conn.execute(
            "SELECT count(*) FROM decisions WHERE notification_id IS NOT NULL").fetchone()[0]
        actions = dict(conn.execute("SELECT state, count(*) FROM actions GROUP BY state").fetchall())
        decided_before_received = conn.execute(
            "SELECT count(*) FROM decisions WHERE received_at IS NOT NULL AND decided_at < received_at"
        ).fetchone()[0]
        active = conn.execute("SELECT count(*) FROM active_alerts").fetchone()[0]
        min_arrival_to_decision_ms = conn.execute(
            "SELECT min((julianday(decided_at) - julianday(received_at)) * 86400000.0) FROM decisions"
            " WHERE received_at IS NOT NULL").fetchone()[0]
    return {"notifications": total, "processed": processed, "max_id": max_id,
            "decisions_from_notifications": from_notifications, "decisions_by_reason": reasons,
            "actions_by_state": actions, "active_alerts": active,
            "decided_before_received": decided_before_received,
            "min_arrival_to_decision_ms": round(min_arrival_to_decision_ms or 0.0, 1)}


def drain(server: Server, timeout: float) -> dict[str, Any]:
    """Wait until the engine has processed every recorded notification; how long that took."""
    assert server.db is not None
    t0 = time.monotonic()
    counts = store_counts(server.db)
    backlog = counts["notifications"] - counts["processed"]
    while counts["processed"] < counts["notifications"] and time.monotonic() - t0 < timeout:
        time.sleep(0.25)
        counts = store_counts(server.db)
    # requests a killed client (wrk) left in flight may still be committed: wait until the count settles
    while time.monotonic() - t0 < timeout:
        time.sleep(0.5)
        settled = store_counts(server.db)
        if (settled["notifications"], settled["processed"]) == (counts["notifications"], counts["processed"]):
            break
        counts = settled
    return {"backlog_at_end": backlog, "drain_s": round(time.monotonic() - t0, 2),
            "drained": counts["processed"] == counts["notifications"], "counts": counts}


def newest_decision(server: Server) -> dict[str, Any] | None:
    import httpx

    headers = {"Authorization": f"Bearer {server.token}"} if server.token else {}
    rows = httpx.get(server.url + "/api/v1/decisions?limit=1", headers=headers, timeout=10).json()
    return rows[0] if rows else None


# --- one target -------------------------------------------------------------------------------------


def measure(server: Server, work: Path, args: argparse.Namespace, mode: str) -> dict[str, Any]:
    """Phases, in this order: ack latency at ``--low-rate`` (a fresh store, a rate the service sustains),
    max throughput (wrk), then ack latency at ``--rate``. The engine drains its backlog after each."""
    result: dict[str, Any] = {"name": server.name, "uvicorn": server.impls, "mode": mode,
                              "src_digest": server.digest}
    recorded_before = 0

    def latency_phase(key: str, rate: float, run: int) -> None:
        nonlocal recorded_before
        log(f"[{server.name}] latency: open loop {rate:g}/s, {args.warmup}s warm-up + {args.duration}s")
        quiet = wait_quiet(args.quiet_threshold, args.quiet_wait)
        lat = run_openloop(server, rate=rate, seconds=args.duration, warmup=args.warmup, mode=mode, run=run)
        result[key] = lat
        lat["rate"] = rate
        lat["quiet"] = quiet
        if server.db is not None:
            drained = drain(server, args.drain_timeout)
            lat["processing"] = {k: v for k, v in drained.items() if k != "counts"}
            lat["store_after"] = drained["counts"]
            # The open-loop client waits for every answer: each 200 of this phase is exactly one new row.
            recorded = drained["counts"]["notifications"] - recorded_before
            recorded_before = drained["counts"]["notifications"]
            lat["durability"] = {"acked_200": lat["ok_including_warmup"], "recorded": recorded,
                                 "ok": recorded == lat["ok_including_warmup"]}
        log(f"[{server.name}]   p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms, "
            f"non-200 {lat['non200']}, achieved {lat['achieved_per_s']}/s")

    if args.low_rate:
        latency_phase("latency_low", args.low_rate, 4)

    log(f"[{server.name}] throughput: wrk -c{args.concurrency}, {args.warmup}s warm-up + {args.duration}s")
    quiet = wait_quiet(args.quiet_threshold, args.quiet_wait)
    warm = run_wrk(server, work, seconds=args.warmup, concurrency=args.concurrency, run=1, mode=mode)
    profile = None
    if args.profile:
        profile = args.profile / (server.name.replace(" ", "_").replace("=", "-") + "-throughput.txt")
    tput = run_wrk(server, work, seconds=args.duration, concurrency=args.concurrency, run=2, mode=mode,
                   profile=profile)
    result["throughput"] = tput
    tput["quiet"] = quiet
    acked = warm["ok"] + tput["ok"]
    if server.db is not None:
        drained = drain(server, args.drain_timeout)
        counts = drained["counts"]
        recorded = counts["notifications"] - recorded_before
        recorded_before = counts["notifications"]
        # wrk stops with up to --concurrency requests in flight (per run): recorded, never answered.
        tput["durability"] = {
            "acked_200": acked, "recorded": recorded, "recorded_minus_acked": recorded - acked,
            "in_flight_allowance": 2 * args.concurrency,
            "ok": acked <= recorded <= acked + 2 * args.concurrency and counts["max_id"] == counts["notifications"],
        }
        tput["durable_per_s"] = tput["ok_per_s"] if acked <= recorded else round(
            (recorded - warm["ok"]) / tput["seconds"], 1)
        tput["processing"] = {k: v for k, v in drained.items() if k != "counts"}
        tput["store_after"] = counts
        newest = newest_decision(server)
        tput["newest_decision"] = ({k: newest.get(k) for k in ("id", "notification_id", "reason")}
                                   if newest else None)
    log(f"[{server.name}]   {tput['ok_per_s']:.0f} req/s 200, non-200 {tput['non200']}, "
        f"server CPU {tput['server_cpu_pct']}%")

    latency_phase("latency", args.rate, 3)
    return result


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine(work: Path) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import httpx
    import starlette
    import uvicorn

    wrk = shutil.which("wrk")
    wrk_version = ""
    if wrk:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        wrk_version = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else ""
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "kernel": platform.release(), "uvicorn": uvicorn.__version__, "starlette": starlette.__version__,
            "httpx": httpx.__version__, "sqlite": sqlite3.sqlite_version, "wrk": wrk_version,
            "fsync_ms_median": fsync_ms(work)}


def fsync_ms(work: Path, n: int = 100) -> float:
    """Median time of one 4 KiB write + fsync in the work directory (what a SQLite FULL commit waits for)."""
    path = work / "fsync.probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for i in range(n):
            os.pwrite(fd, b"x" * 4096, i * 4096)
            t0 = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return round(statistics.median(times), 3)


# --- report -----------------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    rate = results["params"]["rate"]
    low = results["params"]["low_rate"]
    head = ["target", "mode", "200/s", "ratio", "durable", f"p50@{rate:g}", f"p99@{rate:g}", f"max@{rate:g}",
            f"done/s@{rate:g}", "non-200", "backlog/drain"]
    if low:
        head += [f"p50@{low:g}", f"p99@{low:g}"]
    head.append("other CPU%")
    rows = [tuple(head)]
    base = results["baseline_ok_per_s"]
    for t in results["targets"]:
        tp, lat = t["throughput"], t["latency"]
        phases = [tp, lat] + ([t["latency_low"]] if "latency_low" in t else [])
        ratio = f"{tp['ok_per_s'] / base:.2f}x" if base else "-"
        durable = backlog = "-"
        if "durability" in tp:
            durable = "ok" if all(ph["durability"]["ok"] for ph in phases) else "MISMATCH"
            proc = tp["processing"]
            backlog = f"{proc['backlog_at_end']}/{proc['drain_s']:.1f}s"
        name = t["name"].removesuffix(f" {t['mode']}")
        row = [name, t["mode"], f"{tp['ok_per_s']:.0f}", ratio, durable, f"{lat['p50_ms']:.1f}",
               f"{lat['p99_ms']:.1f}", f"{lat['max_ms']:.1f}", f"{lat['achieved_per_s']:.0f}",
               str(sum(ph["non200"] for ph in phases)), backlog]
        if low:
            low_lat = t.get("latency_low", {})
            row += [f"{low_lat.get('p50_ms', 0):.1f}", f"{low_lat.get('p99_ms', 0):.1f}"]
        row.append(f"{max(ph.get('other_pct', 0.0) for ph in phases):.0f}")
        rows.append(tuple(row))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    g = results["goals"]
    lines += ["", f"code measured: src digest {results.get('src_digest')}",
              "200/s: wrk closed loop; ratio: / baseline; durable: every 200 found in the store; latency in ms "
              "from the scheduled send (open loop); backlog/drain: unprocessed notifications when the "
              "throughput run ended / seconds to process them; other CPU%: the machine's CPU use by other "
              "processes during the run (max over phases, % of one core).",
              f"goal ingest >= {GOAL_RATIO}x baseline: "
              + ", ".join(f"{k}: {v['ratio']:.2f}x {'met' if v['met'] else 'NOT met'}"
                          for k, v in g["ratio"].items()),
              f"goal ack p99 <= {GOAL_P99_MS:g} ms at {rate:g}/s: "
              + ", ".join(f"{k}: {v['p99_ms']:.1f} ms {'met' if v['met'] else 'NOT met'}"
                          for k, v in g["p99"].items())]
    return "\n".join(lines)


def goals(results: dict[str, Any]) -> dict[str, Any]:
    base = results["baseline_ok_per_s"]
    ratio: dict[str, Any] = {}
    p99: dict[str, Any] = {}
    for t in results["targets"]:
        if t["name"] == "baseline":
            continue
        key = t["name"].removeprefix("alertscaler ")
        r = t["throughput"].get("durable_per_s", t["throughput"]["ok_per_s"]) / base if base else 0.0
        ratio[key] = {"ratio": round(r, 3), "met": r >= GOAL_RATIO}
        p99[key] = {"p99_ms": t["latency"]["p99_ms"],
                    "met": t["latency"]["p99_ms"] <= GOAL_P99_MS and t["latency"]["non200"] == 0}
    return {"ratio": ratio, "p99": p99}


# --- main -------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase (default 10)")
    p.add_argument("--warmup", type=float, default=2.0,
                   help="seconds of warm-up before each phase (default 2)")
    p.add_argument("--rate", type=float, default=500.0, help="open-loop notifications/s (default 500)")
    p.add_argument("--low-rate", type=float, default=100.0,
                   help="also measure ack latency at this lower rate (default 100; 0 = skip)")
    p.add_argument("--concurrency", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--sync", default="full,normal", help="sqlite_synchronous values (default full,normal)")
    p.add_argument("--modes", default="unique,duplicate", help="body variants (default unique,duplicate)")
    p.add_argument("--drain-timeout", type=float, default=300.0,
                   help="max seconds to wait for the engine to process the backlog (default 300)")
    p.add_argument("--quiet-threshold", type=float, default=30.0,
                   help="before each phase wait until the machine is below this CPU %% (default 30)")
    p.add_argument("--quiet-wait", type=float, default=120.0,
                   help="max seconds to wait for that (default 120; 0 = do not wait)")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="py-spy record each server during its throughput run into DIR (skews the figures)")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, databases)")
    return p.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even if started with SIGINT ignored
    work = Path(tempfile.mkdtemp(prefix="alertscaler-bench-"))
    results: dict[str, Any] = {"params": {k: (str(v) if isinstance(v, Path) else v)
                                          for k, v in vars(args).items()},
                               "machine": machine(work), "targets": []}
    try:
        log(f"work dir {work}; machine {results['machine']}")
        server = start_baseline(work)
        try:
            results["targets"].append(measure(server, work, args, "unique"))
        finally:
            stop_all()  # newest first: a load generator left by Ctrl-C goes before the server
        for sync in [s.strip() for s in args.sync.split(",") if s.strip()]:
            for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
                server = start_alertscaler(work, sync, mode)
                try:
                    results["targets"].append(measure(server, work, args, mode))
                finally:
                    stop_all()
                if server.proc.returncode not in (0, -signal.SIGTERM):
                    log(f"[{server.name}] exited with {server.proc.returncode}:\n{tail(server.log)}")
                results["targets"][-1]["server_log_problems"] = log_problems(server.log)
        results["baseline_ok_per_s"] = results["targets"][0]["throughput"]["ok_per_s"]
        digests = sorted({t["src_digest"] for t in results["targets"] if t["name"] != "baseline"})
        results["src_digest"] = digests[0] if len(digests) == 1 else digests
        if len(digests) > 1:
            log(f"WARNING: src/ changed during the run (digests {', '.join(digests)}): targets measured "
                "different code")
        results["goals"] = goals(results)
    except KeyboardInterrupt:
        log("interrupted; stopping subprocesses")
        return 130
    finally:
        stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


def _internal(argv: Sequence[str]) -> int:
    """Roles this file plays in its subprocesses: the baseline server and the open-loop client."""
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["_baseline", "_openloop"])
    p.add_argument("--port", type=int)
    p.add_argument("--url")
    p.add_argument("--token")
    p.add_argument("--rate", type=float)
    p.add_argument("--duration", type=float)
    p.add_argument("--warmup", type=float)
    p.add_argument("--mode")
    p.add_argument("--run", type=int)
    a = p.parse_args(argv)
    if a.role == "_baseline":
        run_baseline_server(a.port)
        return 0
    print(json.dumps(asyncio.run(openloop(a.url, a.token, a.rate, a.duration, a.warmup, a.mode, a.run))))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        sys.exit(_internal(sys.argv[1:]))
    sys.exit(main(sys.argv[1:]))
