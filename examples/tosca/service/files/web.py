#!/usr/bin/env python3
"""The example's web server and its manager (standard library only, Python 3.8+), installed on the host.

    web.py serve    --port P [--listen ADDR] [--member web-I]
    web.py converge --run-dir D --count N --base-port P [--listen ADDR] [--advertise ADDR]
    web.py restart  --run-dir D --member web-I --base-port P [--listen ADDR]
    web.py stop-all --run-dir D

``serve`` answers ``/`` (which member answered), ``/metrics`` (Prometheus text format: ``process_cpu_seconds_total``
and ``web_requests_total``, what the example's CPU rules read) and ``/burn?seconds=S`` (keeps one core busy for
S seconds, at most 30: load for trying the HighCpuLoad rule).

``converge`` makes exactly ``web-0 .. web-(N-1)`` run (member ``web-I`` on ``ADDR:P+I``, pid in ``D/web-I.pid``,
output in ``D/web-I.log``): it starts the missing ones detached (own session, output to the log) and stops the
others, leaves running ones alone, waits until each answers, and prints the members as JSON
(``[{"id": "web-0", "address": "ADVERTISE:P"}, ...]``, alertscaler's ``members_output``). A pid file names a
live server only if that process's command line is ``web.py serve`` on that port, so a recycled pid is never
signalled. In production, replace this by your service manager (e.g. a systemd unit template ``web@.service``
started per index): the converging contract stays the same.
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
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
PID_FILE = re.compile(r"web-(\d+)\.pid")
MEMBER = re.compile(r"web-(\d+)")


class Failure(Exception):
    pass


# -- serving ------------------------------------------------------------------------------------------------


def serve(listen: str, port: int, member: str) -> None:
    requests = {"count": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            with lock:
                requests["count"] += 1
            url = urlsplit(self.path)
            if url.path == "/metrics":
                times = os.times()
                body = (
                    "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                    "# TYPE process_cpu_seconds_total counter\n"
                    f"process_cpu_seconds_total {times.user + times.system}\n"
                    "# HELP web_requests_total HTTP requests answered.\n"
                    "# TYPE web_requests_total counter\n"
                    f"web_requests_total {requests['count']}\n"
                )
                self._answer(200, body, "text/plain; version=0.0.4; charset=utf-8")
            elif url.path == "/burn":
                seconds = min(30.0, float(parse_qs(url.query).get("seconds", ["5"])[0]))
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    pass
                self._answer(200, f"{member} burned {seconds:g}s of CPU\n")
            elif url.path == "/":
                self._answer(200, f"{member}\n")
            else:
                self._answer(404, "not found\n")

        def _answer(self, status: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the signature http.server calls)
            pass

    server = ThreadingHTTPServer((listen, port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"{member} serving on {listen}:{port}", flush=True)
    server.serve_forever()


# -- managing -----------------------------------------------------------------------------------------------


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return []
    return [] if state in ("Z", "X") else raw.decode(errors="replace").split("\0")


def running_pid(run_dir: Path, index: int, port: int | None) -> int | None:
    try:
        pid = int((run_dir / f"web-{index}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    argv = command_line(pid)
    if "serve" not in argv or not any(a.endswith("web.py") for a in argv):
        return None
    return pid if port is None or str(port) in argv else None


def answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


def start(run_dir: Path, index: int, listen: str, port: int) -> subprocess.Popen[bytes]:
    probe = "127.0.0.1" if listen in ("0.0.0.0", "") else listen
    if answers(probe, port):
        raise Failure(f"cannot start web-{index}: port {port} is taken by another process")
    with (run_dir / f"web-{index}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "serve", "--port", str(port), "--listen", listen,
             "--member", f"web-{index}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True, start_new_session=True,
        )
    (run_dir / f"web-{index}.pid").write_text(f"{process.pid}\n")
    return process


def wait_until_answering(process: subprocess.Popen[bytes] | None, index: int, listen: str, port: int) -> None:
    probe = "127.0.0.1" if listen in ("0.0.0.0", "") else listen
    deadline = time.monotonic() + START_TIMEOUT
    while not answers(probe, port):
        if process is not None and process.poll() is not None:
            raise Failure(f"web-{index} on port {port} exited with status {process.returncode} (see its log)")
        if time.monotonic() > deadline:
            raise Failure(f"web-{index} on port {port} did not answer within {START_TIMEOUT:g}s")
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
    (run_dir / f"web-{index}.pid").unlink(missing_ok=True)


def recorded(run_dir: Path) -> list[int]:
    if not run_dir.is_dir():
        return []
    return sorted(int(m.group(1)) for p in run_dir.iterdir() if (m := PID_FILE.fullmatch(p.name)))


def converge(run_dir: Path, count: int, base_port: int, listen: str, advertise: str) -> list[dict[str, str]]:
    run_dir.mkdir(parents=True, exist_ok=True)
    for index in recorded(run_dir):
        if index >= count:
            stop(run_dir, index)
    started = {}
    for index in range(count):
        if running_pid(run_dir, index, base_port + index) is None:
            started[index] = start(run_dir, index, listen, base_port + index)
    for index in range(count):
        wait_until_answering(started.get(index), index, listen, base_port + index)
    return [{"id": f"web-{i}", "address": f"{advertise}:{base_port + i}"} for i in range(count)]


def restart(run_dir: Path, member: str, base_port: int, listen: str) -> None:
    match = MEMBER.fullmatch(member)
    if match is None or int(match.group(1)) not in recorded(run_dir):
        raise Failure(f"{member!r} is not a member here (members: {', '.join(f'web-{i}' for i in recorded(run_dir))})")
    index = int(match.group(1))
    stop(run_dir, index)
    wait_until_answering(start(run_dir, index, listen, base_port + index), index, listen, base_port + index)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["serve", "converge", "restart", "stop-all"])
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--base-port", type=int, default=8100)
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--advertise", default="127.0.0.1")
    parser.add_argument("--member", default="web")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.listen, args.port, args.member)
        return 0
    if args.run_dir is None:
        parser.error("--run-dir is required")
    try:
        if args.command == "converge":
            print(json.dumps(converge(args.run_dir, args.count, args.base_port, args.listen, args.advertise)))
        elif args.command == "restart":
            restart(args.run_dir, args.member, args.base_port, args.listen)
            print(json.dumps({"restarted": args.member}))
        else:
            for index in recorded(args.run_dir):
                stop(args.run_dir, index)
            print(json.dumps({"stopped": True}))
    except Failure as exc:
        print(f"web.py {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
