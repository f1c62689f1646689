"""Sending the load generator's work requests: ``HttpPool``, keep-alive ``GET`` requests to one ``host:port``
over a minimal HTTP/1.1 client on asyncio streams (why not httpx: see ``HttpPool``).

Used by ``demo.loadgen.LoadGenerator`` (one pool per target); tested in the load generator's tests.
"""

from __future__ import annotations

import asyncio

__all__ = ["HttpPool"]


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
