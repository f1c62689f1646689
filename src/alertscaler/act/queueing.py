"""One serial worker per group: takes the group's oldest unfinished action, waits for its retry time,
claims it atomically (so a second replica cannot run it too) and executes it. Scaling of one group never
overlaps; groups proceed independently. With several replicas (``act.ownership``) a worker claims only while
its replica drives the group, with a lease; a RUNNING action is left to its holder (the heartbeat loop takes
over one whose lease expired).

Built by ``service.build_engine``; started and stopped by ``act.engine``.
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
        self._handed: deque[tuple[Action, ScaleRequest]] = deque()

    def deliver(self, recorded: Recorded) -> None:
        """The one way a decision's action reaches this worker (``act.recording.publish``). Created already
        claimed (the group had nothing queued): it runs next, with what the provider needs, without being read
        back; else it waits in the group's queue behind the older action, which this worker reads next."""
        if recorded.claimed is not None:
            self._handed.append((recorded.claimed.action, recorded.claimed.request))
        self.wakeup.set()

    async def run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # store down, provider bug: keep the worker alive, try again shortly
                log.exception("worker for group %s: step failed; retrying", self.group)
                await self._sleep(IDLE_POLL_S)

    async def _step(self) -> None:
        self.wakeup.clear()  # before looking: a wake() from now on is not lost
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
        try:
            if request is None:
                request = await self.db(self.executor.request, action)
            outcome = await anyio.to_thread.run_sync(self.executor.call, action, request)
            await self.db(self.executor.record, action, outcome)
        finally:
            self.busy = False
        self.on_finished(self.group)

    async def _sleep(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that arrives as the wakeup
        # is set, and the worker would run on after Engine.stop cancelled it (the stop then waits forever)
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await self.wakeup.wait()
        except TimeoutError:
            pass
