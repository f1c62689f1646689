"""/metrics as the Prometheus ecosystem expects it (issue 17 item 3): parsed with prometheus_client's own
parser: process_* and build info present, no ``_created`` series, every per-group series labelled
``alertscaler_group`` (the scrape targets' label), bounds gauges, buckets that fit what they measure."""

from __future__ import annotations

import platform

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from alertscaler import __version__
from alertscaler.act.metrics import ACTION_BUCKETS, TRACKING_BUCKETS, WEBHOOK_BUCKETS
from tests.api.conftest import Harness
from tests.support.webhooks import alert, body


async def scraped(harness: Harness) -> list[Sample]:
    high = body(alert("HighLoad", service="web"))
    await harness.post_alerts(high)
    await harness.engine.run_once()
    await harness.engine.refresh_gauges()
    response = await harness.client.get("/metrics")
    assert response.status_code == 200
    return [s for family in text_string_to_metric_families(response.text) for s in family.samples]


async def test_process_and_build_info(harness: Harness) -> None:
    samples = await scraped(harness)
    names = {s.name for s in samples}
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_start_time_seconds", "python_info"):
        assert name in names, name
    (info,) = [s for s in samples if s.name == "alertscaler_build_info"]
    assert info.value == 1
    assert info.labels == {"version": __version__, "python": platform.python_version(),
                           "implementation": platform.python_implementation()}


async def test_no_created_series(harness: Harness) -> None:
    assert [s.name for s in await scraped(harness) if s.name.endswith("_created")] == []


async def test_group_series_use_the_targets_label(harness: Harness) -> None:
    samples = await scraped(harness)
    grouped = [s for s in samples if s.name.startswith("alertscaler_") and "group" in "".join(s.labels)]
    assert grouped
    assert [s for s in grouped if "group" in s.labels] == []
    assert {s.name for s in grouped} >= {"alertscaler_group_desired", "alertscaler_group_current",
                                         "alertscaler_group_min_size", "alertscaler_group_max_size",
                                         "alertscaler_decisions_total", "alertscaler_actions_total",
                                         "alertscaler_action_duration_seconds_bucket"}
    value = {(s.name, s.labels.get("alertscaler_group")): s.value for s in samples}
    # the harness's policy: web 1..4, batch; one alert scaled web to 2
    assert value[("alertscaler_group_min_size", "web")] == 1
    assert value[("alertscaler_group_max_size", "web")] == 4
    assert value[("alertscaler_group_desired", "web")] == 2


@pytest.mark.parametrize(
    ("histogram", "buckets", "smallest", "largest"),
    [
        ("alertscaler_webhook_duration_seconds", WEBHOOK_BUCKETS, 0.001, 2.5),   # a durable write: ms
        ("alertscaler_tracking_cycle_seconds", TRACKING_BUCKETS, 0.01, 30),      # queries + records
        ("alertscaler_action_duration_seconds", ACTION_BUCKETS, 0.05, 600),      # exec ms .. Heat minutes
    ],
    ids=["webhook-ack", "tracking-cycle", "provider-call"],
)
async def test_buckets_fit_what_they_measure(harness: Harness, histogram: str, buckets: tuple[float, ...],
                                             smallest: float, largest: float) -> None:
    assert min(buckets) <= smallest and max(buckets) >= largest
    assert list(buckets) == sorted(buckets)
    samples = await scraped(harness)
    if histogram != "alertscaler_tracking_cycle_seconds":  # the harness tracks nothing
        les = sorted({float(s.labels["le"]) for s in samples if s.name == f"{histogram}_bucket"})
        assert les == [*buckets, float("inf")]


async def test_webhook_latency_by_status(harness: Harness) -> None:
    samples = await scraped(harness)
    counts = {s.labels["status"]: s.value for s in samples if s.name == "alertscaler_webhook_duration_seconds_count"}
    assert counts == {"200": 1}
