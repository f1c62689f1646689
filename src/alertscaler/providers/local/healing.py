"""Healing of the ``local`` provider: replace, reboot, quarantine and release one instance. Called by
``local.LocalProvider`` (which implements ``base.Healer``, ``Rebooter`` and ``Quarantiner``) with the state
directory's lock held (``Instances.exclusive``), so healing never races a ``scale`` of the same group — not even
one of another alertscaler process.

A ``member_id`` is only ever compared with the ids of the records; it never names a file or reaches a command.
An id that is not a member (quarantined instances are not members) → ``PermanentProviderError``, and nothing is
touched.

- ``heal`` (replace): starts a new instance (new id, new port) whose record says ``replaces: <member>``, waits
  until it is healthy exactly as a scale-out does, THEN stops the old one (SIGTERM, SIGKILL after
  ``stop_timeout``) and forgets it (its log is kept). The group never has fewer running members than before.
  If the replacement does not become healthy it is stopped, the old member is left as it was, and the call
  raises ``TemporaryProviderError``. Re-running after a crash reuses the replacement already recorded for that
  member (adopting its process if the crash came between fork and record), never starting a second one; once
  the old member is gone, a re-run answers that it was already replaced.
- ``reboot``: stops the instance and starts it again with the same id, port and creation time, and waits until
  it is healthy. If it does not come back it stays recorded, dead: reported ``failed`` until a heal or the next
  ``scale`` replaces it.
- ``quarantine``: marks the record ``quarantined_at``; the process keeps running. From then on the instance is
  not a member: not in ``status()`` / ``members()`` (hence not in alertscaler's http_sd targets), never counted,
  never stopped by ``scale``, its port never reused. ``LocalProvider.quarantined()`` lists such instances (a new
  provider on the same state directory re-adopts them as quarantined). Idempotent.
- ``release``: how an operator ends a quarantine: stops the instance (as a scale-in does) and forgets its record;
  its log stays in the state directory.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.providers.local.instances import Instances, Record, is_alive, now_iso

log = logging.getLogger(__name__)


def heal(instances: Instances, member_id: str) -> str:
    """Replace member ``member_id``; see the module docstring."""
    members = [r for r in instances.load() if r.quarantined_at is None]
    old = next((r for r in members if r.id == member_id), None)
    if old is not None:
        old = instances.settle_spawning(old)
    replacement = _reusable(instances, [r for r in members if r.replaces == member_id and r.id != member_id])
    if old is None:
        if replacement is None:
            raise _not_a_member(instances, member_id, members)
        replacement = _bring_up(instances, replacement, member_id)
        return f"{member_id} was already replaced by {replacement.id} ({replacement.address})"
    was = "" if is_alive(old) else " (dead)"
    if replacement is None:
        replacement = instances.spawn(replaces=member_id)
    else:
        log.info("%s: reusing %s, started earlier to replace %s", instances.group, replacement.id, member_id)
    replacement = _bring_up(instances, replacement, member_id)
    instances.stop([old], keep_log=True)
    log.info("%s: replaced %s%s by %s (%s)", instances.group, old.id, was, replacement.id, replacement.address)
    return f"replaced {old.id}{was} by {replacement.id} ({replacement.address})"


def reboot(instances: Instances, member_id: str) -> str:
    """Restart member ``member_id`` in place (same id and port); see the module docstring."""
    members = [r for r in instances.load() if r.quarantined_at is None]
    record = next((r for r in members if r.id == member_id), None)
    if record is None:
        raise _not_a_member(instances, member_id, members)
    record = instances.settle_spawning(record)
    old_pid = record.pid if is_alive(record) else None
    instances.stop([record], keep_log=True, forget=False)
    started = instances.spawn(again=record)
    failures = instances.await_healthy([started], forget_failed=False)
    if failures:
        raise TemporaryProviderError(f"{instances.group}: {member_id} did not come back after a restart: "
                                     f"{failures[started.id]} (it stays, failed, until healed or replaced)")
    before = f"pid {old_pid}" if old_pid else "not running"
    log.info("%s: rebooted %s (%s -> pid %d)", instances.group, member_id, before, started.pid)
    return f"rebooted {member_id} ({started.address}): {before} -> pid {started.pid}"


def quarantine(instances: Instances, member_id: str) -> str:
    """Take member ``member_id`` out of the group, leaving it running; see the module docstring."""
    records = instances.load()
    record = next((r for r in records if r.id == member_id), None)
    if record is not None and record.quarantined_at is not None:
        return f"{member_id} is already quarantined (since {record.quarantined_at})"
    if record is None:
        raise _not_a_member(instances, member_id, [r for r in records if r.quarantined_at is None])
    record = instances.settle_spawning(record)
    quarantined = replace(record, quarantined_at=now_iso())
    instances.save(quarantined)
    alive = is_alive(quarantined)
    log.warning("%s: quarantined %s (pid %d, %s): out of the group%s", instances.group, member_id, record.pid,
                record.address, ", left running" if alive else " (not running)")
    state = f"pid {record.pid} left running" if alive else "not running, log kept"
    return (f"quarantined {member_id} ({record.address}, {state}): out of the group, not counted; "
            f"release it with LocalProvider.release({member_id!r})")


def release(instances: Instances, member_id: str) -> str:
    """Stop a quarantined instance and forget it; see the module docstring."""
    records = instances.load()
    record = next((r for r in records if r.id == member_id and r.quarantined_at is not None), None)
    if record is None:
        known = ", ".join(sorted(r.id for r in records if r.quarantined_at is not None)) or "none"
        raise PermanentProviderError(f"{instances.group}: {member_id!r} is not quarantined (quarantined: {known})")
    alive = is_alive(record)
    instances.stop([record], keep_log=True)
    log.info("%s: released quarantined %s", instances.group, member_id)
    return f"released {member_id}: " + ("stopped" if alive else "was not running") + \
        f", log kept in {instances.log_path(member_id)}"


def _reusable(instances: Instances, candidates: list[Record]) -> Record | None:
    """The replacement already started for a member (by an interrupted heal), if one is still usable; dead or
    half-stopped ones are cleaned up, and should there be several, only one is kept."""
    usable: list[Record] = []
    for record in candidates:
        record = instances.settle_spawning(record)
        if record.phase == "stopping" or not is_alive(record):
            instances.stop([record], keep_log=True)
        else:
            usable.append(record)
    if not usable:
        return None
    keep, *extra = sorted(usable, key=lambda r: (r.phase != "running", r.created_at, r.id))
    if extra:
        instances.stop(extra, keep_log=True)
    return keep


def _bring_up(instances: Instances, record: Record, member_id: str) -> Record:
    """Wait until the replacement ``record`` is healthy (stopped and forgotten if it is not)."""
    if record.phase == "running":
        return record
    failures = instances.await_healthy([record])
    if failures:
        raise TemporaryProviderError(f"{instances.group}: replacement {record.id} for {member_id} did not become "
                                     f"healthy: {failures[record.id]} (stopped; {member_id} is left as it was)")
    return replace(record, phase="running")


def _not_a_member(instances: Instances, member_id: str, members: list[Record]) -> PermanentProviderError:
    known = ", ".join(sorted(r.id for r in members)) or "none"
    return PermanentProviderError(f"{instances.group}: {member_id!r} is not a member of this group (members: {known})")
