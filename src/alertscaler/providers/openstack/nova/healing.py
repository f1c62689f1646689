"""Heal actions of the ``openstack-nova`` provider: ``replace``, ``reboot`` and ``quarantine`` of one server.

Called by ``openstack.nova.provider.NovaProvider`` under its lock (so never at the same time as its ``scale``); this
module uses the provider's own SDK boundary (``_call``/``_get``/``_list``, errors translated by
``openstack.auth.translate``) and its create / wait / delete steps, so a replacement is booted exactly like a
scale-out server. Only the group's servers are ever touched: ``member_id`` must be a server carrying the
group's ownership metadata, else ``PermanentProviderError`` and nothing is called but the listing.

- ``replace``: boot ``<prefix><group>-r<old id[:8]>`` with the group's metadata plus
  ``alertscaler_replaces=<old id>``, wait for ``ACTIVE`` (``boot_timeout``), then delete the old server and wait
  until it is gone (``delete_timeout``): the group has one member MORE while it heals, never one less. A
  replacement that fails to build is deleted and the old server kept: ``TemporaryProviderError`` (or
  ``PermanentProviderError`` when every fault is a 4xx, as for scale-out). A re-run after a crash finds the
  replacement by its ``alertscaler_replaces`` metadata instead of booting a second one, and reports a member
  already replaced as such.
- ``reboot``: ``POST /servers/{id}/action {"reboot": {"type": "HARD"}}`` (Nova accepts it from ACTIVE, SHUTOFF,
  PAUSED, SUSPENDED and ERROR; it answers 409 during a build or a deletion, which is temporary), then wait until
  the server has no task and is ``ACTIVE`` again; same id. Ending in ``ERROR`` fails the action (its fault).
- ``quarantine``: one ``PUT /servers/{id}/metadata`` (Nova's "replace metadata": all items at once, so no
  half-quarantined state) rewrites the ownership value to ``quarantined:<owner value>``, drops the
  ``discovery_metadata`` keys (the generated ``openstack_sd_configs`` job keeps only servers carrying them), and
  adds ``alertscaler_quarantined_at``; the server keeps running. From then on the group's listing, status,
  scale-in and error cleanup no longer see it — also in a new provider, since it is all in Nova's metadata —
  and ``quarantined()`` lists it. Nova changes metadata only while the server is ACTIVE, SHUTOFF, PAUSED or
  SUSPENDED with no task running: a server in ERROR or BUILD is refused here (``PermanentProviderError``: replace
  it instead), one with a task running (a reboot) is ``TemporaryProviderError``. Quarantining a server already
  quarantined by this group says so and changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import replace as with_fields
from datetime import datetime
from typing import TYPE_CHECKING

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.common.retries import DEFAULT_DELAY
from alertscaler.providers.openstack.nova.servers import (
    ACTION_KEY,
    METADATA_STATUSES,
    QUARANTINE_PREFIX,
    QUARANTINED_AT_KEY,
    REPLACES_KEY,
    ServerView,
    quarantine_metadata,
    reboot_progress,
    replacement_name,
    to_member,
)

if TYPE_CHECKING:
    from alertscaler.providers.openstack.nova.provider import NovaProvider

__all__ = ["quarantine", "quarantined", "reboot", "replace"]

log = logging.getLogger(__name__)


def _member(p: NovaProvider, member_id: str, servers: list[ServerView] | None = None) -> ServerView:
    """The group's server ``member_id`` (not one being deleted); ``PermanentProviderError`` otherwise."""
    for server in servers if servers is not None else p._list():
        if server.id == member_id and server.state is not MemberState.STOPPING:
            return server
    raise PermanentProviderError(f"{p.group}: {member_id} is not a member (members are the servers with metadata "
                                 f"{p.config.owner_key}={p.owner_value}, not being deleted)")


def _retry_delay(p: NovaProvider) -> float:
    return max(DEFAULT_DELAY, p.config.poll_interval)


# ----------------------------------------------------------------------------------------------- replace


def replace(p: NovaProvider, member_id: str) -> str:
    servers = p._list()
    ours = [s for s in servers if s.metadata.get(REPLACES_KEY) == member_id]
    pending = [s for s in ours if s.state in (MemberState.STARTING, MemberState.RUNNING)]
    if pending and not any(s.id == member_id and s.state is not MemberState.STOPPING for s in servers):
        return f"{member_id} was already replaced by {pending[0].name} ({pending[0].id})"
    old = _member(p, member_id, servers)
    failed = [s for s in ours if s.state is MemberState.FAILED]
    if failed:  # an earlier attempt's replacement that went ERROR
        p._cleanup(failed, "failed replacement")
    if pending:
        new = pending[0]
        log.info("%s: resuming the replacement of %s by %s (%s)", p.group, old.name, new.name, new.id)
    else:
        image_id, flavor_id = p._boot_refs()
        name = replacement_name(p.config.name_prefix, p.group, old.id)
        new = p._boot(name, {REPLACES_KEY: old.id}, image_id, flavor_id)
        log.info("%s: created server %s (%s) to replace %s (%s)", p.group, name, new.id, old.name, old.id)
    failures, codes = p._await_active([new])
    if failures:
        p._cleanup([new], "failed to build")
        message = (f"{p.group}: replacement {new.name} of {old.name} ({old.id}): {failures[new.id][1]} (deleted; "
                   f"{old.name} is kept)")
        if codes and all(400 <= c < 500 for c in codes):
            raise PermanentProviderError(message)
        raise TemporaryProviderError(message, delay=_retry_delay(p))
    p._delete([old], f"replaced by {new.name}")
    return f"replaced {old.name} ({old.id}) by {new.name} ({new.id})"


# ------------------------------------------------------------------------------------------------ reboot


def reboot(p: NovaProvider, member_id: str) -> str:
    server = _member(p, member_id)
    p._call(f"rebooting server {server.name} (HARD)", p.conn.compute.reboot_server, member_id, "HARD")
    log.info("%s: HARD reboot of server %s (%s) requested (it was %s)", p.group, server.name, member_id,
             server.status)
    deadline = p._clock() + p.config.boot_timeout
    seen = server.status
    while True:
        try:
            now = p._get(member_id)
        except TemporaryProviderError as exc:  # a failed read while waiting: retried until the deadline
            seen = str(exc)
        else:
            if now is None:
                raise PermanentProviderError(f"{p.group}: server {server.name} ({member_id}) disappeared while "
                                             "rebooting")
            progress = reboot_progress(now)
            if progress == "done":
                return f"rebooted {server.name} ({member_id}) (HARD): ACTIVE again (it was {server.status})"
            if progress == "failed":
                message = f"{p.group}: server {server.name} ({member_id}) did not come back from a HARD reboot: " \
                          f"{now.fault_text()}"
                code = now.fault_code()
                if code is not None and 400 <= code < 500:
                    raise PermanentProviderError(message)
                raise TemporaryProviderError(message, delay=_retry_delay(p))
            seen = f"{now.status}, task {now.task_state}"
        remaining = deadline - p._clock()
        if remaining <= 0:
            raise TemporaryProviderError(
                f"{p.group}: server {server.name} ({member_id}) not ACTIVE {p.config.boot_timeout:g}s after a HARD "
                f"reboot ({seen})", delay=_retry_delay(p))
        p._sleep(min(p.config.poll_interval, remaining))


# -------------------------------------------------------------------------------------------- quarantine


def quarantine(p: NovaProvider, member_id: str, at: datetime) -> str:
    cfg = p.config
    held = next((m for m in quarantined(p) if m.id == member_id), None)
    if held is not None:
        return f"{held.labels['name']} ({member_id}) is already quarantined (since " \
               f"{held.labels.get('quarantined_at', '?')})"
    server = _member(p, member_id)
    if server.status not in METADATA_STATUSES:
        raise PermanentProviderError(
            f"{p.group}: cannot quarantine {server.name} ({member_id}): it is {server.status}, and Nova changes the "
            "metadata of a server only while it is ACTIVE, SHUTOFF, PAUSED or SUSPENDED (replace it instead)")
    if server.task_state is not None:
        raise TemporaryProviderError(f"{p.group}: cannot quarantine {server.name} ({member_id}) while Nova runs a "
                                     f"task on it ({server.task_state})", delay=_retry_delay(p))
    current = p._call(f"reading server {server.name}", p.conn.compute.get_server, member_id)
    try:
        metadata = quarantine_metadata(dict(current.metadata or {}), owner_key=cfg.owner_key,
                                       owner_value=p.owner_value, discovery_keys=list(cfg.discovery_metadata),
                                       at=at)
    except ValueError as exc:
        raise PermanentProviderError(f"{p.group}: cannot quarantine {server.name}: {exc}") from None
    # PUT: Nova replaces ALL the metadata at once (POST would merge and keep the discovery keys)
    p._call(f"quarantining server {server.name} (replacing its metadata)", current.set_metadata, p.conn.compute,
            metadata=metadata, replace=True)
    log.warning("%s: quarantined server %s (%s): %s=%s, discovery metadata removed; it keeps running", p.group,
                server.name, member_id, cfg.owner_key, metadata[cfg.owner_key])
    dropped = ", ".join(sorted(cfg.discovery_metadata)) or "no discovery metadata"
    return (f"quarantined {server.name} ({member_id}): {cfg.owner_key}={metadata[cfg.owner_key]}, without "
            f"{dropped}; left {server.status} for inspection")


def quarantined(p: NovaProvider) -> list[Member]:
    """The servers quarantined from this group, oldest quarantine first; label ``quarantined_at``."""
    owner = QUARANTINE_PREFIX + p.owner_value

    def fetch() -> list[ServerView]:
        return [ServerView.of(s) for s in p.conn.compute.servers(details=True)]

    held = [s for s in p._call("listing servers", fetch) if s.metadata.get(p.config.owner_key) == owner]
    return [with_fields(member, labels={**member.labels, "quarantined_at": server.metadata.get(QUARANTINED_AT_KEY, "")})
            for server in sorted(held, key=lambda s: (s.metadata.get(QUARANTINED_AT_KEY, ""), s.id))
            for member in (to_member(server, p.config.port, ACTION_KEY),)]
