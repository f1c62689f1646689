"""The scaffolding shared by the cloud API stand-ins of tests/support (``linode_standin``, ``openstack_standin``,
``kubernetes_standin``): small HTTP servers of ours that follow a documented API closely enough for the real SDK
to talk to them. ``HttpStandin`` is their (dataclass) base; it holds what does not depend on the API:

- Life cycle: a ``ThreadingHTTPServer`` on 127.0.0.1, on a free port, served from a daemon thread; ``start()`` /
  ``stop()``, or ``with Standin() as api``. ``url`` is ``http://127.0.0.1:<port>`` (``https`` when the stand-in's
  ``ssl_context()`` gives a context).
- The request log: ``requests`` holds one ``Recorded`` per request (method, path without a trailing slash, query,
  the headers named in ``recorded_headers``, JSON body, the status answered, monotonic time of arrival);
  ``requests_to(method, path_regex)`` picks some.
- Fault plans: ``stall_next(count, seconds, method=, path=)`` makes the next matching requests wait before they
  are served (outside the lock: other requests go on meanwhile). A stand-in's ``fail_next`` calls
  ``_plan_fault``: the next matching requests, once ``after`` of them have been served normally, answer
  ``status`` with the error body the stand-in shapes in ``fault_reply`` (plus ``Retry-After`` when given). A
  request may be both stalled and failed, by one plan of each kind; ``path`` is a regex searched in the path,
  by default ``fault_path`` (the API's own paths).
- Answers: a stand-in answers ``(status, headers, body)`` or raises ``Reply`` from anywhere in its handlers; the
  body is sent as JSON (a ``str`` as plain text, None as nothing). A bug of the stand-in answers 500 with the
  body of ``internal_error``.

Each stand-in supplies the API itself: ``dispatch`` (``serve`` wraps it: by default the fault plans, then
``dispatch``; a stand-in may add authentication or a controller tick there), and the shapes of its errors
(``fault_reply``, ``internal_error``, its own error helpers): Linode ``{"errors": [{"reason": ...}]}``, Nova
``{"itemNotFound": {"code", "message"}}``, Kubernetes ``Status`` objects.

Also here: ``take_plan``, how the stand-ins' outcome plans (``plan_boots``, ``plan_builds``, ``plan_pods``...)
are used up, and ``contract_provider``, the sharing of one stand-in per state directory behind a provider
contract suite factory.
"""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, dict[str, str], Any]  # status, headers, body (JSON-able, str or None)


def reason_phrase(status: int, default: str | None = None) -> str:
    """The standard reason phrase of ``status`` (``503`` → ``Service Unavailable``); for an unknown one
    ``default``, or the number."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return str(status) if default is None else default


@dataclass
class Recorded:
    """One request as the stand-in saw it, and the status it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int = 0
    at: float = 0.0


class Reply(Exception):
    """Answer the current request with this status / body (raised from deep inside a handler)."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass
class FaultPlan:
    """One ``fail_next`` (``status``) or ``stall_next`` (``seconds``) call, and how much of it is left."""

    remaining: int
    method: str | None
    path: re.Pattern[str]
    status: int = 0
    skip: int = 0  # matching requests still to serve normally first
    seconds: float = 0.0
    retry_after: str | None = None
    retry_header: bool = True  # send retry_after as a Retry-After header
    detail: dict[str, Any] = field(default_factory=dict)  # the stand-in's own options (message, reason...)

    def take(self, method: str, path: str) -> bool:
        """Whether this plan applies to the request (and counts it)."""
        if self.remaining <= 0 or (self.method is not None and self.method != method) or not self.path.search(path):
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        self.remaining -= 1
        return True


class OutcomePlan(Protocol):
    remaining: int | None  # None: for every resource from now on
    name: re.Pattern[str] | None  # None: whatever its name


P = TypeVar("P", bound=OutcomePlan)


def take_plan(plans: list[P], name: str = "") -> P | None:
    """The first of ``plans`` that applies to a new resource called ``name`` (the regex ``plan.name`` is found
    in it), counted; None when no plan does."""
    for plan in plans:
        if (plan.remaining is None or plan.remaining > 0) and (plan.name is None or plan.name.search(name)):
            if plan.remaining is not None:
                plan.remaining -= 1
            return plan
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: HttpStandin


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # one write per response (headers + body), flushed by the base class
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        standin = self.server.standin
        status, headers, body = standin.handle(self.command, self.path, dict(self.headers.items()), raw)
        kind: str | None = None
        if isinstance(body, str):
            data, kind = body.encode(), "text/plain; charset=utf-8"
        elif body is not None:
            data, kind = json.dumps(body).encode(), "application/json"
        else:
            data = b""
        self.send_response(status)
        if kind is not None:
            self.send_header("Content-Type", kind)
        for name, value in {**standin.response_headers(), **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may have given up (a timeout test)
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


@dataclass
class HttpStandin:
    """Base of the API stand-ins: server life cycle, request log, fault plans (see the module docstring)."""

    thread_name: ClassVar[str] = "http-standin"
    fault_path: ClassVar[str] = r"^/"  # what fail_next / stall_next match by default
    recorded_headers: ClassVar[tuple[str, ...]] = ("content-type", "user-agent")  # lower case
    lowercase_headers: ClassVar[bool] = False  # record header names in lower case (else as sent)

    requests: list[Recorded] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._faults: list[FaultPlan] = []
        self._stalls: list[FaultPlan] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- life cycle -----------------------------------------------------------------------------------------

    def start(self) -> Self:
        context = self.ssl_context()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.standin = self
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.url = f"{'https' if context else 'http'}://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls --------------------------------------------------------------------------------------

    def stall_next(self, count: int, seconds: float, *, method: str | None = None, path: str | None = None) -> None:
        """The next ``count`` requests matching ``method`` and ``path`` (a regex; default ``fault_path``) wait
        ``seconds`` before they are served."""
        with self._lock:
            self._stalls.append(FaultPlan(count, method, re.compile(path or self.fault_path), seconds=seconds))

    def requests_to(self, method: str, pattern: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    def _plan_fault(self, count: int, status: int, *, method: str | None, path: str,
                    retry_after: float | str | None, after: int, retry_header: bool = True, **detail: Any) -> None:
        """For a stand-in's ``fail_next``: the next ``count`` requests matching ``method`` and ``path`` (once
        ``after`` of them have been served normally) answer ``fault_reply``; ``detail`` is for that hook."""
        with self._lock:
            self._faults.append(FaultPlan(count, method, re.compile(path), status=status, skip=after,
                                          retry_after=None if retry_after is None else str(retry_after),
                                          retry_header=retry_header, detail=detail))

    # -- requests -------------------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Answer:
        """One request: recorded, stalled as planned, then served (under the lock)."""
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        kept = {(k.lower() if self.lowercase_headers else k): v for k, v in headers.items()
                if k.lower() in self.recorded_headers}
        record = Recorded(method, path, query, kept, body, at=time.monotonic())
        with self._lock:
            self.requests.append(record)
            stall = next((s for s in self._stalls if s.take(method, path)), None)
        if stall is not None:
            time.sleep(stall.seconds)
        with self._lock:
            try:
                status, out_headers, out = self.serve(method, path, query, headers, body)
            except Reply as reply:
                status, out_headers, out = reply.status, reply.headers, reply.body
            except Exception as exc:  # a bug of the stand-in: answer like a broken API would
                status, out_headers, out = 500, {}, self.internal_error(exc)
            record.status = status
        return status, out_headers, out

    def serve(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
              body: Any) -> Answer:
        """Under the lock: a planned fault, else ``dispatch``."""
        self.inject_fault(method, path)
        return self.dispatch(method, path, query, headers, body)

    def inject_fault(self, method: str, path: str) -> None:
        """Raise the ``Reply`` of the first fault plan that takes this request, if any."""
        fault = next((f for f in self._faults if f.take(method, path)), None)
        if fault is None:
            return
        reply = self.fault_reply(fault)
        if fault.retry_after is not None and fault.retry_header:
            reply.headers["Retry-After"] = fault.retry_after
        raise reply

    # -- hooks of each stand-in -----------------------------------------------------------------------------

    def dispatch(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                 body: Any) -> Answer:
        """The API: answer the request or raise ``Reply``."""
        raise Reply(404)

    def fault_reply(self, fault: FaultPlan) -> Reply:
        """The error answer of an injected fault, in the API's shape."""
        return Reply(fault.status, {"message": f"injected fault: {reason_phrase(fault.status)}"})

    def internal_error(self, exc: Exception) -> Any:
        """The body of a 500 when the stand-in itself fails."""
        return {"message": f"stand-in error: {exc!r}"}

    def response_headers(self) -> dict[str, str]:
        """Headers sent with every answer (before the answer's own)."""
        return {}

    def ssl_context(self) -> ssl.SSLContext | None:
        """A server context to serve HTTPS with; None: plain HTTP."""
        return None


# -- the provider contract suite ----------------------------------------------------------------------------

_contract_apis: dict[tuple[Any, Path], list[Any]] = {}  # (new_api, state_dir) -> [stand-in, providers using it]


def contract_provider(state_dir: Path, group: str, new_api: Callable[[], HttpStandin],
                      new_provider: Callable[[Any, Any], Any]) -> tuple[Any, Callable[[], None]]:
    """For ``PROVIDER_FACTORIES`` of the provider contract suite: ``new_provider(api, context)`` on one stand-in
    per state directory, made by ``new_api`` (a class or module-level function: with the state directory, the
    key of the sharing) and started here, shared by every provider made on it (a "restart" sees the same
    resources). A cleanup scales the group to 0 (best effort) and closes its provider; the last one stops the
    stand-in."""
    from alertscaler.providers.base import ProviderContext, ScaleRequest

    key = (new_api, state_dir)
    entry = _contract_apis.get(key)
    if entry is None:
        entry = _contract_apis[key] = [new_api().start(), 0]
    entry[1] += 1
    api = entry[0]
    provider = new_provider(api, ProviderContext(group=group, state_dir=state_dir))

    def cleanup() -> None:
        with contextlib.suppress(Exception):
            provider.scale(ScaleRequest(group=group, from_capacity=0, desired=0, action_id=999_999,
                                        decision_id=999_999))
        provider.close()
        entry[1] -= 1
        if entry[1] == 0:
            api.stop()
            _contract_apis.pop(key, None)

    return provider, cleanup
