"""Nova servers as alertscaler members: helpers of the ``openstack-nova`` provider (no SDK, no network I/O).

Owns: ``NetworkRef`` (one NIC of the config), the mapping of Nova's server ``status`` (plus
``OS-EXT-STS:task_state``) to ``MemberState``, the address of a member (first fixed IPv4), the choice of
scale-in victims (``choose_victims``: the strategies of ``common.victims``), server names and the ``user_data``
template (``{group}``, ``{name}`` and ``{index}``, checked at load against Nova's limit: ``common.userdata``); for
healing, the name of a replacement, the metadata of a quarantined server and how far a reboot has got
(``reboot_progress``). Used by ``openstack.nova.provider`` and ``openstack.nova.healing``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.common import userdata, victims
from alertscaler.providers.common.parsing import parse_timestamp

ScaleInPolicy = Literal["unhealthy_first", "oldest", "newest"]

#: Nova accepts at most 65535 bytes of base64-encoded ``user_data``.
MAX_USER_DATA = userdata.NOVA.size
#: Nova's limit on the length of a metadata key or value, and on a server name.
MAX_METADATA_LENGTH = 255
PLACEHOLDERS = userdata.PLACEHOLDERS

# Nova server statuses (api-ref "Server status"): BUILD -> ACTIVE normally; ERROR when the build (or a later
# operation) failed; DELETED / SOFT_DELETED once deleted. The others are operations on a server that exists.
_STATES = {
    "BUILD": MemberState.STARTING,
    "ACTIVE": MemberState.RUNNING,
    "ERROR": MemberState.FAILED,
    "DELETED": MemberState.STOPPING,
    "SOFT_DELETED": MemberState.STOPPING,
}
GONE_STATUSES = frozenset({"DELETED", "SOFT_DELETED"})
#: metadata of every server alertscaler boots for a scaling action: the action's id
ACTION_KEY = "alertscaler_action"
#: metadata of a replacement server: the id of the server it replaces (a re-run of ``heal`` finds it)
REPLACES_KEY = "alertscaler_replaces"
#: metadata of a quarantined server: when it was quarantined (UTC, ISO 8601)
QUARANTINED_AT_KEY = "alertscaler_quarantined_at"
#: a quarantined server's ownership value is ``quarantined:<owner value>``: no longer the group's
QUARANTINE_PREFIX = "quarantined:"
#: Nova changes a server's metadata only in these states, with no task running (``nova.compute.api``)
METADATA_STATUSES = frozenset({"ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"})
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


class NetworkRef(BaseModel):
    """One NIC: ``{uuid: NETWORK_ID}`` (optionally with ``fixed_ip``) or ``{port: PORT_ID}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uuid: str | None = None
    port: str | None = None
    fixed_ip: str | None = None

    @model_validator(mode="after")
    def _one(self) -> NetworkRef:
        if (self.uuid is None) == (self.port is None):
            raise ValueError("give exactly one of uuid (a network) or port")
        if self.fixed_ip is not None and self.uuid is None:
            raise ValueError("fixed_ip goes with uuid (a port has its own addresses)")
        return self


@dataclass(frozen=True)
class ServerView:
    """What the provider reads of one Nova server (from the SDK's ``Server`` or a test)."""

    id: str
    name: str
    status: str
    task_state: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    addresses: Mapping[str, Any] = field(default_factory=dict)
    created: str | None = None
    fault: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, server: Any) -> ServerView:
        """From an ``openstack.compute.v2.server.Server``."""
        return cls(id=str(server.id), name=str(server.name or ""), status=str(server.status or "").upper(),
                   task_state=server.task_state, metadata=dict(server.metadata or {}),
                   addresses=dict(server.addresses or {}), created=server.created_at,
                   fault=server.fault if isinstance(server.fault, dict) else None)

    @property
    def state(self) -> MemberState:
        return member_state(self.status, self.task_state)

    def fault_text(self) -> str:
        """Nova's ``fault.message`` (what ``openstack server show`` prints), or the bare status."""
        message = (self.fault or {}).get("message")
        return f"{self.status}: {message}" if message else self.status

    def fault_code(self) -> int | None:
        code = (self.fault or {}).get("code")
        return code if isinstance(code, int) else None


def member_state(status: str | None, task_state: str | None = None) -> MemberState:
    """``ACTIVE`` → running, ``BUILD`` → starting, ``ERROR`` → failed, deleted or being deleted → stopping;
    anything else (``SHUTOFF``, ``REBOOT``, ``RESIZE``...) → unknown: the server exists but is not known to serve."""
    if task_state == "deleting":
        return MemberState.STOPPING
    return _STATES.get((status or "").upper(), MemberState.UNKNOWN)


def first_fixed_ipv4(addresses: Mapping[str, Any]) -> str | None:
    """The first fixed IPv4 address of ``server.addresses`` (``{net: [{"version": 4, "addr": ..}]}``)."""
    floating = None
    for entries in addresses.values():
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("version") != 4 or not entry.get("addr"):
                continue
            if entry.get("OS-EXT-IPS:type", "fixed") == "fixed":
                return str(entry["addr"])
            floating = floating or str(entry["addr"])
    return floating


def to_member(server: ServerView, port: int | None, action_key: str) -> Member:
    ip = first_fixed_ipv4(server.addresses)
    address = None if ip is None else (f"{ip}:{port}" if port is not None else ip)
    labels = {"name": server.name, "status": server.status}
    if server.metadata.get(action_key):
        labels["action"] = str(server.metadata[action_key])
    if server.task_state:
        labels["task_state"] = server.task_state
    return Member(id=server.id, address=address, state=server.state, created_at=parse_timestamp(server.created),
                  labels=labels)


def choose_victims(members: Sequence[Member], count: int, policy: ScaleInPolicy) -> list[Member]:
    """The ``count`` members to delete on scale-in, in deletion order (strategies of ``common.victims``).

    ``oldest`` / ``newest``: by creation time (then name, digits as numbers, then id). ``unhealthy_first``:
    failed, then unknown (shut off, rebooting...), then still starting, then running ones; the oldest first
    within each rank.
    """
    # Nova's ``created`` has whole seconds: within one second, <group>-<action>-<n> names order by action
    age = victims.member_age("name")
    if policy == "unhealthy_first":
        return victims.ranked(members, count, rank=victims.state_rank, age=age, order="oldest")
    return victims.by_age(members, count, age=age, order=policy)


def server_name(prefix: str, group: str, action_id: int, index: int) -> str:
    """``<prefix><group>-<action_id>-<index>``: a name that says which action created the server."""
    return f"{prefix}{group}-{action_id}-{index}"


def replacement_name(prefix: str, group: str, old_id: str) -> str:
    """``<prefix><group>-r<first 8 characters of the old server's id>``: the server ``heal`` boots to replace one."""
    return f"{prefix}{group}-r{old_id[:8]}"


def quarantine_metadata(metadata: Mapping[str, str], *, owner_key: str, owner_value: str,
                        discovery_keys: Sequence[str], at: datetime) -> dict[str, str]:
    """The whole metadata of a server once quarantined: the ownership value becomes ``quarantined:<owner value>``
    (no longer counted, listed nor deleted by the group), the discovery keys are dropped (the generated
    ``openstack_sd_configs`` job keeps only servers carrying them), ``alertscaler_quarantined_at`` is added;
    everything else is kept. ``ValueError`` when the new ownership value exceeds Nova's 255 characters."""
    value = QUARANTINE_PREFIX + owner_value
    if len(value) > MAX_METADATA_LENGTH:
        raise ValueError(f"{owner_key}={value[:40]}... would exceed Nova's {MAX_METADATA_LENGTH} characters")
    kept = {k: v for k, v in metadata.items() if k not in discovery_keys and k != owner_key}
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {**kept, owner_key: value, QUARANTINED_AT_KEY: stamp}


RebootProgress = Literal["done", "running", "failed"]


def reboot_progress(server: ServerView) -> RebootProgress:
    """Where a server stands after Nova accepted a reboot. Nova's API sets the task state (``rebooting_hard``:
    status ``HARD_REBOOT`` for an active server, the status unchanged for a stopped or failed one) BEFORE it
    answers 202, so a server without a task is done: ``ACTIVE`` → done, anything else (``ERROR``...) → failed."""
    if server.task_state is not None:
        return "running"
    return "done" if server.status == "ACTIVE" else "failed"


def check_template(template: str) -> str:
    """Raise ``ValueError`` for an unknown ``{placeholder}``, text cloud-init would not run, invalid cloud-config or
    user data too large for Nova (``common.userdata.check``)."""
    return userdata.check(template, userdata.NOVA)


def render_template(template: str, group: str, name: str, index: int = 1) -> str:
    """The user data of server ``name``, the ``index``-th its action boots."""
    return userdata.render_for(template, group, name, index)


def encode_user_data(text: str) -> str:
    """``user_data`` as Nova's create-server body wants it: base64 of the UTF-8 text."""
    return userdata.encode(text)


def looks_like_uuid(text: str) -> bool:
    """An image given by id is used as is (Nova checks it); a name is looked up in Glance."""
    return _UUID.fullmatch(text) is not None
