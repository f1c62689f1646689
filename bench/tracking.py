#!/usr/bin/env python3
"""Target-tracking evaluation throughput and memory per group (issue 6, benchmark 7b).

Goal: 10,000 tracked groups evaluated every 15 s on ONE core, Prometheus answered by a local stand-in,
and at most 10 KB of memory per group. A benchmark, not a test: it prints figures and never fails on them.
Everything runs in one invocation:

* **stand-in Prometheus**: a minimal asyncio HTTP/1.1 server (keep-alive) in a SEPARATE process (this
  script re-run with ``--serve``), so its CPU is not counted in the measured process. It answers
  ``POST /api/v1/query`` (form-encoded, as ``PrometheusClient`` sends it) with Prometheus' documented JSON:
  ``{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {...}, "value": [t, "v"]}]}}``
  holding one sample whose value depends only on the ``alertscaler_group="gNNNNN"`` label of the query
  (NNNNN mod 5 → 1.0, 1.5, 0.5, 1.05 and 3.0 times the target): a deterministic mix of groups within
  tolerance, scaling out (until max_size), asking to scale in (held by the 300 s stabilisation window) and
  rate-limited.
* **measured process** (this one): ``--groups`` N groups generated as policy text (``provider: {type: fake}``,
  ``track`` with one metric, target 100, interval 15 s, HPA-default rules), loaded with ``load_policy``; an
  ``SqlStore`` on SQLite in a temporary directory (``synchronous`` as the service's default, ``full``;
  PostgreSQL too when ``ALERTSCALER_TEST_PG_URL`` is set, in a new schema dropped afterwards), migrated; a
  ``TrackingLoop`` asking through a real ``QueryCombiner`` on a real ``PrometheusClient`` pointed at the
  stand-in (``--per-request`` queries per request, default 100 as the service; 1: one request per query).
  ``--cycles`` full cycles are run with ``now``
  advanced by 15 s each (every group due every cycle); each cycle's wall time and process CPU time
  (``time.process_time``: all threads of this process) → groups per CPU second and whether one 15 s cycle of
  10,000 groups fits in 15 CPU seconds (extrapolated linearly when N differs). Cycle 1 creates the groups'
  rows and records a decision for every group; later cycles record only changes (the steady state).
* **baselines, same process, same run** (the project's rule: speed as ratios against a baseline): the
  same loop for one steady cycle with one request per query (as before ``ingest.combining``); the client
  alone (``value_of`` for the same N queries, and ``QueryCombiner.values_of`` for them), ``recommend``
  alone (pure, with the rules and histories the loop has), and the store alone (a write transaction with
  ``lock_group`` per group; one read of all groups then a transaction per 100 groups). Reported: CPU µs
  per group of each and the loop's cost as a ratio to them.
* **memory**: RSS of this process after loading the policy, after building the loop and after each cycle
  (delta / N); the loop's own state (``TrackingLoop.memory``: ``_Memory`` with its recommendation history
  and changes) measured by walking it (``sys.getsizeof``, shared objects counted once) after each cycle; and a
  ``tracemalloc`` run (separate, ``--memory-groups`` groups, queries answered in-process with the same
  values, so that tracing's slowdown does not touch the timings) for policy, loop state after one cycle and
  after ``--memory-cycles`` cycles (default 21: the 300 s stabilisation window full, the steady state).
* **profile**: one more cycle under ``cProfile`` (always; skip with ``--no-profile``): the top functions by
  own time and the share of CPU per package (httpx/httpcore, sqlalchemy, sqlite3, alertscaler, json, ...).

Usage::

    .venv/bin/python bench/tracking.py                      # 10,000 groups, 3 cycles (~2-3 min on 2 cores)
    .venv/bin/python bench/tracking.py --groups 1000        # quick run
    .venv/bin/python bench/tracking.py --json tracking.json --sqlite-synchronous normal

Logging is left unconfigured (WARNING) by default: the loop's per-decision ``log.info`` calls then cost only
the level check; ``--log-info`` formats them at INFO into /dev/null, as the running service would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import json
import logging
import os
import platform
import pstats
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.support.pg_schemas import fresh_schema  # noqa: E402

from alertscaler.act.tracking import TrackingLoop  # noqa: E402
from alertscaler.config import PolicyFile, load_policy  # noqa: E402
from alertscaler.decide.tracking import recommend  # noqa: E402
from alertscaler.model.tracking import Recommendation  # noqa: E402
from alertscaler.prometheus.client import PrometheusClient  # noqa: E402
from alertscaler.prometheus.combining import LABEL, QueryCombiner, one_by_one  # noqa: E402
from alertscaler.store.sql import SqlStore  # noqa: E402

INTERVAL = 15.0
TARGET = 100.0
RATIOS = (1.0, 1.5, 0.5, 1.05, 3.0)  # value / target by group index mod 5
GOAL_GROUPS = 10_000
GOAL_BYTES = 10 * 1024
START = datetime(2024, 1, 1, tzinfo=UTC)
_GROUP_RE = re.compile(r'alertscaler_group="g(\d+)"')
_COMBINED_RE = re.compile(r'label_replace\(\n(.*?)\n, "' + LABEL + r'", "(\d+)", "", ""\)', re.DOTALL)


def query_of(index: int) -> str:
    g = f"g{index:05d}"
    return f'sum(rate(requests_total{{alertscaler_group="{g}"}}[1m])) / count(up{{alertscaler_group="{g}"}})'


def value_of_query(query: str) -> float:
    """The stand-in's answer to ``query`` (also used in-process by the memory run)."""
    m = _GROUP_RE.search(query)
    return TARGET * RATIOS[int(m.group(1)) % len(RATIOS)] if m else 0.0


# -- the stand-in Prometheus (its own process) -----------------------------------------------------------------


def answer(query: str) -> list[dict[str, Any]]:
    """The ``result`` of an instant query: one sample, or one per part of a combined query
    (``ingest.combining``: ``label_replace(<q>, "alertscaler_query", "<i>", "", "") or ...``), each labelled
    as Prometheus labels it (its group, and the index ``label_replace`` sets)."""
    at = round(time.time(), 3)
    parts = _COMBINED_RE.findall(query) or [(query, None)]
    result = []
    for part, index in parts:
        m = _GROUP_RE.search(part)
        labels = {"alertscaler_group": f"g{m.group(1)}"} if m else {}
        if index is not None:
            labels[LABEL] = index
        result.append({"metric": labels, "value": [at, f"{value_of_query(part):g}"]})
    return result


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            request_line = await reader.readline()
            if not request_line:
                break
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            parts = request_line.split()
            path = parts[1].split(b"?")[0] if len(parts) > 1 else b""
            if path == b"/api/v1/query":
                query = parse_qs(body.decode()).get("query", [""])[0]
                payload = {"status": "success", "data": {"resultType": "vector", "result": answer(query)}}
                status = b"200 OK"
            else:
                payload = {"status": "error", "errorType": "not_found", "error": "not found"}
                status = b"404 Not Found"
            data = json.dumps(payload).encode()
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(data)).encode() + b"\r\n\r\n" + data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _serve() -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def stand_in() -> Iterator[tuple[str, int]]:
    """Start the stand-in Prometheus in a subprocess → (its URL, its pid)."""
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def child_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# -- the measured side -------------------------------------------------------------------------------------------


def policy_text(groups: int) -> str:
    lines = ["server: {auth: {insecure_no_auth: true}}", "groups:"]
    for i in range(groups):
        lines += [f"  g{i:05d}:", "    provider: {type: fake}", "    min_size: 1", "    max_size: 50",
                  "    desired: 4", "    track:", f"      metrics: [{{query: '{query_of(i)}', target: {TARGET:g}}}]",
                  f"      interval: {INTERVAL:g}s"]
    return "\n".join(lines) + "\n"


def deep_size(obj: object, seen: set[int] | None = None) -> int:
    """Bytes of ``obj`` and everything it references (containers, dataclass fields), each object once.
    Classes, modules and functions are not followed."""
    seen = set() if seen is None else seen
    stack = [obj]
    total = 0
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, type):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list | tuple | set | frozenset):
            stack.extend(o)
        elif hasattr(o, "__dict__"):
            stack.append(vars(o))
        elif hasattr(o, "__slots__"):
            stack.extend(getattr(o, s) for s in o.__slots__ if hasattr(o, s))
    return total


def loop_state_bytes(loop: TrackingLoop) -> int:
    """The loop's own per-group state: the ``memory`` dict of ``_Memory`` (histories, changes, last skip)."""
    return deep_size(loop.memory)


@dataclass
class Cycle:
    cycle: int
    wall_s: float
    cpu_s: float
    stand_in_cpu_s: float
    evaluated: int
    results: int
    rss_bytes: int
    loop_state_bytes: int

    def as_dict(self, groups: int) -> dict[str, Any]:
        return {"cycle": self.cycle, "wall_s": round(self.wall_s, 3), "cpu_s": round(self.cpu_s, 3),
                "stand_in_cpu_s": round(self.stand_in_cpu_s, 3), "evaluated": self.evaluated,
                "decisions_recorded": self.results,
                "groups_per_cpu_s": round(self.evaluated / self.cpu_s, 1) if self.cpu_s else None,
                "cpu_us_per_group": round(self.cpu_s / max(1, self.evaluated) * 1e6, 1),
                "cpu_s_for_10000": round(self.cpu_s / max(1, self.evaluated) * GOAL_GROUPS, 2),
                "rss_bytes": self.rss_bytes, "loop_state_bytes_per_group": round(self.loop_state_bytes / groups)}


@dataclass
class Run:
    store: str
    groups: int
    cycles: list[Cycle] = field(default_factory=list)
    baselines: dict[str, float] = field(default_factory=dict)  # name → CPU µs per group
    memory: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    requests_per_cycle: float = 0.0


def measure(fn: Callable[[], Any], stand_in_pid: int) -> tuple[Any, float, float, float]:
    """fn() → (result, wall s, this process' CPU s, stand-in CPU s)."""
    gc.collect()
    s0 = child_cpu(stand_in_pid)
    w0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    w1, c1 = time.perf_counter(), time.process_time()
    return result, w1 - w0, c1 - c0, child_cpu(stand_in_pid) - s0


def run_store(label: str, url: str, policy: PolicyFile, groups: int, cycles: int, prom_url: str,
              stand_in_pid: int, profile: bool, rss_start: int, rss_policy: int,
              synchronous: str, per_request: int) -> Run:
    run = Run(label, groups)
    store = SqlStore(url, sqlite_synchronous=synchronous)
    store.migrate()
    client = PrometheusClient(prom_url)
    client.value_of(query_of(0))  # open the keep-alive connection
    combiner = QueryCombiner(client, per_request)
    loop = TrackingLoop(policy, store, client.value_of, combiner.values_of)
    rss_loop = rss_bytes()
    run.memory["rss_per_group_policy"] = round((rss_policy - rss_start) / groups)
    run.memory["rss_per_group_loop_built"] = round((rss_loop - rss_policy) / groups)
    now = START
    for i in range(1, cycles + 1):
        out, wall, cpu, other = measure(lambda n=now: loop.run(n), stand_in_pid)  # type: ignore[misc]
        run.cycles.append(Cycle(i, wall, cpu, other, len(loop.groups), len(out), rss_bytes(),
                                loop_state_bytes(loop)))
        c = run.cycles[-1]
        print(f"  [{label}] cycle {i}: wall {wall:.2f} s, CPU {cpu:.2f} s ({cpu / groups * 1e6:.0f} µs/group, "
              f"{groups / cpu:.0f} groups/CPU-s), stand-in CPU {other:.2f} s, decisions {len(out)}, "
              f"loop state {c.loop_state_bytes / groups:.0f} B/group", flush=True)
        now += timedelta(seconds=INTERVAL)
    run.requests_per_cycle = combiner.requests / cycles
    if per_request > 1:  # baseline: the same loop, one request per query (as before ingest.combining)
        loop.values_of = one_by_one(client.value_of)
        out, wall, cpu, other = measure(lambda n=now: loop.run(n), stand_in_pid)  # type: ignore[misc]
        run.baselines["loop_one_request_per_query"] = cpu / groups * 1e6
        print(f"  [{label}] baseline the loop with one request per query (a steady cycle): wall {wall:.2f} s, "
              f"CPU {cpu:.2f} s ({cpu / groups * 1e6:.0f} µs/group), decisions {len(out)}", flush=True)
        loop.values_of = combiner.values_of
        now += timedelta(seconds=INTERVAL)
    run.memory["rss_per_group_after_cycles"] = round((rss_bytes() - rss_policy) / groups)
    run.memory["loop_state_per_group"] = round(loop_state_bytes(loop) / groups)

    queries = [g.track.metrics[0].query for g in loop.groups.values() if g.track is not None]

    def http_only() -> None:
        for q in queries:
            client.value_of(q)

    _, wall, cpu, other = measure(http_only, stand_in_pid)
    run.baselines["http_client_value_of"] = cpu / groups * 1e6
    print(f"  [{label}] baseline client alone: {len(queries)} value_of in wall {wall:.2f} s, CPU {cpu:.2f} s "
          f"({cpu / groups * 1e6:.0f} µs/query), stand-in CPU {other:.2f} s", flush=True)
    fresh = QueryCombiner(client, per_request)
    _, wall, cpu, other = measure(lambda: fresh.values_of(queries), stand_in_pid)
    run.baselines["http_client_combined"] = cpu / groups * 1e6
    print(f"  [{label}] baseline client alone, combined ({per_request} per request, {fresh.requests} requests): "
          f"wall {wall:.2f} s, CPU {cpu:.2f} s ({cpu / groups * 1e6:.1f} µs/query), stand-in CPU {other:.2f} s",
          flush=True)

    values = [value_of_query(q) for q in queries]
    inputs = []
    for name, group in loop.groups.items():
        assert group.track is not None
        mem = loop.memory[name]
        inputs.append((group.initial_desired, group.track.rules(group.bounds), list(mem.history), list(mem.changes)))

    def recommend_only() -> None:
        for (current, rules, history, changes), v in zip(inputs, values, strict=True):
            verdict = recommend(current, [v], rules, now, history, changes)
            history.append(Recommendation(now, verdict.raw))

    _, wall, cpu, _ = measure(recommend_only, stand_in_pid)
    run.baselines["recommend_pure"] = cpu / groups * 1e6
    print(f"  [{label}] baseline recommend alone: CPU {cpu:.3f} s ({cpu / groups * 1e6:.1f} µs/group)", flush=True)

    names = list(loop.groups)

    def store_only() -> None:
        for name in names:
            with store.transaction() as tx:
                tx.lock_group(name, 4)

    _, wall, cpu, _ = measure(store_only, stand_in_pid)
    run.baselines["store_tx_lock_group"] = cpu / groups * 1e6
    print(f"  [{label}] baseline store alone (a tx + lock_group per group): wall {wall:.2f} s, CPU {cpu:.2f} s "
          f"({cpu / groups * 1e6:.0f} µs/group)", flush=True)

    def store_chunked() -> None:
        store.group_states()
        for start in range(0, len(names), 100):
            with store.transaction() as tx:
                for name in names[start:start + 100]:
                    tx.lock_group(name, 4)

    _, wall, cpu, _ = measure(store_chunked, stand_in_pid)
    run.baselines["store_read_then_chunked_tx"] = cpu / groups * 1e6
    print(f"  [{label}] baseline store alone (one read of all groups, a tx + lock_group per 100 groups): wall "
          f"{wall:.2f} s, CPU {cpu:.2f} s ({cpu / groups * 1e6:.0f} µs/group)", flush=True)

    if profile:
        prof = cProfile.Profile()
        w0 = time.perf_counter()
        prof.enable()
        loop.run(now)
        prof.disable()
        print(f"  [{label}] profiled cycle: wall {time.perf_counter() - w0:.2f} s (cProfile overhead included)")
        run.profile = summarize_profile(prof, groups)
    client.close()
    store.close()
    return run


_PACKAGES = (("httpx", "httpx"), ("httpcore", "httpcore"), ("h11", "h11"), ("sqlalchemy", "sqlalchemy"),
             ("alembic", "alembic"), ("pydantic", "pydantic"), ("alertscaler/ingest", "alertscaler.ingest"),
             ("alertscaler/store", "alertscaler.store"), ("alertscaler/decide", "alertscaler.decide"),
             ("alertscaler/act", "alertscaler.act"), ("alertscaler", "alertscaler (other)"),
             ("json", "json"), ("logging", "logging"), ("socket", "socket"), ("ssl", "ssl"))


def _package(filename: str, func: str) -> str:
    if filename == "~":  # built-ins: method of sqlite3 cursors, socket calls, ...
        for key in ("sqlite3", "socket", "recv", "send", "select", "poll", "json", "datetime"):
            if key in func:
                return f"builtin {key}"
        return "builtin (other)"
    for needle, name in _PACKAGES:
        if f"/{needle}/" in filename or filename.endswith(f"/{needle}.py"):
            return name
    return "stdlib/other"


def summarize_profile(prof: cProfile.Profile, groups: int) -> dict[str, Any]:
    stats = pstats.Stats(prof, stream=io.StringIO())
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    per_package: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, tt, _ct, _callers) in raw.items():
        key = _package(filename, func)
        per_package[key] = per_package.get(key, 0.0) + tt
    top_own = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:15]
    top_cum = sorted(((k, v) for k, v in raw.items() if "alertscaler" in k[0] or "httpx/_client" in k[0]
                      or "sqlalchemy/engine/base" in k[0]), key=lambda kv: kv[1][3], reverse=True)[:15]

    def name(k: tuple[str, int, str]) -> str:
        f = k[0]
        for marker in ("site-packages/", "/src/", "lib/python"):
            if marker in f:
                f = f.split(marker, 1)[1]
                break
        return f"{f}:{k[1]}({k[2]})"

    summary: dict[str, Any] = {
        "total_profiled_s": round(total, 3),
        "by_package_pct": {k: round(v / total * 100, 1) for k, v in sorted(per_package.items(), key=lambda kv: -kv[1])},
        "top_own_time": [{"function": name(k), "calls_per_group": round(v[1] / groups, 2),
                          "own_pct": round(v[2] / total * 100, 1)} for k, v in top_own],
        "top_cumulative": [{"function": name(k), "calls_per_group": round(v[1] / groups, 2),
                            "cum_pct": round(v[3] / total * 100, 1)} for k, v in top_cum],
    }
    print("  profile, share of CPU by package:")
    for k, pct in summary["by_package_pct"].items():
        if pct >= 1.0:
            print(f"    {pct:5.1f} %  {k}")
    print("  profile, top functions by own time:")
    for row in summary["top_own_time"]:
        print(f"    {row['own_pct']:5.1f} %  {row['calls_per_group']:7.2f}/group  {row['function']}")
    print("  profile, top by cumulative time (alertscaler, httpx client, sqlalchemy execute):")
    for row in summary["top_cumulative"]:
        print(f"    {row['cum_pct']:5.1f} %  {row['calls_per_group']:7.2f}/group  {row['function']}")
    return summary


def memory_run(groups: int, cycles: int, tmp: Path, synchronous: str) -> dict[str, Any]:
    """tracemalloc: bytes per group of the policy, the loop's state after 1 and ``cycles`` cycles, and all
    traced memory (queries answered in-process: the loop's state does not depend on the transport)."""
    text = policy_text(groups)
    store = SqlStore(f"sqlite:///{tmp / 'memory.db'}", sqlite_synchronous=synchronous)
    store.migrate()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    policy = load_policy(text)
    gc.collect()
    after_policy, policy_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    loop = TrackingLoop(policy, store, value_of_query)
    gc.collect()
    after_loop = tracemalloc.get_traced_memory()[0]
    now = START
    per_cycle: list[int] = []
    state: list[int] = []
    for _ in range(cycles):
        loop.run(now)
        now += timedelta(seconds=INTERVAL)
        gc.collect()
        per_cycle.append(tracemalloc.get_traced_memory()[0])
        state.append(loop_state_bytes(loop))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    store.close()
    history = [len(m.history) for m in loop.memory.values()]
    result = {
        "groups": groups, "cycles": cycles,
        "traced_policy_per_group": round((after_policy - base) / groups),
        "traced_loop_built_per_group": round((after_loop - after_policy) / groups),
        "traced_after_1_cycle_per_group": round((per_cycle[0] - after_policy) / groups),
        f"traced_after_{cycles}_cycles_per_group": round((per_cycle[-1] - after_policy) / groups),
        "traced_total_incl_policy_per_group": round((per_cycle[-1] - base) / groups),
        "traced_peak_load_policy_per_group": round((policy_peak - base) / groups),
        "traced_peak_cycles_per_group": round((peak - base) / groups),
        "loop_state_after_1_cycle_per_group": round(state[0] / groups),
        f"loop_state_after_{cycles}_cycles_per_group": round(state[-1] / groups),
        "history_entries_per_group_max": max(history),
        "history_entries_per_group_mean": round(sum(history) / len(history), 1),
    }
    print(f"  tracemalloc, {groups} groups, {cycles} cycles (history ≤ {max(history)} recommendations/group):")
    for k, v in result.items():
        if k.endswith("per_group"):
            print(f"    {k}: {v} B")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=GOAL_GROUPS)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--memory-groups", type=int, default=None,
                        help="groups of the tracemalloc run (default: min(groups, 2000))")
    parser.add_argument("--memory-cycles", type=int, default=21,
                        help="cycles of the tracemalloc run (default 21: the 300 s stabilisation window full)")
    parser.add_argument("--sqlite-synchronous", choices=("full", "normal"), default="full")
    parser.add_argument("--per-request", type=int, default=100,
                        help="queries per request (prometheus.queries_per_request; 1: one request per query)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--log-info", action="store_true",
                        help="log at INFO to /dev/null, as the service does (default: logging unconfigured)")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the stand-in's own process
    args = parser.parse_args()
    if args.serve:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve())
        return 0

    if args.log_info:
        logging.basicConfig(level=logging.INFO, stream=open(os.devnull, "w"),  # noqa: SIM115
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    n = args.groups
    print(f"target tracking: {n} groups, {args.cycles} cycles of {INTERVAL:g} s; python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, SQLite synchronous={args.sqlite_synchronous}, "
          f"logging {'INFO to /dev/null' if args.log_info else 'unconfigured'}", flush=True)
    rss_start = rss_bytes()
    text = policy_text(n)
    w0, c0 = time.perf_counter(), time.process_time()
    policy = load_policy(text)
    print(f"  load_policy: wall {time.perf_counter() - w0:.2f} s, CPU {time.process_time() - c0:.2f} s", flush=True)
    rss_policy = rss_bytes()

    stores: list[tuple[str, str | None]] = [("sqlite", None)]
    if os.environ.get("ALERTSCALER_TEST_PG_URL"):
        stores.append(("postgresql", os.environ["ALERTSCALER_TEST_PG_URL"]))
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp_dir, stand_in() as (prom_url, pid):
        tmp = Path(tmp_dir)
        for label, url in stores:
            if url is None:
                url = f"sqlite:///{tmp / 'state.db'}"
            try:
                with contextlib.ExitStack() as stack:
                    if label == "postgresql":
                        url = stack.enter_context(fresh_schema(url, "bench"))
                    runs.append(run_store(label, url, policy, n, args.cycles, prom_url, pid, not args.no_profile,
                                          rss_start, rss_policy, args.sqlite_synchronous, args.per_request))
            except Exception as exc:  # a benchmark reports, it does not fail (e.g. PostgreSQL unreachable)
                print(f"  [{label}] failed: {type(exc).__name__}: {exc}", flush=True)
            if label == "sqlite":
                db = tmp / "state.db"
                size = sum(p.stat().st_size for p in tmp.glob("state.db*"))
                print(f"  [sqlite] database files after the run: {size / n:.0f} B/group", flush=True)
                if runs and db.exists():
                    runs[-1].memory["sqlite_files_per_group"] = round(size / n)
        mem = memory_run(args.memory_groups or min(n, 2000), args.memory_cycles, tmp, args.sqlite_synchronous)

    report: dict[str, Any] = {"groups": n, "cycles": args.cycles, "python": platform.python_version(),
                              "per_request": args.per_request,
                              "cpus": os.cpu_count(), "sqlite_synchronous": args.sqlite_synchronous,
                              "log_info": args.log_info,
                              "memory_tracemalloc": mem, "runs": []}
    print("\nsummary")
    for run in runs:
        steady = run.cycles[1:] or run.cycles
        cpu_us = sum(c.cpu_s for c in steady) / sum(c.evaluated for c in steady) * 1e6
        first_us = run.cycles[0].cpu_s / run.cycles[0].evaluated * 1e6
        worst_us = max(c.cpu_s / c.evaluated for c in run.cycles) * 1e6
        base = run.baselines
        parts = base["http_client_combined"] + base["recommend_pure"] + base["store_read_then_chunked_tx"]
        fits = worst_us * GOAL_GROUPS / 1e6 <= INTERVAL
        figures = {
            "store": run.store,
            "cycles": [c.as_dict(n) for c in run.cycles],
            "steady_cpu_us_per_group": round(cpu_us, 1),
            "steady_groups_per_cpu_s": round(1e6 / cpu_us),
            "first_cycle_cpu_us_per_group": round(first_us, 1),
            "worst_cycle_cpu_s_for_10000": round(worst_us * GOAL_GROUPS / 1e6, 2),
            "goal_10000_per_15s_on_one_core": fits,
            "baselines_cpu_us_per_group": {k: round(v, 1) for k, v in base.items()},
            "ratio_to_http_client": round(cpu_us / base["http_client_value_of"], 2),
            "requests_per_cycle": run.requests_per_cycle,
            "ratio_to_loop_one_request_per_query": (round(cpu_us / base["loop_one_request_per_query"], 3)
                                                     if "loop_one_request_per_query" in base else None),
            "ratio_to_recommend": round(cpu_us / base["recommend_pure"], 1),
            "ratio_to_sum_of_baselines": round(cpu_us / parts, 2),
            "memory": run.memory,
            "profile": run.profile,
        }
        report["runs"].append(figures)
        print(f"  [{run.store}] steady state: {cpu_us:.0f} CPU µs/group = {1e6 / cpu_us:.0f} groups per CPU second; "
              f"first cycle {first_us:.0f} µs/group; worst cycle → {worst_us * GOAL_GROUPS / 1e6:.1f} CPU s for "
              f"{GOAL_GROUPS} groups (budget {INTERVAL:g} s): goal {'MET' if fits else 'NOT met'}")
        print(f"  [{run.store}] baselines (CPU µs/group): client value_of {base['http_client_value_of']:.0f}, "
              f"combined {base['http_client_combined']:.1f}, recommend {base['recommend_pure']:.1f}, store "
              f"tx+lock_group {base['store_tx_lock_group']:.0f}, read + chunked tx "
              f"{base['store_read_then_chunked_tx']:.0f}; loop = {cpu_us / parts:.2f}x the sum (combined, "
              f"recommend, read + chunked); {run.requests_per_cycle:.0f} requests per cycle")
        if "loop_one_request_per_query" in base:
            print(f"  [{run.store}] the loop with one request per query: "
                  f"{base['loop_one_request_per_query']:.0f} µs/group; combined: "
                  f"{cpu_us / base['loop_one_request_per_query']:.3f}x that")
        print(f"  [{run.store}] memory (RSS delta / group): policy {run.memory['rss_per_group_policy']} B, "
              f"loop built {run.memory['rss_per_group_loop_built']} B, after {len(run.cycles)} cycles "
              f"{run.memory['rss_per_group_after_cycles']} B (store caches included); loop state "
              f"{run.memory['loop_state_per_group']} B")
    key = f"traced_after_{args.memory_cycles}_cycles_per_group"
    state_key = f"loop_state_after_{args.memory_cycles}_cycles_per_group"
    print(f"  memory (tracemalloc, steady state after {args.memory_cycles} cycles): loop state "
          f"{mem[state_key]} B/group, all traced since the policy {mem[key]} B/group, with the policy "
          f"{mem['traced_total_incl_policy_per_group']} B/group (goal ≤ {GOAL_BYTES} B): goal "
          f"{'MET' if mem['traced_total_incl_policy_per_group'] <= GOAL_BYTES else 'NOT met'}")
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(f"  elapsed {report['elapsed_s']} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
