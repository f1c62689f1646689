"""The engine: starts, schedules and stops the loops that ``service.build_engine`` wired (processing,
re-evaluation, heal judging, schedules, tracking, status refresh, retention, one worker per group), and
records webhooks in group commits (``record_async``: the processing loop's intake) and answers ``api``'s
reads (``reads``) and live status. What an operator commands (manual scale, pause, resume, clearing an alert)
is ``act.operating.Operator``'s (``Engine.operator``, wired by the same builder). A reload of the policy file
(``act.reloading``, ``Engine.reloader``) swaps the loops for ones wired for the new file (``install``), between
two timer passes.

Built by ``service.build_engine`` (the one composition root; tests build it there too, with a SQLite store
and a clock they control). Every decision a loop records is published by ``act.recording.publish``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio

from alertscaler.act.anomaly import AnomalyLoop
from alertscaler.act.approving import expire_due
from alertscaler.act.healing import HealJudge, signals_from_status
from alertscaler.act.lifecycle import reconcile, recover_interrupted
from alertscaler.act.metrics import Metrics
from alertscaler.act.notifying import Notifier
from alertscaler.act.operating import Operator, paused_gauges, pending_gauges
from alertscaler.act.ownership import Ownership
from alertscaler.act.processing import CheckDue, Processed, Processor
from alertscaler.act.queueing import GroupWorker
from alertscaler.act.recording import Recorded, publish
from alertscaler.act.reevaluating import Reevaluator
from alertscaler.act.scheduling import Scheduler
from alertscaler.act.tracking import TrackingLoop
from alertscaler.config import PolicyFile
from alertscaler.model.alerts import Notification
from alertscaler.model.approvals import PendingApproval
from alertscaler.model.controls import Pause
from alertscaler.model.decisions import Action, ActionState, Decision, Outcome, Reason
from alertscaler.model.errors import NotFound, ProviderError, StoreError, StoreUnavailable
from alertscaler.model.groups import GroupState, GroupStatus
from alertscaler.model.healing import HealSignal
from alertscaler.model.prediction import PredictionView
from alertscaler.prometheus.combining import QueryCombiner
from alertscaler.providers.base import Provider
from alertscaler.store.base import Receipt, StateStore

if TYPE_CHECKING:
    from alertscaler.act.reloading import Reloader

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 10.0
PRUNE_INTERVAL_S = 3600.0  # retention: how often old history is deleted (first pass a minute after start)
RECORD_BATCH = 256  # webhooks committed together at most
INLINE_BATCH = 4    # pending notifications processed on the event loop (more go to a thread)
NOTIFY_INTERVAL_S = 1.0  # how often the outbox is looked at for retries that have come due
T = TypeVar("T")


async def _threaded(fn: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(fn, *args)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Reads(Protocol):
    """What ``api`` may read from the store (``Engine.reads``): views and history, no writes — a write goes
    through the engine (``record_async``, ``manual_scale``)."""

    def ping(self) -> None: ...

    def group_states(self) -> list[GroupState]: ...

    def get_group_state(self, name: str) -> GroupState | None: ...

    def list_decisions(self, group: str | None = None, outcome: Outcome | None = None,
                       reason: Reason | None = None, since: datetime | None = None, until: datetime | None = None,
                       limit: int = 100) -> list[Decision]: ...

    def list_actions(self, group: str | None = None, state: ActionState | None = None,
                     limit: int = 100) -> list[Action]: ...

    def pauses(self) -> list[Pause]: ...

    def approvals(self, group: str | None = None, pending_only: bool = True,
                  limit: int = 100) -> list[PendingApproval]: ...

    def get_approval(self, decision_id: int) -> PendingApproval | None: ...


@dataclass
class Loops:
    """What ``service.build_engine`` wires for the engine to run. ``tracking`` / ``scheduler`` are None when no
    group tracks a target / has a schedule; ``combiner`` counts tracking's requests to Prometheus; ``closers``
    release what was opened for the loops (the Prometheus client) at stop."""

    processor: Processor
    reevaluator: Reevaluator
    heal_judge: HealJudge
    workers: dict[str, GroupWorker]
    tracking: TrackingLoop | None = None
    scheduler: Scheduler | None = None
    anomaly: AnomalyLoop | None = None  # anomaly scores on /metrics (act.anomaly)
    combiner: QueryCombiner | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    ownership: Ownership = field(default_factory=Ownership)  # this replica: heartbeat, groups it drives
    notifier: Notifier | None = None  # alarm notifications from the outbox (act.notifying)


class Engine:
    def __init__(self, policy: PolicyFile, store: StateStore, providers: dict[str, Provider], loops: Loops,
                 operator: Operator, clock: Callable[[], datetime] = utcnow, metrics: Metrics | None = None) -> None:
        self.store = store
        self.reads: Reads = store
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.reloader: Reloader | None = None  # re-reads the policy file (act.reloading), wired by the builder
        self.passes = asyncio.Lock()  # held by each timer pass; a reload swaps the loops between passes
        self.draining: set[GroupWorker] = set()  # workers of groups a reload removed, finishing their action
        self._spawned: set[GroupWorker] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], None]] = []
        self.started = False
        self.loop: asyncio.AbstractEventLoop | None = None  # the one it runs on (a SIGHUP's reload is sent there)
        self.install(policy, providers, loops, operator)
        self.statuses: dict[str, GroupStatus] = {}
        self._process_event = asyncio.Event()
        self._to_record: list[tuple[Notification, datetime, asyncio.Future[Receipt]]] = []
        self._recorder: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[GroupStatus]] = set()
        self._checks: set[asyncio.Task[Any]] = set()  # live checks and recoveries: cancelled at stop
        self._checks_due: list[CheckDue] = []
        self._notify_event = asyncio.Event()  # wakes the notification loop (act.notifying) after decisions

    def install(self, policy: PolicyFile, providers: dict[str, Provider], loops: Loops,
                operator: Operator) -> list[Callable[[], None]]:
        """Drive with these loops, wired for ``policy`` (at construction; a reload swaps them in, between two
        timer passes: ``act.reloading``). Workers not running yet start now if the engine runs. Returns what
        releases the loops replaced (their clients): the caller closes them."""
        replaced = self._closers
        self.policy = policy
        self.providers = providers
        self.processor = loops.processor
        self.reevaluator = loops.reevaluator
        self.heal_judge = loops.heal_judge
        self.tracking = loops.tracking
        self.anomaly = loops.anomaly
        self.scheduler = loops.scheduler
        self._combiner = loops.combiner
        self._closers = loops.closers
        self.workers = loops.workers
        self.ownership = loops.ownership
        self.notifier = loops.notifier
        self.operator = operator  # what the API commands (act.operating), wired by the builder
        for loop in (self.reevaluator, self.heal_judge, self.tracking, self.scheduler):
            if loop is not None:
                loop.drives = self.ownership.drives
        for worker in self.workers.values():
            worker.on_finished = self._after_action
        if self.started:
            self._spawn_workers()
        return replaced

    def _spawn_workers(self) -> None:
        for name, worker in self.workers.items():
            if worker not in self._spawned:
                self._spawned.add(worker)
                self._spawn(worker.run(), f"worker-{name}")

    # --- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        for worker in self.workers.values():
            worker.executor.halt.clear()  # drains wait again (a stop ended them)
        self.loop = asyncio.get_running_loop()
        await anyio.to_thread.run_sync(self.ownership.hand_back_dead_local, self.store, self.clock())
        self._spawn(self._heartbeat_loop(), "heartbeat")  # beats on while the first recovery below runs
        await self.heartbeat()  # joins the replicas: the groups it drives, their dead peers' actions recovered
        self._spawn(self._processing_loop(), "processing")
        self._spawn(self._reevaluate_loop(), "reevaluate")
        self._spawn(self._status_loop(), "status")
        self._spawn(self._notify_loop(), "notify")
        if self.policy.store.retention:
            self._spawn(self._prune_loop(), "prune")
        self._spawn_workers()
        self._process_event.set()  # anything recorded before a crash is processed now
        self.started = True

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop driving (no new action is claimed), let the actions in a provider call finish for up to
        ``grace_s`` (default: half the lease, at most 10 s), then stop every loop and hand back to the other
        replicas what is still running and the groups."""
        self.ownership.retire()
        for worker in (*self.workers.values(), *self.draining):
            worker.executor.halt.set()  # a scale-in waiting out its drain stops waiting (the next run finishes it)
        grace = min(10.0, self.ownership.lease_s / 2) if grace_s is None else grace_s
        deadline = time.monotonic() + grace
        while any(w.busy for w in (*self.workers.values(), *self.draining)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # waiting on the workers' provider calls (a condition, bounded)
        for task in [*self._tasks, *self._checks]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._checks, return_exceptions=True)
        self._tasks.clear()
        self._spawned.clear()
        try:  # hand back what is still running, and the groups: a peer takes them over at once
            await anyio.to_thread.run_sync(self.ownership.leave, self.store, self.clock())
        except Exception:
            log.exception("handing back actions and groups at stop failed; peers take them when the lease ends")
        for provider in self.providers.values():
            provider.close()
        for close in self._closers:
            close()
        self.started = False

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    # --- what the API calls ------------------------------------------------------------------------
    def record(self, notification: Notification, received_at: datetime) -> Receipt:
        """Durably record a webhook (blocking: call from a worker thread). Raises StoreUnavailable."""
        receipt = self.store.record_notification(notification, received_at)
        self.metrics.notifications.inc()
        self.metrics.alerts.labels("new").inc(receipt.new)
        self.metrics.alerts.labels("duplicate").inc(receipt.duplicates)
        return receipt

    async def record_async(self, notification: Notification, received_at: datetime) -> Receipt:
        """Durably record a webhook, committed together with the others arriving at the same moment (group
        commit: under load one transaction and one fsync serve many webhooks; alone, it commits at once).
        Raises StoreUnavailable."""
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._to_record.append((notification, received_at, future))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_pending(), name="recorder")
        return await future

    async def _record_pending(self) -> None:
        """The recorder: commits the waiting webhooks batch after batch until none is left. It never dies
        silently: whatever fails a batch is its webhooks' answer (StoreUnavailable: 503; a bug: 500, logged here
        once) and the next batch goes on; cancelled, it leaves no webhook waiting for an answer."""
        batch: list[tuple[Notification, datetime, asyncio.Future[Receipt]]] = []
        try:
            while self._to_record:
                for _ in range(2):  # let the webhooks already read join this batch (loop passes, no timer)
                    await asyncio.sleep(0)
                batch = self._to_record[:RECORD_BATCH]
                del self._to_record[:RECORD_BATCH]
                try:
                    receipts, processed, undecided = await self.store.call(self._record_and_decide,
                                                                           [(n, at) for n, at, _ in batch])
                    self._decided(processed)
                    if undecided:
                        self.notify_recorded()
                    for (_, _, future), receipt in zip(batch, receipts, strict=True):
                        self.metrics.notifications.inc()
                        self.metrics.alerts.labels("new").inc(receipt.new)
                        self.metrics.alerts.labels("duplicate").inc(receipt.duplicates)
                        if not future.done():
                            future.set_result(receipt)
                except Exception as exc:  # every waiting webhook of the batch gets it
                    if not isinstance(exc, StoreError):  # the API logs a store error; a bug is logged here
                        log.exception("recording %d webhook(s) failed; they are answered 500", len(batch))
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
        except BaseException:  # cancelled (the loop is closing)
            for _, _, future in [*batch, *self._to_record]:
                future.cancel()
            self._to_record.clear()
            raise

    def _record_and_decide(self, items: list[tuple[Notification, datetime]],
                           ) -> tuple[list[Receipt], Processed, bool]:
        """Record a burst of webhooks and decide on them in ONE transaction (one commit, no re-read). Should
        deciding fail, the notifications are recorded alone and left to the processing loop, which retries
        them one per transaction: a webhook is never refused because of a decision's failure."""
        now = self.clock()
        try:
            with self.store.transaction() as tx:
                receipts = tx.record_notifications(items, processed_at=now)
                processed = self.processor.process_recorded(
                    tx, [(n, r, at) for (n, at), r in zip(items, receipts, strict=True)], now)
            return receipts, processed, False
        except StoreUnavailable:
            raise
        except Exception:
            log.exception("deciding on %d new notification(s) failed; recorded them for a retry", len(items))
        return self.store.record_notifications(items), Processed(), True

    def notify_recorded(self) -> None:
        """Wake the processing loop (call from the event loop's thread)."""
        self._process_event.set()

    async def live_status(self, group: str) -> GroupStatus:
        if group not in self.providers:
            raise NotFound(f"no group named {group!r}")
        try:
            status = await anyio.to_thread.run_sync(self.providers[group].status)
        except ProviderError as exc:
            status = GroupStatus(current=None, detail=f"provider error: {exc}")
        except Exception as exc:  # a provider bug: reported like an error, logged once per distinct failure
            status = GroupStatus(current=None, detail=f"internal provider error: {type(exc).__name__}: {exc}")
            if self.statuses.get(group, GroupStatus(None)).detail != status.detail:
                log.exception("group %s: the provider's status() raised unexpectedly", group)
        self.statuses[group] = status
        if status.current is not None:
            self.metrics.current.labels(group).set(status.current)
        failed = signals_from_status(self.policy.groups[group], status, self.clock())
        if failed:
            await self.store.call(self._add_status_signals, group, failed)
        return status

    def _add_status_signals(self, group: str, signals: list[HealSignal]) -> None:
        with self.store.transaction() as tx:
            if tx.add_heal_signals(group, signals):
                log.info("group=%s heal signal(s) from the provider's status: %s", group,
                         ", ".join(s.member_key for s in signals))

    async def run_once(self) -> list[Recorded]:
        """One deterministic pass of every loop at ``clock()``: process notifications, re-evaluate firing
        alerts, execute every action that is due. Used by tests and tools instead of the timers."""
        recorded = await self.heartbeat(reconcile_gained=self.started)  # run_once alone never reconciles
        recorded += await self._process_pending()
        while self._checks_due:
            due = self._checks_due.pop(0)
            checked = await anyio.to_thread.run_sync(self.reevaluator.check_route, due.group, due.policy,
                                                     self.clock(), due.stored)
            self._publish(checked)
            recorded += checked
        timer = await anyio.to_thread.run_sync(self.reevaluator.run, self.clock())
        self._publish(timer)
        recorded += timer
        await self._judge_heals()
        await self._schedule()
        await self._track()
        await self._score_anomalies()
        for worker in self.workers.values():
            while await worker.run_due() is None:
                pass
        await self.deliver_notifications()
        return recorded

    # --- loops -------------------------------------------------------------------------------------
    async def heartbeat(self, reconcile_gained: bool = True, reconcile: Collection[str] = ()) -> list[Recorded]:
        """Renew this replica and its leases, re-balance the groups; then settle the actions of dead replicas
        (expired leases) in the groups it drives and (``reconcile_gained``) reconcile the groups it has just
        taken over (at start: all it drives), and those of ``reconcile`` it drives (a reload changed them)."""
        now = self.clock()
        gained = await anyio.to_thread.run_sync(self.ownership.beat, self.store, list(self.policy.groups), now)
        driven = frozenset(name for name in reconcile if self.ownership.drives(name, now))
        return await self._recover((gained if reconcile_gained else frozenset()) | driven, gained)

    async def _recover(self, to_reconcile: frozenset[str], gained: frozenset[str]) -> list[Recorded]:
        """Settle the actions of dead replicas (expired leases) in the groups this one drives, reconcile
        ``to_reconcile`` (groups just taken over), wake the workers of ``gained``."""
        now = self.clock()
        await anyio.to_thread.run_sync(recover_interrupted, self.store, self.providers, now, self.ownership)
        recorded: list[Recorded] = []
        if to_reconcile:
            recorded = await anyio.to_thread.run_sync(reconcile, self.policy, self.store, self.providers, now,
                                                      to_reconcile)
            self._publish(recorded)
        for name in gained:
            if name in self.workers:
                self.workers[name].wakeup.set()
        return recorded

    async def _heartbeat_loop(self) -> None:
        """Beat every ``heartbeat_interval`` whatever else takes time: recovery and the reconcile of groups taken
        over (a provider call per group; settling an exec orphan may wait its timeout) run in a task of their
        own, one at a time, so a long one never lets this replica's own lease run out. Groups gained meanwhile
        wait for the next recovery."""
        waiting: set[str] = set()
        recovering: asyncio.Task[list[Recorded]] | None = None
        while True:
            await asyncio.sleep(self.ownership.interval_s)
            try:
                gained = await anyio.to_thread.run_sync(self.ownership.beat, self.store, list(self.policy.groups),
                                                        self.clock())
            except Exception:  # the store is down: this replica stops driving when its lease ends
                log.exception("heartbeat failed; will retry")
                continue
            waiting |= gained
            if recovering is not None and not recovering.done():
                continue
            if recovering is not None and not recovering.cancelled() and recovering.exception() is not None:
                log.error("recovery after a heartbeat failed; retried now", exc_info=recovering.exception())
            todo, waiting = frozenset(waiting), set()
            recovering = asyncio.create_task(self._recover(todo, todo), name="recovery")
            self._checks.add(recovering)  # cancelled with them at stop
            recovering.add_done_callback(self._checks.discard)

    async def _processing_loop(self) -> None:
        while True:
            self._process_event.clear()
            try:
                await self._process_pending()
            except Exception:
                log.exception("processing notifications failed; will retry")
            try:  # asyncio.timeout: wait_for (3.11) can swallow the stop's cancellation (see GroupWorker._sleep)
                async with asyncio.timeout(1.0):
                    await self._process_event.wait()
            except TimeoutError:
                pass

    async def _process_pending(self, batch: int = 50) -> list[Recorded]:
        """Process recorded notifications, what is pending at once in one transaction (a burst costs one
        commit), and wake the groups' workers as soon as their decisions are committed."""
        out: list[Recorded] = []
        while True:
            pending = await self.store.call(self.store.pending_notifications, batch)
            if pending:
                # a few on the loop (fastest); a big backlog in a thread, so that webhooks keep being answered
                run = self.store.call if len(pending) <= INLINE_BATCH else _threaded
                processed = await run(self.processor.process_batch, pending, self.clock())
                self._decided(processed)
                out.extend(processed.recorded)
            if len(pending) < batch:
                return out

    async def deliver_notifications(self) -> int:
        """One pass of the notification outbox (``act.notifying``): an attempt at each due notification of the
        groups this replica drives. Returns how many attempts were made."""
        if self.notifier is None:
            return 0
        return len(await self.notifier.run_due(self.clock()))

    async def _notify_loop(self) -> None:
        """Deliver notifications: at once after decisions (an alarm transition), else every second (retries)."""
        while True:
            self._notify_event.clear()
            try:
                await self.deliver_notifications()
            except Exception:
                log.exception("delivering notifications failed; will retry")
            try:  # asyncio.timeout: wait_for (3.11) can swallow the stop's cancellation (see GroupWorker._sleep)
                async with asyncio.timeout(NOTIFY_INTERVAL_S):
                    await self._notify_event.wait()
            except TimeoutError:
                pass

    async def _reevaluate_loop(self) -> None:
        while True:
            await asyncio.sleep(self.policy.server.reevaluate_interval)
            async with self.passes:  # one pass on one set of loops: a reload waits for its end
                await self._timer_pass()

    async def _timer_pass(self) -> None:
        try:
            self._publish(await anyio.to_thread.run_sync(self.reevaluator.run, self.clock()))
        except Exception:
            log.exception("re-evaluating firing alerts failed; will retry")
        try:
            await self._judge_heals()
        except Exception:
            log.exception("judging heal signals failed; will retry")
        try:
            await self._schedule()
        except Exception:
            log.exception("applying schedules failed; will retry")
        try:
            await self._track()
        except Exception:
            log.exception("target tracking failed; will retry")
        try:
            await self._score_anomalies()
        except Exception:
            log.exception("computing anomaly scores failed; will retry")

    async def _track(self) -> None:
        """Target-tracking groups whose interval has passed: query, decide, queue the action."""
        if self.tracking is None:
            return
        evaluated, requests = self.tracking.evaluated, self._tracking_requests()
        started = time.monotonic()
        try:
            self._publish(await anyio.to_thread.run_sync(self.tracking.run, self.clock()))
        finally:
            self.metrics.show_forecasts(self.tracking.forecasts())
            if self.tracking.evaluated > evaluated:
                self.metrics.tracking_cycle.observe(time.monotonic() - started)
                self.metrics.tracking_groups.inc(self.tracking.evaluated - evaluated)
                self.metrics.tracking_requests.inc(self._tracking_requests() - requests)

    def predictions(self) -> dict[str, PredictionView]:
        """Each ``predict`` group's last forecast, or why it has none (``status``)."""
        return self.tracking.forecasts() if self.tracking is not None else {}

    def _tracking_requests(self) -> int:
        return self._combiner.requests if self._combiner is not None else 0

    async def _score_anomalies(self) -> None:
        """The anomaly scores whose interval has passed: range queries, scores, gauges (``act.anomaly``)."""
        if self.anomaly is not None:
            await anyio.to_thread.run_sync(self.anomaly.run, self.clock())

    async def _schedule(self) -> None:
        """Schedule windows that opened or closed: record it, move desired into the bounds now in force. First
        what else time ends: approvals whose time has passed (``_expire_approvals``)."""
        await self._expire_approvals()
        if self.scheduler is not None:
            self._publish(await anyio.to_thread.run_sync(self.scheduler.run, self.clock()))

    async def _expire_approvals(self) -> None:
        """Changes nobody approved in time, in the groups this replica drives: recorded ``approval_expired``."""
        try:
            self._publish(await anyio.to_thread.run_sync(expire_due, self.store, self.policy, self.clock(),
                                                         self.ownership.drives))
        except Exception:
            log.exception("expiring approvals failed; will retry")

    async def _judge_heals(self) -> None:
        """Heal signals whose batch window has closed → heal decisions (and a heal action per group)."""
        self._publish(await anyio.to_thread.run_sync(self.heal_judge.run, self.clock()))

    async def _prune_loop(self) -> None:
        await asyncio.sleep(60.0)
        while True:
            try:
                await self.prune()
            except Exception:
                log.exception("deleting old history failed; will retry")
            await asyncio.sleep(PRUNE_INTERVAL_S)

    async def prune(self) -> dict[str, int]:
        """Delete finished history older than ``store.retention`` (short transactions, in a thread)."""
        before = self.clock() - timedelta(seconds=self.policy.store.retention)
        counts = await anyio.to_thread.run_sync(self.store.prune, before)
        if any(counts.values()):
            log.info("retention %s: deleted %s", before.isoformat(timespec="seconds"),
                     ", ".join(f"{n} {table}" for table, n in counts.items() if n))
        return counts

    async def _status_loop(self) -> None:
        while True:
            try:
                await self.refresh_gauges()
            except Exception:  # never the end of the loop
                log.exception("refreshing the groups' status failed; will retry")
            await asyncio.sleep(STATUS_INTERVAL_S)

    async def refresh_gauges(self) -> None:
        try:
            states = await anyio.to_thread.run_sync(self.store.group_states)
            now = self.clock()
            for state in states:
                self.metrics.desired.labels(state.name).set(state.desired)
                group = self.policy.groups.get(state.name)
                if group is not None:  # the bounds in force (a schedule window's while one is open)
                    bounds = group.bounds_at(now)
                    self.metrics.min_size.labels(state.name).set(bounds.min_size)
                    self.metrics.max_size.labels(state.name).set(bounds.max_size)
            paused_gauges(self.metrics, self.policy, await anyio.to_thread.run_sync(self.store.pauses),
                          self.clock())
            pending_gauges(self.metrics, self.policy, await anyio.to_thread.run_sync(self.store.approvals),
                           self.clock())
            routes = await anyio.to_thread.run_sync(self.store.active_alert_routes)  # counts, not rows
            for name in self.policy.groups:
                self.metrics.active_alerts.labels(name).set(sum(r.count for r in routes if r.group == name))
        except Exception:
            log.exception("reading group state for metrics failed")
        for name in list(self.policy.groups):
            if name not in self.policy.groups:
                continue  # a reload removed it meanwhile
            try:
                await self.live_status(name)
            except Exception:  # one group's trouble (its heal signals not stored) must not skip the others
                log.exception("group %s: refreshing its status failed", name)

    def _after_action(self, group: str) -> None:
        task = asyncio.get_running_loop().create_task(self.live_status(group))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _check_soon(self, due: CheckDue) -> None:
        """Check a checked policy's new alerts live and decide, in a thread (the query blocks), now."""
        async def check() -> None:
            try:
                recorded = await anyio.to_thread.run_sync(self.reevaluator.check_route, due.group, due.policy,
                                                          self.clock(), due.stored)
            except Exception:
                log.exception("group=%s policy=%s: live check failed; the timer retries", due.group, due.policy)
                return
            self._publish(recorded)
        task = asyncio.get_running_loop().create_task(check(), name=f"check-{due.group}-{due.policy}")
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    def _publish(self, recorded: Sequence[Recorded]) -> None:
        publish(recorded, self.metrics, self.workers)

    def _decided(self, processed: Processed) -> None:
        """After deciding on notifications: publish the decisions, run the live checks now due, deliver what
        alarm transitions put in the outbox."""
        self._publish(processed.recorded)
        self._notify_event.set()
        for due in processed.checks:
            if self.started:
                self._check_soon(due)
            else:  # run_once checks them, in order
                self._checks_due.append(due)
