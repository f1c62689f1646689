"""``ingest.combining``: many one-value queries in few instant queries, over an in-process stand-in for
Prometheus (no network, no sleeps; the real Prometheus is in ``tests/integration/test_prometheus_client.py``).

``FakePrometheus`` answers like Prometheus does: a table of single queries (a vector of samples, a scalar, or a
query it rejects with HTTP 400); a combined query (the documented ``label_replace(...) or ...`` form, parsed
back with a regex) gets the union of its parts' series, each labelled ``alertscaler_query="<index>"``, or is
rejected as a whole when one part is bad or a scalar (``label_replace`` refuses a scalar). It can be "down"
(HTTP 503) and records every query it is asked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from alertscaler.model.errors import (
    AmbiguousResult,
    BadQuery,
    EmptyResult,
    PrometheusUnavailable,
    QueryError,
)
from alertscaler.prometheus.client import Sample, Samples
from alertscaler.prometheus.combining import (
    LABEL,
    MAX_PER_REQUEST,
    Outcome,
    QueryCombiner,
    combined,
    one_by_one,
    split,
)

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class Bad:
    """A query Prometheus rejects (HTTP 400 bad_data)."""


BAD = Bad()
#: a query's answer: a vector (each series' labels and value), a scalar (a float), or rejected
Entry = list[tuple[dict[str, str], float]] | float | Bad

# one regex on the documented wrapper: `label_replace(\n<query>\n, "alertscaler_query", "<i>", "", "")`
WRAPPED = re.compile(r'label_replace\(\n(?P<query>.*?)\n, "alertscaler_query", "(?P<index>\d+)", "", ""\)', re.S)


def parse_combined(query: str) -> list[tuple[int, str]] | None:
    """A combined query → its ``(index, query)`` parts; None for a query that is not one."""
    parts: list[tuple[int, str]] = []
    position = 0
    for match in WRAPPED.finditer(query):
        if match.start() != position:
            return None
        parts.append((int(match["index"]), match["query"]))
        position = match.end()
        if query.startswith(" or ", position):
            position += len(" or ")
    return parts if parts and position == len(query) else None


@dataclass
class FakePrometheus:
    table: dict[str, Entry]
    down: bool = False
    down_from: int | None = None  # "down" from this request on (0-based), e.g. in the middle of a cycle
    max_samples: int | None = None  # more samples in one answer: rejected as Prometheus does (HTTP 422)
    strip_label: bool = False  # answers combined queries without our label (a proxy rewriting answers)
    asked: list[str] = field(default_factory=list)

    def instant(self, query: str, at: datetime | float | None = None) -> Samples:
        self.asked.append(query)
        if self.down or (self.down_from is not None and len(self.asked) > self.down_from):
            raise PrometheusUnavailable("Prometheus at fake answered HTTP 503 Service Unavailable", query, 503)
        parts = parse_combined(query)
        samples = self._alone(query) if parts is None else self._combined(query, parts)
        if self.max_samples is not None and len(samples) > self.max_samples:
            raise BadQuery(query, "query processing would load too many samples into memory", "execution", 422)
        return samples

    def _alone(self, query: str) -> Samples:
        entry = self.table[query]
        if isinstance(entry, Bad):
            raise BadQuery(query, "1:6: parse error: unclosed left parenthesis", "bad_data", 400)
        if isinstance(entry, float):
            return Samples([Sample({}, entry, AT)], result_type="scalar")
        return Samples([Sample(dict(labels), value, AT) for labels, value in entry])

    def _combined(self, query: str, parts: list[tuple[int, str]]) -> Samples:
        samples: list[Sample] = []
        for index, part in parts:
            entry = self.table[part]
            if isinstance(entry, Bad):
                raise BadQuery(query, "parse error: unclosed left parenthesis", "bad_data", 400)
            if isinstance(entry, float):
                raise BadQuery(query, 'expected type instant vector in call to function "label_replace", '
                                      "got scalar", "bad_data", 400)
            extra = {} if self.strip_label else {LABEL: str(index)}
            samples += [Sample({**labels, **extra}, value, AT) for labels, value in entry]
        return Samples(samples)

    def combined_requests(self) -> list[list[str]]:
        """The queries of each combined request asked, in order."""
        return [[q for _, q in parts] for parts in map(parse_combined, self.asked) if parts is not None]


def value_alone(fake: FakePrometheus) -> Callable[[str], float]:
    """``PrometheusClient.value_of``'s rule over the fake: one query, one request."""
    def value_of(query: str) -> float:
        samples = fake.instant(query)
        if not samples:
            raise EmptyResult(query)
        if len(samples) > 1:
            raise AmbiguousResult(query, [s.labels for s in samples])
        return samples[0].value
    return value_of


def described(outcome: Outcome) -> tuple[Any, ...]:
    """An outcome as comparable data (exceptions compare by identity)."""
    if isinstance(outcome, float):
        return ("value", "nan" if math.isnan(outcome) else outcome)
    if isinstance(outcome, AmbiguousResult):
        return ("ambiguous", outcome.query, outcome.labels)
    if isinstance(outcome, BadQuery):
        return ("bad", outcome.query, outcome.error_type, outcome.status_code)
    if isinstance(outcome, PrometheusUnavailable):
        return ("unavailable", outcome.query, outcome.status_code)
    return (type(outcome).__name__, outcome.query)


def all_described(outcomes: Mapping[str, Outcome]) -> dict[str, tuple[Any, ...]]:
    return {query: described(outcome) for query, outcome in outcomes.items()}


def alone(table: dict[str, Entry], queries: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """What asking each query alone gives (on a fake of its own)."""
    return all_described(one_by_one(value_alone(FakePrometheus(table)))(queries))


# -- the table ---------------------------------------------------------------------------------------------------

WEB_A = {"__name__": "load", "group": "web", "instance": "a"}
WEB_B = {"__name__": "load", "group": "web", "instance": "b"}
TABLE: dict[str, Entry] = {
    "sum(load)": [({}, 3.5)],
    'load{instance="a"}': [(WEB_A, 1.5)],
    'load{instance="b"}': [(WEB_B, 2.0)],
    "max(load) # the busiest": [({}, 2.0)],
    "avg(load) / 0": [({}, math.inf)],
    "0 * sum(load)": [({}, 0.0)],
    'load{instance="gone"}': [],
    "absent_metric": [],
    "load": [(WEB_A, 1.5), (WEB_B, 2.0)],
    "nan_series": [({"__name__": "nan_series"}, math.nan)],
    "time()": 1714564800.0,
    "scalar(sum(load))": 3.5,
    "rate(load[1m]": BAD,
    "load +": BAD,
}
GOOD = ["sum(load)", 'load{instance="a"}', 'load{instance="b"}', "max(load) # the busiest", "avg(load) / 0",
        "0 * sum(load)", "nan_series"]
EMPTY = ['load{instance="gone"}', "absent_metric"]
AMBIGUOUS = ["load"]
MIX = [GOOD[0], EMPTY[0], AMBIGUOUS[0], GOOD[1], GOOD[2], EMPTY[1], GOOD[3], GOOD[4], GOOD[5], GOOD[6]]


# -- combined() -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("queries", "expected"), [
    (["sum(load)"], 'label_replace(\nsum(load)\n, "alertscaler_query", "0", "", "")'),
    (["sum(rate(http_requests_total[1m]))", "max(load) # the busiest"],
     'label_replace(\nsum(rate(http_requests_total[1m]))\n, "alertscaler_query", "0", "", "")'
     ' or label_replace(\nmax(load) # the busiest\n, "alertscaler_query", "1", "", "")'),
], ids=["one", "two-with-comment"])
def test_combined_text(queries: list[str], expected: str) -> None:
    text = combined(queries)
    assert text == expected
    # the comment ends on its own line: what follows it is still PromQL
    assert all("\n" + q + "\n" in text for q in queries)
    assert parse_combined(text) == list(enumerate(queries))  # the fake reads back exactly what is sent


@pytest.mark.parametrize("query", ["sum(load)", "label_replace(x, \"a\", \"b\", \"\", \"\")", ""],
                         ids=["plain", "a-label-replace-of-its-own", "empty"])
def test_the_fake_does_not_take_a_single_query_for_a_combined_one(query: str) -> None:
    assert parse_combined(query) is None


# -- split() ----------------------------------------------------------------------------------------------------

Q2 = ["sum(load)", "load"]


def sample(labels: dict[str, str], value: float) -> Sample:
    return Sample(labels, value, AT)


@pytest.mark.parametrize(("samples", "expected"), [
    (Samples([sample({LABEL: "1"}, 2.0), sample({LABEL: "0", "job": "x"}, 1.0)]),
     [("value", 1.0), ("value", 2.0)]),
    (Samples([sample({LABEL: "1"}, 2.0)]),
     [("EmptyResult", "sum(load)"), ("value", 2.0)]),
    (Samples([]),
     [("EmptyResult", "sum(load)"), ("EmptyResult", "load")]),
    (Samples([sample({LABEL: "0"}, 7.0), sample({**WEB_A, LABEL: "1"}, 1.5), sample({**WEB_B, LABEL: "1"}, 2.0)]),
     [("value", 7.0), ("ambiguous", "load", (WEB_A, WEB_B))]),
    (Samples([sample({LABEL: "01"}, 2.0), sample({LABEL: "0"}, 1.0)]),
     [("value", 1.0), ("value", 2.0)]),
], ids=["values", "empty", "all-empty", "ambiguous-without-our-label", "leading-zero"])
def test_split(samples: Samples, expected: list[tuple[Any, ...]]) -> None:
    outcomes = split(samples, Q2)
    assert outcomes is not None
    assert [described(o) for o in outcomes] == expected
    for outcome in outcomes:
        if isinstance(outcome, AmbiguousResult):
            assert all(LABEL not in labels for labels in outcome.labels)
            assert LABEL not in str(outcome)


@pytest.mark.parametrize("samples", [
    Samples([sample({LABEL: "0"}, 1.0), sample({"job": "x"}, 2.0)]),
    Samples([sample({LABEL: "0"}, 1.0), sample({LABEL: "2"}, 2.0)]),
    Samples([sample({LABEL: "-1"}, 1.0)]),
    Samples([sample({LABEL: "one"}, 1.0)]),
    Samples([sample({LABEL: ""}, 1.0)]),
    Samples([sample({}, 1.0)], result_type="scalar"),
], ids=["sample-lacking-the-label", "index-out-of-range", "negative-index", "not-a-number", "empty-label",
        "scalar"])
def test_split_of_an_answer_not_made_by_combined_is_none(samples: Samples) -> None:
    assert split(samples, Q2) is None


# -- values_of: values ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("queries", "per_request", "requests"), [
    (MIX, 100, 1),
    (MIX, 1000, 1),
    (MIX, 2, 5),
    (MIX, 3, 4),  # the last batch is one query: asked alone, still one request
    (MIX, 9, 2),
    (MIX[:2], 2, 1),
    (GOOD, 4, 2),
    (EMPTY + AMBIGUOUS, 100, 1),
    ([], 100, 0),
], ids=["all-in-one", "max-per-request", "pairs", "threes-last-alone", "nine-then-one", "exactly-two",
        "good-only", "errors-only", "none"])
def test_values_are_those_of_each_query_alone_in_few_requests(
        queries: list[str], per_request: int, requests: int) -> None:
    fake = FakePrometheus(TABLE)
    combiner = QueryCombiner(fake, per_request)
    got = combiner.values_of(queries)
    assert list(got) == queries
    assert all_described(got) == alone(TABLE, queries)
    assert combiner.requests == len(fake.asked) == requests == math.ceil(len(queries) / per_request)
    assert combiner.solo == set()
    # each query was in exactly one request
    asked = [q for batch in fake.combined_requests() for q in batch] + [q for q in fake.asked if q in TABLE]
    assert sorted(asked) == sorted(queries)
    # the same again: the same answers, the same number of requests (nothing to learn)
    assert all_described(combiner.values_of(queries)) == alone(TABLE, queries)
    assert combiner.requests == 2 * requests


# -- values_of: what cannot be combined -------------------------------------------------------------------------


@pytest.mark.parametrize(("queries", "culprits", "then_combined"), [
    (["sum(load)", "time()", 'load{instance="gone"}'], {"time()"}, [["sum(load)", 'load{instance="gone"}']]),
    (["sum(load)", "scalar(sum(load))", "load", 'load{instance="a"}'], {"scalar(sum(load))"},
     [["sum(load)", "load", 'load{instance="a"}']]),
    (["sum(load)", "rate(load[1m]", 'load{instance="b"}'], {"rate(load[1m]"},
     [["sum(load)", 'load{instance="b"}']]),
    (["time()", "sum(load)", "load +", "absent_metric", "scalar(sum(load))", "load"],
     {"time()", "load +", "scalar(sum(load))"}, [["sum(load)", "absent_metric", "load"]]),
    (["sum(load)", "time()"], {"time()"}, []),  # the one left is asked alone
], ids=["scalar-time", "scalar-function", "bad", "scalars-and-bad", "one-left"])
def test_a_query_that_cannot_be_combined_is_found_then_asked_alone(
        queries: list[str], culprits: set[str], then_combined: list[list[str]]) -> None:
    fake = FakePrometheus(TABLE)
    combiner = QueryCombiner(fake)
    expected = alone(TABLE, queries)

    assert all_described(combiner.values_of(queries)) == expected
    assert fake.combined_requests() == [queries]  # rejected as a whole ...
    assert fake.asked[1:] == queries  # ... then each asked alone
    assert combiner.requests == 1 + len(queries)
    assert combiner.solo == culprits
    for culprit in culprits:  # the culprits' own answers: a scalar's value, a bad query's BadQuery
        entry = TABLE[culprit]
        assert expected[culprit] == (("bad", culprit, "bad_data", 400) if isinstance(entry, Bad)
                                     else ("value", entry))

    fake.asked.clear()
    assert all_described(combiner.values_of(queries)) == expected
    assert fake.combined_requests() == then_combined
    alone_asked = [q for q in fake.asked if parse_combined(q) is None]
    assert sorted(alone_asked) == sorted(set(queries) - {q for batch in then_combined for q in batch})
    assert set(culprits) <= set(alone_asked)
    assert combiner.requests == 1 + len(queries) + len(fake.asked)
    assert len(fake.asked) == len(then_combined) + len(alone_asked)
    if then_combined:
        assert len(fake.asked) < len(queries)
    assert combiner.solo == culprits


@pytest.mark.parametrize(("options", "solo"), [
    ({"max_samples": 3}, {"sum(load)", "load", 'load{instance="a"}'}),
    ({"max_samples": 3, "down_from": 2}, set()),
    ({"strip_label": True}, {"sum(load)", "load", 'load{instance="a"}'}),
], ids=["too-many-samples-together", "down-while-asking-alone", "answer-without-our-label"])
def test_a_combination_refused_without_a_culprit(options: dict[str, Any], solo: set[str]) -> None:
    """Each query works alone (or Prometheus went down meanwhile): no culprit to single out."""
    queries = ["sum(load)", "load", 'load{instance="a"}']
    fake = FakePrometheus(TABLE, **options)
    combiner = QueryCombiner(fake)
    got = all_described(combiner.values_of(queries))
    assert fake.combined_requests() == [queries] and fake.asked[1:] == queries and combiner.requests == 4
    if fake.down_from is None:
        assert got == alone(TABLE, queries)
    else:  # the first one alone answered, then Prometheus went down
        assert got == {**alone(TABLE, queries[:1]), **{q: ("unavailable", q, 503) for q in queries[1:]}}
    assert combiner.solo == solo


# -- values_of: Prometheus unavailable --------------------------------------------------------------------------


@pytest.mark.parametrize(("queries", "per_request", "requests"), [
    (MIX, 100, 1),
    (MIX, 3, 4),
    (["sum(load)", "time()", "rate(load[1m]"], 100, 1),  # a scalar and a bad one: nobody can tell now
    (["sum(load)"], 100, 1),
    (["sum(load)", "load", "time()"], 1, 3),
], ids=["one-batch", "several-batches", "with-scalar-and-bad", "one-alone", "per-request-1"])
def test_prometheus_down_every_query_gets_its_own_unavailable_and_no_retry(
        queries: list[str], per_request: int, requests: int) -> None:
    fake = FakePrometheus(TABLE, down=True)
    combiner = QueryCombiner(fake, per_request)
    got = combiner.values_of(queries)
    assert set(got) == set(queries)
    for query, outcome in got.items():
        assert isinstance(outcome, PrometheusUnavailable)
        assert outcome.query == query and outcome.status_code == 503 and "HTTP 503" in str(outcome)
    assert len(fake.asked) == combiner.requests == requests  # one per batch: no query retried alone
    assert combiner.solo == set()
    # back up: everything is combined as before
    fake.down = False
    fake.asked.clear()
    assert all_described(combiner.values_of(queries)) == alone(TABLE, queries)
    if per_request > 1 and len(queries) > 1:
        assert fake.combined_requests()[0] == queries[:per_request]


# -- values_of: requests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("queries", [
    MIX,
    ["sum(load)", "time()", "rate(load[1m]", "load", "sum(load)"],
    ["sum(load)"],
], ids=["mix", "scalar-bad-duplicate", "one"])
def test_per_request_1_is_one_request_per_distinct_query(queries: list[str]) -> None:
    fake = FakePrometheus(TABLE)
    combiner = QueryCombiner(fake, per_request=1)
    got = combiner.values_of(queries)
    distinct = list(dict.fromkeys(queries))
    assert fake.asked == distinct and combiner.requests == len(distinct)
    assert all_described(got) == alone(TABLE, distinct)
    assert combiner.solo == set()


@pytest.mark.parametrize(("queries", "per_request", "expected_asked"), [
    (["sum(load)", "load", "sum(load)", "absent_metric", "load"], 100,
     [combined(["sum(load)", "load", "absent_metric"])]),
    (["sum(load)", "sum(load)", "sum(load)"], 100, ["sum(load)"]),
    (["sum(load)", "load", "sum(load)", "load"], 1, ["sum(load)", "load"]),
    (["sum(load)", "load", "load", "absent_metric", "sum(load)"], 2,
     [combined(["sum(load)", "load"]), "absent_metric"]),
], ids=["combined", "all-the-same", "per-request-1", "duplicates-do-not-fill-batches"])
def test_duplicates_are_asked_once(queries: list[str], per_request: int, expected_asked: list[str]) -> None:
    fake = FakePrometheus(TABLE)
    combiner = QueryCombiner(fake, per_request)
    got = combiner.values_of(queries)
    assert fake.asked == expected_asked and combiner.requests == len(expected_asked)
    assert all_described(got) == alone(TABLE, queries)


@pytest.mark.parametrize(("queries", "per_request", "expected_asked"), [
    (["sum(load)"], 100, ["sum(load)"]),
    (["time()"], 100, ["time()"]),
    (["rate(load[1m]"], 100, ["rate(load[1m]"]),
    (["sum(load)", "load", "absent_metric"], 2, [combined(["sum(load)", "load"]), "absent_metric"]),
], ids=["good", "scalar", "bad", "last-of-three-by-two"])
def test_a_batch_of_one_is_asked_alone(queries: list[str], per_request: int, expected_asked: list[str]) -> None:
    fake = FakePrometheus(TABLE)
    combiner = QueryCombiner(fake, per_request)
    assert all_described(combiner.values_of(queries)) == alone(TABLE, queries)
    assert fake.asked == expected_asked
    assert "label_replace" not in fake.asked[-1]
    assert combiner.solo == set()  # asked alone as a batch of one: nothing learnt, nothing to learn


@pytest.mark.parametrize(("per_request", "ok"), [
    (0, False), (-1, False), (MAX_PER_REQUEST + 1, False), (1, True), (2, True), (MAX_PER_REQUEST, True),
], ids=["zero", "negative", "over-max", "one", "two", "max"])
def test_per_request_bounds(per_request: int, ok: bool) -> None:
    if ok:
        assert QueryCombiner(FakePrometheus(TABLE), per_request).per_request == per_request
    else:
        with pytest.raises(ValueError, match=rf"per_request must be 1\.\.{MAX_PER_REQUEST}, got {per_request}$"):
            QueryCombiner(FakePrometheus(TABLE), per_request)


@pytest.mark.parametrize(("count", "requests"), [
    (MAX_PER_REQUEST, [MAX_PER_REQUEST]),
    (MAX_PER_REQUEST + 1, [MAX_PER_REQUEST, 1]),
], ids=["max-in-one-request", "one-more-in-a-second"])
def test_at_the_limit_a_request_combines_at_most_max_per_request(count: int, requests: list[int]) -> None:
    """At ``per_request=MAX_PER_REQUEST`` that many queries go in one request, and not one more."""
    table: dict[str, Entry] = {f'load{{n="{n}"}}': [({"n": str(n)}, float(n))] for n in range(count)}
    fake = FakePrometheus(table)
    combiner = QueryCombiner(fake, MAX_PER_REQUEST)
    values = combiner.values_of(list(table))
    assert [len(parse_combined(query) or [query]) for query in fake.asked] == requests
    assert [values[f'load{{n="{n}"}}'] for n in range(count)] == [float(n) for n in range(count)]


# -- one_by_one -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "expected"), [
    (EmptyResult("q"), ("EmptyResult", "q")),
    (AmbiguousResult("q", [WEB_A, WEB_B]), ("ambiguous", "q", (WEB_A, WEB_B))),
    (BadQuery("q", "parse error", "bad_data", 400), ("bad", "q", "bad_data", 400)),
    (PrometheusUnavailable("down", "q", 503), ("unavailable", "q", 503)),
], ids=["empty", "ambiguous", "bad", "unavailable"])
def test_one_by_one_returns_a_raised_query_error(error: QueryError, expected: tuple[Any, ...]) -> None:
    calls: list[str] = []

    def value_of(query: str) -> float:
        calls.append(query)
        if query == "q":
            raise error
        return float(len(query))

    got = one_by_one(value_of)(["q", "four", "q", "four"])
    assert got["q"] is error and described(got["q"]) == expected
    assert got["four"] == 4.0 and list(got) == ["q", "four"]
    assert calls == ["q", "four"]  # duplicates asked once


def test_one_by_one_lets_other_errors_through() -> None:
    def value_of(query: str) -> float:
        raise RuntimeError("a bug, not a query's fault")

    with pytest.raises(RuntimeError, match="a bug"):
        one_by_one(value_of)(["q"])
