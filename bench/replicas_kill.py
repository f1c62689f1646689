"""Two real replicas on one PostgreSQL, then ``kill -9`` of one: how long until the survivor drives every group.

Starts two ``alertscaler serve`` processes (fake provider, ``--groups`` groups, the given lease and heartbeat) on a
fresh PostgreSQL schema, waits until the groups are split between them, kills one with SIGKILL and polls the
store's ``group_owners`` table until the survivor owns every group. Prints each replica's share before the kill,
the time from the kill to the survivor owning everything (and that time minus the lease), per round.

    ALERTSCALER_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/replicas_kill.py --groups 1000 --lease 10 --heartbeat 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.support.pg_schemas import fresh_schema  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def policy(url: str, port: int, groups: int, lease: float, heartbeat: float, state: Path) -> str:
    lines = ["server:", f"  listen: 127.0.0.1:{port}", "  auth: {insecure_no_auth: true}",
             f"  state_dir: {state}", "store:", f"  url: {json.dumps(url)}", f"  lease: {lease:g}s",
             f"  heartbeat_interval: {heartbeat:g}s", "groups:"]
    lines += [f"  g{i:05d}: {{provider: {{type: fake}}, min_size: 1, max_size: 3, desired: 1}}" for i in range(groups)]
    return "\n".join(lines) + "\n"


def owners(engine: sa.Engine) -> dict[str, int]:
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT owner, count(*) FROM group_owners GROUP BY owner")).all()
    except sa.exc.ProgrammingError:  # not migrated yet
        return {}
    return {str(owner): int(n) for owner, n in rows}


def wait(cond, timeout: float, what: str):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def round_(base: str, groups: int, lease: float, heartbeat: float) -> dict[str, float | int]:
    with fresh_schema(base, "bench") as url, tempfile.TemporaryDirectory() as tmp:
        procs = []
        for name in ("a", "b"):
            state = Path(tmp) / name
            state.mkdir()
            path = Path(tmp) / f"{name}.yml"
            path.write_text(policy(url, free_port(), groups, lease, heartbeat, state))
            log = open(Path(tmp) / f"{name}.log", "wb")  # noqa: SIM115
            env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
            procs.append(subprocess.Popen([sys.executable, "-m", "alertscaler.cli", "serve", "-c", str(path)],
                                          stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        engine = sa.create_engine(url)
        begun = time.monotonic()
        try:
            split = wait(lambda: (o := owners(engine)) and len(o) == 2 and sum(o.values()) == groups and o,
                         600, "the groups split between two replicas")
            shares = sorted(split.values())
            started = time.monotonic() - begun
            victim = procs[0]
            os.killpg(victim.pid, signal.SIGKILL)
            killed = time.monotonic()
            victim.wait()
            wait(lambda: (o := owners(engine)) and len(o) == 1 and sum(o.values()) == groups, lease * 3 + 60,
                 "the survivor to own every group")
            took = time.monotonic() - killed
            return {"groups": groups, "share_a": shares[0], "share_b": shares[1],
                    "split_after_start_s": round(started, 1), "takeover_s": round(took, 2),
                    "after_lease_s": round(took - lease, 2)}
        except SystemExit:
            keep = Path(tempfile.mkdtemp(prefix="replicas-kill-failed-"))
            for name in ("a.log", "b.log"):
                (keep / name).write_bytes((Path(tmp) / name).read_bytes())
            print(f"logs kept in {keep}; owners now: {owners(engine)}", file=sys.stderr)
            raise
        finally:
            engine.dispose()
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--lease", type=float, default=10.0)
    ap.add_argument("--heartbeat", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    base = os.environ.get("ALERTSCALER_TEST_PG_URL")
    if not base:
        print("set ALERTSCALER_TEST_PG_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)", file=sys.stderr)
        return 2
    for i in range(args.rounds):
        result = round_(base, args.groups, args.lease, args.heartbeat)
        print(json.dumps({"round": i + 1, "lease_s": args.lease, "heartbeat_s": args.heartbeat, **result}),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
