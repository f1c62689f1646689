"""The demo's traffic shape: the bundled World Cup 1998 excerpt, scaled to a peak and time-compressed."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta
from importlib import resources

import pytest

from alertscaler.demo.trace import (
    DEFAULT_MINUTES,
    DEFAULT_START,
    EXCERPT_RESOURCE,
    Replay,
    Trace,
    default_replay,
    load_excerpt,
    make_replay,
    notice_text,
    parse_trace,
    peak_for,
)

T0 = datetime(1998, 6, 30, 0, 0)


def trace(*counts: float) -> Trace:
    return Trace(T0, tuple(float(c) for c in counts))


# -- the shipped data -----------------------------------------------------------------------------------------


def test_the_notice_is_shipped_with_the_unmodified_copyright_and_disclaimer() -> None:
    text = notice_text()
    assert "Arlitt" in text
    assert "permission to use and redistribute" in text
    assert "as long as this Copyright and Disclaimer is distributed unmodified." in text
    assert 'M. Arlitt and T. Jin, "1998 World Cup Web Site Access Logs",\nAugust 1998.' in text
    assert "worldcup98-excerpt.csv.gz" in text  # says what the excerpt is


def test_the_excerpt_is_small_and_covers_four_whole_days_per_minute() -> None:
    raw = resources.files("alertscaler").joinpath(EXCERPT_RESOURCE).read_bytes()
    assert len(raw) < 100 * 1024
    assert gzip.decompress(raw).startswith(b"period,count\n")
    excerpt = load_excerpt()
    assert excerpt.start == datetime(1998, 6, 29, 0, 0)
    assert len(excerpt.counts) == 4 * 24 * 60
    assert excerpt.end == datetime(1998, 7, 3, 0, 0)
    assert max(excerpt.counts) > 200_000  # the busiest minutes of the tournament
    assert min(excerpt.counts) < 10_000  # quiet nights


def test_the_default_window_goes_quiet_busy_quiet() -> None:
    replay = default_replay(max_size=5, capacity_rps=80.0)
    assert replay.peak == pytest.approx(0.9 * 5 * 80.0)
    assert replay.duration == DEFAULT_MINUTES  # one trace minute per second by default
    start, end = replay.rate_at(0), replay.rate_at(replay.duration)
    assert start < 80.0 * 0.6 and end < 80.0 * 0.8  # one instance copes at both ends
    assert replay.peak / start > 10
    assert datetime(1998, 6, 30, 10, 0) == DEFAULT_START


# -- parsing ---------------------------------------------------------------------------------------------------


def test_parse_reads_consecutive_minutes() -> None:
    parsed = parse_trace(["period,count", "1998-06-30 00:00:00,5", "1998-06-30 00:01:00,7", ""])
    assert parsed == trace(5, 7)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["period,count"], "no rows"),
        (["period,count", "1998-06-30 00:00:00,5", "1998-06-30 00:02:00,7"], "line 3: .* not the minute after"),
        (["period,count", "yesterday,5"], "line 2: expected"),
        (["period,count", "1998-06-30 00:00:00,-1"], "finite and >= 0"),
    ],
)
def test_parse_rejects(lines: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_trace(lines)


# -- windows and smoothing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start_minute", "minutes", "expected"),
    [
        (None, None, (1, 2, 3, 4, 5)),
        (1, 3, (2, 3, 4)),
        (4, 1, (5,)),
        (2, None, (3, 4, 5)),
    ],
)
def test_window(start_minute: int | None, minutes: int | None, expected: tuple[float, ...]) -> None:
    start = None if start_minute is None else T0 + timedelta(minutes=start_minute)
    cut = trace(1, 2, 3, 4, 5).window(start, minutes)
    assert cut.counts == expected
    assert cut.start == T0 + timedelta(minutes=start_minute or 0)


@pytest.mark.parametrize(
    ("start_minute", "minutes"),
    [(-1, 2), (5, 1), (3, 3), (0, 0)],
)
def test_window_outside_the_trace_is_an_error(start_minute: int, minutes: int) -> None:
    with pytest.raises(ValueError):
        trace(1, 2, 3, 4, 5).window(T0 + timedelta(minutes=start_minute), minutes)


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (1, (0, 0, 9, 0, 0)),
        (3, (0, 3, 3, 3, 0)),  # centred, shorter at the edges
        (2, (0, 4.5, 4.5, 0, 0)),  # even widths lean forward
    ],
)
def test_smoothing(minutes: int, expected: tuple[float, ...]) -> None:
    assert trace(0, 0, 9, 0, 0).smoothed(minutes).counts == pytest.approx(expected)


# -- scaling, interpolation, compression -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "peak_rps", "expected"),
    [
        ((100, 200, 400), 80.0, (20.0, 40.0, 80.0)),
        ((3, 3, 3), 10.0, (10.0, 10.0, 10.0)),
        ((0, 225_138, 11_945), 360.0, (0.0, 360.0, 11_945 * 360.0 / 225_138)),
    ],
)
def test_scaling_puts_the_peak_at_the_target(
    counts: tuple[float, ...], peak_rps: float, expected: tuple[float, ...]
) -> None:
    replay = make_replay(trace(*counts), peak_rps=peak_rps)
    assert replay.samples == pytest.approx(expected)
    assert replay.peak == pytest.approx(peak_rps)


def test_scaling_uses_the_window_only() -> None:
    replay = make_replay(trace(1000, 10, 20), peak_rps=4.0, start=T0 + timedelta(minutes=1))
    assert replay.samples == pytest.approx((2.0, 4.0))


@pytest.mark.parametrize(
    ("max_size", "capacity", "fraction", "expected"),
    [(5, 80.0, 0.9, 360.0), (1, 40.0, 0.5, 20.0), (3, 100.0, 1.0, 300.0)],
)
def test_peak_for(max_size: int, capacity: float, fraction: float, expected: float) -> None:
    assert peak_for(max_size, capacity, fraction) == pytest.approx(expected)


@pytest.mark.parametrize(("max_size", "capacity", "fraction"), [(0, 80.0, 0.9), (5, 0.0, 0.9), (5, 80.0, 0.0)])
def test_peak_for_rejects_nonsense(max_size: int, capacity: float, fraction: float) -> None:
    with pytest.raises(ValueError):
        peak_for(max_size, capacity, fraction)


@pytest.mark.parametrize("peak", [0.0, -1.0, float("inf"), float("nan")])
def test_make_replay_rejects_bad_peaks(peak: float) -> None:
    with pytest.raises(ValueError):
        make_replay(trace(1, 2), peak_rps=peak)


def test_make_replay_rejects_an_empty_window() -> None:
    with pytest.raises(ValueError, match="no requests"):
        make_replay(trace(0, 0), peak_rps=10.0)


INTERPOLATION = Replay((10.0, 20.0, 40.0), seconds_per_sample=1.0)


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (-5.0, 10.0),  # before the start: the first value
        (0.0, 10.0),
        (0.25, 12.5),
        (0.5, 15.0),
        (1.0, 20.0),
        (1.75, 35.0),
        (2.0, 40.0),
        (2.9, 40.0),  # the last minute holds
        (100.0, 40.0),
    ],
)
def test_linear_interpolation(t: float, expected: float) -> None:
    assert INTERPOLATION.rate_at(t) == pytest.approx(expected)
    assert INTERPOLATION(t) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("seconds_per_minute", "t", "expected"),
    [
        (1.0, 1.0, 20.0),
        (0.5, 0.5, 20.0),  # twice as fast
        (0.5, 0.25, 15.0),
        (60.0, 60.0, 20.0),  # real time
        (60.0, 90.0, 30.0),
        (10.0, 15.0, 30.0),
    ],
)
def test_compression(seconds_per_minute: float, t: float, expected: float) -> None:
    replay = make_replay(trace(10, 20, 40), peak_rps=40.0, seconds_per_minute=seconds_per_minute)
    assert replay.rate_at(t) == pytest.approx(expected)
    assert replay.duration == pytest.approx(3 * seconds_per_minute)


@pytest.mark.parametrize(
    ("t", "expected"),
    [(3.0, 10.0), (2.5, 25.0), (4.5, 30.0), (-0.5, 25.0)],  # wraps around, interpolating last -> first
)
def test_wrap(t: float, expected: float) -> None:
    assert Replay((10.0, 20.0, 40.0), 1.0, wrap=True).rate_at(t) == pytest.approx(expected)


def test_replays_are_deterministic() -> None:
    first = default_replay(max_size=4, capacity_rps=50.0, seconds_per_minute=0.5)
    second = default_replay(max_size=4, capacity_rps=50.0, seconds_per_minute=0.5)
    assert first == second
    times = [i * 0.137 for i in range(4000)]
    assert [first.rate_at(t) for t in times] == [second.rate_at(t) for t in times]


def test_rates_are_never_negative_and_never_above_the_peak() -> None:
    replay = default_replay(max_size=5, capacity_rps=80.0)
    rates = [replay.rate_at(t / 10) for t in range(int(replay.duration * 10) + 1)]
    assert min(rates) > 0
    assert max(rates) == pytest.approx(360.0)
