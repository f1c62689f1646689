"""Many one-value PromQL queries in few requests: ``QueryCombiner.values_of`` asks Prometheus for up to
``per_request`` queries in ONE instant query, and gives each query its value or its own ``QueryError``.

Called by ``act.tracking`` every cycle with every due group's metric queries (10,000 tracked groups are 10,000
queries per 15 s: one HTTP request each cost more CPU than everything else the loop does, and as much load on
Prometheus). Built by ``act.engine`` on the engine's ``PrometheusClient``.

How: each query is wrapped so that its series carry the label ``alertscaler_query="<its index>"`` and the
wrapped queries are joined with ``or``::

    label_replace(
    <query 0>
    , "alertscaler_query", "0", "", "") or label_replace(
    <query 1>
    , "alertscaler_query", "1", "", "") or ...

(the query stands on lines of its own so that a ``# comment`` in it ends there). ``label_replace`` with an empty
source label matches every series, so each one gets the label; series of different queries then never share a
label set, and ``or`` keeps them all. The answer is split back by that label: no series → ``EmptyResult``,
several → ``AmbiguousResult`` naming their own labels (without ours). Every query is evaluated at the same
instant, as Prometheus evaluates one expression.

What cannot be combined is found once and then asked alone ("solo"):

* Prometheus rejects the combined query (HTTP 400/422: a bad query in it, a query giving a scalar such as
  ``scalar(...)`` or ``time()``, which ``label_replace`` refuses, or too many samples for one query): each of
  its queries is asked alone. Those rejected alone, or answering a scalar, are solo from then on; if none is
  (the combination itself was too big), all of them are.
* Prometheus unavailable (down, timeout, 5xx, login refused): every query of the request gets that error (with
  its own query): no retrying of each one against a Prometheus that is struggling.

``per_request`` 1 turns combining off (one request per query, as ``value_of``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from alertscaler.model.errors import AmbiguousResult, BadQuery, EmptyResult, PrometheusUnavailable, QueryError
from alertscaler.prometheus.client import Samples

log = logging.getLogger(__name__)

LABEL = "alertscaler_query"
DEFAULT_PER_REQUEST = 100
MAX_PER_REQUEST = 1000
_MAX_SOLO = 100_000  # remembered solo queries (they come from the policy file; a bound all the same)

#: a value, or why there is none
Outcome = float | QueryError


class InstantQueries(Protocol):
    """What ``QueryCombiner`` needs of a Prometheus client (``PrometheusClient`` has it)."""

    def instant(self, query: str, at: datetime | float | None = None) -> Samples: ...


def combined(queries: Sequence[str]) -> str:
    """One PromQL expression answering every query, each one's series labelled ``alertscaler_query="<index>"``."""
    return " or ".join(f'label_replace(\n{q}\n, "{LABEL}", "{i}", "", "")' for i, q in enumerate(queries))


def split(samples: Samples, queries: Sequence[str]) -> list[Outcome] | None:
    """The combined query's answer → each query's value or error; None if the answer is not what ``combined``
    asks for (a sample without a valid index): the caller then asks each query alone."""
    if samples.result_type != "vector":
        return None
    found: list[list[tuple[dict[str, str], float]]] = [[] for _ in queries]
    for sample in samples:
        labels = dict(sample.labels)
        index = labels.pop(LABEL, "")
        if not (index.isascii() and index.isdigit()) or int(index) >= len(queries):
            return None
        found[int(index)].append((labels, sample.value))
    out: list[Outcome] = []
    for query, series in zip(queries, found, strict=True):
        if not series:
            out.append(EmptyResult(query))
        elif len(series) > 1:
            out.append(AmbiguousResult(query, [labels for labels, _ in series]))
        else:
            out.append(series[0][1])
    return out


def one_value(samples: Samples, query: str) -> Outcome:
    """``value_of``'s rule for one query's answer: a scalar, or exactly one sample."""
    if not samples:
        return EmptyResult(query)
    if len(samples) > 1:
        return AmbiguousResult(query, [s.labels for s in samples])
    return samples[0].value


class QueryCombiner:
    """``values_of(queries)``: each distinct query's value or error, in requests of up to ``per_request``."""

    def __init__(self, client: InstantQueries, per_request: int = DEFAULT_PER_REQUEST) -> None:
        if not 1 <= per_request <= MAX_PER_REQUEST:
            raise ValueError(f"per_request must be 1..{MAX_PER_REQUEST}, got {per_request}")
        self.client = client
        self.per_request = per_request
        self.solo: set[str] = set()
        self.requests = 0  # HTTP requests made (for tests and benchmarks)

    def values_of(self, queries: Sequence[str]) -> dict[str, Outcome]:
        distinct = list(dict.fromkeys(queries))
        out: dict[str, Outcome] = {}
        together = [q for q in distinct if q not in self.solo] if self.per_request > 1 else []
        alone = [q for q in distinct if q in self.solo] if self.per_request > 1 else distinct
        for start in range(0, len(together), self.per_request):
            batch = together[start:start + self.per_request]
            if len(batch) == 1:
                alone.append(batch[0])
                continue
            out.update(zip(batch, self._combined(batch), strict=True))
        for query in alone:
            out[query] = self._alone(query)[0]
        return out

    def _combined(self, batch: Sequence[str]) -> list[Outcome]:
        try:
            self.requests += 1
            answer = self.client.instant(combined(batch))
        except PrometheusUnavailable as exc:
            return [_unavailable(exc, q) for q in batch]
        except QueryError as exc:  # rejected as a whole: find out which cannot be combined
            outcomes = self._each_alone(batch)
            log.info("a combined query of %d was rejected (%s); asked each alone, %d now asked alone for good",
                     len(batch), exc, len(self.solo))
            return outcomes
        found = split(answer, batch)
        return found if found is not None else self._each_alone(batch)

    def _each_alone(self, batch: Sequence[str]) -> list[Outcome]:
        results = [self._alone(q) for q in batch]
        culprits = [q for q, (outcome, scalar) in zip(batch, results, strict=True)
                    if scalar or isinstance(outcome, BadQuery)]
        unavailable = any(isinstance(outcome, PrometheusUnavailable) for outcome, _ in results)
        if not culprits and not unavailable:  # each works alone, not together (too many samples): keep apart
            culprits = list(batch)
        if len(self.solo) + len(culprits) > _MAX_SOLO:
            self.solo.clear()
        self.solo.update(culprits)
        return [outcome for outcome, _ in results]

    def _alone(self, query: str) -> tuple[Outcome, bool]:
        """(value or error, whether the answer was a scalar)."""
        try:
            self.requests += 1
            samples = self.client.instant(query)
        except QueryError as exc:
            return exc, False
        return one_value(samples, query), samples.result_type == "scalar"


def _unavailable(exc: PrometheusUnavailable, query: str) -> PrometheusUnavailable:
    return PrometheusUnavailable(str(exc), query, exc.status_code)


def one_by_one(value_of: Callable[[str], float]) -> Callable[[Sequence[str]], Mapping[str, Outcome]]:
    """A ``values_of`` made of a one-query function (tests, and callers given only ``value_of``)."""
    def values_of(queries: Sequence[str]) -> dict[str, Outcome]:
        out: dict[str, Outcome] = {}
        for query in dict.fromkeys(queries):
            try:
                out[query] = value_of(query)
            except QueryError as exc:
                out[query] = exc
        return out
    return values_of
