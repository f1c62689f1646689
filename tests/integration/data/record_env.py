"""Test helper run as an exec provider command: records what it was given, then behaves as told.

Usage: record_env.py OUT_DIR [--stderr-lines N] [--stdout TEXT] [--sleep SECONDS] [--exit STATUS]
                             [--rendezvous N]

Writes OUT_DIR/<pid>.json with its environment, stdin, argv, cwd, process group and the monotonic
start/end times (nanoseconds, system-wide on Linux). ``--rendezvous N`` waits (up to 10 s) until N
records have started before finishing, exiting 1 if they never do.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    opts = dict(zip(argv[1::2], argv[2::2], strict=True))
    started = time.monotonic_ns()
    (out / f"{os.getpid()}.start").write_text(str(started))
    record = {
        "env": dict(os.environ),
        "stdin": sys.stdin.read(),
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "start": started,
    }
    if "--rendezvous" in opts:
        wanted, give_up = int(opts["--rendezvous"]), time.monotonic() + 10
        while len(list(out.glob("*.start"))) < wanted:
            if time.monotonic() > give_up:
                return 1
            time.sleep(0.01)
    time.sleep(float(opts.get("--sleep", "0")))
    record["end"] = time.monotonic_ns()
    (out / f"{os.getpid()}.json").write_text(json.dumps(record))
    for i in range(1, int(opts.get("--stderr-lines", "0")) + 1):
        print(f"stderr line {i}", file=sys.stderr)
    if "--stdout" in opts:
        print(opts["--stdout"])
    return int(opts.get("--exit", "0"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
