"""Local web servers for the tosca provider's test service: ``python3 -m http.server`` per index.

Run by the service's playbooks (standard library only, any Python 3.8+)::

    servers.py converge --run-dir D --base-port P --count N [--bind 127.0.0.1]
    servers.py restart  --run-dir D --base-port P --member web-I [--bind 127.0.0.1]
    servers.py stop-all --run-dir D

Server ``web-I`` listens on ``BIND:P+I`` and serves ``D/www-I`` (a page saying ``web-I``); its pid is in
``D/web-I.pid``, its output in ``D/web-I.log``. Each
is started detached (a session of its own, no inherited output), so the playbook that started it ends while
it keeps running. ``converge`` starts the missing servers ``web-0 .. web-(N-1)``, leaves running ones alone,
stops those at index N and above, and prints the members as JSON (``[{"id": .., "address": ..}, ...]``) once
every one of them answers on its port. A port already taken by some other process is an error. A pid file
names a live server only if that process's command line is this server's (a recycled pid is never
signalled). Errors go to stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT = 15.0  # seconds for a new server to accept connections
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
PID_FILE = re.compile(r"web-(\d+)\.pid")


class Failure(Exception):
    pass


def pid_file(run_dir: Path, index: int) -> Path:
    return run_dir / f"web-{index}.pid"


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return []
    return [] if state in ("Z", "X") else raw.decode(errors="replace").split("\0")


def running_pid(run_dir: Path, index: int, port: int | None) -> int | None:
    """The pid of server ``index`` if it runs (its command line is ours, on ``port`` when given)."""
    try:
        pid = int(pid_file(run_dir, index).read_text().strip())
    except (OSError, ValueError):
        return None
    argv = command_line(pid)
    if "http.server" not in argv:
        return None
    if port is not None and str(port) not in argv:
        return None
    return pid


def answers(bind: str, port: int) -> bool:
    try:
        with socket.create_connection((bind, port), timeout=1.0):
            return True
    except OSError:
        return False


def start(run_dir: Path, index: int, bind: str, port: int) -> subprocess.Popen[bytes]:
    if answers(bind, port):
        raise Failure(f"cannot start web-{index}: {bind}:{port} is already taken by another process")
    www = run_dir / f"www-{index}"
    www.mkdir(parents=True, exist_ok=True)
    (www / "index.html").write_text(f"web-{index}\n")
    log_path = run_dir / f"web-{index}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", bind, "--directory", str(www)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            close_fds=True,
            start_new_session=True,
        )
    pid_file(run_dir, index).write_text(f"{process.pid}\n")
    return process


def wait_until_answering(process: subprocess.Popen[bytes] | None, index: int, bind: str, port: int,
                         run_dir: Path) -> None:
    """Until ``bind:port`` accepts connections. ``process`` is the server just started (its exit before that
    is an error), None for one that was already running."""
    deadline = time.monotonic() + START_TIMEOUT
    while not answers(bind, port):
        if process is not None and process.poll() is not None:
            tail = (run_dir / f"web-{index}.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise Failure(f"web-{index} on {bind}:{port} exited with {process.returncode}: " + " | ".join(tail))
        if time.monotonic() > deadline:
            raise Failure(f"web-{index} on {bind}:{port} did not answer within {START_TIMEOUT:g}s")
        time.sleep(0.05)


def stop(run_dir: Path, index: int) -> None:
    pid = running_pid(run_dir, index, None)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while command_line(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if command_line(pid):
            os.kill(pid, signal.SIGKILL)
    pid_file(run_dir, index).unlink(missing_ok=True)


def recorded(run_dir: Path) -> list[int]:
    if not run_dir.is_dir():
        return []
    return sorted(int(m.group(1)) for p in run_dir.iterdir() if (m := PID_FILE.fullmatch(p.name)))


def members(bind: str, base_port: int, count: int) -> list[dict[str, str]]:
    return [{"id": f"web-{i}", "address": f"{bind}:{base_port + i}"} for i in range(count)]


def converge(run_dir: Path, bind: str, base_port: int, count: int) -> list[dict[str, str]]:
    run_dir.mkdir(parents=True, exist_ok=True)
    for index in recorded(run_dir):
        if index >= count:
            stop(run_dir, index)
    started: dict[int, subprocess.Popen[bytes]] = {}
    for index in range(count):
        if running_pid(run_dir, index, base_port + index) is None:
            started[index] = start(run_dir, index, bind, base_port + index)
    for index in range(count):
        wait_until_answering(started.get(index), index, bind, base_port + index, run_dir)
    return members(bind, base_port, count)


def restart(run_dir: Path, bind: str, base_port: int, member: str) -> None:
    match = re.fullmatch(r"web-(\d+)", member)
    if match is None:
        raise Failure(f"no such member {member!r} (members are web-0, web-1, ...)")
    index = int(match.group(1))
    if index not in recorded(run_dir):
        raise Failure(f"{member} is not a member of this deployment")
    stop(run_dir, index)
    process = start(run_dir, index, bind, base_port + index)
    wait_until_answering(process, index, bind, base_port + index, run_dir)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["converge", "restart", "stop-all"])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--base-port", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--member", default="")
    parser.add_argument("--bind", default="127.0.0.1")
    args = parser.parse_args(argv)
    try:
        if args.command == "converge":
            print(json.dumps(converge(args.run_dir, args.bind, args.base_port, args.count)))
        elif args.command == "restart":
            restart(args.run_dir, args.bind, args.base_port, args.member)
            print(json.dumps({"restarted": args.member}))
        else:
            for index in recorded(args.run_dir):
                stop(args.run_dir, index)
            print(json.dumps({"stopped": True}))
    except Failure as exc:
        print(f"servers.py {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
