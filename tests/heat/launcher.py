"""Run a real OpenStack Heat (API + engine) in ONE process on 127.0.0.1, for alertscaler's tests.

This script runs under the Heat virtual environment (``.heat-venv/bin/python``, built by ``make heat-venv``
from ``tests/heat/requirements.txt``), never under the project's ``.venv``: Heat pins many oslo libraries,
and nothing here may import alertscaler. The pytest fixture ``heat`` (``tests/integration/heat_fixtures.py``)
writes the ``heat.conf``, runs ``heat-manage db_sync`` and starts it::

    .heat-venv/bin/python tests/heat/launcher.py --config-file heat.conf --port 8004

Why a launcher at all: Heat 27 ships ``heat-engine`` and ``heat-wsgi-api`` as separate programs that talk
over RabbitMQ; ``heat-all`` and the eventlet API server are gone. With ``transport_url = fake://`` the RPC
"bus" is an in-memory queue that only works inside one process, so this script starts both halves in one
process:

1. the oslo.service THREADING backend is selected before anything else imports oslo.service;
2. the configuration is parsed, oslo.messaging is set up, Heat's start-up sanity check runs;
3. ``heat.engine.service.EngineService`` is started in this process (``service.launch`` would fork);
4. the paste app ``heat-api`` (``flavor = noauth`` in heat.conf) is served by a threading ``wsgiref``
   server on 127.0.0.1:PORT;
5. SIGTERM/SIGINT end the process with ``os._exit``, and so does a failure to start the API: the engine's
   threads are not daemons, so a plain ``sys.exit`` would leave an engine running that keeps writing to
   the database. With ``--exit-with-parent`` it also exits when the process that started it is gone (a
   killed pytest leaves no Heat behind).

Two behaviours of Heat are patched, because this Heat has neither Keystone nor a server database:

* ``heat.common.context.StoredContext._load_keystone_data``: a stack signal (a scaling policy being
  triggered) runs under the stack's stored credentials, and Heat asks Keystone for their roles and domains.
  Without Keystone the signal POST still answers 200 but nothing scales (the log shows
  ``EndpointNotFound``). The replacement marks the data as loaded with ``roles = ['admin']`` and the
  ``default`` user and project domains.
* SQLite transactions: oslo.db switches pysqlite's own transaction handling off and emits a plain
  (deferred) ``BEGIN``. Two engine threads that both read and then write then fail at once with "database
  is locked" (a deferred transaction cannot wait for the lock it upgrades to; the busy timeout does not
  apply). A ``before_cursor_execute`` listener rewrites that bare ``BEGIN`` to ``BEGIN IMMEDIATE``, so
  writers queue on the busy timeout instead.

Request logging of the wsgiref server goes to the ``heat.standalone.access`` logger at DEBUG level, so it
only shows with ``debug = true`` in heat.conf. Everything else is logged by oslo.log to stderr (the
fixture sends stdout and stderr to a log file).
"""

# ruff: noqa: E402 - the oslo.service backend must be chosen before Heat's imports load oslo.service.
from __future__ import annotations

from oslo_service import backend

backend.init_backend(backend.BackendType.THREADING)

import argparse
import logging as std_logging
import os
import signal
import socketserver
import sys
import threading
import time
import traceback
import types
from typing import Any, NoReturn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy
import sqlalchemy.event
from heat.common import config, context, messaging
from heat.engine import service as engine_service
from heat.rpc import api as rpc_api
from heat.version import version_info
from oslo_config import cfg
from oslo_log import log as logging

CONF = cfg.CONF
LOG = logging.getLogger("heat.standalone")
ACCESS_LOG = std_logging.getLogger("heat.standalone.access")


# -- patches ------------------------------------------------------------------------------------------------


def _load_keystone_data_without_keystone(self: context.StoredContext) -> None:
    """Stand-in for ``StoredContext._load_keystone_data``: what Keystone would answer for the admin user."""
    self._keystone_loaded = True
    self.roles = ["admin"]
    self.user_domain_id = "default"
    self.project_domain_id = "default"


def _begin_immediate(
    conn: Any, cursor: Any, statement: str, parameters: Any, exec_context: Any, executemany: bool
) -> tuple[str, Any]:
    """``before_cursor_execute`` hook: on SQLite, take the write lock when the transaction starts."""
    if conn.dialect.name == "sqlite" and statement.strip().upper() == "BEGIN":
        statement = "BEGIN IMMEDIATE"
    return statement, parameters


def apply_patches() -> None:
    """Install both patches; must run before the engine opens its first database connection."""
    context.StoredContext._load_keystone_data = _load_keystone_data_without_keystone
    # A listener on the Engine class applies to every engine, including those oslo.db creates later.
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", _begin_immediate, retval=True)


# -- HTTP server --------------------------------------------------------------------------------------------


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server with one daemon thread per request (signals are asynchronous; polls run alongside)."""

    daemon_threads = True
    allow_reuse_address = True


class QuietRequestHandler(WSGIRequestHandler):
    """Sends wsgiref's per-request lines to a DEBUG logger instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        ACCESS_LOG.debug("%s - %s", self.address_string(), format % args)


# -- process control ----------------------------------------------------------------------------------------


def _leave(code: int, message: str) -> NoReturn:
    """Exit at once: the engine's non-daemon threads would otherwise keep the process (and its DB) alive."""
    LOG.info("heat standalone: %s, exiting", message)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _on_signal(signum: int, frame: types.FrameType | None) -> NoReturn:
    _leave(0, f"signal {signum}")


def _die(message: str) -> NoReturn:
    sys.stderr.write(f"heat standalone: {message}\n{traceback.format_exc()}")
    _leave(1, message)


def _exit_with_parent(parent_pid: int) -> NoReturn:
    """Watchdog thread: once re-parented (the starting process died), exit as on SIGTERM."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    _leave(0, f"parent process {parent_pid} is gone")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Heat API + engine in one process, on 127.0.0.1 (tests only)")
    parser.add_argument("--config-file", required=True, help="heat.conf (transport_url = fake://, noauth)")
    parser.add_argument("--port", type=int, required=True, help="TCP port of the Heat API on 127.0.0.1")
    parser.add_argument("--exit-with-parent", action="store_true", help="exit when the parent process is gone")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    apply_patches()  # before anything can open a database connection
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if args.exit_with_parent:
        threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="exit-with-parent", daemon=True).start()

    logging.register_options(CONF)
    CONF(
        ["--config-file", args.config_file],
        project="heat",
        prog="heat-api",
        version=version_info.version_string(),
    )
    logging.setup(CONF, "heat-standalone")
    # One INFO line per registered resource type at each start-up: noise in the fixture's log tail.
    std_logging.getLogger("heat.engine.environment").setLevel(std_logging.ERROR)
    config.set_config_defaults()
    messaging.setup()
    config.startup_sanity_check()

    try:
        engine = engine_service.EngineService(CONF.host, rpc_api.ENGINE_TOPIC)
        engine.start()
    except Exception:
        _die("the engine failed to start")

    try:
        app = config.load_paste_app("heat-api")
        server = make_server(
            "127.0.0.1", args.port, app, server_class=ThreadingWSGIServer, handler_class=QuietRequestHandler
        )
    except Exception:
        _die(f"the API failed to start on 127.0.0.1:{args.port}")
    LOG.info("heat standalone: API on http://127.0.0.1:%d, engine %s", args.port, engine.engine_id)
    try:
        server.serve_forever()
    except Exception:
        _die("the API server failed")
    _leave(1, "the API server stopped")


if __name__ == "__main__":
    main()
