"""Linodes and NodeBalancer nodes as alertscaler members: pure helpers of the ``linode`` provider (no SDK call,
no network I/O).

Owns: what the provider reads of a Linode and of a NodeBalancer node (``LinodeView``, ``NodeView``), the mapping
of Linode ``status`` (and of the node's mode) to ``MemberState``, telling a private IPv4 from a public one
(Linode's private range is 192.168.128.0/17), a member's address, the choice of scale-in victims
(``choose_victims``: the ``unhealthy_first`` strategy of ``common.victims`` with Linode's ``rank``), the labels of
the Linodes the provider creates (and Linode's rules for them), and the text of a Linode API error body
(``{"errors": [{"reason": ..., "field": ...}]}``). Used by ``linode.provider``, ``linode.client``,
``linode.nodebalancer`` and ``linode.config``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.common import victims

ScaleInOrder = victims.Order
NodeMode = Literal["accept", "backup"]

#: Linode's private IPv4 range (a Linode created with ``private_ip: true`` gets one address from it).
PRIVATE_IPV4 = ipaddress.ip_network("192.168.128.0/17")
#: Linode labels: 3-64 characters, start and end alphanumeric, no ``--``, ``__`` or ``..``.
LABEL_MIN, LABEL_MAX = 3, 64
#: Tags: 3-50 characters. Prometheus' ``__meta_linode_tags`` joins them with commas, so a tag holds none.
TAG_MIN, TAG_MAX = 3, 50
#: NodeBalancer node labels: 2-32 characters.
NODE_LABEL_MAX = 32

# Linode ``status`` (API v4 ``Linode.status``): a new Linode is ``provisioning``, then ``booting``, then
# ``running``. ``deleting`` is on its way out. The others (offline, stopped, shutting_down, rebooting,
# migrating, rebuilding, cloning, restoring, resizing...) are a Linode that exists but is not known to serve.
_STATES = {
    "running": MemberState.RUNNING,
    "provisioning": MemberState.STARTING,
    "booting": MemberState.STARTING,
    "deleting": MemberState.STOPPING,
}
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?")


@dataclass(frozen=True)
class NodeView:
    """One backend of a NodeBalancer config, as the API shows it. ``address`` is ``IP:PORT``."""

    id: int
    label: str
    address: str
    mode: str
    status: str = "unknown"  # "UP", "DOWN" or "unknown" (the config's health checks)
    weight: int | None = None

    @classmethod
    def of(cls, node: Any) -> NodeView:
        """From a ``linode_api4.NodeBalancerNode`` (or anything with its attributes)."""
        weight = getattr(node, "weight", None)
        return cls(id=int(node.id), label=str(node.label or ""), address=str(node.address or ""),
                   mode=str(node.mode or ""), status=str(getattr(node, "status", None) or "unknown"),
                   weight=weight if isinstance(weight, int) else None)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> NodeView:
        """From the API's JSON of a node."""
        weight = body.get("weight")
        return cls(id=int(body["id"]), label=str(body.get("label") or ""), address=str(body.get("address") or ""),
                   mode=str(body.get("mode") or ""), status=str(body.get("status") or "unknown"),
                   weight=weight if isinstance(weight, int) else None)

    @property
    def ip(self) -> str:
        return self.address.rsplit(":", 1)[0]


@dataclass(frozen=True)
class LinodeView:
    """What the provider reads of one Linode (from the SDK's ``Instance`` or a test)."""

    id: int
    label: str
    status: str
    tags: tuple[str, ...] = ()
    ipv4: tuple[str, ...] = ()
    ipv6: str | None = None  # the SLAAC address as the API gives it: "2600:3c00::f03c:91ff:fe00:1/128"
    created: datetime | None = None

    @classmethod
    def of(cls, linode: Any) -> LinodeView:
        """From a ``linode_api4.Instance`` (``created`` comes naive, in UTC)."""
        created = linode.created
        if isinstance(created, datetime) and created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        return cls(id=int(linode.id), label=str(linode.label or ""), status=str(linode.status or ""),
                   tags=tuple(str(t) for t in linode.tags or ()), ipv4=tuple(str(a) for a in linode.ipv4 or ()),
                   ipv6=str(linode.ipv6) if linode.ipv6 else None,
                   created=created if isinstance(created, datetime) else None)

    @property
    def private_ipv4(self) -> str | None:
        return next((a for a in self.ipv4 if is_private_ipv4(a)), None)

    @property
    def public_ipv4(self) -> str | None:
        return next((a for a in self.ipv4 if not is_private_ipv4(a)), None)

    def carries(self, tag: str) -> bool:
        """True when ``tag`` is one of the Linode's tags (exactly: the API's tag filter matches substrings)."""
        return tag in self.tags


def is_private_ipv4(address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in PRIVATE_IPV4
    except ValueError:
        return False


def member_state(status: str, node: NodeView | None = None) -> MemberState:
    """``running`` → running, ``provisioning``/``booting`` → starting, ``deleting`` or a node in ``drain`` mode
    → stopping (being removed); anything else → unknown (the Linode exists but is not known to serve)."""
    if node is not None and node.mode == "drain":
        return MemberState.STOPPING
    return _STATES.get(status, MemberState.UNKNOWN)


def member_address(linode: LinodeView, port: int | None) -> str | None:
    """``<private IPv4>:<port>`` behind a NodeBalancer (``port`` given), else the public IPv4."""
    if port is None:
        return linode.public_ipv4
    ip = linode.private_ipv4
    return None if ip is None else f"{ip}:{port}"


def to_member(linode: LinodeView, node: NodeView | None, port: int | None) -> Member:
    labels = {"label": linode.label, "status": linode.status}
    if node is not None:
        labels.update(node_id=str(node.id), node_mode=node.mode, node_status=node.status)
    return Member(id=str(linode.id), address=member_address(linode, port), state=member_state(linode.status, node),
                  created_at=linode.created, labels=labels)


def rank(member: Member) -> int:
    """Linode's scale-in rank, 0 = remove first: failed, then unknown or being removed, then running but DOWN
    behind the NodeBalancer, then still starting, then running."""
    if member.state is MemberState.FAILED:
        return 0
    if member.state in (MemberState.UNKNOWN, MemberState.STOPPING):
        return 1
    if member.state is MemberState.RUNNING and member.labels.get("node_status") == "DOWN":
        return 2
    return 3 if member.state is MemberState.STARTING else 4


def choose_victims(members: Sequence[Member], count: int, order: ScaleInOrder) -> list[Member]:
    """The ``count`` members to remove on scale-in, in removal order: strategy ``unhealthy_first``
    (``common.victims.ranked``) with Linode's ``rank``, then the ``oldest`` or the ``newest`` by creation time
    (then label, digits as numbers, then id)."""
    return victims.ranked(members, count, rank=rank, age=victims.member_age("label"), order=order)


def linode_label(prefix: str, group: str, action_id: int, index: int) -> str:
    """``<prefix><group>-<action_id>-<index>``: a label that says which action created the Linode."""
    return f"{prefix}{group}-{action_id}-{index}"


def replacement_label(prefix: str, group: str, member_id: str) -> str:
    """``<prefix><group>-r<member id>``: the Linode that ``heal`` creates to replace member ``member_id``."""
    return f"{prefix}{group}-r{member_id}"


def label_problem(label: str) -> str | None:
    """Why Linode would refuse ``label`` as a Linode label, or None."""
    if not LABEL_MIN <= len(label) <= LABEL_MAX:
        return f"label {label!r} must be {LABEL_MIN}-{LABEL_MAX} characters long"
    if not _LABEL.fullmatch(label):
        return (f"label {label!r} may use letters, digits, '-', '_' and '.', and must start and end with a "
                "letter or digit")
    if any(twice in label for twice in ("--", "__", "..")):
        return f"label {label!r} must not contain '--', '__' or '..'"
    return None


def tag_problem(tag: str) -> str | None:
    if not TAG_MIN <= len(tag) <= TAG_MAX:
        return f"tag {tag!r} must be {TAG_MIN}-{TAG_MAX} characters long"
    if "," in tag:
        return f"tag {tag!r} must not contain a comma (Prometheus joins tags with commas)"
    return None


def node_label(label: str) -> str:
    """A NodeBalancer node's label (2-32 characters) for the Linode labelled ``label``: for display only, nodes
    are matched to Linodes by address."""
    return label[:NODE_LABEL_MAX]


def error_text(body: Any) -> str:
    """Linode's error body as text: ``field: reason; reason`` (empty when it is not one)."""
    errors = body.get("errors") if isinstance(body, Mapping) else None
    parts = []
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, Mapping):
            continue
        reason = " ".join(str(error.get("reason") or "").split())
        field = error.get("field")
        if reason:
            parts.append(f"{field}: {reason}" if field else reason)
    return "; ".join(parts)[:500]

