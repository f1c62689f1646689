"""``alertscaler simulate``: a table comparing the chosen policy with both baselines in one run, the PNG and
the JSON; bad options and traces exit 2 with a message, never a traceback. Short traces: seconds in all."""

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
    for fragment in ("alertscaler-tracking", "hpa-default", "seed-step", "oracle", "θU %", "τU %", "instability %",
                     "jitter /min", "instance-h", "vs oracle", "goal (τU at most half of hpa-default's"):
        assert fragment in out
    assert out.index("alertscaler-tracking") < out.index("hpa-default") < out.index("seed-step")
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    data = json.loads(out_json.read_text())
    assert [r["policy"] for r in data["results"]] == ["alertscaler-tracking", "hpa-default", "seed-step"]
    assert data["scenario"]["delay_s"] == 120 and data["scenario"]["minutes"] == 120
    assert data["scenario"]["peak_rps"] == 400  # a file is replayed as it is
    for result in data["results"]:
        assert {"theta_u", "theta_o", "tau_u", "tau_o", "instability", "jitter", "actions", "instance_hours",
                "ratio_to_oracle"} <= result.keys()
        assert result["ratio_to_oracle"] == pytest.approx(result["instance_hours"] / data["oracle_instance_hours"])
    assert isinstance(data["goal"]["met"], bool)


def test_the_bundled_trace_and_the_same_figures_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--policy", "seed", "--start", "1998-06-29 14:00", "--minutes", "240", "--speed", "4"]
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    assert main([*argv, "--json", str(first)]) == EXIT_OK
    assert main([*argv, "--json", str(second)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "1998 World Cup Web Site Access Logs" in out  # the trace's notice travels with it
    assert first.read_text() == second.read_text()
    data = json.loads(first.read_text())
    assert [r["policy"] for r in data["results"]] == ["seed-step", "hpa-default"]  # the chosen baseline once
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
    for fragment in ("--trace", "worldcup98", "--delay", "--speed", "--plot", "--json", "HPA", "seeds"):
        assert fragment in text
