"""The bundled workload: fixed capacity (``concurrency / service_time``), a bounded queue, metrics, draining."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from alertscaler.workload import WorkloadConfig
from tests.support.workload import client as client  # the fixture
from tests.support.workload import metric, start

SRC = str(Path(__file__).resolve().parents[2] / "src")




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
