"""One serial worker per group: takes the group's oldest unfinished action, waits for its retry time,
claims it atomically (so a second replica cannot run it too) and executes it. Scaling of one group never
overlaps; groups proceed independently. With several replicas (``act.ownership``) a worker claims only while
its replica drives the group, with a lease; a RUNNING action is left to its holder (the heartbeat loop takes
over one whose lease expired).

Built by ``service.build_engine``; started and stopped by ``act.engine``. A reload (``act.reloading``) switches a
worker to a new executor from its next action on (``switch``), or retires it after its current action (``retire``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import anyio

from alertscaler.act.executing import Executor
from alertscaler.act.ownership import Ownership
from alertscaler.act.recording import Recorded
from alertscaler.model.decisions import Action, ActionState
from alertscaler.providers.base import ScaleRequest
from alertscaler.store.base import StateStore

log = logging.getLogger(__name__)

IDLE_POLL_S = 1.0  # how often an idle worker looks for actions queued by another replica
T = TypeVar("T")
Db = Callable[..., Awaitable[Any]]


async def _threaded(fn: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(fn, *args)


class GroupWorker:
    def __init__(self, group: str, store: StateStore, executor: Executor, clock: Callable[[], datetime],
                 on_finished: Callable[[str], None] | None = None, db: Db | None = None,
                 ownership: Ownership | None = None) -> None:
        """``on_finished(group)`` after each action (``act.engine`` sets it: a status refresh); ``db`` runs the
        short store calls (default: in a thread; the service passes ``store.call``)."""
        self.group = group
        self.store = store
        self.executor = executor
        self.clock = clock
        self.on_finished: Callable[[str], None] = on_finished or (lambda _group: None)
        self.db: Db = db or _threaded
        self.ownership = ownership
        self.wakeup = asyncio.Event()
        self.busy = False
        self.running = False  # ``run`` is looping
        self.retired = False  # stops once the action it runs (and any handed to it) is done: its group was removed
        self._handed: deque[tuple[Action, ScaleRequest]] = deque()
        self._after_action: list[Callable[[], None]] = []  # run once no action uses the previous executor
        self._on_stop: Callable[[], Awaitable[None]] | None = None

    def switch(self, executor: Executor, then: Callable[[], None] | None = None) -> None:
        """A reload (``act.reloading``): the next action runs with ``executor``; the one running now finishes
        with the executor it started with. ``then`` (closing a replaced provider) runs once that action is done,
        at once when idle."""
        self.executor = executor
        if then is None:
            return
        if self.busy:
            self._after_action.append(then)
        else:
            self._then(then)

    def retire(self, then: Callable[[], Awaitable[None]] | None = None) -> bool:
        """A reload removed the group: finish the action running now (and any already handed, claimed) and stop;
        ``then`` is awaited when ``run`` stops that way (not when cancelled). Returns False when ``run`` is not
        looping (nothing to wait for: the caller runs ``then`` itself)."""
        self.retired = True
        self._on_stop = then if self.running else None
        self.wakeup.set()
        return self.running

    def deliver(self, recorded: Recorded) -> None:
        """The one way a decision's action reaches this worker (``act.recording.publish``). Created already
        claimed (the group had nothing queued): it runs next, with what the provider needs, without being read
        back; else it waits in the group's queue behind the older action, which this worker reads next."""
        if recorded.claimed is not None:
            self._handed.append((recorded.claimed.action, recorded.claimed.request))
        self.wakeup.set()

    async def run(self) -> None:
        self.running = True
        try:
            while not self.retired or self._handed:
                try:
                    await self._step()
                except asyncio.CancelledError:
                    raise
                except Exception:  # store down, provider bug: keep the worker alive, try again shortly
                    log.exception("worker for group %s: step failed; retrying", self.group)
                    await self._sleep(IDLE_POLL_S)
        finally:
            self.running = False
        if self._on_stop is not None:
            await self._on_stop()

    async def _step(self) -> None:
        self.wakeup.clear()  # before looking: a wake() from now on is not lost
        if self.retired and not self._handed:
            return
        wait = await self.run_due()
        if wait is not None:
            await self._sleep(wait)

    async def run_due(self) -> float | None:
        """Execute the group's next action if it is due. Returns None when one was executed (look again at
        once), else how long to wait before looking again."""
        if self._handed:
            handed, request = self._handed.popleft()
            await self._execute(handed, request)
            return None
        action = await self.db(self.store.next_action, self.group)
        if action is None or action.state is ActionState.RUNNING:  # nothing, or another replica runs it
            return IDLE_POLL_S
        now = self.clock()
        if self.ownership is not None and not self.ownership.drives(self.group, now):
            return IDLE_POLL_S  # another replica drives the group (or this one's heartbeat lapsed)
        if action.not_before is not None and action.not_before > now:
            return float((action.not_before - now).total_seconds())
        lease = self.ownership.lease(now) if self.ownership is not None else None
        claimed = await self.db(self.store.claim_action, action.id, now, lease)
        if claimed is None:
            return None
        await self._execute(claimed, None)
        return None

    async def _execute(self, action: Action, request: ScaleRequest | None) -> None:
        """Store reads and writes through ``db`` (on the loop for SQLite), the provider call in a thread."""
        self.busy = True
        executor = self.executor  # the whole action with one executor (a reload may switch it meanwhile)
        try:
            if request is None:
                request = await self.db(executor.request, action)
            outcome = await anyio.to_thread.run_sync(executor.call, action, request)
            await self.db(executor.record, action, outcome)
        finally:
            self.busy = False
            after, self._after_action = self._after_action, []
            for then in after:
                self._then(then)
        self.on_finished(self.group)

    def _then(self, then: Callable[[], None]) -> None:
        try:
            then()
        except Exception:  # closing a replaced provider: its trouble is not the worker's
            log.exception("worker for group %s: releasing the previous provider failed", self.group)

    async def _sleep(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives as the wakeup
        # is set, and the worker would run on after Engine.stop cancelled it (the stop then waits forever)
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self.wakeup.wait()
        except TimeoutError:
            pass
