"""``alertscaler backtest`` without a real Prometheus: ``sim.backtest`` turning a range query's matrix into a
trace (through ``httpx.MockTransport``), and the command against a stand-in HTTP server on 127.0.0.1 that answers
``/api/v1/query_range`` with documented-shape bodies: the table and JSON, several series, no data, bad PromQL,
an unreachable Prometheus and bad options — exit codes 0 / 1 / 2 with a message, never a traceback."""

from __future__ import annotations

import http.server
import json
import math
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from alertscaler.cli import EXIT_NO, EXIT_OK, EXIT_USAGE, main
from alertscaler.demo.preparing import free_port
from alertscaler.prometheus.client import PrometheusClient, Series
from alertscaler.sim.backtest import BacktestError, NoData, fetch_trace, trace_from_series

T0 = 1_700_000_000  # a whole minute, UTC
QUERY = 'sum(rate(http_requests_total{job="web"}[1m]))'


def matrix(*series: tuple[dict[str, str], list[tuple[float, str]]]) -> dict[str, Any]:
    """A ``query_range`` answer as Prometheus documents it (values are strings)."""
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": labels, "values": [[t, v] for t, v in points]} for labels, points in series]}}


def ramp(start: float, end: float, step: float) -> list[tuple[float, str]]:
    """120 req/s for the first half of the range, 360 for the second (on the query's grid)."""
    n = int((end - start) // step) + 1
    return [(start + i * step, "120" if i < n // 2 else "360") for i in range(n)]


# -- conversion ----------------------------------------------------------------------------------------------


def _series(points: list[tuple[float, float]], **labels: str) -> Series:
    return Series(dict(labels), tuple((datetime.fromtimestamp(t, UTC), v) for t, v in points))


def test_one_series_becomes_a_trace_each_point_holding_until_the_next() -> None:
    trace = trace_from_series([_series([(T0, 10.0), (T0 + 60, 20.0), (T0 + 180, 5.0)])], QUERY, 60.0)
    assert trace.values == (10.0, 20.0, 5.0)
    assert trace.offsets == (0.0, 60.0, 180.0)  # the gap keeps 20 for two minutes
    assert trace.end == 240.0 and trace.start == datetime.fromtimestamp(T0, UTC)
    assert trace.name == f"prometheus: {QUERY}"


def test_nan_points_are_dropped() -> None:
    trace = trace_from_series([_series([(T0, math.nan), (T0 + 60, 7.0), (T0 + 120, math.nan), (T0 + 180, 9.0)])],
                              QUERY, 60.0)
    assert trace.values == (7.0, 9.0) and trace.offsets == (0.0, 120.0)
    assert trace.start == datetime.fromtimestamp(T0 + 60, UTC)


@pytest.mark.parametrize(("series", "error", "fragment"), [
    ([], NoData, "no data"),
    ([_series([(T0, math.nan)])], NoData, "only NaN"),
    ([_series([(T0, 1.0)], job="a"), _series([(T0, 2.0)], job="b")], BacktestError, 'gave 2 series ({job="a"}'),
    ([_series([(T0, -1.0)])], BacktestError, "gave -1 at"),
    ([_series([(T0, math.inf)])], BacktestError, "gave inf at"),
])
def test_unusable_answers_are_named(series: list[Series], error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as caught:
        trace_from_series(series, QUERY, 60.0)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_several_series_name_five_and_count_the_rest() -> None:
    many = [_series([(T0, 1.0)], instance=f"i{n}") for n in range(8)]
    with pytest.raises(BacktestError, match=r'instance="i4"\} and 3 more\); .*sum\(\.\.\.\)'):
        trace_from_series(many, QUERY, 60.0)


def test_fetch_trace_sends_the_range_and_step_and_reads_the_matrix() -> None:
    seen: list[dict[str, list[str]]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        form = urllib.parse.parse_qs(request.content.decode())
        seen.append(form)
        start, end = float(form["start"][0]), float(form["end"][0])
        return httpx.Response(200, json=matrix(({}, ramp(start, end, 30.0))))

    start, end = datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 600, UTC)
    with PrometheusClient("http://prometheus.test", transport=httpx.MockTransport(answer)) as client:
        trace = fetch_trace(client, QUERY, start, end, 30.0)
    assert seen[0]["query"] == [QUERY] and seen[0]["step"] == ["30000ms"]
    assert seen[0]["start"] == [f"{T0}.000"] and seen[0]["end"] == [f"{T0 + 600}.000"]
    assert len(trace.values) == 21 and trace.duration == 630.0
    assert trace.values[0] == 120.0 and trace.values[-1] == 360.0


# -- the command, against a stand-in Prometheus ------------------------------------------------------------------


class StandIn:
    """Answers ``POST /api/v1/query_range`` by the query: ``ramp`` for QUERY, two series for ``by_instance``,
    an empty matrix for ``absent_metric``, Prometheus' 400 ``bad_data`` for anything else."""

    def __init__(self) -> None:
        self.requests: list[dict[str, list[str]]] = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                stand_in.requests.append(form)
                query = form["query"][0]
                start, end, step = float(form["start"][0]), float(form["end"][0]), float(form["step"][0][:-2]) / 1000
                status, body = 200, matrix()
                if self.path != "/api/v1/query_range":
                    status, body = 404, {"status": "error", "errorType": "not_found", "error": "no such path"}
                elif query == QUERY:
                    body = matrix(({}, ramp(start, end, step)))
                elif query == "by_instance":
                    body = matrix(({"instance": "a:80"}, ramp(start, end, step)),
                                  ({"instance": "b:80"}, ramp(start, end, step)))
                elif query != "absent_metric":
                    status, body = 400, {"status": "error", "errorType": "bad_data",
                                         "error": "1:5: parse error: unexpected <EOF>"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prom() -> Iterator[StandIn]:
    stand_in = StandIn()
    yield stand_in
    stand_in.close()


FROM, TO = "2023-11-14T22:00:00Z", "2023-11-14T23:00:00Z"  # one hour, per minute: 61 points


def test_backtest_prints_the_table_and_writes_the_json(prom: StandIn, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out_json, png = tmp_path / "bt.json", tmp_path / "bt.png"
    code = main(["backtest", "--prometheus", prom.url, "--query", QUERY, "--from", FROM, "--to", TO,
                 "--step", "1m", "--capacity", "40", "--delay", "2m", "--json", str(out_json), "--plot", str(png)])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    for fragment in ("alertscaler-default", "hpa-rps", "hpa-cpu", "seed-step", "oracle", "τU %", "instance-h",
                     "actions/day", "2023-11-14 22:00 UTC", "61 samples of 60s"):
        assert fragment in captured.out
    assert "goal" not in captured.out
    assert prom.requests[0]["start"] == ["1699999200.000"] and prom.requests[0]["end"] == ["1700002800.000"]
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    data = json.loads(out_json.read_text())
    assert [r["policy"] for r in data["results"]] == ["alertscaler-default", "hpa-rps", "hpa-cpu", "seed-step"]
    scenario = data["scenario"]
    assert scenario["trace"] == f"prometheus: {QUERY}" and scenario["trace_start"] == "2023-11-14T22:00:00+00:00"
    assert scenario["samples"] == 61 and scenario["minutes"] == 61 and scenario["peak_rps"] == 360
    # the oracle at 70 % of 40 req/s: 30 minutes of 120 req/s (5 instances), 31 of 360 (13 instances)
    assert data["oracle_instance_hours"] == pytest.approx((30 * 5 + 31 * 13) / 60)
    assert data["oracle"]["actions"] == 1 and data["scenario"]["target"] == 0.7


def test_since_takes_the_last_duration_up_to_now(prom: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    before = datetime.now(UTC).timestamp()
    code = main(["backtest", "--prometheus", prom.url, "--query", QUERY, "--since", "2h", "--step", "5m"])
    assert code == EXIT_OK, capsys.readouterr().err
    form = prom.requests[0]
    start, end = float(form["start"][0]), float(form["end"][0])
    assert end - start == 7200 and before - 1 <= end <= datetime.now(UTC).timestamp() + 1
    assert form["step"] == ["300000ms"]


def test_the_url_comes_from_the_policy_file(prom: StandIn, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(f"prometheus: {{url: '{prom.url}', timeout: 3s}}\n"
                      "server: {auth: {insecure_no_auth: true}}\n"
                      "groups:\n  web:\n    provider: {type: local, command: [sleep, '60']}\n    min_size: 1\n"
                      "    max_size: 3\n")
    code = main(["backtest", "-c", str(policy), "--query", QUERY, "--since", "1h"])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert len(prom.requests) == 1


def test_backtest_your_own_group(prom: StandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-c FILE GROUP: the group's track section replayed on the fetched history; HPA on its own target."""
    policy = tmp_path / "policy.yml"
    policy.write_text(f"prometheus: {{url: '{prom.url}'}}\n"
                      "server: {auth: {insecure_no_auth: true}}\n"
                      "groups:\n  web:\n    provider: {type: local, command: [sleep, '60']}\n    min_size: 1\n"
                      "    max_size: 20\n    track:\n      metrics: [{query: 'sum(rate(x[1m])) / count(up)', "
                      "target: 30}]\n")
    code = main(["backtest", "-c", str(policy), "web", "--query", QUERY, "--from", FROM, "--to", TO, "--step", "1m"])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    for fragment in ("group web", "requests/s per ready pod, target 30", "target 0.75", "note: track metric 1"):
        assert fragment in captured.out


@pytest.mark.parametrize(("query", "code", "fragment"), [
    ("by_instance", EXIT_USAGE, 'gave 2 series ({instance="a:80"}, {instance="b:80"})'),
    ("absent_metric", EXIT_NO, "no data: the query 'absent_metric' gave no series from 2023-11-14T22:00:00+00:00"),
    ("rate(", EXIT_NO, "Prometheus rejected the query 'rate(': bad_data: 1:5: parse error: unexpected <EOF>"),
])
def test_unusable_answers_exit_with_the_reason(prom: StandIn, capsys: pytest.CaptureFixture[str], query: str,
                                               code: int, fragment: str) -> None:
    assert main(["backtest", "--prometheus", prom.url, "--query", query, "--from", FROM, "--to", TO]) == code
    captured = capsys.readouterr()
    assert fragment in " ".join(captured.err.split())
    assert "Traceback" not in captured.err


def test_an_unreachable_prometheus_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["backtest", "--prometheus", url, "--query", QUERY, "--since", "1h", "--timeout", "2"]) == EXIT_NO
    err = " ".join(capsys.readouterr().err.split())
    assert f"Prometheus at {url} is unreachable" in err


@pytest.mark.parametrize(("options", "fragment"), [
    (["--from", "yesterday"], "--from: 'yesterday' is not an ISO 8601 date-time"),
    (["--from", TO, "--to", FROM], "the range is empty"),
    (["--since", "1h", "--step", "2h"], "--step 7200s is longer than the range"),
    (["--prometheus", "ftp://example.com"], "must be an http:// or https:// URL"),
    (["-c", "/nonexistent/policy.yml"], "policy file /nonexistent/policy.yml not found"),
])
def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str], options: list[str], fragment: str) -> None:
    assert main(["backtest", "--query", QUERY, *options]) == EXIT_USAGE
    assert fragment in " ".join(capsys.readouterr().err.split())


def test_since_and_from_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["backtest", "--query", QUERY, "--since", "1h", "--from", FROM])
    assert exited.value.code == EXIT_USAGE
    assert "not allowed with argument" in capsys.readouterr().err
