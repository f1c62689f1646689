"""A bundled HTTP workload with a FIXED capacity, the default instance of the ``local`` provider.

Each request to ``/`` or ``/work`` holds one of ``concurrency`` slots for ``service_time`` seconds (an
``asyncio.sleep``, not CPU), so one instance serves at most ``concurrency / service_time`` req/s however many
cores the machine has, and adding an instance really adds capacity. Requests finding every slot busy wait in
a FIFO queue of at most ``queue_limit``; beyond that they get ``503``.

Endpoints: ``/`` and ``/work`` (the work), ``/metrics`` (Prometheus text format), ``/healthz`` (``200 ok``;
``503`` while draining). Metrics, from a private registry:

* ``workload_requests_total{code}``           work requests answered, by status code
* ``workload_in_flight``                      slots busy now
* ``workload_queue_length``                   requests waiting for a slot now
* ``workload_utilisation``                    fraction of slots busy over the last ~5 s (busy-time accounting)
* ``workload_capacity_rps``                   ``concurrency / service_time``
* ``workload_request_duration_seconds``       histogram of queueing + service time of work requests

The HTTP server is a deliberately small HTTP/1.1 implementation on ``asyncio.start_server`` (keep-alive,
``Content-Length`` bodies; no chunked requests). SIGTERM/SIGINT: stop accepting, let queued and in-flight
requests finish for at most ``--drain-timeout`` seconds, exit 0.

Run: ``python -m alertscaler.workload --port 8080 [--service-time 0.05] [--concurrency 4]
[--queue-limit 64] [--host 127.0.0.1] [--drain-timeout 4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

__all__ = ["Workload", "WorkloadConfig", "WorkloadServer", "main"]

_BUCKET_SECONDS = 0.5  # granularity of the utilisation window
_MAX_HEAD_BYTES = 16 * 1024  # request line + headers
_MAX_BODY_BYTES = 1024 * 1024
_IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may stay idle


@dataclass(frozen=True)
class WorkloadConfig:
    """The capacity model of one instance."""

    service_time: float = 0.05
    concurrency: int = 4
    queue_limit: int = 64
    window: float = 5.0  # seconds averaged by ``workload_utilisation``

    def __post_init__(self) -> None:
        if self.service_time <= 0 or self.concurrency < 1 or self.queue_limit < 0 or self.window <= 0:
            raise ValueError(f"invalid workload config: {self}")

    @property
    def capacity_rps(self) -> float:
        return self.concurrency / self.service_time


class Workload:
    """Slots, FIFO queue, busy-time accounting and metrics; no HTTP. Use from one event loop."""

    def __init__(self, config: WorkloadConfig) -> None:
        self.config = config
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        # Busy-time accounting: slot-seconds per time bucket, integrated whenever ``_in_flight`` changes.
        self._started = time.monotonic()
        self._last_change = self._started
        self._buckets: dict[int, float] = {}

        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "workload_requests",
            "Work requests answered, by HTTP status code.",
            ["code"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "workload_request_duration_seconds",
            "Queueing plus service time of work requests.",
            registry=self.registry,
        )
        Gauge("workload_in_flight", "Slots busy now.", registry=self.registry).set_function(
            lambda: float(self._in_flight)
        )
        Gauge("workload_queue_length", "Requests waiting for a slot now.", registry=self.registry).set_function(
            lambda: float(len(self._waiters))
        )
        Gauge(
            "workload_utilisation",
            f"Fraction of slots busy, averaged over the last ~{config.window:g} s.",
            registry=self.registry,
        ).set_function(self.utilisation)
        Gauge("workload_capacity_rps", "concurrency / service_time.", registry=self.registry).set(config.capacity_rps)
        for code in ("200", "503"):  # export both series from the start
            self._requests.labels(code=code)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queue_length(self) -> int:
        return len(self._waiters)

    async def work(self) -> int:
        """Serve one work request; return its HTTP status (200, or 503 when the queue is full)."""
        started = time.monotonic()
        if not await self._acquire():
            self._requests.labels(code="503").inc()
            return 503
        try:
            await asyncio.sleep(self.config.service_time)
        finally:
            self._release()
        self._requests.labels(code="200").inc()
        self._duration.observe(time.monotonic() - started)
        return 200

    def utilisation(self, now: float | None = None) -> float:
        """Busy slot-seconds / available slot-seconds over the last ``window`` (shorter right after start)."""
        now = time.monotonic() if now is None else now
        self._advance(now)
        first = math.floor(max(now - self.config.window, self._started) / _BUCKET_SECONDS)
        for idx in [i for i in self._buckets if i < first]:
            del self._buckets[idx]
        span = now - max(first * _BUCKET_SECONDS, self._started)
        if span <= 1e-6:
            return self._in_flight / self.config.concurrency
        busy = sum(self._buckets.values())
        return min(1.0, max(0.0, busy / (span * self.config.concurrency)))

    def render_metrics(self) -> bytes:
        return generate_latest(self.registry)

    # -- slots ---------------------------------------------------------------------------------------------

    async def _acquire(self) -> bool:
        if self._in_flight < self.config.concurrency and not self._waiters:
            self._advance(time.monotonic())
            self._in_flight += 1
            return True
        if len(self._waiters) >= self.config.queue_limit:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # resolved by _release, which hands its slot over (in_flight unchanged)
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed to us just before the cancellation: give it back
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        return True

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._advance(time.monotonic())
        self._in_flight -= 1

    def _advance(self, now: float) -> None:
        """Add ``in_flight`` x elapsed time since the last change to the buckets it falls in."""
        t = self._last_change
        self._last_change = max(now, t)
        if self._in_flight == 0:
            return
        while t < now:
            idx = math.floor(t / _BUCKET_SECONDS)
            end = min(now, (idx + 1) * _BUCKET_SECONDS)
            self._buckets[idx] = self._buckets.get(idx, 0.0) + self._in_flight * (end - t)
            t = end


@dataclass
class _Request:
    method: str
    path: str
    keep_alive: bool


class _BadRequest(Exception):
    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(status)


class WorkloadServer:
    """The HTTP front of a ``Workload``: ``await start()``, then ``await shutdown()``."""

    def __init__(self, config: WorkloadConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.workload = Workload(config)
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._draining = False
        self._connections: dict[asyncio.Task[None], bool] = {}  # task -> busy with a request

    async def start(self) -> int:
        """Listen; return the bound port (useful with ``port=0``)."""
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=_MAX_HEAD_BYTES, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def shutdown(self, drain_timeout: float = 5.0) -> None:
        """Stop accepting, drop idle connections, give busy ones ``drain_timeout``, cancel the rest."""
        self._draining = True
        if self._server is not None:
            self._server.close()
        for task, busy in list(self._connections.items()):
            if not busy:
                task.cancel()
        busy_tasks = [task for task in self._connections if not task.done()]
        if busy_tasks:
            _, pending = await asyncio.wait(busy_tasks, timeout=drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = False
        try:
            while not self._draining:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _IDLE_TIMEOUT)
                except (
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    TimeoutError,
                    ConnectionError,
                ):
                    break
                self._connections[task] = True
                try:
                    request = await self._parse(head, reader)
                except _BadRequest as exc:
                    await self._respond(writer, "GET", exc.status, "text/plain", b"bad request\n", False)
                    break
                status, content_type, body = await self._dispatch(request)
                keep_alive = request.keep_alive and not self._draining
                await self._respond(writer, request.method, status, content_type, body, keep_alive)
                self._connections[task] = False
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Cancelled by shutdown(). End normally: on 3.11 asyncio.streams logs an error for a
            # client_connected_cb task that ends cancelled.
            pass
        finally:
            self._connections.pop(task, None)
            writer.close()
            # a second cancel (shutdown's, or the loop's at exit) may land here: end normally all the same
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    @staticmethod
    async def _parse(head: bytes, reader: asyncio.StreamReader) -> _Request:
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise _BadRequest(400) from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, sep, value = line.partition(":")
                if not sep:
                    raise _BadRequest(400)
                headers[name.strip().lower()] = value.strip()
        if "transfer-encoding" in headers:
            raise _BadRequest(501)
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _BadRequest(400) from None
        if length < 0 or length > _MAX_BODY_BYTES:
            raise _BadRequest(413)
        if length:
            await reader.readexactly(length)
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        return _Request(method.upper(), target.split("?", 1)[0], keep_alive)

    async def _dispatch(self, request: _Request) -> tuple[int, str, bytes]:
        text = "text/plain; charset=utf-8"
        if request.path in ("/", "/work"):
            if request.method not in ("GET", "HEAD", "POST"):
                return 405, text, b"method not allowed\n"
            status = await self.workload.work()
            return status, text, b"ok\n" if status == 200 else b"overloaded\n"
        if request.method not in ("GET", "HEAD"):
            return 405, text, b"method not allowed\n"
        if request.path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, self.workload.render_metrics()
        if request.path == "/healthz":
            return (503, text, b"draining\n") if self._draining else (200, text, b"ok\n")
        return 404, text, b"not found\n"

    @staticmethod
    async def _respond(
        writer: asyncio.StreamWriter,
        method: str,
        status: int,
        content_type: str,
        body: bytes,
        keep_alive: bool,
    ) -> None:
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
        await writer.drain()


def _seconds(text: str) -> float:
    """``0.05`` or a duration like ``50ms``."""
    try:
        return float(text)
    except ValueError:
        from alertscaler.model.durations import parse_duration

        try:
            return parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m alertscaler.workload", description="A bundled HTTP workload with a fixed capacity."
    )
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--service-time", type=_seconds, default=0.05, help="seconds per request (or 50ms)")
    parser.add_argument("--concurrency", type=int, default=4, help="slots: requests served at once")
    parser.add_argument("--queue-limit", type=int, default=64, help="requests waiting beyond that get 503")
    parser.add_argument("--drain-timeout", type=_seconds, default=4.0, help="bound on graceful shutdown")
    return parser


async def _serve(args: argparse.Namespace) -> int:
    config = WorkloadConfig(service_time=args.service_time, concurrency=args.concurrency, queue_limit=args.queue_limit)
    server = WorkloadServer(config, args.host, args.port)
    port = await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"workload listening on {args.host}:{port} (concurrency={config.concurrency}, "
        f"service_time={config.service_time:g}s, queue_limit={config.queue_limit}, "
        f"capacity={config.capacity_rps:g} req/s)",
        flush=True,
    )
    await stop.wait()
    print(f"workload draining (up to {args.drain_timeout:g}s)", flush=True)
    await server.shutdown(args.drain_timeout)
    print("workload stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # This process is only the workload: no *_created series.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        return asyncio.run(_serve(args))
    except ValueError as exc:
        print(f"workload: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"workload: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
