"""The bundled workload: fixed capacity (``concurrency / service_time``), a bounded queue, metrics, draining."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from alertscaler.workload import WorkloadConfig, WorkloadServer

SRC = str(Path(__file__).resolve().parents[2] / "src")


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


async def start(config: WorkloadConfig) -> tuple[WorkloadServer, str]:
    server = WorkloadServer(config, "127.0.0.1", 0)
    port = await server.start()
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(trust_env=False, timeout=10, limits=limits) as c:
        yield c


async def test_throughput_is_capped_at_capacity_and_excess_queues(client: httpx.AsyncClient) -> None:
    config = WorkloadConfig(service_time=0.05, concurrency=2, queue_limit=64)  # 40 req/s
    server, base = await start(config)
    clients, duration = 6, 1.5
    done: list[float] = []
    queue_seen: list[float] = []
    t0 = time.monotonic()

    async def load() -> None:
        while time.monotonic() - t0 < duration:
            response = await client.get(f"{base}/work")
            assert response.status_code == 200
            done.append(time.monotonic())

    async def watch() -> None:
        await asyncio.sleep(0.5)
        text = (await client.get(f"{base}/metrics")).text
        queue_seen.append(metric(text, "workload_queue_length"))

    try:
        await asyncio.gather(*(load() for _ in range(clients)), watch())
        metrics = (await client.get(f"{base}/metrics")).text
    finally:
        await server.shutdown(1)

    served = [t for t in done if t - t0 <= duration]
    rps = len(served) / duration
    capacity = config.capacity_rps
    # At most every slot busy the whole time (+ one request per slot at the edge); at least 60 % of that.
    assert 0.6 * capacity <= rps <= capacity + config.concurrency / duration, (rps, capacity)
    assert queue_seen and queue_seen[0] >= 1, "clients beyond the slots must queue"
    assert metric(metrics, "workload_capacity_rps") == capacity
    assert metric(metrics, "workload_utilisation") > 0.5
    assert metric(metrics, 'workload_requests_total{code="200"}') == len(done)
    assert metric(metrics, "workload_request_duration_seconds_count") == len(done)


async def test_beyond_the_queue_limit_requests_get_503(client: httpx.AsyncClient) -> None:
    config = WorkloadConfig(service_time=0.3, concurrency=1, queue_limit=2)
    server, base = await start(config)
    try:
        responses = await asyncio.gather(*(client.get(f"{base}/work") for _ in range(6)))
        metrics = (await client.get(f"{base}/metrics")).text
    finally:
        await server.shutdown(1)
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 200, 503, 503, 503]  # 1 in the slot + 2 queued; the rest rejected
    assert metric(metrics, 'workload_requests_total{code="503"}') == 3
    assert metric(metrics, "workload_in_flight") == 0
    assert metric(metrics, "workload_queue_length") == 0


async def test_idle_utilisation_is_zero_and_endpoints(client: httpx.AsyncClient) -> None:
    server, base = await start(WorkloadConfig())
    try:
        metrics = (await client.get(f"{base}/metrics?x=1")).text
        health = await client.get(f"{base}/healthz")
        missing = await client.get(f"{base}/nope")
        wrong_method = await client.delete(f"{base}/work")
        head = await client.head(f"{base}/")
    finally:
        await server.shutdown(1)
    assert (health.status_code, health.text) == (200, "ok\n")
    assert (missing.status_code, wrong_method.status_code, head.status_code) == (404, 405, 200)
    assert head.content == b""
    assert metric(metrics, "workload_utilisation") == pytest.approx(0.0, abs=0.05)
    assert metric(metrics, "workload_capacity_rps") == 80.0


async def test_shutdown_finishes_in_flight_requests(client: httpx.AsyncClient) -> None:
    server, base = await start(WorkloadConfig(service_time=0.3, concurrency=1))
    request = asyncio.create_task(client.get(f"{base}/work"))
    async with asyncio.timeout(5):  # wait until the server holds the request, however slow the machine
        while server.workload.in_flight == 0:
            await asyncio.sleep(0.002)
    await server.shutdown(drain_timeout=2)
    response = await request
    assert response.status_code == 200
    with pytest.raises(httpx.ConnectError):
        await client.get(f"{base}/healthz", headers={"Connection": "close"})


@pytest.mark.integration
def test_cli_serves_and_exits_0_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)}
    args = ["--port", "0", "--concurrency", "2", "--service-time", "25ms"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "alertscaler.workload", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+) .*capacity=80 req/s", line)
        assert match, line
        response = httpx.get(f"http://127.0.0.1:{match.group(1)}/work", trust_env=False)
        assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stderr is not None
        errors = proc.stderr.read()
        assert "Traceback" not in errors and "Exception in callback" not in errors, errors
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
