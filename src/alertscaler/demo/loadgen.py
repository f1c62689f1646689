"""An open-loop load generator: requests at a rate given by a function of time (e.g. ``Replay.rate_at``),
spread over the live instances that alertscaler reports, so adding instances really lowers per-instance load.

* **Open loop**: arrivals follow the schedule whatever the responses do. Every ``tick`` (100 ms) the
  generator computes the rate at the middle of the next tick and schedules that tick's arrivals with
  ``loop.call_at`` — evenly spaced (a fractional remainder carries over, so 2.5 req/tick is 2, 3, 2, 3, ...)
  or as a Poisson process (``spacing="poisson"``, seeded). Late wake-ups fire the overdue arrivals at once.
  An arrival never waits: when ``max_outstanding`` requests are already in flight it is dropped and
  counted (``dropped``); with no live target it is counted as ``no_target``.
* **Targets**: polled every ``poll_interval`` from alertscaler's ``GET /api/v1/targets`` (Prometheus
  http_sd JSON); only members with ``alertscaler_state`` ``running`` (optionally of one ``group``). A member
  that disappears gets no new request from the next poll on. Poll failures keep the last list.
* **Requests**: ``GET <path>`` over keep-alive connections by ``HttpPool``, a minimal HTTP/1.1 client
  (httpx, used for the target discovery, costs about 7 times more CPU per request: see ``HttpPool``); each
  bounded by ``request_timeout``.
* **Balancing**: ``round_robin`` (default: equal shares, the per-instance load falls as 1/n) or
  ``least_outstanding`` (ties broken round-robin).
* **Stats**, bucketed by the second of the event (sends when sent, outcomes when answered): ``sent``, ``ok``
  (200), ``overloaded`` (503), ``http_errors`` (other statuses), ``connection_errors``, ``timeouts``,
  ``dropped``, ``no_target``, latency p50/p95 of OK answers, and requests sent per target. ``stats()`` is a
  cheap snapshot for a live view; ``history()`` lists the complete seconds.

The pure parts are in ``demo.scheduling`` (arrivals, targets, balancing), the counters in ``demo.load_stats``,
the HTTP client in ``demo.requesting``. Used by ``demo.running`` (in a thread of its own) and the end-to-end
tests.

Use::

    gen = LoadGenerator(replay.rate_at, targets_url="http://127.0.0.1:8080/api/v1/targets")
    final = await gen.run(duration=600)      # or run(None) until gen.stop()
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import httpx

from alertscaler.demo.load_stats import Bucket, Counts, SecondSummary, Snapshot, summarize
from alertscaler.demo.requesting import HttpPool
from alertscaler.demo.scheduling import Balance, Balancer, even_arrivals, parse_targets, poisson_arrivals

__all__ = ["LoadGenerator"]

RateFn = Callable[[float], float]
Spacing = Literal["even", "poisson"]


# -- the generator -------------------------------------------------------------------------------------------


class LoadGenerator:
    """Requests at ``rate(start_at + elapsed)`` per second to ``GET <path>`` on the live targets.

    Targets come from ``targets_url`` (polled) or are fixed with ``targets`` / ``set_targets()``.
    """

    def __init__(
        self,
        rate: RateFn,
        *,
        targets_url: str | None = None,
        targets: Sequence[str] = (),
        group: str | None = None,
        targets_headers: Mapping[str, str] | None = None,
        path: str = "/work",
        tick: float = 0.1,
        spacing: Spacing = "even",
        seed: int | None = None,
        balance: Balance = "round_robin",
        max_outstanding: int = 512,
        request_timeout: float = 5.0,
        poll_interval: float = 1.0,
        drain_timeout: float = 2.0,
        start_at: float = 0.0,
        history_seconds: int = 600,
    ) -> None:
        if tick <= 0 or max_outstanding < 1 or request_timeout <= 0 or poll_interval <= 0:
            raise ValueError("tick, request_timeout and poll_interval must be > 0, max_outstanding >= 1")
        if spacing not in ("even", "poisson"):
            raise ValueError(f"unknown spacing {spacing!r}")
        self.rate = rate
        self.targets_url = targets_url
        self.group = group
        self.targets_headers = dict(targets_headers or {})
        self.path = path if path.startswith("/") else "/" + path
        self.tick = tick
        self.spacing = spacing
        self.max_outstanding = max_outstanding
        self.request_timeout = request_timeout
        self.poll_interval = poll_interval
        self.drain_timeout = drain_timeout
        self.start_at = start_at
        self.history_seconds = history_seconds
        self._rng = random.Random(seed)
        self._balancer = Balancer(balance)
        self._balancer.update(targets)
        self._outstanding: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._totals = Counts()
        self._per_target: Counter[str] = Counter()
        self._buckets: dict[int, Bucket] = {}
        self._history: deque[SecondSummary] = deque(maxlen=history_seconds)
        self._summarized = 0  # seconds below this are in _history
        self._discovery_errors = 0
        self._last_discovery_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: float | None = None
        self._final_elapsed: float | None = None
        self._stop_event: asyncio.Event | None = None
        self._stop_requested = False
        self._pools: dict[str, HttpPool] = {}
        self._running = False
        self._lock = threading.Lock()  # stats() may be called from another thread

    # -- control ---------------------------------------------------------------------------------------------

    def set_targets(self, targets: Sequence[str]) -> None:
        """Replace the target list (for fixed targets; overwritten by the next poll with ``targets_url``)."""
        self._balancer.update(targets)

    @property
    def targets(self) -> tuple[str, ...]:
        return self._balancer.targets

    def stop(self) -> None:
        """Ask ``run`` to end (from any thread): no new arrivals; in-flight requests get ``drain_timeout``."""
        self._stop_requested = True
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                event.set()
            else:
                loop.call_soon_threadsafe(event.set)

    async def run(self, duration: float | None = None) -> Snapshot:
        """Generate load for ``duration`` seconds (None: until ``stop()``); return the final snapshot."""
        if self._loop is not None or self._started is not None:
            raise RuntimeError("a LoadGenerator runs once")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop_event = asyncio.Event()
        if self._stop_requested:
            self._stop_event.set()
        poller: asyncio.Task[None] | None = None
        self._running = True
        try:
            async with httpx.AsyncClient(timeout=self.request_timeout, trust_env=False) as client:  # discovery
                if self.targets_url is not None:
                    await self._poll_once(client)  # know the targets before the first arrival
                    poller = asyncio.create_task(self._poll_forever(client))
                self._started = loop.time()
                await self._schedule(duration)
                await self._drain()
        finally:
            if poller is not None:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self._running = False
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
            self._final_elapsed = self.elapsed()
            snapshot = self.stats()
            self._loop = None
        return snapshot

    # -- stats ----------------------------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the first tick (frozen once ``run`` returned)."""
        if self._final_elapsed is not None:
            return self._final_elapsed
        if self._started is None or self._loop is None:
            return 0.0
        return max(0.0, self._loop.time() - self._started)

    def stats(self) -> Snapshot:
        """A consistent snapshot (cheap; safe from another thread)."""
        elapsed = self.elapsed()
        with self._lock:
            self._roll(math.floor(elapsed))
            return Snapshot(
                elapsed=elapsed,
                target_rate=max(0.0, self.rate(self.start_at + elapsed)),
                targets=self._balancer.targets,
                outstanding=sum(self._outstanding.values()),
                outstanding_by_target={t: n for t, n in self._outstanding.items() if n},
                totals=self._totals.copy(),
                per_target=dict(self._per_target),
                last=self._history[-1] if self._history else None,
                discovery_errors=self._discovery_errors,
                last_discovery_error=self._last_discovery_error,
            )

    def history(self) -> list[SecondSummary]:
        """The complete seconds so far (at most ``history_seconds`` of them, oldest first)."""
        with self._lock:
            self._roll(math.floor(self.elapsed()))
            return list(self._history)

    def _roll(self, current: int) -> None:
        """Move every second before ``current`` into the history (they can no longer change)."""
        while self._summarized < current:
            s = self._summarized
            bucket = self._buckets.pop(s, None) or Bucket()
            self._history.append(summarize(s, bucket, max(0.0, self.rate(self.start_at + s + 0.5))))
            self._summarized += 1
            if current - self._summarized > self.history_seconds:  # long idle gap: skip empty seconds
                self._summarized = current - self.history_seconds

    def _bucket(self) -> Bucket:
        second = math.floor(self.elapsed())
        if second < self._summarized:  # cannot happen with a monotonic clock; be safe
            second = self._summarized
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = Bucket()
        return bucket

    def _count(self, name: str, target: str | None = None, latency: float | None = None) -> None:
        with self._lock:
            bucket = self._bucket()
            setattr(bucket.counts, name, getattr(bucket.counts, name) + 1)
            setattr(self._totals, name, getattr(self._totals, name) + 1)
            if name == "sent" and target is not None:
                bucket.per_target[target] += 1
                self._per_target[target] += 1
            if latency is not None:
                bucket.latencies.append(latency)

    # -- schedule ----------------------------------------------------------------------------------------------

    async def _schedule(self, duration: float | None) -> None:
        assert self._loop is not None and self._started is not None and self._stop_event is not None
        loop, start, stop_event = self._loop, self._started, self._stop_event
        carry = 0.0
        k = 0
        handles: list[asyncio.TimerHandle] = []
        try:
            while not stop_event.is_set():
                now = loop.time() - start
                while k * self.tick <= now:  # every tick that has begun (several after a late wake-up)
                    t0 = k * self.tick
                    if duration is not None and t0 >= duration:
                        return
                    t1 = t0 + self.tick if duration is None else min(t0 + self.tick, duration)
                    rate = max(0.0, float(self.rate(self.start_at + (t0 + t1) / 2)))
                    if self.spacing == "even":
                        times, carry = even_arrivals(rate, t0, t1, carry)
                    else:
                        times = poisson_arrivals(rate, t0, t1, self._rng)
                    handles = [h for h in handles if not h.cancelled() and h.when() > loop.time()]
                    handles.extend(loop.call_at(start + t, self._fire) for t in times)
                    k += 1
                wake = start + k * self.tick
                try:
                    await asyncio.wait_for(stop_event.wait(), max(0.0, wake - loop.time()))
                except TimeoutError:
                    pass
        finally:
            for handle in handles:
                handle.cancel()  # arrivals not yet fired when stopped early

    def _fire(self) -> None:
        """One arrival: never waits. Dropped when over the bound, counted when there is no target."""
        if not self._running or (self._stop_event is not None and self._stop_event.is_set()):
            return
        if sum(self._outstanding.values()) >= self.max_outstanding:
            self._count("dropped")
            return
        target = self._balancer.pick(self._outstanding)
        if target is None:
            self._count("no_target")
            return
        self._outstanding[target] += 1
        self._count("sent", target)
        pool = self._pools.get(target)
        if pool is None:
            pool = self._pools[target] = HttpPool(target)
        task = asyncio.create_task(self._request(pool, target))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _request(self, pool: HttpPool, target: str) -> None:
        assert self._loop is not None
        began = self._loop.time()
        try:
            async with asyncio.timeout(self.request_timeout):
                status = await pool.get(self.path)
        except TimeoutError:
            self._count("timeouts")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):  # ConnectionError is an OSError
            self._count("connection_errors")
        else:
            if status == 200:
                self._count("ok", latency=self._loop.time() - began)
            elif status == 503:
                self._count("overloaded")
            else:
                self._count("http_errors")
        finally:
            self._outstanding[target] -= 1
            if self._outstanding[target] <= 0:
                del self._outstanding[target]

    async def _drain(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.drain_timeout)

    # -- discovery --------------------------------------------------------------------------------------------

    async def _poll_once(self, client: httpx.AsyncClient) -> None:
        assert self.targets_url is not None
        try:
            response = await client.get(
                self.targets_url, headers=self.targets_headers, timeout=max(0.1, min(2.0, self.poll_interval * 2))
            )
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            with self._lock:
                self._discovery_errors += 1
                self._last_discovery_error = f"{type(exc).__name__}: {exc}"
            return
        self._balancer.update(parse_targets(data, self.group))

    async def _poll_forever(self, client: httpx.AsyncClient) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            await self._poll_once(client)
