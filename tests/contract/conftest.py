"""Fixtures for the StateStore contract suite: a migrated ``SqlStore`` per back end, and value factories.

``sqlite`` always runs, on a file in ``tmp_path``. ``postgresql`` runs when ``ALERTSCALER_TEST_PG_URL`` is
set (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``); each test gets its own schema, dropped
afterwards, so runs can repeat and overlap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertscaler.model.alerts import Alert, AlertStatus, Notification
from alertscaler.store.sql import SqlStore, sqlite_url
from tests.support.pg_schemas import fresh_schema

PG_URL_ENV = "ALERTSCALER_TEST_PG_URL"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
RECEIVER = "alertscaler"
GROUP_KEY = '{}:{alertname="HighLoad"}'


def make_alert(
    fingerprint: str = "fp-1",
    *,
    status: AlertStatus = AlertStatus.FIRING,
    starts_at: datetime = T0,
    labels: dict[str, str] | None = None,
) -> Alert:
    return Alert(
        status=status,
        labels=labels if labels is not None else {"alertname": "HighLoad", "instance": fingerprint},
        annotations={"summary": "load is high"},
        starts_at=starts_at,
        ends_at=None if status is AlertStatus.FIRING else starts_at + timedelta(minutes=5),
        generator_url="http://prometheus:9090/graph?g0.expr=up",
        fingerprint=fingerprint,
    )


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def make_notification(
    *alerts: Alert,
    receiver: str = RECEIVER,
    group_key: str = GROUP_KEY,
    external_url: str = "http://alertmanager-0:9093",
) -> Notification:
    """A notification as ``ingest`` would build it, with ``raw`` shaped like an Alertmanager v4 body."""
    alerts = alerts or (make_alert(),)
    status = AlertStatus.FIRING if any(a.firing for a in alerts) else AlertStatus.RESOLVED
    common = dict(alerts[0].labels)
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a.labels.get(k) == v}
    group_labels = {"alertname": common.get("alertname", "")}
    raw = {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status.value,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": external_url,
        "alerts": [
            {
                "status": a.status.value,
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": _rfc3339(a.starts_at),
                "endsAt": _rfc3339(a.ends_at) if a.ends_at else "0001-01-01T00:00:00Z",
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            }
            for a in alerts
        ],
    }
    return Notification(
        receiver=receiver, status=status, alerts=tuple(alerts), group_labels=group_labels,
        common_labels=common, common_annotations={}, external_url=external_url, group_key=group_key,
        truncated_alerts=0, raw=raw,
    )


@pytest.fixture
def alert() -> Callable[..., Alert]:
    """``alert("fp-1", status=..., starts_at=..., labels=...)`` → an ``Alert`` (defaults: firing at T0)."""
    return make_alert


@pytest.fixture
def notification() -> Callable[..., Notification]:
    """``notification(*alerts, receiver=..., group_key=..., external_url=...)`` → a ``Notification``."""
    return make_notification


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database (SQLite file, or a fresh PostgreSQL schema)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "state" / "alertscaler.db")
        return
    base = os.environ.get(PG_URL_ENV)
    if not base:
        pytest.skip(f"{PG_URL_ENV} not set")
    with fresh_schema(base) as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = SqlStore(db_url)
    s.migrate()
    try:
        yield s
    finally:
        s.close()
