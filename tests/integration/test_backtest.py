"""``alertscaler backtest`` against a REAL Prometheus (Debian's /usr/bin/prometheus).

The fixture starts Prometheus on a free port, scraping every second a small exporter of the test
(``tests.e2e.harness.ControlExporter``) whose counter ``control_value{name="requests"}`` a background thread
raises at exactly ``RATE`` per second. Once ~12 s of ``irate(...[5s])`` exist (``rate`` would extrapolate low at
the series' start), the command replays the last minute at a 1 s step: the demand it replays must be the one
produced (``RATE`` req/s, 5 instances of 40 req/s), so the oracle's instance-hours are 5 x the replayed duration.
Bad PromQL exits 1 with Prometheus' own message. About 20 s in all.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alertscaler.cli import EXIT_NO, EXIT_OK, main
from alertscaler.demo.stack import Stack
from alertscaler.prometheus.client import PrometheusClient
from alertscaler.sim.backtest import fetch_trace
from tests.e2e.harness import ControlExporter
from tests.support.waiting import wait_for

PROMETHEUS = "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else shutil.which("prometheus")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,  # the module's Prometheus needs ~18 s of scraped data before the first test
    pytest.mark.skipif(PROMETHEUS is None, reason="needs /usr/bin/prometheus (Debian package prometheus: "
                                                  "apt-get install -y prometheus; .ci/run installs it)"),
]

RATE = 190.0  # requests/s: ceil(190 / 40) = 5 instances, with ±10 req/s of slack either way
CAPACITY = 40.0
NEEDED = 5
QUERY = 'irate(control_value{name="requests"}[5s])'  # the last two scrapes: no extrapolation at the start
POINTS = 12  # seconds of demand to wait for
DATA_TIMEOUT = 30.0


@dataclass
class Prom:
    url: str
    exporter: ControlExporter


class Counter:
    """Raises ``control_value{name="requests"}`` at ``RATE`` per second (updated every 10 ms) until stopped."""

    def __init__(self, exporter: ControlExporter) -> None:
        self.exporter = exporter
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self.stopped.wait(0.01):
            self.exporter.set("requests", RATE * (time.monotonic() - t0))

    def __enter__(self) -> Counter:
        self.exporter.set("requests", 0.0)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    tmp = tmp_path_factory.mktemp("backtest")
    exporter = ControlExporter()
    config = tmp / "prometheus.yml"
    target = f"{{targets: ['{exporter.address}']}}"
    config.write_text("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                      f"scrape_configs: [{{job_name: control, static_configs: [{target}]}}]\n")
    try:
        with Counter(exporter), Stack(tmp / "stack", watchdog=False, handle_signals=False) as stack:
            stack.start_prometheus(config)
            with PrometheusClient(stack.prometheus_url, timeout=5) as client:

                def enough() -> bool:
                    now = datetime.now(UTC)
                    series = client.range(QUERY, now - timedelta(minutes=1), now, 1.0)
                    return bool(series) and len(series[0].points) >= POINTS

                wait_for(enough, timeout=DATA_TIMEOUT, interval=0.5, what=f"{POINTS} s of {QUERY}")
            yield Prom(stack.prometheus_url, exporter)
    finally:
        exporter.close()


def test_the_replayed_demand_is_the_one_produced(prom: Prom) -> None:
    now = datetime.now(UTC)
    with PrometheusClient(prom.url, timeout=5) as client:
        trace = fetch_trace(client, QUERY, now - timedelta(minutes=1), now, 1.0)
    assert len(trace.values) >= POINTS
    assert all(RATE - 10 < v < RATE + 10 for v in trace.values), trace.values
    assert trace.start is not None and now - timedelta(minutes=1) <= trace.start <= now


def test_backtest_the_last_minute(prom: Prom, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "backtest.json"
    started = time.monotonic()
    code = main(["backtest", "--prometheus", prom.url, "--query", QUERY, "--since", "1m", "--step", "1s",
                 "--capacity", str(CAPACITY), "--target", "1", "--delay", "5s", "--interval", "1s",
                 "--metric-window", "1s", "--json", str(out_json)])
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    for fragment in (f"prometheus: {QUERY}", "alertscaler-default", "hpa-rps", "hpa-cpu", "seed-step", "oracle",
                     "samples of 1s"):
        assert fragment in captured.out
    data = json.loads(out_json.read_text())
    scenario = data["scenario"]
    assert scenario["samples"] >= POINTS and scenario["capacity_rps"] == CAPACITY
    assert RATE - 10 < scenario["peak_rps"] < RATE + 10
    hours = scenario["minutes"] / 60
    assert data["oracle_instance_hours"] == pytest.approx(NEEDED * hours)  # at --target 1: ceil(demand / 40)
    assert [r["policy"] for r in data["results"]] == ["alertscaler-default", "hpa-rps", "hpa-cpu", "seed-step"]
    for result in data["results"]:  # none pays for more than the max size all along
        assert 0 < result["instance_hours"] <= 20 * hours + 1e-9
    assert elapsed < 10


def test_bad_promql_exits_1_with_prometheus_message(prom: Prom, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "--prometheus", prom.url, "--query", "rate(control_value[5s]", "--since", "1m",
                 "--step", "1s"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == EXIT_NO
    assert "Prometheus rejected the query" in err and "bad_data" in err and "parse error" in err
    assert "Traceback" not in err
