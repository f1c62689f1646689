"""Reloading the policy file without a restart: ``SIGHUP``, ``POST /-/reload`` (``alertscaler reload``).

A reload applies one whole version of the file, or nothing:

1. The file is read and validated completely (``config.loading``: every problem with its path). Any problem:
   refused, the running configuration stays; every problem is logged and answered.
2. What a running service cannot change (``RESTART_FIELDS``: the store and its leases, the listener, TLS files,
   the state directory) refuses the reload too ("needs a restart"): the running configuration stays whole
   rather than half of a new file applied (``needs_restart``).
3. The rest is compared (``diff_policies``): groups added, changed (their configuration differs), removed,
   unchanged; which service-wide sections changed (``server.auth``, ``prometheus``, ``actions``...).
4. The loops are wired for the new file by the same builder as at start (``service.build_engine`` gives its
   wiring to the ``Reloader``); groups keep their provider unless their ``provider`` section changed; added
   groups and changed providers get a new one (state under ``state_dir/groups/NAME``). Creating one fails:
   refused, nothing swapped.
5. The swap (``Engine.install``) happens on the event loop between two timer passes (``Engine.passes``): every
   request, webhook and decision after it sees the new file. Each kept group's worker finishes the action it
   runs with the executor (and provider) it started with and takes its next with the new one; a replaced provider
   is closed after. A removed group's worker finishes its action and stops, then the group's queued actions fail
   (nothing runs for a group the file no longer has); its alerts and heal signals are dropped by the loops, as
   after a restart. Unchanged groups keep what the timer loops remember of them (``carry_from``).
6. A heartbeat: added groups are taken over (by this replica, or a peer) and reconciled (their group row, a size
   check), changed groups this replica drives are reconciled (their bounds).

``alertscaler_config_last_reload_successful`` (1/0) and ``..._success_timestamp_seconds`` tell how the last one
went, as Prometheus and Alertmanager do; one log line says what changed or why it was refused.

Built by ``service.build_engine`` (``Engine.reloader``); called by ``api.app`` (``POST /-/reload``) and by the
``SIGHUP`` handler ``service.serve`` installs (``reload_soon``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import anyio

from alertscaler.act.engine import Engine, Loops
from alertscaler.act.operating import Operator
from alertscaler.act.ownership import Ownership
from alertscaler.act.queueing import GroupWorker
from alertscaler.act.reevaluating import Reevaluator
from alertscaler.act.scheduling import Scheduler
from alertscaler.act.tracking import TrackingLoop
from alertscaler.config import PolicyFile, ServerConfig, StoreConfig, load_policy_file
from alertscaler.model.decisions import ActionState
from alertscaler.model.errors import AlertscalerError, ConfigError, Problem
from alertscaler.providers.base import Provider
from alertscaler.store.base import StateStore

log = logging.getLogger(__name__)

#: wires the engine's loops (and its operator) for a policy and its groups' providers: ``service.build_engine``'s
Rewire = Callable[[PolicyFile, dict[str, Provider]], tuple[Loops, Operator]]
#: creates the provider of one group of a policy (its state directory under ``state_dir/groups/NAME``)
ProviderFactory = Callable[[PolicyFile, str], Provider]

#: what a running service cannot change: a reload that changes one is refused ("needs a restart")
RESTART_FIELDS = ("store.*", "server.listen", "server.tls", "server.state_dir")
#: the service-wide sections a reload applies (besides the groups)
#: the policy file's top-level sections applied live: every field of ``PolicyFile`` but the ones a reload compares
#: on their own (server, store, groups) and ``base_dir`` — derived, so a new section can never be left out
_SECTIONS = tuple(name for name in PolicyFile.model_fields if name not in ("server", "store", "groups", "base_dir"))
_SERVER_RESTART = ("listen", "tls", "state_dir")

Refusal = Literal["invalid", "needs_restart", "failed"]


@dataclass(frozen=True)
class PolicyDiff:
    """What a new version of the policy file changes: group names (sorted) and section paths."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    new_providers: tuple[str, ...] = ()  # changed groups whose provider section changed: a new provider is made
    sections: tuple[str, ...] = ()       # service-wide settings that changed and are applied (server.auth, ...)
    restart: tuple[str, ...] = ()        # settings that changed and need a restart (the reload is refused)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed or self.sections or self.restart)

    def describe(self) -> str:
        """One line for the log and the answer: ``groups added: api; changed: web (new provider); ...``."""
        if self.empty:
            return "no change"
        parts = []
        if self.added:
            parts.append(f"groups added: {', '.join(self.added)}")
        if self.changed:
            shown = [f"{n} (new provider)" if n in self.new_providers else n for n in self.changed]
            parts.append(f"changed: {', '.join(shown)}")
        if self.removed:
            parts.append(f"removed: {', '.join(self.removed)}")
        if self.sections:
            parts.append(f"settings changed: {', '.join(self.sections)}")
        if self.restart:
            parts.append(f"needing a restart: {', '.join(self.restart)}")
        return "; ".join(parts)


def diff_policies(old: PolicyFile, new: PolicyFile) -> PolicyDiff:
    """Compare two loaded versions of a policy file (pure: configurations compare by value, secrets included, so
    a rotated token read from a file is a change)."""
    added = sorted(set(new.groups) - set(old.groups))
    removed = sorted(set(old.groups) - set(new.groups))
    both = sorted(set(old.groups) & set(new.groups))
    changed = [n for n in both if old.groups[n] != new.groups[n]]
    return PolicyDiff(
        added=tuple(added), changed=tuple(changed), removed=tuple(removed),
        unchanged=tuple(n for n in both if n not in changed),
        new_providers=tuple(n for n in changed if old.groups[n].provider != new.groups[n].provider),
        sections=tuple(_live_sections(old, new)), restart=tuple(needs_restart(old, new)))


def needs_restart(old: PolicyFile, new: PolicyFile) -> list[str]:
    """The settings ``new`` changes that a running service cannot apply (``RESTART_FIELDS``), as paths."""
    out = [f"server.{key}" for key in _SERVER_RESTART if getattr(old.server, key) != getattr(new.server, key)]
    if "server.state_dir" not in out and old.state_dir() != new.state_dir():
        out.append("server.state_dir")  # the same text under another directory (the file moved)
    out += [f"store.{key}" for key in StoreConfig.model_fields if getattr(old.store, key) != getattr(new.store, key)]
    if not any(p in out for p in ("store.url", "store.path")) and old.store_url() != new.store_url():
        out.append("store.path")
    return out


def _live_sections(old: PolicyFile, new: PolicyFile) -> list[str]:
    server = [f"server.{key}" for key in ServerConfig.model_fields
              if key not in _SERVER_RESTART and getattr(old.server, key) != getattr(new.server, key)]
    return server + [name for name in _SECTIONS if getattr(old, name) != getattr(new, name)]


@dataclass(frozen=True)
class Reloaded:
    """What one reload did: applied (``diff``), or refused (``refusal``, ``error``, the file's ``problems``)."""

    trigger: str
    at: datetime
    diff: PolicyDiff | None = None
    refusal: Refusal | None = None
    error: str = ""
    problems: tuple[Problem, ...] = ()

    @property
    def applied(self) -> bool:
        return self.refusal is None

    def describe(self) -> str:
        if self.diff is not None and self.applied:
            return self.diff.describe()
        return self.error


@dataclass
class Reloader:
    """Re-reads ``source`` (the policy file the service was started with) and applies it to ``engine``; see the
    module docstring. ``rewire``: the engine's wiring (``service.build_engine``); ``create_provider``: a group's
    provider; ``on_applied``: called with each policy applied (``service.warn_if_unauthenticated``)."""

    engine: Engine
    rewire: Rewire
    create_provider: ProviderFactory
    source: str | Path | None = None
    on_applied: Callable[[PolicyFile], object] = lambda _policy: None
    last: Reloaded | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._loaded(self.engine.clock())  # the file the engine was built on: the first successful load

    async def reload(self, trigger: str) -> Reloaded:
        """Re-read the policy file and apply it, or refuse it and keep the running configuration. Never raises
        for a problem of the file: the answer says it."""
        async with self._lock:
            if self.source is None:
                return self._refused(trigger, "failed", "this service was not started from a policy file")
            try:
                policy = await anyio.to_thread.run_sync(load_policy_file, self.source)
            except ConfigError as exc:
                return self._refused(trigger, "invalid", f"{exc.source or self.source}: {len(exc.problems)} "
                                                         "problem(s)", exc.problems)
            return await self._apply(policy, trigger)

    async def apply(self, policy: PolicyFile, trigger: str) -> Reloaded:
        """Apply an already validated ``policy`` (``reload`` without the file: tools and tests)."""
        async with self._lock:
            return await self._apply(policy, trigger)

    def reload_soon(self, trigger: str) -> bool:
        """From a signal handler (any thread): reload on the engine's event loop. False when the engine is not
        running (nothing to reload yet)."""
        loop = self.engine.loop
        if loop is None or loop.is_closed() or not self.engine.started:
            log.warning("%s: the service is not running (yet); the policy file is not re-read", trigger)
            return False
        loop.call_soon_threadsafe(self._in_background, self.reload(trigger))
        return True

    def _in_background(self, work: Coroutine[Any, Any, object]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:  # a bug of ours: logged, the service goes on with what it runs
                log.exception("reloading the policy file failed unexpectedly")
        task = asyncio.get_running_loop().create_task(guarded(), name="reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the steps ---------------------------------------------------------------------------------
    async def _apply(self, policy: PolicyFile, trigger: str) -> Reloaded:
        engine = self.engine
        diff = diff_policies(engine.policy, policy)
        if diff.restart:
            return self._refused(trigger, "needs_restart", f"needs a restart: {', '.join(diff.restart)} changed "
                                                           "(nothing of the file was applied)")
        if diff.empty:
            return self._done(Reloaded(trigger, engine.clock(), diff))
        made: dict[str, Provider] = {}
        try:
            for name in (*diff.added, *diff.new_providers):
                made[name] = await anyio.to_thread.run_sync(self.create_provider, policy, name)
            providers = {name: made[name] if name in made else engine.providers[name] for name in policy.groups}
            loops, operator = self.rewire(policy, providers)
        except Exception as exc:
            for provider in made.values():
                _close(provider, "a provider made for a refused reload")
            if not isinstance(exc, AlertscalerError | OSError | ValueError):
                log.exception("reload: wiring the new policy failed")
            return self._refused(trigger, "failed", f"cannot apply the policy file: {type(exc).__name__}: {exc}")
        async with engine.passes:  # no timer pass runs on the old loops from here
            old = _Old.of(engine)
            self._carry(old, loops, diff)
            loops.workers = self._workers(old, loops, providers, diff)
            replaced = engine.install(policy, providers, loops, operator)
        for close in replaced:  # the previous Prometheus / Alertmanager clients
            _close_with(close, "the previous configuration's clients")
        for name in diff.removed:
            engine.statuses.pop(name, None)
            for gauge in (engine.metrics.desired, engine.metrics.current, engine.metrics.paused,
                          engine.metrics.active_alerts, engine.metrics.min_size, engine.metrics.max_size):
                try:
                    gauge.remove(name)
                except KeyError:
                    pass
        done = self._done(Reloaded(trigger, engine.clock(), diff))
        self.on_applied(policy)
        if engine.started:
            try:  # added groups taken over and reconciled; changed ones reconciled
                await engine.heartbeat(reconcile=(*diff.added, *diff.changed))
            except Exception:
                log.exception("reload: the heartbeat after it failed; the next one takes the new groups")
        return done

    @staticmethod
    def _carry(old: _Old, loops: Loops, diff: PolicyDiff) -> None:
        """Unchanged groups keep what the timer loops remember of them."""
        keep = diff.unchanged
        loops.reevaluator.carry_from(old.reevaluator, keep)
        if loops.tracking is not None and old.tracking is not None:
            loops.tracking.carry_from(old.tracking, keep)
        if loops.scheduler is not None and old.scheduler is not None:
            loops.scheduler.carry_from(old.scheduler, keep)

    def _workers(self, old: _Old, loops: Loops, providers: dict[str, Provider],
                 diff: PolicyDiff) -> dict[str, GroupWorker]:
        """Every group's worker: a kept group's runs on, switching to its new executor at its next action (its
        replaced provider closed once the running action is done); an added group's is the new one. A removed
        group's worker is retired."""
        workers: dict[str, GroupWorker] = {}
        for name, fresh in loops.workers.items():
            worker = old.workers.get(name)
            if worker is None:
                workers[name] = fresh
                continue
            previous = old.providers[name]
            worker.switch(fresh.executor, then=None if providers[name] is previous else previous.close)
            workers[name] = worker
        now = self.engine.clock()
        for name in diff.removed:
            worker = old.workers[name]
            drove = old.ownership.drives(name, now)
            worker.on_finished = lambda _group: None
            stopped = self._stopped(worker, old.providers[name], drove)
            self.engine.draining.add(worker)
            if not worker.retire(stopped):
                self._in_background(stopped())
        return workers

    def _stopped(self, worker: GroupWorker, provider: Provider,
                 drove: bool) -> Callable[[], Coroutine[Any, Any, None]]:
        """What follows the stop of a removed group's worker: its provider closed, its queued actions failed
        (when this replica drove the group: a peer still on the old file may drive it otherwise)."""
        async def stopped() -> None:
            self.engine.draining.discard(worker)
            _close(provider, f"the provider of removed group {worker.group}")
            if not drove:
                return
            store = self.engine.store
            failed = await anyio.to_thread.run_sync(fail_queued, store, worker.group, self.engine.clock())
            if failed:
                log.warning("group %s removed from the policy file: its queued action(s) %s failed, not run",
                            worker.group, ", ".join(map(str, failed)))
        return stopped

    # --- outcome -----------------------------------------------------------------------------------
    def _refused(self, trigger: str, refusal: Refusal, error: str, problems: tuple[Problem, ...] = ()) -> Reloaded:
        done = Reloaded(trigger, self.engine.clock(), refusal=refusal, error=error, problems=problems)
        self.engine.metrics.config_reload_ok.set(0)
        shown = "".join(f"; {p}" for p in problems)
        log.error("policy reload (%s) refused, the running configuration stays: %s%s", trigger, error, shown)
        self.last = done
        return done

    def _done(self, done: Reloaded) -> Reloaded:
        self._loaded(done.at)
        log.info("policy reloaded (%s): %s", done.trigger, done.describe())
        self.last = done
        return done

    def _loaded(self, at: datetime) -> None:
        self.engine.metrics.config_reload_ok.set(1)
        self.engine.metrics.config_reload_at.set(at.timestamp())


@dataclass(frozen=True)
class _Old:
    """The engine's loops, workers and providers just before a swap."""

    workers: dict[str, GroupWorker]
    providers: dict[str, Provider]
    ownership: Ownership
    reevaluator: Reevaluator
    tracking: TrackingLoop | None
    scheduler: Scheduler | None

    @classmethod
    def of(cls, e: Engine) -> _Old:
        return cls(e.workers, e.providers, e.ownership, e.reevaluator, e.tracking, e.scheduler)


def fail_queued(store: StateStore, group: str, now: datetime) -> list[int]:
    """Fail the queued (pending) actions of a group the policy file no longer has. Returns their ids."""
    failed = []
    for action in store.list_actions(group=group, state=ActionState.PENDING, limit=1000):
        store.finish_action(action.id, ActionState.FAILED, now, error="group removed from the policy file by a "
                                                                      "reload; not run")
        failed.append(action.id)
    return failed


def _close(provider: Provider, what: str) -> None:
    _close_with(provider.close, what)


def _close_with(close: Callable[[], object], what: str) -> None:
    try:
        close()
    except Exception:
        log.exception("closing %s failed", what)
