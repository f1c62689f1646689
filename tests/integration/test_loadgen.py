"""``alertscaler.demo.loadgen``: the pure helpers, then the generator against real workload processes behind a
fake ``/api/v1/targets`` endpoint: an even spread, targets that come and go, open-loop bounds."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import random
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from alertscaler.demo.load_stats import percentile
from alertscaler.demo.loadgen import LoadGenerator
from alertscaler.demo.preparing import free_port, python_env
from alertscaler.demo.requesting import HttpPool
from alertscaler.demo.scheduling import Balancer, even_arrivals, parse_targets, poisson_arrivals
from alertscaler.demo.stack import Stack

integration = pytest.mark.integration


# -- pure helpers ----------------------------------------------------------------------------------------------


def member(address: str, state: str = "running", group: str = "web") -> dict[str, Any]:
    return {"targets": [address], "labels": {"alertscaler_group": group, "alertscaler_member": f"m-{address}",
                                              "alertscaler_provider": "local", "alertscaler_state": state}}  # fmt: skip


@pytest.mark.parametrize(
    ("data", "group", "expected"),
    [
        ([member("a:1"), member("b:2")], None, ["a:1", "b:2"]),
        ([member("a:1", "starting"), member("b:2"), member("c:3", "failed")], None, ["b:2"]),
        ([member("a:1"), member("b:2", group="db")], "web", ["a:1"]),
        ([member("a:1"), member("a:1")], None, ["a:1"]),
        ([{"targets": "a:1", "labels": {"alertscaler_state": "running"}}, "junk", {"labels": None}], None, []),
        ({"not": "a list"}, None, []),
        ([], None, []),
    ],
)
def test_parse_targets(data: Any, group: str | None, expected: list[str]) -> None:
    assert parse_targets(data, group) == expected


@pytest.mark.parametrize(
    ("rate", "ticks", "expected_counts"),
    [
        (20.0, 5, [2, 2, 2, 2, 2]),  # 2 per 100 ms tick
        (25.0, 4, [2, 3, 2, 3]),  # the half request carries over
        (5.0, 4, [0, 1, 0, 1]),
        (0.0, 3, [0, 0, 0]),
    ],
)
def test_even_arrivals_carry_fractions_over(rate: float, ticks: int, expected_counts: list[int]) -> None:
    carry, counts, times = 0.0, [], []
    for k in range(ticks):
        t0, t1 = k * 0.1, (k + 1) * 0.1
        got, carry = even_arrivals(rate, t0, t1, carry)
        assert all(t0 <= t <= t1 for t in got)
        counts.append(len(got))
        times += got
    assert counts == expected_counts
    if rate > 0 and len(times) > 1:  # evenly spaced across tick boundaries
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) == pytest.approx(min(gaps)) == pytest.approx(1 / rate)


def test_poisson_arrivals_are_seeded_and_have_the_right_mean() -> None:
    first = poisson_arrivals(200.0, 0.0, 50.0, random.Random(7))
    assert first == poisson_arrivals(200.0, 0.0, 50.0, random.Random(7))
    assert len(first) == pytest.approx(10_000, rel=0.05)
    assert first == sorted(first) and all(0 <= t < 50 for t in first)
    assert poisson_arrivals(0.0, 0.0, 1.0, random.Random(1)) == []


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 0.5, None), ([3.0], 0.95, 3.0), ([1.0, 2.0, 3.0], 0.5, 2.0), ([4.0, 1.0, 3.0, 2.0], 0.5, 2.5),
     ([float(i) for i in range(101)], 0.95, 95.0)],
)  # fmt: skip
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_round_robin_spreads_evenly_and_follows_updates() -> None:
    balancer = Balancer()
    assert balancer.pick() is None
    balancer.update(["a", "b", "c"])
    assert [balancer.pick() for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]
    balancer.update(["a", "c"])
    picks = [balancer.pick() for _ in range(4)]
    assert sorted(p or "" for p in picks) == ["a", "a", "c", "c"]


def test_least_outstanding_prefers_idle_targets_and_breaks_ties_round_robin() -> None:
    balancer = Balancer("least_outstanding")
    balancer.update(["a", "b", "c"])
    assert [balancer.pick({"a": 3, "b": 1, "c": 2}) for _ in range(3)] == ["b", "b", "b"]
    assert [balancer.pick({}) for _ in range(3)] == ["a", "b", "c"]
    with pytest.raises(ValueError):
        Balancer("random")  # type: ignore[arg-type]


# -- the HTTP client ---------------------------------------------------------------------------------------------


class ScriptedServer:
    """An asyncio server answering each request with ``answer(n)`` -> (bytes, close after it)."""

    def __init__(self, answer: Callable[[int], tuple[bytes, bool]]) -> None:
        self.answer = answer
        self.requests = 0
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.address = ""

    async def start(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.address = f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"GET /work HTTP/1.1\r\nHost: 127.0.0.1:")
                data, close = self.answer(self.requests)
                self.requests += 1
                writer.write(data)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[Callable[[int], tuple[bytes, bool]]], Any]]:
    servers: list[ScriptedServer] = []

    async def make(answer: Callable[[int], tuple[bytes, bool]]) -> ScriptedServer:
        server = await ScriptedServer(answer).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        assert server.server is not None
        server.server.close()


OK_KEEP = (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", False)


@integration
@pytest.mark.parametrize(
    ("answer", "status", "connections"),
    [
        (OK_KEEP, 200, 1),  # keep-alive: one connection for all
        ((b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", False), 503, 1),
        ((b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n"
          b"Trailer: 1\r\n\r\n", False), 201, 1),
        ((b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", False), 202, 1),
        ((b"HTTP/1.0 200 OK\r\n\r\nuntil the end", True), 200, 3),  # close-delimited: a connection each
        ((b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", True), 200, 3),
        ((b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", False), 200, 1),
    ],
)  # fmt: skip
async def test_http_pool_reads_every_kind_of_answer(
    scripted: Any, answer: tuple[bytes, bool], status: int, connections: int
) -> None:
    server = await scripted(lambda n: answer)
    pool = HttpPool(server.address)
    assert [await pool.get("/work") for _ in range(3)] == [status] * 3
    assert server.connections == connections
    pool.close()


@integration
async def test_http_pool_retries_a_keep_alive_connection_the_server_closed(scripted: Any) -> None:
    server = await scripted(lambda n: (OK_KEEP[0], True))  # says keep-alive, then closes
    pool = HttpPool(server.address)
    for _ in range(3):
        assert await pool.get("/work") == 200
        await asyncio.sleep(0.05)  # the server's close has arrived
    assert server.connections == 3 and server.requests == 3
    pool.close()


@integration
async def test_http_pool_reports_garbage_and_refusals_as_connection_errors(scripted: Any) -> None:
    server = await scripted(lambda n: (b"SSH-2.0-OpenSSH\r\n\r\n", True))
    with pytest.raises(ConnectionError, match="malformed"):
        await HttpPool(server.address).get("/work")
    with pytest.raises(ConnectionError):
        await HttpPool(f"127.0.0.1:{free_port()}").get("/work")
    with pytest.raises(ValueError):
        HttpPool("no-port")


# -- against real workload processes ------------------------------------------------------------------------------


class TargetsEndpoint:
    """A fake alertscaler ``/api/v1/targets`` (http.server in a thread) whose members a test changes."""

    def __init__(self) -> None:
        self.members: list[dict[str, Any]] = []
        self.requests = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests += 1
                body = json.dumps(endpoint.members).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/targets"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, *members: dict[str, Any]) -> None:
        self.members = list(members)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[TargetsEndpoint]:
    ep = TargetsEndpoint()
    yield ep
    ep.close()


@pytest.fixture
def workloads(tmp_path: Path) -> Iterator[list[str]]:
    """Two real ``python -m alertscaler.workload`` processes (80 req/s each); their addresses."""
    with Stack(tmp_path, watchdog=False, handle_signals=False) as stack:
        addresses = []
        for name in ("w1", "w2"):
            port = free_port()
            stack.start(name, [sys.executable, "-m", "alertscaler.workload", "--port", str(port)],
                        ready_url=f"http://127.0.0.1:{port}/healthz", env=python_env())  # fmt: skip
            addresses.append(f"127.0.0.1:{port}")
        yield addresses


@integration
async def test_requests_are_spread_evenly_over_the_live_targets(
    endpoint: TargetsEndpoint, workloads: list[str]
) -> None:
    a, b = workloads
    endpoint.set(member(a), member(b), member(f"127.0.0.1:{free_port()}", "starting"))  # not yet running
    gen = LoadGenerator(lambda t: 100.0, targets_url=endpoint.url, poll_interval=0.2)
    final = await gen.run(duration=3.0)
    totals = final.totals
    assert totals.sent == pytest.approx(300, abs=3)
    assert totals.ok == totals.sent and totals.errors == 0 and totals.dropped == totals.no_target == 0
    assert set(final.per_target) == {a, b}
    for address in (a, b):
        assert 0.35 <= final.per_target[address] / totals.sent <= 0.65
    history = gen.history()
    assert [s.second for s in history] == [0, 1, 2]
    for second in history:
        assert second.target_rate == 100.0
        assert second.counts.sent == pytest.approx(100, rel=0.15)  # by send time: a late loop shifts a few
        assert second.p50 is not None and second.p95 is not None
        assert 0.04 <= second.p50 <= second.p95 < 1.0  # service time 50 ms, no queueing
    assert final.outstanding == 0
    assert endpoint.requests >= 10


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@integration
async def test_a_target_that_disappears_stops_receiving_and_a_new_one_starts(
    endpoint: TargetsEndpoint, workloads: list[str]
) -> None:
    a, b = workloads
    endpoint.set(member(a))
    gen = LoadGenerator(lambda t: 60.0, targets_url=endpoint.url, poll_interval=0.1)
    run = asyncio.create_task(gen.run(None))
    try:
        await until(lambda: gen.stats().per_target.get(a, 0) >= 30)
        assert set(gen.stats().per_target) == {a}
        endpoint.set(member(a), member(b))  # scaled out
        await until(lambda: gen.stats().per_target.get(b, 0) >= 30)
        both = gen.stats()
        assert both.targets == (a, b)
        assert both.per_target[a] >= 30 + 20  # a kept its share meanwhile
        endpoint.set(member(b))  # a is gone (scaled in)
        await until(lambda: gen.targets == (b,))  # the next poll
        removed = gen.stats()
        await until(lambda: gen.elapsed() > math.ceil(removed.elapsed) + 1.05)  # a whole second after
    finally:
        gen.stop()
        final = await run
    assert final.per_target[a] == removed.per_target[a]  # no request since the poll that removed it
    assert final.per_target[b] > removed.per_target[b] + 50
    assert final.totals.errors == 0 and final.totals.ok == final.totals.sent
    after = [s for s in gen.history() if s.second >= math.ceil(removed.elapsed)]
    assert after and all(set(s.per_target) == {b} for s in after)


@integration
async def test_outstanding_requests_are_bounded_without_slowing_the_schedule(tmp_path: Path) -> None:
    # A slow, small instance: 1 slot of 0.5 s, a queue of 100. At 50 req/s the bound of 5 is reached at once.
    port = free_port()
    with Stack(tmp_path, watchdog=False, handle_signals=False) as stack:
        stack.start("slow", [sys.executable, "-m", "alertscaler.workload", "--port", str(port), "--service-time",
                             "0.5", "--concurrency", "1", "--queue-limit", "100", "--drain-timeout", "0.2"],
                    ready_url=f"http://127.0.0.1:{port}/healthz", env=python_env())  # fmt: skip
        gen = LoadGenerator(lambda t: 50.0, targets=[f"127.0.0.1:{port}"], max_outstanding=5, drain_timeout=0.1)
        final = await gen.run(duration=2.0)
    totals = final.totals
    assert totals.sent + totals.dropped == pytest.approx(100, abs=2)  # every arrival happened on time
    assert totals.sent <= totals.ok + totals.errors + 5  # never more than 5 in flight
    assert totals.dropped > 80
    assert final.elapsed < 3.5  # 2 s of schedule + a 0.1 s drain: the schedule never waited


@integration
async def test_overload_is_counted_and_no_target_is_counted(tmp_path: Path) -> None:
    port = free_port()
    with Stack(tmp_path, watchdog=False, handle_signals=False) as stack:
        stack.start("tiny", [sys.executable, "-m", "alertscaler.workload", "--port", str(port), "--service-time",
                             "0.2", "--concurrency", "1", "--queue-limit", "0"],
                    ready_url=f"http://127.0.0.1:{port}/healthz", env=python_env())  # fmt: skip
        gen = LoadGenerator(lambda t: 40.0, targets=[f"127.0.0.1:{port}"])
        final = await gen.run(duration=1.0)
        assert final.totals.overloaded > 20  # 5 req/s capacity, no queue: most get 503
        assert final.totals.ok >= 3
        assert final.totals.errors == final.totals.overloaded

    nowhere = LoadGenerator(lambda t: 20.0)
    result = await nowhere.run(duration=0.5)
    assert result.totals.sent == 0 and result.totals.no_target == pytest.approx(10, abs=1)


@integration
async def test_stop_ends_an_unbounded_run_and_connection_errors_are_counted() -> None:
    gen = LoadGenerator(lambda t: 20.0, targets=[f"127.0.0.1:{free_port()}"])  # nobody listens there
    run = asyncio.create_task(gen.run(None))
    await asyncio.sleep(0.6)
    threading.Thread(target=gen.stop).start()  # from another thread, as a UI would
    final = await asyncio.wait_for(run, 5)
    assert final.totals.connection_errors >= 8
    assert final.totals.ok == 0
    with pytest.raises(RuntimeError, match="runs once"):
        await gen.run(1.0)


@integration
async def test_targets_come_from_a_real_alertscaler_with_the_local_provider(tmp_path: Path) -> None:
    with Stack(tmp_path, watchdog=False, handle_signals=False) as stack:
        policy = tmp_path / "policy.yml"
        policy.write_text(f"""
server:
  listen: 127.0.0.1:{stack.alertscaler_port}
  auth: {{bearer_token: sekret-demo-token, protect_reads: true}}
  state_dir: ./state
groups:
  web:
    provider: {{type: local}}
    min_size: 1
    max_size: 3
    desired: 2
""")
        await asyncio.to_thread(stack.start_alertscaler, policy)
        gen = LoadGenerator(
            lambda t: 50.0,
            targets_url=f"{stack.alertscaler_url}/api/v1/targets",
            group="web",
            targets_headers={"Authorization": "Bearer sekret-demo-token"},
            poll_interval=0.2,
        )
        run = asyncio.create_task(gen.run(None))
        try:
            await until(lambda: len(gen.targets) == 2, timeout=30)
            first = gen.stats().totals.sent
            await until(lambda: gen.stats().totals.sent >= first + 100)
        finally:
            gen.stop()
            final = await run
    assert final.discovery_errors == 0
    assert set(final.per_target) == set(final.targets) and len(final.targets) == 2
    assert final.totals.ok == final.totals.sent
