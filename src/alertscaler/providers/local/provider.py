"""Provider type ``local``: a group is a set of processes on this machine, listening on 127.0.0.1.

By default each instance is the bundled workload (``python -m alertscaler.workload``), a server of fixed
capacity; ``command`` runs anything else (``{port}``, ``{host}``, ``{id}``, ``{group}`` are substituted in its
argv). Instances are started detached so they survive a restart of alertscaler, and each is recorded in the
state directory (``local.instances``); a new provider on the same state directory re-adopts the live ones.

This module owns the group view and scaling; ``local.config`` the configuration, ``local.instances`` records
and processes, ``local.health`` the health probe, ``local.healing`` heal / reboot / quarantine.

``status()`` / ``members()`` never wait for the lock (records are replaced atomically): a member whose process
is gone, is a zombie, or is not the recorded process any more (pid reuse) is ``failed`` — unless it is being
stopped (``stopping``) or not started yet (an intent written before the fork: ``unknown``); with ``health_path``
set, every ``running`` member is also probed — all at once, bounded by ``probe_timeout`` (default 1 s) in total,
no cache — and one that does not answer ``200`` in time (hung) is ``failed`` too. ``failed`` and ``stopping``
members are not counted in ``current``. Quarantined instances are not members at all (``quarantined()``).

``scale`` converges (``idempotent = True``): it drops records of dead instances, finishes stopping those an
interrupted stop left ``stopping``, starts instances until the group has ``desired`` live ones (each
health-checked on ``http://127.0.0.1:<port><health_path>``), or removes surplus ones: first a member an
interrupted heal already replaced by a running instance, then hung ones, then the newest. A hung member is NOT
stopped by ``scale`` otherwise: replacing it is a heal decision. Quarantined instances are ignored. Calls are
serialized by a lock, and across processes by ``flock``.

A scale-in is quiet (``ScaleRequest.drain``, ``departures``): each victim's record is marked ``stopping`` with
``leaving_at`` (from then on it is ``stopping``, not counted, and out of ``/api/v1/targets``), reported
``leaving`` (``providers.base.Departures``), kept running for the request's ``drain`` so that Prometheus drops
the target while it still answers, then stopped (SIGTERM to the process group, SIGKILL after ``stop_timeout``)
and reported ``gone``. A scale-in interrupted by a restart (or by the service stopping, which ends the wait:
``Departures.wait``) finishes the drain it began, what is left of it. The clock is a constructor argument (tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import GroupStatus, Member, MemberState
from alertscaler.providers.base import NO_DEPARTURES, Departures, ProviderContext, ScaleRequest
from alertscaler.providers.common import victims
from alertscaler.providers.declaration import Declaration
from alertscaler.providers.local import healing as local_healing
from alertscaler.providers.local.config import LocalConfig, WorkloadSettings
from alertscaler.providers.local.health import probe
from alertscaler.providers.local.instances import Instances, Record, reap
from alertscaler.providers.local.instances import is_alive as _is_alive

__all__ = ["LocalConfig", "LocalProvider", "WorkloadSettings", "create"]

_COUNTED = (MemberState.STARTING, MemberState.RUNNING)


def create(config: LocalConfig, context: ProviderContext) -> LocalProvider:
    return LocalProvider(config, context)


class LocalProvider:
    """Instances of one group as detached local processes. Thread-safe; see the module docstring.
    Implements ``Healer``, ``Rebooter`` and ``Quarantiner`` (see ``local.healing``)."""

    idempotent = True
    adopts_size = False

    def __init__(self, config: LocalConfig, context: ProviderContext, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self.group = context.group
        self.state_dir = Path(context.state_dir)
        self._instances = Instances(config, self.group, self.state_dir)
        self._clock = clock

    # -- Provider ---------------------------------------------------------------------------------------

    def status(self) -> GroupStatus:
        records = self._load()
        members = self._members(records)
        counted = sum(1 for m in members if m.state in _COUNTED)
        detail = f"{counted} live"
        for state in (MemberState.FAILED, MemberState.STOPPING):
            n = sum(1 for m in members if m.state is state)
            detail += f", {n} {state.value}" if n else ""
        quarantined = sum(1 for r in records if r.quarantined_at is not None)
        detail += f", {quarantined} quarantined (not members)" if quarantined else ""
        return GroupStatus(current=counted, members=tuple(members), detail=detail)

    def members(self) -> list[Member]:
        return self._members(self._load())

    def scale(self, request: ScaleRequest) -> str:
        desired = request.desired
        if desired < 0:
            raise PermanentProviderError(f"desired capacity must be >= 0, got {desired}")
        with self._instances.exclusive():
            try:
                return self._converge(desired, request.drain, request.departures)
            finally:
                self._instances.prune_logs()

    def close(self) -> None:
        """Nothing to release: instances keep running, and a new provider re-adopts them."""

    # -- healing (local_healing) ------------------------------------------------------------------------

    def heal(self, member_id: str) -> str:
        """Replace ``member_id``: a new instance is started and healthy before the old one is stopped."""
        with self._instances.exclusive():
            try:
                return local_healing.heal(self._instances, member_id)
            finally:
                self._instances.prune_logs()

    def reboot(self, member_id: str) -> str:
        """Stop ``member_id`` and start it again with the same id and port; return once it is healthy."""
        with self._instances.exclusive():
            return local_healing.reboot(self._instances, member_id)

    def quarantine(self, member_id: str) -> str:
        """Take ``member_id`` out of the group, leaving it running (see ``quarantined`` and ``release``)."""
        with self._instances.exclusive():
            return local_healing.quarantine(self._instances, member_id)

    def quarantined(self) -> list[Member]:
        """Quarantined instances (not members): ``running`` while their process lives, else ``failed``."""
        records = sorted((r for r in self._load() if r.quarantined_at is not None), key=lambda r: (r.created_at, r.id))
        return [self._member(r, _is_alive(r), None) for r in records]

    def release(self, member_id: str) -> str:
        """End the quarantine of ``member_id``: stop it and forget it (its log is kept)."""
        with self._instances.exclusive():
            try:
                return local_healing.release(self._instances, member_id)
            finally:
                self._instances.prune_logs()

    # -- the group view ---------------------------------------------------------------------------------

    def _members(self, records: list[Record]) -> list[Member]:
        members = sorted((r for r in records if r.quarantined_at is None), key=lambda r: (r.created_at, r.id))
        alive = {r.id: _is_alive(r) for r in members}
        problems = self._probe([r for r in members if alive[r.id] and r.phase == "running"])
        return [self._member(r, alive[r.id], problems.get(r.id)) for r in members]

    def _probe(self, records: list[Record]) -> dict[str, str]:
        """``{id: why}`` of the given running instances that do not answer their health check (hung)."""
        if self.config.health_path is None or not records:
            return {}
        return probe({r.id: r.port for r in records}, self.config.health_path, self.config.probe_timeout)

    @staticmethod
    def _member(record: Record, alive: bool, problem: str | None) -> Member:
        labels = {"port": str(record.port), "pid": str(record.pid)}
        if not alive and record.phase == "stopping":
            state = MemberState.STOPPING  # being removed: its end is no failure
        elif not alive and record.phase == "spawning":
            state = MemberState.UNKNOWN  # the intent, written before the fork: not counted, no failure to heal
        elif not alive:
            state, problem = MemberState.FAILED, "process not running"
        elif problem is not None:
            state = MemberState.FAILED
        elif record.phase == "running":
            state = MemberState.RUNNING
        elif record.phase == "stopping":
            state = MemberState.STOPPING
        else:
            state = MemberState.STARTING
        if problem is not None:
            labels["problem"] = problem
        if record.replaces:
            labels["replaces"] = record.replaces
        if record.quarantined_at:
            labels["quarantined_at"] = record.quarantined_at
        return Member(id=record.id, address=record.address, state=state, created_at=record.created, labels=labels)

    # -- converging -------------------------------------------------------------------------------------

    def _converge(self, desired: int, drain: float = 0.0, departures: Departures = NO_DEPARTURES) -> str:
        """Forget dead instances, remove the surplus (``_remove``), start and health-check the missing ones."""
        instances = self._instances
        notes: list[str] = []
        live: list[Record] = []
        dead: list[Record] = []
        leaving: list[Record] = []
        for record in self._load():
            if record.quarantined_at is not None:
                continue  # not a member: never counted, never stopped
            record = instances.settle_spawning(record)
            if not _is_alive(record):
                dead.append(record)
            else:
                (leaving if record.phase == "stopping" else live).append(record)
        for record in dead:
            instances.forget(record, keep_log=True)
        stopped = [r.id for r in dead if r.leaving_at is not None]
        if stopped:  # a scale-in's victims stopped before a restart
            departures.gone(stopped)
        if dead:
            notes.append(f"removed {len(dead)} dead ({', '.join(r.id for r in dead)})")
        if leaving:
            draining = [r for r in leaving if r.leaving_at is not None]
            if draining:  # a scale-in interrupted by a restart: the rest of its drain, then the stop
                self._remove(draining, drain, departures, f"scale-in to {desired}", keep_log=True)
            instances.stop([r for r in leaving if r.leaving_at is None], keep_log=True)
            notes.append(f"finished stopping {len(leaving)} ({', '.join(r.id for r in leaving)})")

        live.sort(key=lambda r: (r.created_at, r.id))
        if len(live) > desired:
            surplus = self._victims(live, len(live) - desired)
            self._remove(surplus, drain, departures, f"scale-in to {desired}")
            live = [r for r in live if r not in surplus]
            drained = f" after a {drain:g}s drain" if drain > 0 else ""
            notes.append(f"stopped {len(surplus)} ({', '.join(r.id for r in surplus)}){drained}")

        to_check = [r for r in live if r.phase != "running"]  # left "starting" by an interrupted scale
        started: list[Record] = []
        try:
            for index in range(1, desired - len(live) + 1):
                started.append(instances.spawn(index=index))
        except PermanentProviderError:
            instances.stop(started)
            raise
        except TemporaryProviderError as exc:
            notes.append(str(exc))
        to_check += started
        failures = instances.await_healthy(to_check)
        healthy_new = [r for r in started if r.id not in failures]
        if healthy_new:
            notes.insert(0, f"started {len(healthy_new)} ({', '.join(r.id for r in healthy_new)})")
        now = len(live) + len(started) - len(failures)
        if failures or now != desired:
            problems = "; ".join(f"{rid}: {why}" for rid, why in failures.items())
            notes.append(problems)
            raise TemporaryProviderError(
                f"{self.group}: {now} of {desired} instances running: " + "; ".join(n for n in notes if n)
            )
        if not notes:
            return f"no change, {now} running"
        return ", ".join(notes) + f", now {now}"

    def _remove(self, records: list[Record], drain: float, departures: Departures, why: str,
                keep_log: bool = False) -> None:
        """A quiet scale-in of ``records``: out of the group first (``stopping`` with ``leaving_at``: not counted,
        not a target; then reported ``leaving``), running for what is left of ``drain`` since it began, then
        stopped and reported ``gone``."""
        now = self._clock()
        marked = []
        for record in records:
            if record.leaving_at is None or record.phase != "stopping":
                record = replace(record, phase="stopping", leaving_at=now.isoformat())
                self._instances.save(record)
            marked.append(record)
        departures.leaving([self._member(r, True, None) for r in marked], why)
        began = min(datetime.fromisoformat(r.leaving_at or now.isoformat()) for r in marked)
        remaining = drain - (self._clock() - began).total_seconds()
        if remaining > 0 and not departures.wait(remaining):
            names = ", ".join(r.id for r in marked)
            raise TemporaryProviderError(f"{self.group}: stopping during the drain of {names}: they stay out of the "
                                         "group, the next run stops them")
        self._instances.stop(marked, keep_log=keep_log)
        departures.gone([r.id for r in marked])

    def _victims(self, live: list[Record], count: int) -> list[Record]:
        """The ``count`` live members a scale-in stops (strategy ``unhealthy_first`` of ``common.victims``): one an
        interrupted heal already replaced by a running instance first, then hung ones (probed now), then the
        newest."""
        replaced = {r.replaces for r in live if r.replaces and r.phase == "running"}
        hung = self._probe([r for r in live if r.phase == "running"])

        def rank(record: Record) -> int:  # 0: replaced and hung, 1: replaced, 2: hung, 3: the others
            return 2 * (record.id not in replaced) + (record.id not in hung)

        return victims.ranked(live, count, rank=rank, age=lambda r: (r.created_at, r.id), order="newest")

    # -- records (kept as methods: the test fixtures clean up through them) -----------------------------

    def _load(self) -> list[Record]:
        return self._instances.load()

    def _forget(self, record: Record, keep_log: bool) -> None:
        self._instances.forget(record, keep_log)

    @staticmethod
    def _reap(record: Record, timeout: float = 5.0) -> None:
        reap(record, timeout)


#: read by the registry: config model, factory, heal abilities (checked by ``check``, kept by the boundary)
DECLARATION = Declaration(LocalConfig, create, LocalProvider)
