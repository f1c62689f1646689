"""Helpers for tests of the bundled workload (``alertscaler.workload``): start one on a free port, read a metric,
and an HTTP client fixture with enough connections. Used by tests/unit/test_workload.py and
tests/integration/test_workload_throughput.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from alertscaler.workload import WorkloadConfig, WorkloadServer


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
