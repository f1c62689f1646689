"""``ingest.prometheus.PrometheusClient`` against a REAL Prometheus (Debian's /usr/bin/prometheus).

One Prometheus for the module, started by the fixture: HTTPS (a throw-away self-signed certificate, so the
client's CA-path option is exercised) with basic auth (``--web.config.file``), scraping every second a small
exporter of the test (``control_value{name="..."}``, values set by the test). Tests read values back, run
instant / range queries, and check every error path on real answers: bad PromQL, empty and ambiguous
results, refused credentials, untrusted certificates, plain HTTP to an HTTPS port, non-JSON answers,
unreachable and silent ports.
"""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from alertscaler.demo.children import Child
from alertscaler.demo.preparing import free_port
from alertscaler.demo.stack import Stack
from alertscaler.model.errors import (
    AmbiguousResult,
    BadQuery,
    EmptyResult,
    PrometheusUnavailable,
    QueryError,
)
from alertscaler.prometheus.client import PrometheusClient, Sample
from alertscaler.prometheus.combining import Outcome, QueryCombiner
from tests.e2e.harness import ControlExporter
from tests.support.waiting import wait_for

PROMETHEUS = "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else shutil.which("prometheus")
OPENSSL = shutil.which("openssl")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(PROMETHEUS is None, reason="needs /usr/bin/prometheus (Debian package prometheus: "
                                                  "apt-get install -y prometheus; .ci/run installs it)"),
    pytest.mark.skipif(OPENSSL is None, reason="needs openssl (to make the test Prometheus' TLS certificate)"),
]

USER = "admin"
PASSWORD = "test"
# bcrypt of "test": the example hash of Prometheus' own basic-auth guide (docs/guides/basic-auth).
PASSWORD_HASH = "$2b$12$hNf2lSsxfm0.i4a.1kVpSOVyBCfIB51VRjgBUyv6kdnyTlgWj81Ay"
AB = 'control_value{name=~"a|b"}'  # the two series set at start (tests may add others for a while)
START_TIMEOUT = 30.0
DATA_TIMEOUT = 15.0


@dataclass
class Prom:
    url: str  # https://127.0.0.1:<port>
    ca: Path
    exporter: ControlExporter
    child: Child
    ready_before_start: str | None
    first_scrape: datetime  # time of the first sample of control_value{name="a"}

    def client(self, **kwargs: Any) -> PrometheusClient:
        options: dict[str, Any] = {"username": USER, "password": SecretStr(PASSWORD), "verify": self.ca}
        options.update(kwargs)
        return PrometheusClient(options.pop("url", self.url), **options)


# what a probe raises while Prometheus starts or has not scraped yet: "not yet" to ``wait_for``
NOT_YET = (AssertionError, EmptyResult, PrometheusUnavailable)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    assert OPENSSL is not None
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    tmp = tmp_path_factory.mktemp("prometheus-client")
    cert, key = make_certificate(tmp)
    (tmp / "web.yml").write_text(f"tls_server_config: {{cert_file: '{cert}', key_file: '{key}'}}\n"
                                 f"basic_auth_users: {{{USER}: '{PASSWORD_HASH}'}}\n")
    exporter = ControlExporter()
    exporter.set("a", 1.5)
    exporter.set("b", 2.5)
    (tmp / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs: [{{job_name: control, static_configs: [{{targets: ['{exporter.address}']}}]}}]\n")
    try:
        with Stack(tmp / "stack", watchdog=False, handle_signals=False) as stack:
            url = f"https://127.0.0.1:{stack.prometheus_port}"
            with PrometheusClient(url, username=USER, password=SecretStr(PASSWORD), verify=cert,
                                  timeout=2) as client:
                before = client.ready()
                assert PROMETHEUS is not None
                child = stack.start("prometheus", [
                    PROMETHEUS,
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'data'}",
                    f"--web.listen-address=127.0.0.1:{stack.prometheus_port}",
                    f"--web.config.file={tmp / 'web.yml'}",
                ])  # no ready_url: the Stack polls plain HTTP; our client's ready() is the probe here

                def started() -> bool:
                    reason = client.ready()
                    assert reason is None, reason
                    return True

                def exited() -> str | None:
                    return None if child.running else f"prometheus exited: {child.log_tail()}"

                wait_for(started, timeout=START_TIMEOUT, what="Prometheus ready", retry_on=NOT_YET, abort=exited)

                def scraped() -> Sample:
                    samples = client.instant('control_value{name="a"}')
                    assert len(samples) == 1, samples
                    return samples[0]

                first = wait_for(scraped, timeout=DATA_TIMEOUT, what="first scrape of the control exporter",
                                 retry_on=NOT_YET)
            yield Prom(url, cert, exporter, child, before, first.at)
    finally:
        exporter.close()


@pytest.fixture
def client(prom: Prom) -> Iterator[PrometheusClient]:
    with prom.client() as c:
        yield c


# -- readiness -----------------------------------------------------------------------------------------------


def test_ready_is_a_reason_before_start_and_none_after(prom: Prom, client: PrometheusClient) -> None:
    assert prom.ready_before_start is not None
    assert "unreachable" in prom.ready_before_start and prom.url in prom.ready_before_start
    assert client.ready() is None


def test_ready_names_refused_credentials(prom: Prom) -> None:
    with prom.client(password=SecretStr("wrong-password")) as c:
        reason = c.ready()
    assert reason is not None and "401" in reason and "credentials refused" in reason
    assert "wrong-password" not in reason


# -- instant queries ---------------------------------------------------------------------------------------------


def test_instant_vector_has_the_scraped_series_labels_values_and_time(client: PrometheusClient) -> None:
    before = datetime.now(UTC)
    samples = client.instant(AB)
    assert samples.result_type == "vector" and samples.warnings == ()
    by_name = {s.labels["name"]: s for s in samples}
    assert {k: s.value for k, s in by_name.items()} == {"a": 1.5, "b": 2.5}
    assert by_name["a"].labels == {"__name__": "control_value", "name": "a", "job": "control",
                                   "instance": by_name["a"].labels["instance"]}
    assert abs(by_name["a"].at - before) < timedelta(seconds=5) and by_name["a"].at.tzinfo is UTC


def test_instant_scalar_is_one_unlabelled_sample(client: PrometheusClient) -> None:
    samples = client.instant("1 + 2")
    assert samples.result_type == "scalar"
    assert [(s.labels, s.value) for s in samples] == [({}, 3.0)]
    assert client.value_of(f"scalar(sum({AB}))") == 4.0


def test_instant_at_a_given_time(client: PrometheusClient) -> None:
    at = datetime(2024, 2, 29, 12, 30, 15, 250_000, tzinfo=UTC)
    [sample] = client.instant("time()", at=at)
    assert sample.at == at and sample.value == at.timestamp()
    assert client.value_of("time()", at=at.timestamp()) == at.timestamp()  # Unix seconds work too


def test_a_value_set_on_the_exporter_is_read_back_after_the_scrape(prom: Prom, client: PrometheusClient) -> None:
    query = 'control_value{name="read-back"}'
    with pytest.raises(EmptyResult):
        client.value_of(query)
    prom.exporter.set("read-back", 7.25)
    try:
        assert wait_for(lambda: client.value_of(query), timeout=DATA_TIMEOUT, what="7.25 scraped",
                        retry_on=NOT_YET) == 7.25
        prom.exporter.set("read-back", -3)

        def changed() -> float:
            value = client.value_of(query)
            assert value == -3.0, value
            return value

        wait_for(changed, timeout=DATA_TIMEOUT, what="-3 scraped", retry_on=NOT_YET)
    finally:
        del prom.exporter.values["read-back"]


@pytest.mark.parametrize(("query", "check"), [
    ("0/0", math.isnan),
    ("1/0", lambda v: v == math.inf),
    ("-1/0", lambda v: v == -math.inf),
    ('sum(control_value{name="a"}) / 0', lambda v: v == math.inf),
    ('sum(control_value{name="a"}) - sum(control_value{name="a"}) / 0', lambda v: v == -math.inf),
], ids=["nan", "plus-inf", "minus-inf", "vector-plus-inf", "vector-minus-inf"])
def test_nan_and_infinities(client: PrometheusClient, query: str, check: Callable[[float], bool]) -> None:
    value = client.value_of(query)
    assert check(value), value


# -- range queries ------------------------------------------------------------------------------------------------


def test_range_points_lie_on_the_step_grid(client: PrometheusClient) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    [series] = client.range("time()", start, start + timedelta(seconds=60), step=timedelta(seconds=15))
    assert series.labels == {}
    assert series.points == tuple((start + timedelta(seconds=15 * i), start.timestamp() + 15 * i) for i in range(5))


def test_range_over_scraped_data(prom: Prom, client: PrometheusClient) -> None:
    end = prom.first_scrape + timedelta(seconds=2)
    wait_for(lambda: client.value_of("time()") > end.timestamp(), timeout=5, what="two seconds of data",
             retry_on=NOT_YET)
    result = client.range(AB, prom.first_scrape, end, step=0.5)
    assert sorted(s.labels["name"] for s in result) == ["a", "b"]
    a = next(s for s in result if s.labels["name"] == "a")
    assert [t for t, _ in a.points] == [prom.first_scrape + timedelta(seconds=0.5 * i) for i in range(5)]
    assert {v for _, v in a.points} == {1.5}
    [nan] = client.range("0/0", prom.first_scrape, end, step=1)
    assert len(nan.points) == 3 and all(math.isnan(v) for _, v in nan.points)


def test_long_ranges_are_split_below_prometheus_limit_and_merged(prom: Prom, client: PrometheusClient) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    # 12,001 points: Prometheus refuses more than 11,000 per request; the client asks twice.
    [series] = client.range("time()", start, start + timedelta(seconds=12_000), step=1)
    assert len(series.points) == 12_001
    assert [t for t, _ in series.points] == [start + timedelta(seconds=i) for i in range(12_001)]
    with prom.client(max_points=20_000) as unsplit, pytest.raises(BadQuery) as info:
        unsplit.range("time()", start, start + timedelta(seconds=12_000), step=1)
    assert "exceeded maximum resolution of 11,000 points" in info.value.error
    # same answer in small pieces, two series of real data included
    end = prom.first_scrape + timedelta(seconds=2)
    with prom.client(max_points=3) as small:
        for query in ("time()", AB):
            whole = client.range(query, prom.first_scrape, end, step=0.25)
            pieces = small.range(query, prom.first_scrape, end, step=0.25)
            key = lambda s: sorted(s.labels.items())  # noqa: E731
            assert sorted(pieces, key=key) == sorted(whole, key=key) and len(whole[0].points) == 9


# -- errors ----------------------------------------------------------------------------------------------------


def test_bad_promql_is_bad_query_with_prometheus_message(client: PrometheusClient) -> None:
    with pytest.raises(BadQuery) as info:
        client.value_of("rate(control_value[5m]")
    exc = info.value
    assert exc.error_type == "bad_data" and exc.status_code == 400 and exc.query == "rate(control_value[5m]"
    assert "parse error: unclosed left parenthesis" in exc.error
    assert "parse error: unclosed left parenthesis" in str(exc) and "rate(control_value[5m]" in str(exc)
    with pytest.raises(BadQuery, match="parse error"):
        client.range("sum(", datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC), 15)


def test_query_failing_at_execution_is_bad_query(client: PrometheusClient) -> None:
    with pytest.raises(BadQuery) as info:
        client.instant(f"{AB} + on() vector(1)")  # two series on the left match one on the right
    assert info.value.error_type == "execution" and info.value.status_code == 422
    assert "many-to-one matching must be explicit" in str(info.value)


@pytest.mark.parametrize(("query", "fragment"), [
    ("control_value[5m]", "range vector"),
    ('"hello"', "a string"),
], ids=["range-vector", "string"])
def test_results_that_are_not_numbers_are_bad_queries(client: PrometheusClient, query: str, fragment: str) -> None:
    with pytest.raises(BadQuery, match=fragment):
        client.instant(query)


def test_empty_result(client: PrometheusClient) -> None:
    with pytest.raises(EmptyResult) as info:
        client.value_of('control_value{name="missing"}')
    assert info.value.query == 'control_value{name="missing"}' and "no series" in str(info.value)
    assert client.instant('control_value{name="missing"}') == []  # an empty list is not an error


def test_several_series_are_ambiguous_and_named(client: PrometheusClient) -> None:
    with pytest.raises(AmbiguousResult) as info:
        client.value_of(AB)
    assert sorted(labels["name"] for labels in info.value.labels) == ["a", "b"]
    assert 'name="a"' in str(info.value) and 'name="b"' in str(info.value) and "2 series" in str(info.value)


def test_unreachable_port(prom: Prom) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with PrometheusClient(url, timeout=2) as c:
        with pytest.raises(PrometheusUnavailable, match="unreachable") as info:
            c.value_of("1")
        assert url in str(info.value) and info.value.status_code is None
        with pytest.raises(PrometheusUnavailable, match="unreachable"):
            c.range("1", 0, 60, 15)
        reason = c.ready()
    assert reason is not None and "unreachable" in reason


def test_a_silent_port_times_out_within_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        with PrometheusClient(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3) as c:
            started = time.monotonic()
            with pytest.raises(PrometheusUnavailable, match=r"no answer within 0.3 s"):
                c.value_of("1")
            assert time.monotonic() - started < 3
            assert c.ready() == f"Prometheus at {c.url}: no answer within 0.3 s (ReadTimeout)"


def test_wrong_password_is_unavailable_with_a_hint_and_no_secret(prom: Prom) -> None:
    with prom.client(password=SecretStr("s3cret-wrong")) as c:
        with pytest.raises(PrometheusUnavailable) as info:
            c.value_of("1")
        assert "s3cret-wrong" not in repr(c)
    assert info.value.status_code == 401 and "credentials refused" in str(info.value)
    assert "s3cret-wrong" not in str(info.value) and "Unauthorized" in str(info.value)


def test_credentials_in_the_url_are_used_and_hidden(prom: Prom) -> None:
    url = prom.url.replace("https://", f"https://{USER}:{PASSWORD}@")
    with PrometheusClient(url, verify=prom.ca) as c:
        assert c.value_of("7") == 7.0
        assert c.url == prom.url and f":{PASSWORD}@" not in repr(c)


def test_untrusted_certificate_and_plain_http_to_https(prom: Prom) -> None:
    with prom.client(verify=True) as c, pytest.raises(PrometheusUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        c.value_of("1")
    with prom.client(verify=False) as c:
        assert c.value_of("1") == 1.0
    with prom.client(url=prom.url.replace("https://", "http://")) as c, pytest.raises(PrometheusUnavailable) as info:
        c.value_of("1")
    # Go answers "400 ... HTTP request to an HTTPS server" and closes: the client reads that, or a reset
    message = str(info.value)
    assert ("HTTP 400" in message and "HTTPS server" in message) or "URL must start with https://" in message


def test_a_non_json_answer_names_what_came_back(prom: Prom) -> None:
    # the exporter: no POST, an HTML error page
    with PrometheusClient(f"http://{prom.exporter.address}") as c, pytest.raises(PrometheusUnavailable) as info:
        c.value_of("1")
    message = str(info.value)
    assert "HTTP 501" in message and "text/html" in message and "Unsupported method" in message


# -- combined queries (ingest.combining) -----------------------------------------------------------------------

# one of each kind: values (one with a trailing comment), empty, ambiguous, scalars (which label_replace refuses,
# so the first combined request is rejected as a whole) and bad PromQL
MIXED = [
    f"sum({AB})",
    'sum(control_value{name="a"}) # a comment ends the line',
    'control_value{name="missing"}',
    AB,
    "time()",
    f"scalar(sum({AB}))",
    "rate(control_value[1m]",
    'max(control_value{name="b"}) * 2',
]
CANNOT_COMBINE = {"time()", f"scalar(sum({AB}))", "rate(control_value[1m]"}


def value_alone(client: PrometheusClient, query: str) -> Outcome:
    try:
        return client.value_of(query)
    except QueryError as exc:
        return exc


def assert_same(query: str, combined: Outcome, alone: Outcome) -> None:
    assert type(combined) is type(alone), (query, combined, alone)
    if isinstance(alone, float):
        assert isinstance(combined, float)
        tolerance = 5.0 if query == "time()" else 0.0  # asked at different instants
        assert abs(combined - alone) <= tolerance, (query, combined, alone)
        return
    assert isinstance(combined, QueryError) and combined.query == alone.query == query
    if isinstance(alone, AmbiguousResult):
        assert isinstance(combined, AmbiguousResult)
        key = lambda labels: sorted(labels.items())  # noqa: E731
        assert sorted(combined.labels, key=key) == sorted(alone.labels, key=key)  # without alertscaler_query
    if isinstance(alone, BadQuery):
        assert isinstance(combined, BadQuery)
        assert (combined.error, combined.error_type, combined.status_code) == (
            alone.error, alone.error_type, alone.status_code)


def test_combined_queries_give_what_each_query_gives_alone(client: PrometheusClient) -> None:
    wait_for(lambda: client.value_of(f"sum({AB})") == 4.0, timeout=DATA_TIMEOUT, what="a and b scraped",
             retry_on=NOT_YET)
    combiner = QueryCombiner(client)
    first = combiner.values_of(MIXED)
    alone = {query: value_alone(client, query) for query in MIXED}
    assert list(first) == MIXED
    assert first[MIXED[0]] == 4.0 and first[MIXED[1]] == 1.5 and first[MIXED[7]] == 5.0
    assert isinstance(first[AB], AmbiguousResult) and isinstance(first["rate(control_value[1m]"], BadQuery)
    for query in MIXED:
        assert_same(query, first[query], alone[query])
    # the scalars made Prometheus reject the combined query: each was asked alone, and the culprits remembered
    assert combiner.requests == 1 + len(MIXED)
    assert combiner.solo == CANNOT_COMBINE

    second = combiner.values_of(MIXED)
    assert combiner.requests - (1 + len(MIXED)) == 1 + len(CANNOT_COMBINE) < len(MIXED)
    for query in MIXED:
        assert_same(query, second[query], alone[query])
    assert combiner.solo == CANNOT_COMBINE


def test_combined_queries_against_an_unreachable_prometheus_are_asked_once() -> None:
    with PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=2) as down:
        combiner = QueryCombiner(down)
        got = combiner.values_of(MIXED)
    assert combiner.requests == 1 and combiner.solo == set()
    assert list(got) == MIXED
    for query, outcome in got.items():
        assert isinstance(outcome, PrometheusUnavailable), outcome
        assert outcome.query == query and outcome.status_code is None and "unreachable" in str(outcome)
