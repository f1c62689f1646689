"""Collecting what the live view of ``alertscaler demo`` shows: ``Poller``, a background thread polling
alertscaler and Prometheus (sync httpx, short timeouts) and the load generator's ``stats()`` every
``interval``; ``state()`` returns the latest ``ViewState`` at once, so the thread that draws never waits for
the network and the load generator's event loop is never blocked.

Started and stopped by ``demo.running``; its states are built by ``demo.view_states.build_state`` and drawn
by ``demo.view``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from alertscaler.demo.load_stats import SecondSummary, Snapshot
from alertscaler.demo.view_states import (
    DecisionRow,
    ViewState,
    build_state,
    parse_alerts,
    parse_decision,
    utilisation_by_instance,
)

__all__ = ["LoadStats", "Poller"]


class LoadStats(Protocol):
    def stats(self) -> Snapshot: ...

    def history(self) -> list[SecondSummary]: ...


@dataclass
class _Seen:
    decisions: dict[int, DecisionRow] = field(default_factory=dict)
    capacity: list[float] = field(default_factory=list)
    max_current: int = 0


class Poller:
    """Polls alertscaler, Prometheus and the load generator every ``interval`` seconds in a daemon thread.

    ``state()`` returns the latest ``ViewState``; ``decisions()`` every decision seen so far (oldest first);
    ``max_current`` the largest group size seen.
    """

    def __init__(
        self,
        base: ViewState,
        *,
        loadgen: LoadStats,
        alertscaler_url: str,
        prometheus_url: str,
        trace_start: datetime | None = None,
        seconds_per_minute: float = 1.0,
        interval: float = 0.5,
        timeout: float = 1.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.loadgen = loadgen
        self.alertscaler_url = alertscaler_url.rstrip("/")
        self.prometheus_url = prometheus_url.rstrip("/")
        self.trace_start = trace_start
        self.seconds_per_minute = seconds_per_minute
        self.interval = interval
        self.timeout = timeout
        self.headers = dict(headers or {})
        self._state = base
        self._seen = _Seen()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._load_started: datetime | None = None
        self._polls = 0

    # -- control ------------------------------------------------------------------------------------------------

    def start(self) -> Poller:
        self._thread = threading.Thread(target=self._run, name="demo-view-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def state(self) -> ViewState:
        with self._lock:
            return self._state

    def decisions(self) -> list[DecisionRow]:
        with self._lock:
            return [self._seen.decisions[k] for k in sorted(self._seen.decisions)]

    @property
    def max_current(self) -> int:
        with self._lock:
            return self._seen.max_current

    @property
    def polls(self) -> int:
        """Rounds completed so far."""
        return self._polls

    @property
    def load_started(self) -> datetime | None:
        """Wall-clock time of the load generator's second 0 (None before it started)."""
        return self._load_started

    # -- polling ------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout, trust_env=False, headers=self.headers) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    self.poll(client)
                except Exception as exc:  # never let the view thread die: show the problem instead
                    with self._lock:
                        self._state = replace(self._state, problems=(f"view: {type(exc).__name__}: {exc}",))
                self._stop.wait(max(0.05, self.interval - (time.monotonic() - began)))

    def _get(self, client: httpx.Client, url: str, problems: list[str], **params: Any) -> Any:
        try:
            response = client.get(url, params=params or None)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            problems.append(f"{url.split('/', 3)[-1]}: {type(exc).__name__}")
            return None

    def poll(self, client: httpx.Client, decisions_limit: int = 50) -> ViewState:
        """One round: read everything, build the new state, remember decisions and capacity."""
        problems: list[str] = []
        snapshot = self.loadgen.stats()
        history = self.loadgen.history()
        now = datetime.now().astimezone()
        if self._load_started is None and snapshot.elapsed > 0:
            self._load_started = now - timedelta(seconds=snapshot.elapsed)
        base = self.state()
        group = self._get(client, f"{self.alertscaler_url}/api/v1/groups/{base.group}", problems)
        raw_decisions = self._get(client, f"{self.alertscaler_url}/api/v1/decisions", problems,
                                  group=base.group, limit=decisions_limit)
        util_answer = self._get(client, f"{self.prometheus_url}/api/v1/query", problems,
                                query=f'workload_utilisation{{alertscaler_group="{base.group}"}}')
        alerts_answer = self._get(client, f"{self.prometheus_url}/api/v1/alerts", problems)
        if snapshot.discovery_errors and snapshot.last_discovery_error and not snapshot.targets:
            problems.append(f"load generator: targets: {snapshot.last_discovery_error}")
        with self._lock:
            seen = self._seen
            if isinstance(raw_decisions, list):
                for item in raw_decisions:
                    if isinstance(item, dict) and "id" in item:
                        row = parse_decision(item, self._load_started)
                        seen.decisions[row.id] = row
            if isinstance(group, dict):
                current = group.get("current")
                if isinstance(current, int):
                    seen.max_current = max(seen.max_current, current)
                running = sum(1 for m in group.get("members") or [] if isinstance(m, dict)
                              and m.get("state") == "running")
                capacity_now = running * base.per_instance_rps
                fill = seen.capacity[-1] if seen.capacity else capacity_now
                complete = history[-1].second + 1 if history else 0
                while len(seen.capacity) < complete:  # seconds that passed since the last poll
                    seen.capacity.append(fill)
                if seen.capacity:
                    seen.capacity[-1] = capacity_now
            state = build_state(
                base,
                snapshot=snapshot,
                history=history,
                group=group if isinstance(group, dict) else None,
                utilisation=utilisation_by_instance(util_answer),
                alerts=parse_alerts(alerts_answer, now) if alerts_answer is not None else base.alerts,
                decisions=list(seen.decisions.values()),
                capacity=seen.capacity[-len(history):] if history else (),
                trace_start=self.trace_start,
                seconds_per_minute=self.seconds_per_minute,
                problems=problems,
            )
            self._state = state
            self._polls += 1
        return state

    def finish(self) -> ViewState:
        """Mark the state finished (for the last frame of the live view)."""
        with self._lock:
            self._state = replace(self._state, finished=True)
            return self._state
