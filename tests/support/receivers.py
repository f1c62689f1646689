"""Real receivers of alertscaler's outgoing notifications, on 127.0.0.1 and a free port, owned by a test:

- ``WebhookReceiver``: an HTTP server (``ThreadingHTTPServer`` in a daemon thread) keeping every POST (raw body,
  headers) and answering a scripted status per request (``answer(503, 503)``: the next two fail, then 200).
  ``verified(secret)`` checks a request's ``X-Alertscaler-Signature`` the way a receiver should: over the raw
  body and the timestamp header, the timestamp near now.
- ``SmtpSink``: an SMTP server (aiosmtpd's ``Controller``, its own thread and loop) keeping every message
  delivered, optionally checking a login (``credentials``: the logins that succeeded are kept), optionally
  answering the next messages with an error reply (``refuse``).

Used by tests/unit/test_notifier.py, tests/api/test_notifications.py and the e2e notification test.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from alertscaler.model.notifications import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what was answered

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def uid(self) -> str:
        return self.headers.get(ID_HEADER.lower(), "")

    def verified(self, secret: str, now: float | None = None, tolerance_s: float = 300.0) -> bool:
        """The signature is the secret's over this body and timestamp, and the timestamp is near ``now`` (default:
        the real time)."""
        return verify(secret.encode(), self.headers.get(TIMESTAMP_HEADER.lower(), ""), self.body,
                      self.headers.get(SIGNATURE_HEADER.lower(), ""), time.time() if now is None else now,
                      tolerance_s)


@dataclass
class WebhookReceiver:
    received: list[Received] = field(default_factory=list)
    _plans: dict[str, list[int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def answer(self, *statuses: int, path: str = "") -> None:
        """The next requests (to paths starting with ``path``) are answered these statuses, in order; then 200."""
        with self._lock:
            self._plans.setdefault(path, []).extend(statuses)

    def clear(self) -> None:
        """Forget what was received, and answer 200 from now on."""
        with self._lock:
            self.received.clear()
            self._plans.clear()

    def _status(self, path: str) -> int:
        for prefix, plan in sorted(self._plans.items(), key=lambda kv: -len(kv[0])):
            if plan and path.startswith(prefix):
                return plan.pop(0)
        return 200

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def ok(self) -> list[Received]:
        """The requests answered 2xx."""
        with self._lock:
            return [r for r in self.received if 200 <= r.status < 300]

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver._status(self.path)
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                      body, status))
                reply = b"" if status < 300 else b"try again later"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class SmtpSink:
    """``credentials``: (user, password) a client must log in with (AUTH PLAIN / LOGIN, allowed without TLS on
    loopback); None: no login."""

    credentials: tuple[str, str] | None = None
    messages: list[tuple[Envelope, Message]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _refuse: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    def refuse(self, *replies: str) -> None:
        """The next messages are answered these replies (``"451 4.3.0 try later"``) instead of being taken."""
        with self._lock:
            self._refuse.extend(replies)

    async def handle_DATA(self, server: SmtpServer, session: Session, envelope: Envelope) -> str:
        with self._lock:
            if self._refuse:
                return self._refuse.pop(0)
            content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
            self.messages.append((envelope, message_from_bytes(content)))
        return "250 2.0.0 Ok: queued"

    def _authenticate(self, server: SmtpServer, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (self.credentials is not None and isinstance(auth_data, LoginPassword)
              and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials)
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 on a failure

    def start(self) -> Self:
        options: dict[str, Any] = {}
        if self.credentials is not None:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}  # loopback only
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
