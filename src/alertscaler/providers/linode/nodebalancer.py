"""The backends of one NodeBalancer config, for the ``linode`` provider (``NodeBalancerBackends``).

Owns the NodeBalancer calls: listing the config's nodes (by ``IP:PORT`` address), adding a running Linode as a
node at ``<its private IPv4 from /ips>:<port>`` and reading the node back to confirm it, setting a node to
``drain`` and removing it. Nodes carry no tag: a node belongs to the group only through the address of one of
the group's Linodes, and nothing else is ever changed. Used by ``linode``; SDK errors go through
``linode.client.translate``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.providers.common.retries import DEFAULT_DELAY
from alertscaler.providers.linode.client import is_not_found, translate
from alertscaler.providers.linode.config import NodeBalancerRef
from alertscaler.providers.linode.members import LinodeView, NodeView, node_label

log = logging.getLogger(__name__)

T = TypeVar("T")


class NodeBalancerBackends:
    """The nodes of NodeBalancer ``ref.id`` config ``ref.config_id`` that are the group's members."""

    def __init__(self, ref: NodeBalancerRef, group: str, client: Callable[[], Any]) -> None:
        self.ref = ref
        self.group = group
        self._client = client  # the provider's (lazily made) LinodeClient

    def __str__(self) -> str:
        return f"NodeBalancer {self.ref.id} config {self.ref.config_id}"

    def _call(self, doing: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except Exception as exc:
            translate(exc, f"{self.group}: {doing}")

    def address_of(self, linode: LinodeView) -> str | None:
        """Where ``linode`` is (or would be) a backend: ``<private IPv4>:<port>``."""
        ip = linode.private_ipv4
        return None if ip is None else f"{ip}:{self.ref.port}"

    def node_of(self, linode: LinodeView, nodes: dict[str, NodeView]) -> NodeView | None:
        address = self.address_of(linode)
        return None if address is None else nodes.get(address)

    def list(self) -> dict[str, NodeView]:
        """The config's nodes by address."""
        path = f"/nodebalancers/{self.ref.id}/configs/{self.ref.config_id}/nodes"

        def fetch() -> list[NodeView]:
            # Pages read with the client's get(): the SDK's NodeBalancerConfig.nodes builds each node without
            # its JSON, so that every attribute read would cost one more GET per node.
            found: list[NodeView] = []
            page, pages = 1, 1
            while page <= pages:
                answer = self._client().get(f"{path}?page={page}")
                found += [NodeView.from_json(item) for item in answer.get("data") or ()]
                pages = int(answer.get("pages") or 1)
                page += 1
            return found

        return {node.address: node for node in self._call(f"listing the nodes of {self}", fetch)}

    def attach(self, linode: LinodeView) -> NodeView:
        """Add ``linode`` as a node at ``<private IPv4>:<port>`` and confirm it by reading it back."""
        from linode_api4 import Instance, NodeBalancerConfig, NodeBalancerNode  # type: ignore[import-untyped]

        ref = self.ref

        def private_ips() -> list[str]:
            return [str(ip.address) for ip in Instance(self._client(), linode.id).ips.ipv4.private]

        ips = self._call(f"reading the IPs of Linode {linode.label}", private_ips)
        if not ips:
            raise PermanentProviderError(f"{self.group}: Linode {linode.label} has no private IPv4: it cannot be a "
                                         "NodeBalancer backend")
        address = f"{ips[0]}:{ref.port}"
        extra: dict[str, Any] = {"mode": ref.mode}
        if ref.weight is not None:
            extra["weight"] = ref.weight
        made = self._call(f"adding Linode {linode.label} ({address}) to {self}", lambda: NodeView.of(
            NodeBalancerConfig(self._client(), ref.config_id, ref.id).node_create(node_label(linode.label), address,
                                                                                 **extra)))
        back = self._call(f"reading back node {made.id} of {self}", lambda: NodeView.of(
            self._client().load(NodeBalancerNode, made.id, (ref.config_id, ref.id))))
        if back.address != address or back.mode != ref.mode:
            raise TemporaryProviderError(f"{self.group}: node {made.id} of {self} reads back as {back.address} "
                                         f"({back.mode}), not {address} ({ref.mode})", delay=DEFAULT_DELAY)
        log.info("%s: Linode %s is node %s of %s at %s (%s)", self.group, linode.label, back.id, self, address,
                 back.mode)
        return back

    def drain(self, node: NodeView, label: str, why: str) -> None:
        """Set ``node`` (of Linode ``label``) to ``drain``: no new connections, pinned ones continue."""
        from linode_api4 import NodeBalancerNode

        def put() -> None:
            target = NodeBalancerNode(self._client(), node.id, (self.ref.config_id, self.ref.id))
            target.mode = "drain"
            target.save()

        self._call(f"draining node {node.id} ({label}) of {self}", put)
        log.info("%s: draining node %s of %s (%s): %s", self.group, node.id, label, node.address, why)

    def remove(self, node: NodeView, label: str) -> None:
        """Delete ``node`` (of Linode ``label``); one already gone is fine."""
        from linode_api4 import NodeBalancerNode

        try:
            NodeBalancerNode(self._client(), node.id, (self.ref.config_id, self.ref.id)).delete()
        except Exception as exc:
            if not is_not_found(exc):
                translate(exc, f"{self.group}: removing node {node.id} ({label}) of {self}")
        log.info("%s: removed node %s of %s from %s", self.group, node.id, label, self)
