"""Backtest: the simulator's trace taken from a real Prometheus ("what would this policy have done last week?").

Owns the turning of a range query's answer into a ``Trace`` (``trace_from_series``: pure) and the fetch
(``fetch_trace``: one ``PrometheusClient.range`` call, long ranges split by the client). Called by
``alertscaler backtest``, which then runs the same comparison as ``alertscaler simulate`` (``sim.comparing``).

The query must give the group's demand in requests/s as ONE series (e.g.
``sum(rate(http_requests_total{job="web"}[1m]))``). Each point holds until the next one (a gap in the data
keeps the last value); the last point lasts one ``step``. ``NaN`` points (e.g. a rate over no samples) are
dropped; a negative or infinite value is an error.

Errors: ``BacktestError`` (a ``TraceError``, so a ``ValueError``) naming the problem — several series (their
labels), no data, an unusable value; the client's ``QueryError`` subtree (``BadQuery``,
``PrometheusUnavailable``) and ``InputError`` (bad URL, bad times) pass through unchanged.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from alertscaler.prometheus.client import PrometheusClient, Series
from alertscaler.sim.traces import Trace, TraceError

__all__ = ["BacktestError", "NoData", "fetch_trace", "trace_from_series"]

_SHOWN = 5  # series named in an "several series" error


class BacktestError(TraceError):
    """The range query's answer cannot be replayed: several series, or an unusable value."""


class NoData(BacktestError):
    """The range query gave no series, or only NaN points, in the range asked for."""


def trace_from_series(series: list[Series], query: str, step: float, *, span: str = "") -> Trace:
    """One series of ``(time, requests/s)`` points → a ``Trace`` named after ``query``, starting at its first
    point (an aware UTC date-time). ``span`` (e.g. "from … to …") completes the "no data" message."""
    where = f" {span}" if span else ""
    if not series:
        raise NoData(f"no data: the query {query!r} gave no series{where}")
    if len(series) > 1:
        shown = ", ".join(_selector(s.labels) for s in series[:_SHOWN])
        more = f" and {len(series) - _SHOWN} more" if len(series) > _SHOWN else ""
        raise BacktestError(f"the query {query!r} gave {len(series)} series ({shown}{more}); the backtest needs "
                            "the group's total demand as one series: aggregate it, e.g. sum(...)")
    if not (math.isfinite(step) and step > 0):
        raise BacktestError(f"the step must be a number of seconds > 0, got {step!r}")
    points = [(at, value) for at, value in series[0].points if not math.isnan(value)]
    if not points:
        raise NoData(f"no data: the query {query!r} gave only NaN values{where}")
    for at, value in points:
        if not (math.isfinite(value) and value >= 0):
            raise BacktestError(f"the query {query!r} gave {value:g} at {at.isoformat()}: the demand must be a "
                                "finite number of requests/s >= 0")
    first = points[0][0]
    offsets = tuple((at - first).total_seconds() for at, _ in points)
    return Trace(tuple(v for _, v in points), offsets, offsets[-1] + step, first, f"prometheus: {query}")


def fetch_trace(client: PrometheusClient, query: str, start: datetime, end: datetime, step: float) -> Trace:
    """``query`` over ``[start, end]`` every ``step`` seconds → ``Trace`` (see ``trace_from_series``)."""
    answer = client.range(query, start, end, timedelta(seconds=step))
    span = f"from {start.isoformat(timespec='seconds')} to {end.isoformat(timespec='seconds')}"
    return trace_from_series(list(answer), query, step, span=span)


def _selector(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{inner}}}"
