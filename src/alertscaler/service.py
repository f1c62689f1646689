"""Wiring: policy file → store, providers, engine, HTTP app; and running it under uvicorn.

Called by ``cli`` (``serve``) and by tests that want the whole service in-process.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette

from alertscaler.act.engine import Engine
from alertscaler.api.app import create_app
from alertscaler.confgen.syncing import SyncError, sync_rules
from alertscaler.config import PolicyFile
from alertscaler.prometheus.client import PrometheusClient
from alertscaler.providers import registry
from alertscaler.providers.base import Provider, ProviderContext
from alertscaler.store.sql import SqlStore

log = logging.getLogger(__name__)


@dataclass
class Service:
    policy: PolicyFile
    store: SqlStore
    engine: Engine
    app: Starlette


def build(policy: PolicyFile) -> Service:
    """Open (and migrate) the store and create every group's provider. Nothing runs yet."""
    state_dir = policy.state_dir()
    state_dir.mkdir(parents=True, exist_ok=True)
    store = SqlStore(policy.store_url(), sqlite_synchronous=policy.store.sqlite_synchronous)
    store.migrate()
    providers: dict[str, Provider] = {}
    for name, group in policy.groups.items():
        group_dir = state_dir / "groups" / name
        group_dir.mkdir(parents=True, exist_ok=True)
        providers[name] = registry.create(group.provider, ProviderContext(group=name, state_dir=group_dir))
    engine = Engine(policy, store, providers)
    return Service(policy, store, engine, create_app(engine))


def sync_rules_at_start(policy: PolicyFile, source: str) -> bool:
    """``prometheus.sync_rules_on_start``: install the generated rules. A failure is logged, not fatal:
    scaling keeps working on the rules Prometheus already has (sync never leaves it a broken file)."""
    rules_dir = policy.rules_dir()
    if not policy.prometheus.sync_rules_on_start or rules_dir is None:
        return False
    try:
        with PrometheusClient.from_config(policy.prometheus) as prometheus:
            result = sync_rules(policy.render_input(source), rules_dir, policy.prometheus.rule_file, prometheus)
    except SyncError as exc:
        log.error("rule sync at start failed: %s %s", exc, "; ".join(exc.problems))
        return False
    log.info("rule sync at start: %s", "; ".join(result.steps))
    return True


def serve(policy: PolicyFile, log_level: str = "info", source: str = "policy file") -> None:
    sync_rules_at_start(policy, source)
    service = build(policy)
    server = uvicorn.Server(uvicorn.Config(
        service.app, host=policy.server.host, port=policy.server.port, log_config=None,
        log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=10,
    ))
    log.info("alertscaler listening on %s (store %s, %d group(s))", policy.server.listen,
             service.store.safe_url, len(policy.groups))
    try:
        server.run()
    finally:
        service.store.close()


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                               "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "alembic"):  # one line per HTTP call / migration plugin: not decisions
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
