"""``sim.traces``: the timestamp,value CSV (header optional, gzip or plain, errors naming line and problem),
the bundled WorldCup98 excerpt, and cutting, compressing, scaling, smoothing."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alertscaler.sim.traces import Trace, TraceError, load_trace, notice_text, parse_trace


def test_dates_with_a_header() -> None:
    trace = parse_trace(["timestamp,rps", "1998-06-29 00:00:00,10", "1998-06-29 00:01:00,20",
                         "1998-06-29 00:03:00,5"], "t.csv")
    assert trace.start == datetime(1998, 6, 29)
    assert trace.values == (10, 20, 5)
    assert trace.offsets == (0, 60, 180)
    assert trace.end == 300  # the last row lasts as long as the one before it
    assert trace.name == "t.csv"


def test_numeric_seconds_without_a_header_blank_lines_and_comments() -> None:
    trace = parse_trace(["# a comment", "", "100,1.5", "115, 2", "130,0"])
    assert trace.start is None
    assert trace.offsets == (0, 15, 30) and trace.end == 45
    assert trace.values == (1.5, 2.0, 0.0)


def test_a_count_header_means_requests_per_row() -> None:
    trace = parse_trace(["period,count", "1998-06-29 00:00:00,600", "1998-06-29 00:01:00,1200"])
    assert trace.values == (10.0, 20.0)  # per minute -> per second


def test_iso_dates_with_a_time_zone() -> None:
    trace = parse_trace(["2024-05-01T12:00:00Z,1", "2024-05-01T12:00:30Z,2"])
    assert trace.offsets == (0, 30) and trace.start is not None and trace.start.tzinfo is not None


@pytest.mark.parametrize(("lines", "fragment"), [
    (["t,v", "0,1", "15,2,3"], "line 3: expected 2 columns 't,v', got 3"),
    (["0,1", "15,2,3"], "line 2: expected 2 columns 'timestamp,value', got 3"),
    (["0,1", "yesterday,2"], "line 2: timestamp 'yesterday' is neither a number of seconds nor an ISO 8601"),
    (["0,1", "15,abc"], "line 2: value 'abc' is not a number"),
    (["0,1", "15,-3"], "line 2: value -3 must be finite and >= 0"),
    (["0,1", "15,inf"], "line 2: value inf must be finite and >= 0"),
    (["0,1", "30,2", "30,3"], "line 3: timestamp '30' is not after the previous row's"),
    (["0,1", "15,2", "1998-06-29 00:00:00,3"],
     "line 3: timestamp '1998-06-29 00:00:00' is a date-time; the rows before have numbers"),
    (["2024-05-01T12:00:00Z,1", "2024-05-01T12:01:00,2"], "line 2: timestamp '2024-05-01T12:01:00' mixes dates"),
    (["t,v", "0,1"], "needs at least 2 rows of timestamp,value (got 1)"),
    ([], "needs at least 2 rows"),
    (["a;b"], "needs at least 2 rows"),
    (["time,cpu,rps", "0,1,2", "15,2,3"], "3 columns (1 'time', 2 'cpu', 3 'rps'): choose the value column with "
                                          "--column"),
    (["0.5", "0.7"], "no timestamp column (1 column(s), no header): give the time between rows with --stride"),
], ids=["columns", "columns-no-header", "timestamp", "value", "negative", "infinite", "not-increasing",
        "numbers-then-dates", "time-zones", "one-row", "empty", "header-only", "which-column", "no-timestamps"])
def test_bad_csv_names_line_and_problem(lines: list[str], fragment: str) -> None:
    with pytest.raises(TraceError, match=r"t\.csv") as caught:
        parse_trace(lines, "t.csv")
    assert fragment in str(caught.value)


@pytest.mark.parametrize(("lines", "column", "stride", "values", "offsets"), [
    (["time,cpu,rps", "0,0.5,10", "10,0.6,20"], "rps", None, (10, 20), (0, 10)),
    (["time,cpu,rps", "0,0.5,10", "10,0.6,20"], "3", None, (10, 20), (0, 10)),
    (["time,cpu,rps", "0,0.5,10", "10,0.6,20"], "RPS", 5.0, (10, 20), (0, 5)),   # --stride ignores timestamps
    (["12", "15", "9"], None, 10.0, (12, 15, 9), (0, 10, 20)),                    # values only
    (["rps", "12", "15"], None, 60.0, (12, 15), (0, 60)),
    (["host\tts\trps", "a\t0\t1", "a\t30\t2"], "rps", None, (1, 2), (0, 30)),   # tabs; ts named like a time
    (["t;v", "0;1,5", "60;2"], None, None, None, None),                           # semicolons: see below
    (["0 1", "60 2"], None, None, (1, 2), (0, 60)),                                # spaces
    (["t,v", "0,1", "60,", "120,NaN", "180,4"], None, None, (1, 1, 1, 4), (0, 60, 120, 180)),  # gaps hold
], ids=["by-name", "by-number", "stride", "values-only", "header-stride", "tabs", "semicolons", "spaces", "gaps"])
def test_columns_strides_and_gaps(lines: list[str], column: str | None, stride: float | None,
                                  values: tuple[float, ...] | None, offsets: tuple[float, ...] | None) -> None:
    if values is None:  # a semicolon file: a comma is then part of a field
        with pytest.raises(TraceError, match="value '1,5' is not a number"):
            parse_trace(lines, "t.csv", column=column, stride=stride)
        return
    trace = parse_trace(lines, "t.csv", column=column, stride=stride)
    assert (trace.values, trace.offsets) == (values, offsets)


def test_gaps_are_counted_and_unix_times_give_dates() -> None:
    trace = parse_trace(["timestamp,value", "960163200,1", "960165000,", "960166800,3"])
    assert trace.skipped == 1 and trace.values == (1, 1, 3)
    assert trace.start == datetime(2000, 6, 5, tzinfo=UTC)
    millis = parse_trace(["960163200000,1", "960163210000,2"])
    assert millis.offsets == (0, 10) and millis.start == datetime(2000, 6, 5, tzinfo=UTC)


@pytest.mark.parametrize(("column", "fragment"), [
    ("4", "column 4: the file has 3 column(s)"),
    ("mem", "no column 'mem'; the header has 1 'time', 2 'cpu', 3 'rps'"),
], ids=["number", "name"])
def test_bad_columns(column: str, fragment: str) -> None:
    with pytest.raises(TraceError, match=r"t\.csv") as caught:
        parse_trace(["time,cpu,rps", "0,1,2", "15,2,3"], "t.csv", column=column)
    assert fragment in str(caught.value)


def test_a_column_name_needs_a_header() -> None:
    with pytest.raises(TraceError, match="no header line; give the column's number"):
        parse_trace(["0,1,2", "15,2,3"], "t.csv", column="rps")


def test_without_a_column_named_like_a_time_give_the_stride() -> None:
    lines = ["cpu,mem,rps", "1,2,3", "2,3,4"]
    with pytest.raises(TraceError, match=r"no timestamp column \(1 'cpu', 2 'mem', 3 'rps'\): give .* --stride"):
        parse_trace(lines, "t.csv", column="rps")
    assert parse_trace(lines, "t.csv", column="rps", stride=10).values == (3, 4)


def test_the_bundled_electricity_trace() -> None:
    trace = load_trace("electricity")
    assert trace.start == datetime(2000, 6, 5, tzinfo=UTC)
    assert len(trace.values) == 12 * 7 * 48 and trace.end == 12 * 7 * 86400
    assert "Taylor" in notice_text("electricity") and "MIT License" in notice_text("electricity")


def test_plain_and_gzip_files_read_the_same(tmp_path: Path) -> None:
    text = "timestamp,value\n0,1\n60,2\n120,4\n"
    plain = tmp_path / "a.csv"
    plain.write_text(text)
    packed = tmp_path / "a.data"  # recognised by content, not by name
    packed.write_bytes(gzip.compress(text.encode()))
    assert load_trace(plain).values == load_trace(packed).values == (1, 2, 4)


@pytest.mark.parametrize(("content", "fragment"), [
    (b"\x1f\x8bnot really gzip", "not a valid gzip file"),
    (b"0,1\n15,\xff\n", "line 2: not UTF-8 text"),
    (b"0,1\n15,x\n", "line 2: value 'x' is not a number"),
], ids=["bad-gzip", "not-utf8", "bad-value"])
def test_bad_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(TraceError, match=str(path)) as caught:
        load_trace(path)
    assert fragment in str(caught.value)


def test_a_missing_file_names_the_bundled_traces(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"no such file.*worldcup98"):
        load_trace(tmp_path / "nope.csv")


def test_the_bundled_worldcup98_excerpt() -> None:
    trace = load_trace("worldcup98")
    assert trace.start == datetime(1998, 6, 29)
    assert len(trace.values) == 4 * 24 * 60 and trace.end == 4 * 86400
    assert trace.peak == pytest.approx(225138 / 60)  # requests per minute -> per second
    assert "Arlitt" in notice_text()


TRACE = Trace((10.0, 20.0, 40.0), (0.0, 60.0, 120.0), 180.0, datetime(2024, 1, 1), "t")


@pytest.mark.parametrize(("t", "rate"), [(-5, 10), (0, 10), (59.9, 10), (60, 20), (179, 40), (500, 40)],
                         ids=["before", "start", "inside", "boundary", "last", "after"])
def test_rate_at_is_piecewise_constant(t: float, rate: float) -> None:
    assert TRACE.rate_at(t) == rate


def test_window_cuts_inside_samples() -> None:
    part = TRACE.window(30, 60)
    assert (part.values, part.offsets, part.end) == ((10, 20), (0, 30), 60)
    assert part.start == datetime(2024, 1, 1, 0, 0, 30)
    assert TRACE.window(60).values == (20, 40)
    assert TRACE.offset_of(datetime(2024, 1, 1, 0, 2)) == 120


@pytest.mark.parametrize(("start", "duration", "fragment"), [
    (200, None, "the start (2024-01-01 00:03:20) is outside the trace"),
    (60, 180, "3 min from 2024-01-01 00:01:00 pass the end of the trace"),
    (0, 0, "needs a duration > 0"),
], ids=["start-after-end", "past-the-end", "empty"])
def test_bad_windows(start: float, duration: float | None, fragment: str) -> None:
    with pytest.raises(TraceError, match="t: ") as caught:
        TRACE.window(start, duration)
    assert fragment in str(caught.value)


def test_compress_scale_smooth() -> None:
    fast = TRACE.compressed(10)
    assert (fast.offsets, fast.end, fast.values) == ((0, 6, 12), 18, TRACE.values)
    assert TRACE.scaled_to_peak(400).values == (100, 200, 400)
    assert TRACE.smoothed(3).values == pytest.approx((15, 70 / 3, 30))
    assert TRACE.smoothed(1) is TRACE
    with pytest.raises(TraceError, match="speed"):
        TRACE.compressed(0)
    with pytest.raises(TraceError, match="peak"):
        TRACE.scaled_to_peak(-1)
    with pytest.raises(TraceError, match="smoothing"):
        TRACE.smoothed(0)
    with pytest.raises(TraceError, match="no requests at all"):
        Trace((0.0, 0.0), (0.0, 1.0), 2.0).scaled_to_peak(5)
