"""``alertscaler simulate``: a table comparing the chosen policy with the baselines in one run, the PNG and
the JSON; bad options and traces exit 2 with a message, never a traceback; progress on stderr only when asked
or on a terminal. Short traces: seconds in all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from alertscaler.cli import EXIT_NO, EXIT_OK, EXIT_USAGE, main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    """Two hours per minute: quiet, a burst to 8x, quiet again (requests/s, numeric timestamps)."""
    rates = [50] * 30 + [400] * 30 + [200] * 30 + [50] * 30
    path = tmp_path / "load.csv"
    path.write_text("timestamp,value\n" + "".join(f"{60 * i},{r}\n" for i, r in enumerate(rates)))
    return path


def test_simulate_a_csv_with_plot_and_json(csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png, out_json = tmp_path / "out.png", tmp_path / "out.json"
    code = main(["simulate", "--trace", str(csv), "--delay", "2m", "--plot", str(png), "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    for fragment in ("alertscaler-default", "hpa-rps", "hpa-cpu", "seed-step", "oracle", "θU %", "τU %",
                     "actions/day", "instance-h", "vs oracle", "booting %", "limits 2 x requests (CPU up to 200 %)",
                     "ceil(demand / (capacity x 0.7)) within 1..20"):
        assert fragment in out
    assert "goal" not in out  # the project's benchmark goal is not the user's business
    assert out.index("alertscaler-default") < out.index("hpa-rps") < out.index("hpa-cpu") < out.index("seed-step")
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    data = json.loads(out_json.read_text())
    assert [r["policy"] for r in data["results"]] == ["alertscaler-default", "hpa-rps", "hpa-cpu", "seed-step"]
    assert data["scenario"]["delay_s"] == 120 and data["scenario"]["minutes"] == 120
    assert data["scenario"]["peak_rps"] == 400  # a file is replayed as it is
    for result in data["results"]:
        assert {"theta_u", "theta_o", "tau_u", "tau_o", "instability", "jitter", "actions", "actions_per_day",
                "instance_hours", "ratio_to_oracle", "booting"} <= result.keys()
        assert result["ratio_to_oracle"] == pytest.approx(result["instance_hours"] / data["oracle_instance_hours"])
        assert result["actions_per_day"] == pytest.approx(result["actions"] * 12)  # 2 hours
        assert result["initial_size"] == 2  # every policy starts at the oracle's ceil(50 / 28)
    assert "goal" not in data and data["oracle"]["policy"] == "oracle"


def test_the_bundled_trace_and_the_same_figures_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--policy", "seed", "--start", "1998-06-29 14:00", "--minutes", "240", "--speed", "4"]
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    assert main([*argv, "--json", str(first)]) == EXIT_OK
    assert main([*argv, "--json", str(second)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "1998 World Cup Web Site Access Logs" in out  # the trace's notice travels with it
    assert first.read_text() == second.read_text()
    data = json.loads(first.read_text())
    assert [r["policy"] for r in data["results"]] == ["seed-step", "hpa-rps", "hpa-cpu"]  # the chosen one once
    assert data["scenario"]["peak_rps"] == pytest.approx(0.7 * 20 * 40)
    assert data["scenario"]["trace_start"] == "1998-06-29T14:00:00"
    assert data["scenario"]["minutes"] == pytest.approx(60)  # 240 trace minutes, 4x faster


@pytest.mark.parametrize(("args", "fragment"), [
    (["--target", "1.5"], "target must be a utilisation in (0, 1]"),
    (["--min", "5", "--max", "2"], "need 0 <= min (5) <= max (2)"),
    (["--initial", "30"], "initial size 30 is outside min..max"),
    (["--smooth", "0"], "--smooth"),
    (["--start", "tomorrow"], "neither a duration"),
    (["--minutes", "999999"], "pass the end of the trace"),
    (["--trace", "/nonexistent/load.csv"], "no such file"),
    (["--plot", "/nonexistent/dir/out.png", "--minutes", "30"], "--plot: cannot write"),
    (["--json", "/nonexistent/dir/out.json", "--minutes", "30"], "--json: cannot write"),
], ids=["target", "bounds", "initial", "smooth", "start", "minutes", "trace", "plot", "json"])
def test_bad_input_exits_2_with_a_message(args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *args]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert fragment in err
    assert "Traceback" not in err


def test_a_bad_csv_line_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n0,10\n60,lots\n")
    assert main(["simulate", "--trace", str(bad)]) == EXIT_USAGE
    assert f"{bad}, line 3: value 'lots' is not a number" in capsys.readouterr().err


def test_usage_errors_from_argparse_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--delay", "soon"], ["--policy", "magic"], ["--speed", "0"]):
        with pytest.raises(SystemExit) as caught:
            main(["simulate", *args])
        assert caught.value.code == EXIT_USAGE
    assert "must be a duration" in capsys.readouterr().err


def test_plotting_without_matplotlib_says_how_to_get_it(csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)  # import fails
    assert main(["simulate", "--trace", str(csv), "--plot", str(tmp_path / "x.png")]) == EXIT_NO
    assert "pip install 'alertscaler[sim]'" in capsys.readouterr().err


def test_help_explains_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = capsys.readouterr().out
    for fragment in ("--trace", "worldcup98", "electricity", "--column", "--stride", "--delay", "--speed", "--plot",
                     "--json", "HPA", "seeds", "--cpu-limit", "GROUP", "--as", "--when", "--progress"):
        assert fragment in text


@pytest.mark.parametrize(("lines", "args", "fragment"), [
    (["t,cpu", *(f"{60 * i},{0.2 + 0.01 * i}" for i in range(60))], [],
     "the busiest sample is 0.79 req/s, which 1 instance(s) carry at 28 req/s each"),
    (["t,v", "0,0", "60,0"], [], "every value is 0: nothing to replay"),
    (["time,cpu,rps", "0,1,2", "60,2,3"], [], "3 columns (1 'time', 2 'cpu', 3 'rps'): choose the value column"),
    (["0.5", "0.7"], [], "no timestamp column (1 column(s), no header): give the time between rows with --stride"),
    (["t,v", "0,1", "60,2"], ["--column", "rps"], "no column 'rps'; the header has 1 't', 2 'v'"),
], ids=["unscaled-utilisation", "all-zero", "which-column", "no-timestamps", "no-such-column"])
def test_traces_that_would_say_nothing_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   lines: list[str], args: list[str], fragment: str) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(lines) + "\n")
    assert main(["simulate", "--trace", str(path), *args]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_a_utilisation_column_scaled_with_peak_and_the_warnings(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The trace people have: several columns, no timestamps, a utilisation; --column, --stride, --peak."""
    path = tmp_path / "util.csv"
    path.write_text("host,cpu\n" + "".join(f"a,{0.2 + 0.3 * (i // 30 % 2)}\n" for i in range(240)) + "a,\n")
    code = main(["simulate", "--trace", str(path), "--column", "cpu", "--stride", "10s", "--peak", "560"])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert "0.7 h simulated (241 samples, peak 560.0 req/s)" in captured.out  # 240 rows and a gap, 10 s each
    assert "1 empty or NaN value(s) read as gaps" in captured.err
    small = main(["simulate", "--trace", str(path), "--column", "2", "--stride", "10", "--peak", "60"])
    assert small == EXIT_OK
    assert "needs 3 of max_size 20 instances: the replay uses little of the group" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "shown"), [([], False), (["--progress"], True)], ids=["quiet", "asked"])
def test_progress_on_stderr_only_when_asked_off_a_terminal(csv: Path, capsys: pytest.CaptureFixture[str],
                                                            args: list[str], shown: bool) -> None:
    assert main(["simulate", "--trace", str(csv), *args]) == EXIT_OK
    captured = capsys.readouterr()
    assert ("simulating: 100 %" in captured.err) is shown
    assert "simulating" not in captured.out
