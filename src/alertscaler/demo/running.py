"""``alertscaler demo``: the whole pipeline on this machine, driven by a real traffic shape.

``run_demo(DemoOptions(...))``:

1. a working directory (temporary, removed at the end; or ``--workdir DIR`` / ``--keep``, kept: ``workdirs``)
   with the demo policy (``DEMO_POLICY`` in ``options``: group ``web`` of the bundled workload, 40 req/s per
   instance, 1..max_size; HighLoad / LowLoad on the average ``workload_utilisation``), a random bearer token
   in a file, and the Prometheus side rendered from the policy by ``confgen`` (exactly what ``alertscaler
   render`` writes);
2. a ``Stack``: alertscaler (``local`` provider), then Alertmanager, then Prometheus, on free ports of
   127.0.0.1 — and never an orphan (see ``stack``);
3. a ``LoadGenerator`` replaying the bundled World Cup 1998 excerpt (``REPLAY_START``, ``REPLAY_MINUTES``:
   a quiet early afternoon, the busy afternoon and evening of two matches, a quiet night), scaled so that
   the peak needs ``max_size`` instances at 90 % and time-compressed so the cycle lasts ``duration``
   seconds; requests go to the live instances it discovers from alertscaler's ``/api/v1/targets``;
4. the live view (``view``, its data collected by ``polling``) or, without a terminal, a status line every few
   seconds and a line per decision; until the replay ends, Ctrl-C / SIGTERM, or a child dies;
5. everything stopped, then a summary (``summaries``): scale-outs, scale-ins, largest size, requests ok / 503,
   where the logs are if kept (after a failure they are copied out of a temporary working directory), and the
   traffic's attribution.

Exit status: 0 when the replay ended or the demo was stopped by Ctrl-C (SIGINT, SIGTERM, SIGHUP: stopping
it early is a normal way to end a demo); 1 when Prometheus / Alertmanager are missing, a child failed to
start or died, or a process was left behind; 2 for bad options.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live

from alertscaler.confgen import render_all, write_files
from alertscaler.config import load_policy
from alertscaler.demo.children import Child, ChildError
from alertscaler.demo.loadgen import LoadGenerator
from alertscaler.demo.options import (
    GROUP,
    KILL_AT,
    PEAK_FRACTION,
    PER_INSTANCE_RPS,
    REPLAY_MINUTES,
    REPLAY_START,
    DemoOptions,
    attribution,
    demo_policy,
    demo_replay,
)
from alertscaler.demo.polling import Poller
from alertscaler.demo.preparing import MissingBinary, find_binary
from alertscaler.demo.stack import Interrupted, Stack
from alertscaler.demo.summaries import Summary
from alertscaler.demo.sweeping import marked_processes
from alertscaler.demo.trace import Replay
from alertscaler.demo.view import clock, decision_line, render, status_line
from alertscaler.demo.view_states import DecisionRow, ViewState, parse_decision
from alertscaler.demo.workdirs import WorkdirError, prepare_workdir, save_logs, write_private
from alertscaler.model.errors import ConfigError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "KILL_AT",  # re-exported from demo.options for the cli
    "DemoOptions",  # re-exported from demo.options for the cli
    "run_demo",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_INSTALL = "sudo apt-get install -y prometheus prometheus-alertmanager"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# -- the run ----------------------------------------------------------------------------------------------------


class _ChildDied(Exception):
    def __init__(self, child: Child) -> None:
        code = child.returncode
        how = f"was killed by {signal.Signals(-code).name}" if code is not None and code < 0 else (
            f"exited with status {code}")
        super().__init__(f"{child.name} {how}")
        self.child = child


class _Killer(threading.Thread):
    """The heal demo: ``at`` seconds into the replay, kill -9 the group's oldest running instance and say so;
    Prometheus then sees it down, InstanceDown fires, and alertscaler replaces it."""

    def __init__(self, stack: Stack, token: str, at: float, out: Console) -> None:
        super().__init__(name="demo-killer", daemon=True)
        self.stack, self.token, self.at, self.out = stack, token, at, out
        self.stopped = threading.Event()
        self.killed: str | None = None

    def run(self) -> None:
        if self.stopped.wait(self.at):
            return
        try:
            group = httpx.get(f"{self.stack.alertscaler_url}/api/v1/groups/{GROUP}", timeout=5, trust_env=False,
                              headers={"Authorization": f"Bearer {self.token}"}).json()
            alive = sorted((m for m in group["members"] if m["state"] == "running"),
                           key=lambda m: str(m.get("created_at") or ""))
            if not alive:
                return
            victim = alive[0]
            os.kill(int(victim["labels"]["pid"]), signal.SIGKILL)
            self.killed = victim["id"]
            self.out.print(f"demo: killed instance {victim['id']} (kill -9) to show healing: Prometheus sees it "
                           "down, InstanceDown fires, alertscaler replaces it", markup=False, soft_wrap=True)
        except (httpx.HTTPError, KeyError, ValueError, OSError) as exc:
            self.out.print(f"demo: could not kill an instance to show healing: {exc}", markup=False)


class _Runner(threading.Thread):
    """The load generator's event loop, in its own thread (the main thread draws and handles signals)."""

    def __init__(self, gen: LoadGenerator, duration: float) -> None:
        super().__init__(name="demo-loadgen", daemon=True)
        self.gen = gen
        self.duration = duration
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self.gen.run(self.duration))
        except BaseException as exc:
            self.error = exc


def run_demo(options: DemoOptions, out: Console | None = None, err: Console | None = None) -> int:
    """Run the demo (see the module docstring); return the exit status."""
    out = out or Console(highlight=False, soft_wrap=True)
    err = err or Console(stderr=True, highlight=False, soft_wrap=True)
    problems = options.problems()
    if problems:
        for problem in problems:
            err.print(f"[red]error:[/red] {problem}", markup=True)
        return EXIT_USAGE
    missing = []
    for binary in ("prometheus", "prometheus-alertmanager"):
        try:
            find_binary(binary)
        except MissingBinary:
            missing.append(binary)
    if missing:
        err.print(f"[red]error:[/red] the demo runs the real Prometheus and Alertmanager, and "
                  f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed (not on PATH); "
                  f"install them: {_INSTALL}")
        return EXIT_FAILED
    workdir = options.workdir.resolve() if options.workdir is not None else None
    if workdir is not None:
        try:
            prepare_workdir(workdir)
        except WorkdirError as exc:
            err.print(f"[red]error:[/red] {exc}")
            return EXIT_USAGE
        except OSError as exc:
            err.print(f"[red]error:[/red] --workdir {workdir}: {exc.strerror or exc}")
            return EXIT_USAGE
    live = options.view if options.view is not None else (out.is_terminal and not out.is_dumb_terminal)
    replay = demo_replay(options.max_size, options.seconds_per_minute)
    saved = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    try:
        return _run(options, replay, workdir, live, out, err)
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, handler in saved.items():
                if handler is not None:
                    with contextlib.suppress(ValueError, TypeError):
                        signal.signal(sig, handler)


def _run(options: DemoOptions, replay: Replay, workdir: Path | None, live: bool, out: Console,
         err: Console) -> int:
    stack = Stack(workdir, keep_workdir=options.keep, start_timeout=60.0)
    summary = Summary("finished", duration=replay.duration)
    failure: str | None = None
    gen: LoadGenerator | None = None
    runner: _Runner | None = None
    poller: Poller | None = None
    killer: _Killer | None = None
    token = ""
    try:
        with stack:
            try:
                token = _configure_and_start(stack, options, out)
                headers = {"Authorization": f"Bearer {token}"}
                gen = LoadGenerator(replay.rate_at, targets_url=f"{stack.alertscaler_url}/api/v1/targets",
                                    group=GROUP, targets_headers=headers, poll_interval=0.5,
                                    history_seconds=int(replay.duration) + 120)
                base = ViewState(
                    group=GROUP, duration=replay.duration, min_size=1, max_size=options.max_size,
                    per_instance_rps=PER_INSTANCE_RPS, attribution=attribution(),
                    links=(("Prometheus", stack.prometheus_url), ("Alertmanager", stack.alertmanager_url),
                           ("alertscaler", stack.alertscaler_url)))
                poller = Poller(base, loadgen=gen, alertscaler_url=stack.alertscaler_url,
                                prometheus_url=stack.prometheus_url, trace_start=REPLAY_START,
                                seconds_per_minute=replay.seconds_per_sample, headers=headers)
                runner = _Runner(gen, replay.duration)
                out.print(f"replaying the World Cup 1998 traffic of {REPLAY_START:%Y-%m-%d %H:%M} + "
                          f"{REPLAY_MINUTES // 60}h in {clock(replay.duration)} (peak {replay.peak:.0f} req/s = "
                          f"{PEAK_FRACTION:.0%} of {options.max_size} x {PER_INSTANCE_RPS:.0f} req/s); "
                          "Ctrl-C stops everything")
                runner.start()
                poller.start()
                if options.kill_at is not None:
                    killer = _Killer(stack, token, options.kill_at * replay.duration, out)
                    killer.start()
                _watch(stack, runner, poller, live, out, options.status_every)
                if runner.error is not None:
                    summary.how = "failed"
                    failure = f"the load generator failed: {type(runner.error).__name__}: {runner.error}"
            except KeyboardInterrupt as exc:  # Ctrl-C; SIGTERM and SIGHUP raise the stack's Interrupted
                summary.how = "interrupted"
                if isinstance(exc, Interrupted):
                    summary.stopped_by = signal.Signals(exc.signum).name
            except _ChildDied as exc:
                summary.how = "failed"
                tail = "\n".join(exc.child.log_tail().strip().splitlines()[-15:])
                failure = f"{exc}; the end of its log:\n{tail}"
            except ChildError as exc:
                summary.how = "failed"
                failure = str(exc)
            except (ConfigError, OSError) as exc:
                summary.how = "failed"
                failure = f"cannot set the demo up: {exc}"
            finally:
                _shield()  # a second Ctrl-C must not cut the clean-up short (the stack shields its own part)
                out.print("stopping everything ...")
                if killer is not None:
                    killer.stopped.set()
                    summary.killed = killer.killed
                if gen is not None:
                    gen.stop()
                if runner is not None and runner.is_alive():
                    runner.join(gen.drain_timeout + 5.0 if gen is not None else 5.0)
                if poller is not None:
                    poller.stop()
                    summary.decisions = _all_decisions(stack, poller, token)
                    summary.max_current = poller.max_current
                    state = poller.state()
                    summary.final_current = state.current
                if gen is not None:
                    summary.load = gen.stats()
                    summary.elapsed = gen.elapsed()
                if failure is not None and not stack.keep_workdir:
                    summary.saved = save_logs(stack)  # they say why; the temporary directory goes
    except MissingBinary as exc:  # checked before, but PATH may change
        err.print(f"[red]error:[/red] {exc}; install them: {_INSTALL}")
        return EXIT_FAILED
    summary.left_behind = sorted(marked_processes(stack.token)) if stack.token else []
    if stack.keep_workdir:
        summary.workdir = stack.workdir
    if failure is not None:
        err.print(f"[red]error:[/red] {failure}", markup=True, highlight=False)
    for line in summary.lines():
        out.print(line, markup=False, soft_wrap=True)
    out.print(f"traffic shape: 1998 World Cup web site (requests per minute), {attribution()}", markup=False,
              soft_wrap=True)
    if summary.left_behind:
        err.print(f"[red]error:[/red] processes left behind: {summary.left_behind}")
        return EXIT_FAILED
    return EXIT_FAILED if summary.how == "failed" else EXIT_OK


def _configure_and_start(stack: Stack, options: DemoOptions, out: Console) -> str:
    """Write the policy, token and generated files; start alertscaler, Alertmanager, Prometheus. The token."""
    workdir = stack.workdir
    out.print(f"working directory {workdir}" + ("" if stack.keep_workdir else " (removed at the end)"))
    token = os.urandom(24).hex()
    token_file = workdir / "token"
    write_private(token_file, token)
    policy_file = workdir / "policy.yml"
    text = demo_policy(port=stack.alertscaler_port, token_file=token_file, state_dir=workdir / "state",
                       max_size=options.max_size, prometheus_url=stack.prometheus_url)
    policy_file.write_text(text)
    policy = load_policy(text, base_dir=workdir, source=str(policy_file))
    write_files(workdir / "generated", render_all(policy.render_input(
        str(policy_file), str(token_file), stack.alertmanager_url)))
    # the receiver first, so that no alert is ever sent to a process that is not there yet
    began = time.monotonic()
    child = stack.start_alertscaler(policy_file)
    out.print(f"started alertscaler (pid {child.pid}) in {time.monotonic() - began:.1f}s")
    began = time.monotonic()
    child = stack.start_alertmanager(workdir / "generated" / "alertmanager.yml")
    out.print(f"started Alertmanager (pid {child.pid}) in {time.monotonic() - began:.1f}s")
    began = time.monotonic()
    child = stack.start_prometheus(workdir / "generated" / "prometheus.yml")
    out.print(f"started Prometheus (pid {child.pid}) in {time.monotonic() - began:.1f}s")
    _wait_first_instance(stack, token)
    out.print(f"alertscaler {stack.alertscaler_url}   Prometheus {stack.prometheus_url}   "
              f"Alertmanager {stack.alertmanager_url}")
    return token


def _wait_first_instance(stack: Stack, token: str, timeout: float = 30.0) -> None:
    """Until the group's first instance runs (alertscaler starts it on start): the load needs a target."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=stack.alertscaler_url, timeout=2.0, trust_env=False,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        while time.monotonic() < deadline:
            dead = stack.dead()
            if dead:
                raise _ChildDied(dead[0])
            try:
                members = client.get(f"/api/v1/groups/{GROUP}").json().get("members", [])
            except (httpx.HTTPError, ValueError, AttributeError):
                members = []
            if any(isinstance(m, dict) and m.get("state") == "running" for m in members):
                return
            time.sleep(0.2)
    raise ChildError(f"the group's first instance did not start within {timeout:g}s; see "
                     f"{stack.logs_dir / 'alertscaler.log'}")


def _watch(stack: Stack, runner: _Runner, poller: Poller, live: bool, out: Console, status_every: float) -> None:
    """Show the state until the load generator ends (or a child dies: ``_ChildDied``)."""

    def check() -> None:
        dead = stack.dead()
        if dead:
            raise _ChildDied(dead[0])

    deadline = time.monotonic() + 3.0
    while not poller.polls and time.monotonic() < deadline:  # a first frame with something in it
        time.sleep(0.05)
    if live:
        with Live(render(poller.state()), console=out, auto_refresh=False, transient=False,
                  redirect_stdout=False, redirect_stderr=False) as view:
            while runner.is_alive():
                check()
                view.update(render(poller.state()), refresh=True)
                runner.join(0.5)
            view.update(render(poller.finish()), refresh=True)
        return
    printed: set[int] = set()
    next_status = 0.0
    while True:
        alive = runner.is_alive()
        check()
        state = poller.state()
        for d in poller.decisions():
            if d.id not in printed:
                printed.add(d.id)
                out.print(decision_line(d), markup=False, soft_wrap=True)
        if poller.polls and (state.elapsed >= next_status or not alive):
            out.print(status_line(state), markup=False, soft_wrap=True)
            next_status = state.elapsed + status_every
        if not alive:
            return
        runner.join(0.5)


def _all_decisions(stack: Stack, poller: Poller, token: str) -> list[DecisionRow]:
    """Every decision of the run: what the view saw, completed from alertscaler if it still answers."""
    seen = {d.id: d for d in poller.decisions()}
    child = stack.children.get("alertscaler")
    if child is not None and child.running:
        with contextlib.suppress(httpx.HTTPError, ValueError, TypeError):
            data: Any = httpx.get(f"{stack.alertscaler_url}/api/v1/decisions",
                                  params={"group": GROUP, "limit": 1000}, timeout=3.0, trust_env=False,
                                  headers={"Authorization": f"Bearer {token}"}).json()
            for item in data if isinstance(data, list) else []:
                if isinstance(item, dict) and "id" in item:
                    row = parse_decision(item, poller.load_started)
                    seen[row.id] = row
    return [seen[k] for k in sorted(seen)]


def _noted(signum: int, frame: FrameType | None) -> None:
    """While the demo stops: a stop signal is ignored (the clean-up is bounded by timeouts)."""


def _shield() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _noted)
