"""The ``exec`` provider's commands in the fault suite: a fake cloud whose every change is written to a ledger.

``python fake_cloud.py scale DIR`` (the provider's ``command``) and ``python fake_cloud.py status DIR`` (its
``status_command``). DIR holds:

- ``real/<group>``: the group's real size (an integer), what the cloud really has;
- ``ledger.jsonl``: one JSON line per finished command: action id, group, from, to, the real size before and
  after, start and end time (``time.time()``), pid and outcome (``ok`` applied the change; ``fail`` /
  ``tempfail`` exited 1 / 75 without changing anything);
- ``begun.jsonl``: one line when a command starts (action id, group, pid, start, replica), so that commands killed
  before they finished (timeouts) can be told apart;
- ``knobs.json`` (optional, re-read by every command): ``delay`` [min, max] seconds a change takes,
  ``fail_rate`` (share of calls that fail, half with exit 1 and half with 75), ``hang_rate`` (share of calls
  that sleep an hour, to be killed by the provider's timeout), ``fail_kind`` (``mixed``, ``permanent``: exit 1,
  ``temporary``: exit 75), ``status_fail_rate``, and ``mode``:
  ``relative`` (the default: real += to - from, like a Heat signal or "add one Linode", so a change applied
  twice shows) or ``absolute`` (real = to).

The change and its ledger line are written together under a lock with SIGTERM blocked: a command killed by a
timeout either applied its change and wrote its line, or did neither.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any


def knobs(root: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((root / "knobs.json").read_text())
        return data
    except (OSError, ValueError):
        return {}


def append(path: Path, record: dict[str, Any]) -> None:
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_real(root: Path, group: str) -> int:
    try:
        return int((root / "real" / group).read_text().strip())
    except (OSError, ValueError):
        return 0


def write_real(root: Path, group: str, size: int) -> None:
    (root / "real").mkdir(exist_ok=True)
    tmp = root / "real" / f".{group}.{os.getpid()}"
    tmp.write_text(f"{size}\n")
    os.replace(tmp, root / "real" / group)


def scale(root: Path) -> int:
    k = knobs(root)
    rng = random.Random()
    group, action = os.environ["AS_GROUP"], int(os.environ["AS_ACTION_ID"])
    from_, to = int(os.environ["AS_FROM"]), int(os.environ["AS_TO"])
    start = time.time()
    base = {"action": action, "group": group, "from": from_, "to": to, "pid": os.getpid(), "start": start,
            "replica": os.environ.get("FAULT_REPLICA", "")}
    append(root / "begun.jsonl", base)
    sys.stdin.read()  # the notification; read so the service's write never blocks
    roll = rng.random()
    fail_rate, hang_rate = float(k.get("fail_rate", 0)), float(k.get("hang_rate", 0))
    if roll < hang_rate:
        time.sleep(3600)  # killed by the provider's timeout before it changes anything
        return 0
    low, high = k.get("delay", [0.0, 0.0])
    time.sleep(rng.uniform(float(low), float(high)))
    if roll < hang_rate + fail_rate:
        kind = k.get("fail_kind", "mixed")
        temporary = kind == "temporary" or (kind == "mixed" and rng.random() < 0.5)
        before = read_real(root, group)
        append(root / "ledger.jsonl", {**base, "end": time.time(), "outcome": "tempfail" if temporary else "fail",
                                       "real_before": before, "real_after": before})
        print("injected failure", file=sys.stderr)
        return 75 if temporary else 1
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    with open(root / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before = read_real(root, group)
        after = before + (to - from_) if k.get("mode", "relative") == "relative" else to
        write_real(root, group, after)
        append(root / "ledger.jsonl", {**base, "end": time.time(), "outcome": "ok",
                                       "real_before": before, "real_after": after})
    print(f"scaled {group} {before} -> {after}")
    return 0


def status(root: Path) -> int:
    if random.random() < float(knobs(root).get("status_fail_rate", 0)):
        print("injected status failure", file=sys.stderr)
        return 75
    print(read_real(root, os.environ["AS_GROUP"]))
    return 0


if __name__ == "__main__":
    verb, directory = sys.argv[1], Path(sys.argv[2])
    sys.exit(scale(directory) if verb == "scale" else status(directory))
