"""The one composition root: policy file → store, providers, the engine's loops (``build_engine``: processing,
re-evaluation and live checks, tracking, schedules, heal judge, workers, the Prometheus client and combiner),
HTTP app; and running it under uvicorn, where ``SIGHUP`` reloads the policy file (``act.reloading``, wired here
with the same wiring as at start) and the TLS certificate.

Called by ``cli`` (``serve``) and by tests that want the whole service, or an engine, in-process.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from alertscaler.act.anomaly import AnomalyLoop
from alertscaler.act.checking import Checker, SeriesCount
from alertscaler.act.engine import Engine, Loops, utcnow
from alertscaler.act.executing import Executor
from alertscaler.act.healing import HealJudge, prometheus_problem
from alertscaler.act.metrics import Metrics
from alertscaler.act.notifying import Notifier
from alertscaler.act.operating import Operator
from alertscaler.act.ownership import Ownership
from alertscaler.act.prediction import history_of
from alertscaler.act.processing import Processor
from alertscaler.act.queueing import GroupWorker
from alertscaler.act.recording import exact_policies, publish
from alertscaler.act.reevaluating import Reevaluator
from alertscaler.act.reloading import Reloader
from alertscaler.act.scheduling import Scheduler
from alertscaler.act.silencing import SilenceGate
from alertscaler.act.tracking import Query, TrackingLoop, ValuesOf
from alertscaler.alertmanager.client import AlertmanagerClient
from alertscaler.api.app import create_app
from alertscaler.api.tls import TlsListener
from alertscaler.confgen.syncing import SyncError, sync_rules
from alertscaler.config import PolicyFile
from alertscaler.logs import setup_logging as setup_logging  # re-exported: the formats live in logs
from alertscaler.prometheus.client import PrometheusClient
from alertscaler.prometheus.combining import QueryCombiner
from alertscaler.providers import registry
from alertscaler.providers.base import Provider, ProviderContext
from alertscaler.store.base import StateStore
from alertscaler.store.sql import SqlStore

log = logging.getLogger(__name__)


@dataclass
class Service:
    policy: PolicyFile
    store: SqlStore
    engine: Engine
    app: Starlette


def build(policy: PolicyFile, source: str | Path | None = None) -> Service:
    """Open (and migrate) the store and create every group's provider. Nothing runs yet. ``source``: the policy
    file, re-read by a reload."""
    policy.state_dir().mkdir(parents=True, exist_ok=True)
    store = SqlStore(policy.store_url(), sqlite_synchronous=policy.store.sqlite_synchronous)
    store.migrate()
    providers = {name: create_provider(policy, name) for name in policy.groups}
    engine = build_engine(policy, store, providers, source=source)
    return Service(policy, store, engine, create_app(engine))


def create_provider(policy: PolicyFile, name: str) -> Provider:
    """Group ``name``'s provider, its state under ``state_dir/groups/NAME`` (at start, and for a reload)."""
    group_dir = policy.state_dir() / "groups" / name
    group_dir.mkdir(parents=True, exist_ok=True)
    return registry.create(policy.groups[name].provider, ProviderContext(group=name, state_dir=group_dir))


def build_engine(policy: PolicyFile, store: StateStore, providers: dict[str, Provider], *,
                 clock: Callable[[], datetime] = utcnow, metrics: Metrics | None = None,
                 monitoring: Callable[[], str | None] | None = None, query: Query | None = None,
                 series: SeriesCount | None = None, ownership: Ownership | None = None,
                 source: str | Path | None = None,
                 provider_factory: Callable[[PolicyFile, str], Provider] = create_provider) -> Engine:
    """Wire the engine's loops: the one place they are put together (``build`` and the tests call it). The
    engine's ``reloader`` wires them again, the same way, for a new version of the policy file (``source``),
    keeping ``metrics``, ``ownership`` and the options below; ``provider_factory`` makes the providers of the
    groups a reload adds or whose provider it changes.

    ``monitoring`` says what is wrong with the monitoring path (None: healthy) for the heal freeze; default:
    whether the configured Prometheus answers ``/-/ready`` (nothing is asked, and the freeze does not consider
    Prometheus, when the policy file sets no ``prometheus.url``). ``query`` gives the one value of a PromQL
    expression (target tracking, ``size_by``), ``series`` how many series one returns (``guard``); default: the
    one client of the ``prometheus`` section (``PrometheusClient.from_config``: URL, bearer token, TLS,
    timeout), made only when a group tracks a target, has a checked step policy or a heal freeze that asks.
    With ``alertmanager.url`` set, the one Alertmanager client (``AlertmanagerClient.from_config``) gates every
    step policy (``act.silencing``: silences respected, phantom alerts reconciled) and every heal alert."""
    metrics = metrics or Metrics()
    # this process as a replica: its id, lease and heartbeat; claims made in the store's transactions use it
    ownership = ownership or Ownership(policy.store.lease, policy.store.heartbeat_interval,
                                       local_peers=not policy.store_url().startswith("postgresql"))
    store.act_as(ownership.claims)

    def wire(policy: PolicyFile, providers: dict[str, Provider]) -> tuple[Loops, Operator]:
        return _wire(policy, store, providers, clock, metrics, ownership, monitoring, query, series)

    loops, operator = wire(policy, providers)
    engine = Engine(policy, store, providers, loops, operator, clock=clock, metrics=metrics)
    engine.reloader = Reloader(engine, wire, provider_factory, source, on_applied=warn_if_unauthenticated)
    return engine


def _wire(policy: PolicyFile, store: StateStore, providers: dict[str, Provider], clock: Callable[[], datetime],
          metrics: Metrics, ownership: Ownership, monitoring: Callable[[], str | None] | None, query: Query | None,
          series: SeriesCount | None) -> tuple[Loops, Operator]:
    """The loops and the operator for ``policy`` (``build_engine``'s options; a reload calls it again)."""
    groups = policy.groups.values()
    tracks = any(g.track is not None for g in groups)
    checks = any(step.checked for g in groups for _, step in g.policies())
    p = policy.prometheus
    freezing = monitoring is None and any(g.heal is not None and g.heal.freeze.prometheus for g in groups)
    if freezing and not p.url_set:
        log.warning("heal freeze: prometheus.url is not set, so heals are not frozen while Prometheus is down")
    freeze_asks = freezing and p.url_set
    needs_queries = (query is None and tracks) or (checks and (query is None or series is None))
    client: PrometheusClient | None = None
    combiner: QueryCombiner | None = None
    values_of: ValuesOf | None = None
    anomalies = policy.anomaly.specs()  # range-queried through the same client (act.anomaly)
    if needs_queries or freeze_asks or anomalies:
        client = PrometheusClient.from_config(p)
        if needs_queries:
            if query is None:
                combiner = QueryCombiner(client, p.queries_per_request)
                values_of = combiner.values_of
            query = query or client.value_of
            series = series or _series_of(client)
    probe = client if freeze_asks else None
    checker = Checker(query, series) if query is not None and series is not None else None
    # Alertmanager's view (silences, phantom alerts): the one client of the alertmanager section, when it has a url
    am = AlertmanagerClient.from_config(policy.alertmanager) if policy.alertmanager.url is not None else None
    gate = SilenceGate(am.alerts, policy.alertmanager.reconcile_interval) if am is not None else None
    workers = {
        name: GroupWorker(name, store, Executor(store, providers[name], policy.actions, metrics, clock,
                                                exact_policies(group), owner=ownership.replica, group=group,
                                                drain=policy.drain_of(name)),
                          clock,
                          db=store.call, ownership=ownership)
        for name, group in policy.groups.items()
    }
    loops = Loops(
        processor=Processor(policy, store, gated=gate is not None),
        reevaluator=Reevaluator(policy, store, checker, gate),
        heal_judge=HealJudge(policy, store, providers, monitoring or (lambda: prometheus_problem(probe)), gate),
        workers=workers,
        tracking=(TrackingLoop(policy, store, query, values_of, history_of(client) if client is not None else None)
                  if tracks and query is not None else None),
        scheduler=Scheduler(policy, store) if any(g.schedule for g in groups) else None,
        anomaly=AnomalyLoop(anomalies, client.range if client is not None and anomalies else None, metrics),
        combiner=combiner,
        closers=[c.close for c in (client, am) if c is not None],
        ownership=ownership,
        notifier=Notifier(policy, store, clock, ownership.replica, ownership.drives),  # the outbox (act.notifying)
    )
    # publishes to the workers the engine ends up with (a reload keeps the running ones: act.reloading)
    operator = Operator(policy, store, clock, metrics, lambda done: publish(done, metrics, loops.workers))
    return loops, operator


def _series_of(client: PrometheusClient) -> SeriesCount:
    return lambda query: len(client.instant(query))


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


def warn_if_unauthenticated(policy: PolicyFile) -> bool:
    """``server.auth.insecure_no_auth: true``: said at every start, as an error-level line when the listener is
    reachable from other machines (the policy file asked for it explicitly, so the service still starts)."""
    warning = policy.server.insecure_warning()
    if warning is None:
        return False
    log.log(logging.WARNING if policy.server.loopback_only else logging.ERROR, "INSECURE: %s", warning)
    return True


def serve(policy: PolicyFile, log_level: str = "info", source: str = "policy file") -> None:
    """Run the service on ``policy``, loaded from the file ``source``: until SIGTERM / SIGINT; SIGHUP reloads the
    policy file (``act.reloading``) and, with TLS, the certificate."""
    warn_if_unauthenticated(policy)
    sync_rules_at_start(policy, source)
    service = build(policy, source=source)
    tls = policy.server.tls
    config = uvicorn.Config(
        service.app, host=policy.server.host, port=policy.server.port, log_config=None,
        log_level=log_level, access_log=False, lifespan="on", timeout_graceful_shutdown=10,
        ssl_certfile=tls.cert_file if tls else None, ssl_keyfile=tls.key_file if tls else None,
    )
    listener = None
    if tls is not None:
        listener = TlsListener(tls.cert_file, tls.key_file)
        config.load()
        config.ssl = listener.context  # the one context the server uses; SIGHUP reloads its certificate
    reload_on_sighup(service.engine, listener)
    server = uvicorn.Server(config)
    log.info("alertscaler listening on %s%s (store %s, %d group(s)); SIGHUP reloads %s%s", policy.server.listen,
             " with TLS" if tls else "", service.store.safe_url, len(policy.groups), source,
             " and the certificate" if tls else "")
    try:
        server.run()
    finally:
        service.store.close()


def reload_on_sighup(engine: Engine, listener: TlsListener | None = None) -> Any:
    """Install the SIGHUP handler (main thread only): the TLS certificate is re-read at once (``listener``), the
    policy file on the engine's event loop (``Engine.reloader``). Returns the handler it replaced."""
    reloader = engine.reloader

    def on_sighup(signum: int, frame: FrameType | None) -> None:
        if listener is not None:
            listener.reload()
        if reloader is not None:
            reloader.reload_soon("SIGHUP")

    return signal.signal(signal.SIGHUP, on_sighup)
