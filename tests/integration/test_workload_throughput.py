"""The bundled workload's throughput against real time: capped at its capacity (``concurrency /
service_time``), the excess queued. Moved out of tests/unit: it measures requests served over 1.5 s of wall
clock, so it needs a real server and a machine that is not starved (the unit tests pass time in).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from alertscaler.workload import WorkloadConfig
from tests.support.workload import client as client  # the fixture
from tests.support.workload import metric, start

pytestmark = pytest.mark.integration


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
