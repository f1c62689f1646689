"""Fixtures of the fault suite: a run directory whose processes are all killed afterwards, even on failure,
and a fresh PostgreSQL schema per test when ``ALERTSCALER_TEST_PG_URL`` is set."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.fault.harness import Run, run_dir
from tests.support.pg_schemas import fresh_schema

PG_URL = os.environ.get("ALERTSCALER_TEST_PG_URL")


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    with ExitStack() as stack:
        def make(groups: list[str], **kw: Any) -> Run:
            return stack.enter_context(run_dir(tmp_path, groups, **kw))
        yield make


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("ALERTSCALER_TEST_PG_URL not set")
    with fresh_schema(PG_URL, prefix="fault") as url:
        yield url


@pytest.fixture
def pg_make_run(pg_url: str, make_run: Callable[..., Run]) -> Callable[..., Run]:
    """``make_run`` on a fresh schema; the replicas are killed (make_run's teardown) before the schema is dropped."""
    def make(groups: list[str], **kw: Any) -> Run:
        return make_run(groups, store_url=pg_url, **kw)
    return make
