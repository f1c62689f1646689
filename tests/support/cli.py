"""The CLI against a real service, in this process: ``serving(engine)`` serves an engine's app with uvicorn on
127.0.0.1 (a free port; listening when it yields the URL), and ``CliRunner`` runs ``alertscaler ARGV --url URL``
through the CLI's ``main`` in a thread, as a user would: (exit code, stdout, stderr), never a traceback.

Used by the tests of the CLI's client commands (tests/api/test_cli_*.py); the token comes from the environment
(``ALERTSCALER_TOKEN``), which each test's fixture sets.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx
import pytest
import uvicorn

from alertscaler.act.engine import Engine
from alertscaler.api.app import create_app
from alertscaler.cli import main

NO_POLICY_FILE = "/nonexistent/alertscaler.yml"  # the commands take the service's URL, never a local file


@asynccontextmanager
async def serving(engine: Engine) -> AsyncIterator[str]:
    """Serve ``engine``'s app (the engine is the caller's to start and stop); yields its base URL."""
    config = uvicorn.Config(create_app(engine, manage_engine=False), log_config=None, lifespan="off")
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what Server._serve sets before startup
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await server.startup(sockets=[sock])  # listening when this returns
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await server.shutdown(sockets=[sock])
        sock.close()


@dataclass
class CliRunner:
    """The CLI pointed at a served engine (``--url``; the token in ``ALERTSCALER_TOKEN``)."""

    url: str
    capsys: pytest.CaptureFixture[str]

    async def run(self, *argv: str, url: str | None = None) -> tuple[int, str, str]:
        """``alertscaler ARGV --url URL -c <none>``: (exit code, stdout, stderr). argparse's own usage errors exit
        through SystemExit: its code is returned like ``main``'s."""
        args = [*argv, "--url", url or self.url, "-c", NO_POLICY_FILE]

        def call() -> int:
            try:
                return main(args)
            except SystemExit as exc:
                return int(exc.code or 0)

        self.capsys.readouterr()
        code = await anyio.to_thread.run_sync(call)
        captured = self.capsys.readouterr()
        assert "Traceback" not in captured.err + captured.out
        return code, captured.out, captured.err

    async def post(self, path: str, payload: object, token: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.url, trust_env=False) as client:
            return await client.post(path, json=payload, headers={"Authorization": f"Bearer {token}"})
