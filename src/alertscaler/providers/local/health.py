"""Health probes of the ``local`` provider's running instances: all at once, bounded by ONE deadline.

``probe(ports, path, timeout)`` connects to every ``127.0.0.1:<port>`` at the same time, sends ``GET <path>``
and reads the status line, multiplexing every connection in one ``selectors`` loop on the calling thread. The
call therefore returns within ``timeout`` seconds however many instances there are and however they misbehave
(a hung process: the kernel accepts the connection, nobody answers). No threads or pools, no cache: nothing
outlives the call, and each call sees the instances as they are now. An instance is healthy when it answers
``200``; anything else — refused, reset, closed, another status, no status line in time — is a reason why not.
Used by ``local.LocalProvider.status`` / ``members`` and to choose scale-in victims.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

_MAX_HEAD = 8192  # bytes read before giving up on finding a status line


@dataclass
class _Probe:
    key: str
    sock: socket.socket
    unsent: bytes
    connected: bool = False
    received: bytearray = field(default_factory=bytearray)


def probe(ports: Mapping[str, int], path: str, timeout: float, host: str = "127.0.0.1") -> dict[str, str]:
    """``{key: why}`` of the instances (``{key: port}``) that do NOT answer ``GET path`` with 200 within ``timeout``
    seconds (all probed concurrently); healthy ones are absent."""
    problems: dict[str, str] = {}
    if not ports:
        return problems
    deadline = time.monotonic() + timeout
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: alertscaler-probe\r\nConnection: close\r\n\r\n"
               .encode())
    with selectors.DefaultSelector() as selector:
        try:
            for key, port in ports.items():
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                code = sock.connect_ex((host, port))
                if code not in (0, errno.EINPROGRESS):
                    sock.close()
                    problems[key] = _refused(code)
                    continue
                selector.register(sock, selectors.EVENT_WRITE, _Probe(key, sock, request))
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                for ready, events in selector.select(remaining):
                    one: _Probe = ready.data
                    verdict = _step(selector, one, events, path)
                    if verdict is not None:
                        selector.unregister(one.sock)
                        one.sock.close()
                        if verdict:
                            problems[one.key] = verdict
            for ready in selector.get_map().values():
                problems[ready.data.key] = f"no answer to GET {path} within {timeout:g}s"
        finally:
            for ready in list(selector.get_map().values()):
                selector.unregister(ready.fileobj)
                ready.data.sock.close()
    return problems


def _step(selector: selectors.BaseSelector, one: _Probe, events: int, path: str) -> str | None:
    """Advance one probe: None = not done yet, "" = healthy, else why not."""
    if not one.connected:
        code = one.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            return _refused(code)
        one.connected = True
    if one.unsent:
        try:
            sent = one.sock.send(one.unsent)
        except BlockingIOError:
            return None
        except OSError as exc:
            return f"GET {path}: {exc.strerror or exc}"
        one.unsent = one.unsent[sent:]
        if not one.unsent:
            selector.modify(one.sock, selectors.EVENT_READ, one)
        return None
    if not events & selectors.EVENT_READ:
        return None
    try:
        chunk = one.sock.recv(4096)
    except BlockingIOError:
        return None
    except OSError as exc:
        return f"GET {path}: {exc.strerror or exc}"
    one.received += chunk
    end = one.received.find(b"\n")
    if end < 0:
        if not chunk:
            return f"GET {path}: connection closed without an answer"
        return f"GET {path}: no HTTP status line" if len(one.received) > _MAX_HEAD else None
    parts = bytes(one.received[:end]).split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return f"GET {path}: not an HTTP answer"
    status = int(parts[1])
    return "" if status == 200 else f"GET {path} answered {status}"


def _refused(code: int) -> str:
    if code == errno.ECONNREFUSED:
        return "not listening (connection refused)"
    return f"cannot connect: {os.strerror(code)}"
