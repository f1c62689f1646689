"""``alertscaler demo`` for real, as a user runs it: a subprocess with real Prometheus, Alertmanager,
alertscaler, workload instances and load. It scales out under the replayed load and back in afterwards, ends
with exit 0 — also on Ctrl-C — and leaves no process behind.

Every process the demo starts inherits its environment, so the test marks the demo with a variable of its
own and looks for that mark in ``/proc/*/environ`` afterwards (the stack's own marker is a secret of the run).
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from alertscaler.demo.preparing import python_env
from alertscaler.providers.common.processes import processes_with_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,  # the whole demo, twice: about two minutes
    pytest.mark.skipif(
        not all(shutil.which(b) for b in ("prometheus", "prometheus-alertmanager")),
        reason="needs the Debian packages prometheus and prometheus-alertmanager "
               "(apt-get install -y prometheus prometheus-alertmanager)",
    ),
]

MARK = "ALERTSCALER_DEMO_TEST"


def marked(mark: str) -> list[int]:
    """Live processes (not zombies) whose environment carries ``MARK=mark``."""
    return processes_with_env(MARK, mark)


def start_demo(mark: str, *args: str) -> subprocess.Popen[str]:
    env = python_env()
    env.update({MARK: mark, "PYTHONIOENCODING": "utf-8", "COLUMNS": "200"})
    return subprocess.Popen(
        [sys.executable, "-m", "alertscaler.cli", "demo", "--no-view", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8", env=env,
        preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """SIGINT as in a terminal, even when pytest runs as a background job (which inherits it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_gone(mark: str, timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    left = marked(mark)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = marked(mark)
    return left


def test_demo_scales_out_then_in_and_leaves_nothing_behind() -> None:
    mark = secrets.token_hex(6)
    demo = start_demo(mark, "--duration", "90", "--max-size", "3")
    try:
        output, _ = demo.communicate(timeout=200)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    print(output)
    assert demo.returncode == 0, output
    assert "Traceback" not in output
    assert re.search(r"decision #\d+: scale_out acted \(scaled\) 1→2", output), output
    assert re.search(r"decision #\d+: scale_in acted \(scaled\) \d→\d", output), output
    summary = re.search(r"scale-outs: (\d+), scale-ins: (\d+), largest size: (\d+)", output)
    assert summary is not None, output
    outs, ins, largest = map(int, summary.groups())
    assert outs >= 1 and ins >= 1 and 2 <= largest <= 3
    assert re.search(r"requests: sent \d+, ok [1-9]\d*, 503 \(overloaded\) \d+", output)
    assert re.search(r"demo: killed instance web-\w+ \(kill -9\)", output), output
    # healed, or (a legitimate race) replaced by a scale action that was running when the instance died
    assert re.search(r"heal demo: killed web-\w+; (healed at \d+:\d+: web-\w+: replace|replaced while scaling)",
                     output), output
    # scale-ins are quiet (victims leave /api/v1/targets and drain before they stop): every heal decision is about
    # the instance the demo killed, none about one a scale-in removed (issue 13 item 7: was 69 of 84 decisions)
    killed = re.search(r"demo: killed instance (web-\w+) \(kill -9\)", output)
    heals = re.search(r"heal decisions: (\d+) \(([^)]*)\), (.*)", output)
    assert killed is not None and heals is not None, output
    assert heals.group(3) == f"all about the killed {killed.group(1)}", heals.group(0)
    assert int(heals.group(1)) <= 8, heals.group(0)  # a few: batched, healed, a resolve or repeat about it
    assert "none left behind" in output
    assert 'M. Arlitt and T. Jin, "1998 World Cup Web Site Access Logs", August 1998' in output
    assert wait_gone(mark) == [], "processes of the demo are still running"


def test_ctrl_c_after_scaling_out_stops_everything() -> None:
    mark = secrets.token_hex(6)
    demo = start_demo(mark, "--duration", "60", "--max-size", "3")
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if re.search(r"scale_out acted \(scaled\) 1→2", line):
                break
        else:
            pytest.fail("no scale-out within 90 s:\n" + "".join(seen))
        assert demo.poll() is None, "".join(seen)
        running = marked(mark)
        # the demo, the watchdog, alertscaler, Alertmanager, Prometheus and at least one instance
        assert len(running) >= 5, running
        time.sleep(2)  # the second instance is starting or running: stop in the middle of things
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        reader.join(10)
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            break
        if line is not None:
            seen.append(line)
    output = "".join(seen)
    print(output)
    assert demo.returncode == 0, output
    assert "stopped early (Ctrl-C)" in output and "none left behind" in output
    assert "Traceback" not in output
    assert wait_gone(mark) == [], "processes of the demo are still running"
    workdir = re.search(r"working directory (\S+)", output)
    assert workdir is not None and not os.path.exists(workdir.group(1))  # the temporary directory is removed
