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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import httpx

__all__ = [
    "Balancer",
    "Counts",
    "HttpPool",
    "LoadGenerator",
    "SecondSummary",
    "Snapshot",
    "even_arrivals",
    "parse_targets",
    "percentile",
    "poisson_arrivals",
]

RateFn = Callable[[float], float]
Spacing = Literal["even", "poisson"]
Balance = Literal["round_robin", "least_outstanding"]


# -- pure helpers --------------------------------------------------------------------------------------------


def parse_targets(data: Any, group: str | None = None, states: Iterable[str] = ("running",)) -> list[str]:
    """Addresses (``host:port``) in http_sd JSON whose ``alertscaler_state`` is in ``states``, in order, unique.

    Malformed entries are skipped; ``group`` keeps only members of that ``alertscaler_group``.
    """
    wanted = set(states)
    out: list[str] = []
    if not isinstance(data, list):
        return out
    for entry in data:
        if not isinstance(entry, dict):
            continue
        labels = entry.get("labels")
        labels = labels if isinstance(labels, dict) else {}
        if labels.get("alertscaler_state") not in wanted:
            continue
        if group is not None and labels.get("alertscaler_group") != group:
            continue
        targets = entry.get("targets")
        for target in targets if isinstance(targets, list) else []:
            if isinstance(target, str) and target and target not in out:
                out.append(target)
    return out


def even_arrivals(rate: float, t0: float, t1: float, carry: float) -> tuple[list[float], float]:
    """Evenly spaced arrival times in ``[t0, t1)`` at a constant ``rate``, continuing from ``carry``.

    ``carry`` in [0, 1) is the fraction of a request accumulated before ``t0``; the k-th arrival is where the
    running count reaches k. Returns (times, new carry).
    """
    if rate <= 0 or t1 <= t0:
        return [], carry
    total = carry + rate * (t1 - t0)
    n = math.floor(total + 1e-9)
    times = [min(t1, t0 + (k - carry) / rate) for k in range(1, n + 1)]
    return times, max(0.0, total - n)


def poisson_arrivals(rate: float, t0: float, t1: float, rng: random.Random) -> list[float]:
    """Arrival times of a Poisson process of constant ``rate`` in ``[t0, t1)`` (memoryless: no carry)."""
    times: list[float] = []
    if rate <= 0:
        return times
    t = t0 + rng.expovariate(rate)
    while t < t1:
        times.append(t)
        t += rng.expovariate(rate)
    return times


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) by linear interpolation between the sorted values; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Balancer:
    """Picks a target for each request: round-robin, or least outstanding with round-robin ties."""

    def __init__(self, mode: Balance = "round_robin") -> None:
        if mode not in ("round_robin", "least_outstanding"):
            raise ValueError(f"unknown balance mode {mode!r}")
        self.mode = mode
        self.targets: tuple[str, ...] = ()
        self._next = 0

    def update(self, targets: Sequence[str]) -> None:
        self.targets = tuple(targets)

    def pick(self, outstanding: Mapping[str, int] | None = None) -> str | None:
        n = len(self.targets)
        if n == 0:
            return None
        start = self._next % n
        self._next = start + 1
        if self.mode == "round_robin" or outstanding is None:
            return self.targets[start]
        order = [self.targets[(start + i) % n] for i in range(n)]
        return min(order, key=lambda t: outstanding.get(t, 0))  # min keeps the first of equals


@dataclass
class Counts:
    """Request outcomes (a per-second bucket or the totals)."""

    sent: int = 0
    ok: int = 0
    overloaded: int = 0  # 503
    http_errors: int = 0  # any other non-200 status
    connection_errors: int = 0
    timeouts: int = 0
    dropped: int = 0  # over max_outstanding
    no_target: int = 0  # no live target to send to

    @property
    def errors(self) -> int:
        return self.overloaded + self.http_errors + self.connection_errors + self.timeouts

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def copy(self) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) for f in fields(self)})


@dataclass
class _Bucket:
    counts: Counts = field(default_factory=Counts)
    latencies: list[float] = field(default_factory=list)
    per_target: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class SecondSummary:
    """One complete second of the run (``second`` 0 is the first)."""

    second: int
    target_rate: float  # the rate function at the middle of that second
    counts: Counts
    p50: float | None  # seconds, OK answers completed in that second
    p95: float | None
    per_target: dict[str, int]  # requests sent to each target in that second


@dataclass(frozen=True)
class Snapshot:
    """The generator's state at one moment."""

    elapsed: float
    target_rate: float
    targets: tuple[str, ...]
    outstanding: int
    outstanding_by_target: dict[str, int]
    totals: Counts
    per_target: dict[str, int]  # requests sent to each target since the start
    last: SecondSummary | None  # the last complete second
    discovery_errors: int
    last_discovery_error: str | None


def summarize(second: int, bucket: _Bucket, target_rate: float) -> SecondSummary:
    return SecondSummary(
        second=second,
        target_rate=target_rate,
        counts=bucket.counts.copy(),
        p50=percentile(bucket.latencies, 0.5),
        p95=percentile(bucket.latencies, 0.95),
        per_target=dict(bucket.per_target),
    )


# -- a lean HTTP/1.1 client for the work requests ---------------------------------------------------------------


class HttpPool:
    """Keep-alive ``GET`` requests to one ``host:port``: a minimal HTTP/1.1 client on asyncio streams.

    Why not httpx for the work requests: measured here, httpx cost about 1.8 ms of CPU per request (360 req/s
    over 5 instances took 65 % of a core, and a single client with a pool of 512 connections saturated one
    because httpcore scans every pooled connection for every request), which made the generator, not the
    instances, the bottleneck; this client needs about 0.25 ms. It speaks exactly what a load generator needs:
    ``GET``, ``Content-Length``, chunked or close-delimited bodies, HTTP/1.0 and 1.1 keep-alive rules. A
    reused connection the server closed meanwhile is retried once on a fresh one (nothing was received, and
    ``GET`` is idempotent). Bodies are read and discarded. Use from one event loop.
    """

    def __init__(self, address: str, max_idle: int = 256) -> None:
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"target must be host:port, got {address!r}")
        self.address = address
        self.host = host.strip("[]")
        self.port = int(port)
        self.max_idle = max_idle
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, path: str) -> int:
        """The status code of ``GET path`` (ConnectionError / OSError / asyncio.IncompleteReadError on failure).

        Wrap it in a timeout: a cancelled request closes its connection.
        """
        while self._idle:
            conn = self._idle.pop()
            try:
                return await self._exchange(conn, path)
            except _StaleConnection:
                continue  # the server closed it while idle: try the next one, or a fresh connection
        conn = await asyncio.open_connection(self.host, self.port)
        try:
            return await self._exchange(conn, path)
        except _StaleConnection as exc:
            raise ConnectionResetError(f"{self.address} closed the connection without answering") from exc

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def _exchange(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], path: str) -> int:
        reader, writer = conn
        reusable = False  # True only once the whole answer was read and the server keeps the connection
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.address}\r\nAccept: */*\r\n\r\n".encode("latin-1"))
            try:
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    raise
                raise _StaleConnection() from exc
            status, version, headers = _parse_head(head)
            while 100 <= status < 200:  # interim responses (100 Continue...): the real one follows
                status, version, headers = _parse_head(await reader.readuntil(b"\r\n\r\n"))
            connection = headers.get("connection", "").lower()
            keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
            if "chunked" in headers.get("transfer-encoding", "").lower():
                await _read_chunked(reader)
            elif "content-length" in headers:
                length = int(headers["content-length"])
                if length:
                    await reader.readexactly(length)
            elif status not in (204, 304):
                await reader.read()  # close-delimited body
                keep = False
            reusable = keep
            return status
        except ValueError as exc:
            raise ConnectionError(f"{self.address}: malformed response: {exc}") from exc
        finally:
            if reusable and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                writer.close()


class _StaleConnection(Exception):
    """A connection gave no byte of an answer (closed by the server while idle)."""


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    """(status, version, lower-cased headers) of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/") or len(rest) < 3 or not rest[:3].isdigit():
        raise ValueError(f"bad status line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(rest[:3]), version, headers


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the empty line
                pass
            return
        await reader.readexactly(size + 2)  # data and its CRLF



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
        self._buckets: dict[int, _Bucket] = {}
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
            bucket = self._buckets.pop(s, None) or _Bucket()
            self._history.append(summarize(s, bucket, max(0.0, self.rate(self.start_at + s + 0.5))))
            self._summarized += 1
            if current - self._summarized > self.history_seconds:  # long idle gap: skip empty seconds
                self._summarized = current - self.history_seconds

    def _bucket(self) -> _Bucket:
        second = math.floor(self.elapsed())
        if second < self._summarized:  # cannot happen with a monotonic clock; be safe
            second = self._summarized
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = _Bucket()
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
