"""Anomaly scores: the KS two-sample test against published and SciPy values, the seasonal residual score, the
spans an evaluation reads, the ``anomaly:`` section's problems with their paths, and the loop's gauges (with a
series function standing in for Prometheus; tests/e2e/test_anomaly_pipeline.py runs it on a real one)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from alertscaler.act.anomaly import AnomalyLoop
from alertscaler.act.metrics import Metrics
from alertscaler.confgen import render_all
from alertscaler.config import load_policy, load_policy_file
from alertscaler.decide.anomaly import (
    kolmogorov_sf,
    ks_2samp,
    ks_statistic,
    residuals,
    score,
    seasonal_score,
    spans,
    spread,
)
from alertscaler.model.anomaly import AnomalySpec
from alertscaler.model.errors import ConfigError, PrometheusUnavailable
from alertscaler.model.matchers import MatcherSet
from alertscaler.prometheus.client import Series

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

# -- the KS statistic ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "d"), [
    ([1, 2, 3], [4, 5, 6], 1.0),
    ([1, 2, 3], [1, 2, 3], 0.0),
    ([1, 2, 3, 4], [3, 4, 5, 6], 0.5),
    ([1, 1, 2], [1, 2, 2], 1 / 3),          # ties across the samples step together
    ([5, 5, 5], [5], 0.0),
    ([0], [1], 1.0),
    ([1, 2, 3, 4, 5], [3], 0.4),            # F_a(2) = 0.4 vs 0; F_a(3) = 0.6 vs 1
    ([3, 1, 2], [2, 3, 1], 0.0),            # order does not matter
], ids=["disjoint", "identical", "half-overlap", "ties", "one-value", "singletons", "one-point-b", "unsorted"])
def test_ks_statistic(a: list[float], b: list[float], d: float) -> None:
    assert ks_statistic(a, b) == pytest.approx(d)
    assert ks_statistic(b, a) == pytest.approx(d)


def test_ks_statistic_needs_values() -> None:
    with pytest.raises(ValueError):
        ks_statistic([], [1.0])


# Published critical values of the limiting Kolmogorov distribution (Smirnov 1948; e.g. the tables in Massey
# 1951 and Numerical Recipes): P(K > x) = alpha.
@pytest.mark.parametrize(("x", "alpha"), [
    (1.0727, 0.20), (1.2238, 0.10), (1.3581, 0.05), (1.6276, 0.01), (1.9495, 0.001),
], ids=["a20", "a10", "a05", "a01", "a001"])
def test_kolmogorov_sf_at_published_critical_values(x: float, alpha: float) -> None:
    assert kolmogorov_sf(x) == pytest.approx(alpha, abs=5e-5)


# scipy.stats.kstwobign.sf(x) (SciPy 1.17.1), on both sides of the switch between the two series at 1.18
@pytest.mark.parametrize(("x", "q"), [
    (0.3, 0.9999906941986655), (0.5, 0.9639452436648751), (0.8, 0.5441424115741981), (1.0, 0.26999967167735456),
    (1.18, 0.1234538094297657), (1.5, 0.022217962616525127), (2.5, 7.453306344157342e-06),
    (3.0, 3.045995948942526e-08),
], ids=["0.3", "0.5", "0.8", "1.0", "1.18", "1.5", "2.5", "3.0"])
def test_kolmogorov_sf_against_scipy(x: float, q: float) -> None:
    assert kolmogorov_sf(x) == pytest.approx(q, rel=1e-12, abs=1e-16)


@pytest.mark.parametrize("x", [0.0, -1.0, 0.01, 0.04])
def test_kolmogorov_sf_near_zero_is_one(x: float) -> None:
    assert kolmogorov_sf(x) == pytest.approx(1.0)


def _samples(seed: int, n: int, m: int, shift: float) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    return [rng.gauss(0, 1) for _ in range(n)], [rng.gauss(shift, 1) for _ in range(m)]


# SciPy 1.17.1 on the same samples (random.Random(seed).gauss: N(0,1) then N(shift,1)):
#   D = ks_2samp(a, b).statistic; p = kstwobign.sf((sqrt(en) + 0.12 + 0.11/sqrt(en)) * D), en = n m / (n + m);
#   and ks_2samp(a, b, method="exact").pvalue, which the corrected asymptotic p-value must stay close to.
@pytest.mark.parametrize(("seed", "n", "m", "shift", "d", "p", "exact"), [
    (1, 40, 40, 0.0, 0.20000000000000007, 0.36131292028978895, 0.404587405685253),
    (2, 60, 80, 0.5, 0.42500000000000004, 4.6128550909533405e-06, 4.740192521289494e-06),
    (3, 100, 100, 1.0, 0.49, 2.951132083284955e-11, 2.948425133635738e-11),
    (4, 200, 150, 0.2, 0.1283333333333333, 0.10955164329408704, 0.11019633981100525),
    (5, 500, 500, 0.1, 0.09599999999999997, 0.018515440681510592, 0.019894110072361745),
    (6, 30, 50, 2.0, 0.76, 1.7858806243746243e-10, 3.8455941221781473e-11),
    (7, 1000, 1000, 0.0, 0.05099999999999999, 0.1440824352462365, None),
], ids=["40x40-same", "60x80-shift", "100x100-shift", "200x150-small", "500x500-tiny", "30x50-far", "1000-same"])
def test_ks_2samp_against_scipy(seed: int, n: int, m: int, shift: float, d: float, p: float,
                                exact: float | None) -> None:
    a, b = _samples(seed, n, m, shift)
    result = ks_2samp(a, b)
    assert (result.n, result.m) == (n, m)
    assert result.statistic == pytest.approx(d, abs=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    if exact is not None and exact > 1e-6:  # the asymptotic value is a good approximation where it matters
        assert result.p_value == pytest.approx(exact, rel=0.12)


# -- the seasonal score ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "expected"), [
    ([1, 2, 3, 4, 100], 1.4826 * 1),       # MAD of |-2,-1,0,1,97| = 1: robust to the outlier
    ([5, 5, 5, 5, 9], 1.2533 * 4 / 5),     # MAD 0: the mean absolute deviation
    ([7, 7, 7], 0.0),
], ids=["mad", "mad-zero", "constant"])
def test_spread(values: list[float], expected: float) -> None:
    assert spread(values) == pytest.approx(expected)


@pytest.mark.parametrize(("recent", "reference", "expected"), [
    ([0, 0, 0], [-1, 0, 1], 0.0),
    ([3, 3, 3], [-1, 0, 1], 3 / 1.4826),
    ([-3, -3, -3], [-1, 0, 1], -3 / 1.4826),
    ([2, 2], [0, 0, 0], math.inf),
    ([0, 0], [0, 0, 0], 0.0),
], ids=["same", "higher", "lower", "flat-reference-differs", "flat-reference-same"])
def test_seasonal_score(recent: list[float], reference: list[float], expected: float) -> None:
    assert seasonal_score(recent, reference) == pytest.approx(expected)


def test_residuals_pair_points_one_season_apart() -> None:
    day = 86400.0
    points = [(T0 + timedelta(seconds=15 * i), 10.0 + i) for i in range(4)]
    earlier = [(at - timedelta(seconds=day), 9.0) for at, _ in points[1:]] + [(T0 - timedelta(hours=1), 0.0)]
    assert residuals(points, earlier, day) == [2.0, 3.0, 4.0]  # the first point has no value a day before


# -- spans and one evaluation ----------------------------------------------------------------------------------


def _spec(**kw: object) -> AnomalySpec:
    values: dict[str, object] = {"name": "lat", "query": "q", "window": 60.0, "reference": 60.0, "offset": 60.0,
                                 "step": 15.0, "interval": 30.0, "season": None, "min_samples": 4}
    values.update(kw)
    return AnomalySpec(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("spec", "recent", "reference"), [
    (_spec(), ("11:59:15", "12:00:00"), ("11:58:15", "11:59:00")),
    (_spec(reference=120.0), ("11:59:15", "12:00:00"), ("11:57:15", "11:59:00")),
    (_spec(offset=86400.0), ("11:59:15", "12:00:00"), ("11:59:15", "12:00:00")),  # a day earlier (date not shown)
], ids=["preceding", "longer-reference", "yesterday"])
def test_spans_on_the_step_grid_without_shared_points(spec: AnomalySpec, recent: tuple[str, str],
                                                      reference: tuple[str, str]) -> None:
    got = spans(spec, T0 + timedelta(seconds=7))  # 12:00:07 -> the grid point 12:00:00
    assert (f"{got.recent.start:%H:%M:%S}", f"{got.recent.end:%H:%M:%S}") == recent
    assert (f"{got.reference.start:%H:%M:%S}", f"{got.reference.end:%H:%M:%S}") == reference
    assert got.reference.end < got.recent.start
    assert got.recent_season is None


def test_spans_with_a_season_are_shifted_by_it() -> None:
    got = spans(_spec(season=3600.0), T0)
    assert got.recent_season is not None and got.reference_season is not None
    assert got.recent.start - got.recent_season.start == timedelta(hours=1)
    assert got.reference.end - got.reference_season.end == timedelta(hours=1)


def _points(values: list[float], end: datetime = T0, step: float = 15.0) -> list[tuple[datetime, float]]:
    return [(end - timedelta(seconds=step * (len(values) - 1 - i)), v) for i, v in enumerate(values)]


def test_score_insufficient_data_names_the_counts() -> None:
    scores = score(_spec(min_samples=5), _points([1, 2, 3]), _points([1, 2, 3, 4, 5, 6]))
    assert scores.ks is None and scores.seasonal is None
    assert scores.problem is not None and "3 point(s) in the recent window and 6" in scores.problem


def test_score_leaves_out_nan_and_infinite_points() -> None:
    scores = score(_spec(), _points([1, 2, math.nan, 3, math.inf, 4]), _points([1, 2, 3, 4]))
    assert scores.ks is not None and scores.ks.n == 4 and scores.ks.statistic == 0.0


def test_score_a_shift_scores_high_and_a_season_explains_it() -> None:
    day = 86400.0
    spec = _spec(season=day, offset=60.0)
    rng = random.Random(3)
    reference = _points([10 + rng.gauss(0, 1) for _ in range(8)], T0 - timedelta(seconds=120))
    recent = _points([20 + rng.gauss(0, 1) for _ in range(8)])
    # a day earlier the same jump happened: the KS test sees the shift, the seasonal score does not
    reference_day = [(at - timedelta(seconds=day), v) for at, v in reference]
    recent_day = [(at - timedelta(seconds=day), v) for at, v in recent]
    scores = score(spec, recent, reference, recent_day, reference_day)
    assert scores.ks is not None and scores.ks.statistic == 1.0 and scores.ks.p_value < 0.01
    assert scores.seasonal == 0.0
    # yesterday was flat at 10: now the seasonal score is large too
    flat_recent_day = [(at, 10.0 + rng.gauss(0, 1)) for at, _ in recent_day]
    flat_reference_day = [(at, 10.0 + rng.gauss(0, 1)) for at, _ in reference_day]
    high = score(spec, recent, reference, flat_recent_day, flat_reference_day)
    assert high.seasonal is not None and high.seasonal > 3


# -- the anomaly: section --------------------------------------------------------------------------------------

POLICY = """
server: {auth: {bearer_token: s3cret-token}}
groups:
  web: {provider: {type: local}, max_size: 3}
"""


def test_section_loads_with_defaults_and_its_queries_are_checked() -> None:
    policy = load_policy(POLICY + """
anomaly:
  - name: latency
    query: avg(rate(x[1m]))
  - {name: errors, query: 'sum(rate(e[5m]))', window: 5m, reference: 1h, reference_offset: 1d, step: 30s,
     interval: 2m, season: 1w, min_samples: 6}
""")
    first, second = policy.anomaly.specs()
    assert first == AnomalySpec("latency", "avg(rate(x[1m]))", 600.0, 600.0, 600.0, 15.0, 60.0, None, 10)
    assert second == AnomalySpec("errors", "sum(rate(e[5m]))", 300.0, 3600.0, 86400.0, 30.0, 120.0, 604800.0, 6)
    assert ("anomaly[1].query", "sum(rate(e[5m]))") in policy.queries()


@pytest.mark.parametrize(("entries", "path", "fragment"), [
    ("[{name: a}]", "anomaly[0].query", "required"),
    ("[{name: '9x', query: q}]", "anomaly[0].name", "starting with a letter"),
    ("[{name: a, query: q, window: soon}]", "anomaly[0].window", "must be a duration"),
    ("[{name: a, query: q, window: 0s}]", "anomaly[0].window", "longer than 0s"),
    ("[{name: a, query: q, interval: 500ms}]", "anomaly[0].interval", "at least 1s"),
    ("[{name: a, query: q, reference_offset: 5m}]", "anomaly[0]", "would overlap the recent one"),
    ("[{name: a, query: q, window: 1m}]", "anomaly[0]", "window 1m at step 15s gives 4 point(s)"),
    ("[{name: a, query: q, reference: 30s}]", "anomaly[0]", "reference 30s at step 15s"),
    ("[{name: a, query: q, window: 1w, reference_offset: 1w}]", "anomaly[0]", "more than 20000: lengthen step"),
    ("[{name: a, query: q, season: 10s}]", "anomaly[0]", "season 10s is shorter than step 15s"),
    ("[{name: a, query: q, min_samples: 2}]", "anomaly[0].min_samples", "greater than or equal to 5"),
    ("[{name: a, query: q, windw: 5m}]", "anomaly[0].windw", "unknown key"),
    ("[{name: a, query: q}, {name: a, query: r}]", "anomaly", "anomaly[0] and anomaly[1] are both 'a'"),
    ("{name: a}", "anomaly", "valid list"),
], ids=["no-query", "bad-name", "bad-duration", "zero-window", "fast-interval", "overlap", "few-points",
        "few-reference-points", "too-many-points", "short-season", "min-samples", "typo", "duplicate",
        "not-a-list"])
def test_section_problems_name_their_path(entries: str, path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(POLICY + f"anomaly: {entries}\n")
    problems = {p.path: p.message for p in info.value.problems}
    assert path in problems, problems
    assert fragment in problems[path]


@pytest.mark.parametrize(("server", "job"), [
    ("server: {auth: {bearer_token: s3cret-token}}",
     {"job_name": "alertscaler-metrics", "metrics_path": "/metrics",
      "static_configs": [{"targets": ["127.0.0.1:8080"]}]}),
    ("server: {auth: {insecure_no_auth: true}, public_url: 'https://as.example.com/x'}",
     {"job_name": "alertscaler-metrics", "metrics_path": "/x/metrics", "scheme": "https",
      "static_configs": [{"targets": ["as.example.com"]}]}),
], ids=["bearer", "public-url-prefix"])
def test_render_scrapes_alertscaler_metrics_when_there_are_scores(server: str, job: dict[str, object]) -> None:
    groups = "groups:\n  web: {provider: {type: local}}\n"
    with_scores = load_policy(f"{server}\n{groups}anomaly: [{{name: a, query: q}}]\n")
    jobs = yaml.safe_load(render_all(with_scores.render_input("p.yml"))["prometheus.yml"])["scrape_configs"]
    assert [j for j in jobs if j["job_name"] == "alertscaler-metrics"] == [job]
    without = load_policy(f"{server}\n{groups}")
    jobs = yaml.safe_load(render_all(without.render_input("p.yml"))["prometheus.yml"])["scrape_configs"]
    assert "alertscaler-metrics" not in [j["job_name"] for j in jobs]


# -- the loop and its gauges -----------------------------------------------------------------------------------


class Series1:
    """A series as Prometheus would answer a range query: ``value(at)`` on the span's grid."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.calls: list[tuple[str, datetime, datetime, float]] = []
        self.fail: Exception | None = None
        self.series = 1

    def __call__(self, query: str, start: datetime, end: datetime, step: float) -> list[Series]:
        self.calls.append((query, start, end, step))
        if self.fail is not None:
            raise self.fail
        points = []
        at = start
        while at <= end:
            points.append((at, self.value(at)))  # type: ignore[operator]
            at += timedelta(seconds=step)
        return [Series({"i": str(i)}, tuple(points)) for i in range(self.series)]


def _exposed(metrics: Metrics) -> dict[str, float]:
    out = {}
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith("alertscaler_anomaly_") and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_loop_exports_scores_then_removes_them_when_the_query_fails() -> None:
    switch = T0 - timedelta(seconds=60)
    rng = random.Random(1)
    source = Series1(lambda at: (20.0 if at > switch else 10.0) + rng.random())
    metrics = Metrics()
    loop = AnomalyLoop([_spec(season=None)], source, metrics)
    [scored] = loop.run(T0)
    assert scored.scores is not None and scored.scores.ks is not None
    seen = _exposed(metrics)
    assert seen['alertscaler_anomaly_score{kind="ks",name="lat"}'] == 1.0
    assert seen['alertscaler_anomaly_p_value{name="lat"}'] < 0.05
    assert seen['alertscaler_anomaly_evaluations_total{name="lat",result="ok"}'] == 1.0
    assert [c[0] for c in source.calls] == ["q", "q"]
    assert loop.run(T0 + timedelta(seconds=29)) == []  # interval 30s: not due yet
    source.fail = PrometheusUnavailable("Prometheus at http://x is unreachable", "q")
    [failed] = loop.run(T0 + timedelta(seconds=30))
    assert failed.error is not None and "unreachable" in failed.error
    seen = _exposed(metrics)
    assert not [k for k in seen if k.startswith("alertscaler_anomaly_score")]  # absent, not stale
    assert seen['alertscaler_anomaly_evaluations_total{name="lat",result="error"}'] == 1.0


def test_loop_several_series_and_too_few_points_give_no_score() -> None:
    source = Series1(lambda at: 1.0)
    source.series = 2
    metrics = Metrics()
    loop = AnomalyLoop([_spec()], source, metrics)
    [scored] = loop.run(T0)
    assert scored.error is not None and "returned 2 series" in scored.error
    source.series = 0
    [empty] = loop.run(T0 + timedelta(minutes=1))
    assert empty.scores is not None and empty.scores.problem is not None
    assert "insufficient data" in empty.scores.problem
    assert _exposed(metrics)['alertscaler_anomaly_evaluations_total{name="lat",result="insufficient_data"}'] == 1


def test_loop_seasonal_score_exported_and_a_new_loop_forgets_old_names() -> None:
    metrics = Metrics()
    source = Series1(lambda at: 5.0 + (at.timestamp() % 7))
    AnomalyLoop([_spec(name="old", season=3600.0)], source, metrics).run(T0)
    seen = _exposed(metrics)
    assert 'alertscaler_anomaly_score{kind="seasonal",name="old"}' in seen
    assert len(source.calls) == 4  # both windows, and each one season earlier
    AnomalyLoop([_spec(name="new")], source, metrics).run(T0)  # a reload replaced the section
    names = {k for k in _exposed(metrics) if k.startswith("alertscaler_anomaly_score")}
    assert names == {'alertscaler_anomaly_score{kind="ks",name="new"}'}


def test_loop_without_a_client_is_refused_when_it_has_work() -> None:
    assert AnomalyLoop([], None, Metrics()).run(T0) == []
    with pytest.raises(ValueError):
        AnomalyLoop([_spec()], None, Metrics())


def test_the_example_scales_out_on_its_anomaly_alert() -> None:
    """``examples/anomaly.yml`` (the README's example): its score, the alert rule on it and the group it scales."""
    example = Path(__file__).resolve().parents[2] / "examples" / "anomaly.yml"
    policy = load_policy_file(example)
    [spec] = policy.anomaly.specs()
    assert (spec.name, spec.window, spec.reference, spec.offset, spec.season) == ("web_latency", 600, 3600, 600, 86400)
    rendered = render_all(policy.render_input(str(example)))
    rules = yaml.safe_load(rendered["rules/alertscaler.rules.yml"])["groups"][0]["rules"]
    [alert] = [r for r in rules if r.get("alert") == "WebLatencyAnomaly"]
    assert 'alertscaler_anomaly_score{name="web_latency", kind="ks"}' in alert["expr"]
    assert any(r.get("record") == spec.query for r in rules)  # the series the score is computed on
    scale_out = policy.groups["web"].scale_out
    assert scale_out is not None
    labels = {"alertname": "WebLatencyAnomaly", **alert["labels"]}
    assert MatcherSet.parse(scale_out.matchers).matches(labels), (scale_out.matchers, labels)
    jobs = yaml.safe_load(rendered["prometheus.yml"])["scrape_configs"]
    assert "alertscaler-metrics" in [j["job_name"] for j in jobs]
