"""Predictive scaling through the real service and a REAL Prometheus holding history: three days of a daily load
pattern (``demand_rps``, one sample a minute) are backfilled with ``promtool tsdb create-blocks-from openmetrics``
into the data directory before Prometheus starts; ``alertscaler serve`` (``fake`` provider) reads it with range
queries through its one Prometheus client, learns the daily season and — the load peaking now, the metric on
target at 2 members — keeps the capacity the forecast one ``lead`` ahead needs: 600 req/s / 110 per member = 6.
With ``forecast_only`` it records what it would have done and changes nothing. The forecast is on ``/metrics``,
in ``GET /api/v1/groups/web`` and in ``alertscaler status``. About 15 s per case.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from alertscaler.cli import EXIT_OK, main
from alertscaler.demo.stack import Stack
from tests.e2e.harness import TOKEN
from tests.support.waiting import wait_for

PROMTOOL = shutil.which("promtool")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(PROMTOOL is None or shutil.which("prometheus") is None,
                       reason="needs prometheus and promtool (Debian package prometheus: apt-get install -y "
                              "prometheus)"),
]

DAY = 86400.0
PER_INSTANCE = 110.0


def backfill(data: Path, now: float) -> None:
    """Three days of ``demand_rps``, one sample a minute up to a minute ago: 400 +/- 200 req/s, peaking at ``now``."""
    lines = ["# HELP demand_rps The group's requests per second", "# TYPE demand_rps gauge"]
    start = math.floor((now - 3 * DAY) / 60) * 60
    for k in range(int(3 * DAY / 60)):
        t = start + 60 * k
        if t > now - 60:
            break
        value = 400.0 + 200.0 * math.cos(2 * math.pi * (t - now) / DAY)
        lines.append(f'demand_rps{{group="web"}} {value:.3f} {t:.0f}')
    lines.append("# EOF")
    source = data.parent / "history.om"
    source.write_text("\n".join(lines) + "\n")
    data.mkdir(parents=True, exist_ok=True)
    assert PROMTOOL is not None
    subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)], check=True,
                   capture_output=True, timeout=120)


def policy(stack: Stack, state: Path, forecast_only: bool) -> str:
    return f"""
server: {{listen: 127.0.0.1:{stack.alertscaler_port}, auth: {{bearer_token: {TOKEN}}}, state_dir: {state},
          reevaluate_interval: 1s}}
prometheus: {{url: "{stack.prometheus_url}"}}
groups:
  web:
    provider: {{type: fake}}
    min_size: 1
    max_size: 20
    desired: 2
    track:
      metrics: [{{query: 'vector({PER_INSTANCE:g})', target: {PER_INSTANCE:g}}}]   # on target at any size
      interval: 2s
    predict:
      query: 'sum(demand_rps)'
      per_instance: {PER_INSTANCE:g}
      seasons: [1d]
      history: 3d
      lead: 2m
      quantile: 0.75
      forecast_only: {str(forecast_only).lower()}
"""


@pytest.mark.parametrize("forecast_only", [False, True], ids=["applied", "forecast-only"])
def test_the_service_forecasts_from_prometheus_history(forecast_only: bool, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    with Stack(tmp_path / "stack", handle_signals=False, start_timeout=60) as stack:
        backfill(stack.workdir / "prometheus-data", time.time())
        (tmp_path / "prometheus.yml").write_text("global: {scrape_interval: 15s}\n")
        stack.start_prometheus(tmp_path / "prometheus.yml")
        policy_file = tmp_path / "policy.yml"
        policy_file.write_text(policy(stack, tmp_path / "state", forecast_only))
        stack.start_alertscaler(policy_file)
        http = httpx.Client(base_url=stack.alertscaler_url, timeout=10, trust_env=False,
                            headers={"Authorization": f"Bearer {TOKEN}"})

        def group() -> dict[str, Any]:
            data: dict[str, Any] = http.get("/api/v1/groups/web").raise_for_status().json()
            return data

        def forecast() -> dict[str, Any] | None:
            found: dict[str, Any] | None = group()["predict"]["forecast"]
            return found

        made = wait_for(forecast, timeout=30, what="a forecast from the backfilled history")
        # the history's daily pattern, learned: 600 req/s now (+/- the band), 86400 s season
        assert made["seasons_s"] == [86400.0] and made["points"] >= 800
        assert made["mean"] == pytest.approx(600.0, abs=15.0)
        assert made["lower"] <= made["mean"] <= made["upper"]
        assert made["mean"] <= made["planned"] <= made["upper"] and made["band"] == 0.8
        assert made["desired"] == math.ceil(made["planned"] / PER_INSTANCE) >= 6
        assert made["applied"] is (not forecast_only) and made["skill"] > 0.5
        reason = "forecast_only" if forecast_only else "predicted"

        def decided() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = http.get("/api/v1/decisions", params={"group": "web"}).json()
            return [d for d in rows if d["policy"] == "track" and d["reason"] == reason]

        (decision,) = wait_for(decided, timeout=30, what=f"a {reason} decision")
        assert (decision["from_capacity"], decision["to_capacity"]) == (2, made["desired"])
        assert decision["outcome"] == ("skipped" if forecast_only else "acted")
        assert "forecast" in decision["message"]
        wait_for(lambda: group()["desired"] == (2 if forecast_only else made["desired"]), timeout=10,
                 what="the desired size")

        metrics = http.get("/metrics").text
        assert 'alertscaler_forecast{alertscaler_group="web",bound="mean"}' in metrics
        assert f'alertscaler_forecast_applied{{alertscaler_group="web"}} {0.0 if forecast_only else 1.0}' in metrics

        monkeypatch.setenv("ALERTSCALER_TOKEN", TOKEN)
        capsys.readouterr()
        assert main(["status", "web", "--url", stack.alertscaler_url]) == EXIT_OK
        shown = " ".join(capsys.readouterr().out.split())
        assert "web: forecast 6" in shown or "web: forecast 5" in shown, shown
        assert ("forecast_only: not applied" if forecast_only else "applied") in shown
        assert "seasons: daily" in shown
        http.close()
