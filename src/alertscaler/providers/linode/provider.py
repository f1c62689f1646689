"""Provider type ``linode``: a group is the set of Linodes carrying the group's tag, optionally the backends of
one NodeBalancer config. Called by ``act.executing`` (``scale``, ``status``) and ``api`` (``members``, ``heal``)
through the registry. Configuration in ``linode.config``, the SDK client and error translation in
``linode.client``, NodeBalancer nodes in ``linode.nodebalancer``, pure helpers in ``linode.members``.

Talks to the Linode API v4 through linode-api4 with ONE ``LinodeClient`` per provider, made on first use, with
the SDK's own retries off (alertscaler retries, with the delay the API asks for) and every request bounded by
``request_timeout``. The token is held as ``SecretStr`` and given to the SDK only.

Ownership: every Linode created carries the group's tag (``tag``, default ``autoscale-<group>``) and the extra
``tags``. ``members()`` / ``status()`` list ONLY Linodes carrying that exact tag (the API's tag filter matches
substrings: each result is checked); nothing else on the account is ever counted, drained or deleted, whatever
its label. A member's address is ``<private IPv4>:<port>`` with a ``nodebalancer``, else its public IPv4.

``scale`` converges (``idempotent = True``). Scale-out creates the missing Linodes, labelled
``<label_prefix><group>-<action id>-<n>`` (a re-run of the action after a crash finds those it made: they carry
the tag), each with a root password generated for it (``secrets.token_urlsafe``: sent to the API, never
logged, kept or shown), waits for ``running`` within ``boot_timeout`` (a Linode that does not get there is
deleted and the action fails with ``TemporaryProviderError``), then adds each running member that has no node
yet to the NodeBalancer config (its private IPv4 read from ``/ips``) and reads the node back to confirm it.
Scale-in picks victims — unhealthy first (unknown status, being removed, DOWN behind the NodeBalancer, still
starting), then the ``oldest`` or ``newest`` (``scale_in``) — reports them leaving (``ScaleRequest.departures``:
out of ``/api/v1/targets``, never healed), sets their nodes to ``drain``, waits the longer of ``drain_time`` (with
a node) and the group's drain (``ScaleRequest.drain``: Prometheus drops the targets), removes the nodes, deletes
the Linodes, waits until they are gone (``delete_timeout``) and reports them gone. A
member whose node is in ``drain`` mode counts as being removed (not in ``current``): the next ``scale``
finishes removing it, after any replacement serves (draining a member by hand has the same effect).
``heal(member_id)`` creates the replacement first (label ``<label_prefix><group>-r<member id>``) and removes
the old member by the same drain path once the new one runs and is a backend.

SDK errors are translated once, by ``linode.client.translate``: 429 → temporary with the ``Retry-After`` delay,
408 / 5xx / timeouts / connection errors → temporary, other 4xx → permanent with Linode's reasons and fields.
Time is read from ``clock`` and waited with ``sleep`` (constructor arguments, for tests). The SDK is imported
on first use, so that policy files load without the ``linode`` extra.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from alertscaler.model.durations import format_duration
from alertscaler.model.errors import PermanentProviderError, ProviderError, TemporaryProviderError
from alertscaler.model.groups import GroupStatus, Member, MemberState
from alertscaler.providers.base import NO_DEPARTURES, ProviderContext, ScaleRequest
from alertscaler.providers.common import userdata
from alertscaler.providers.common.deleting import await_gone
from alertscaler.providers.common.retries import DEFAULT_DELAY
from alertscaler.providers.declaration import Declaration
from alertscaler.providers.linode.client import connect, is_not_found, translate
from alertscaler.providers.linode.config import LinodeConfig, NodeBalancerRef
from alertscaler.providers.linode.members import (
    LinodeView,
    NodeView,
    choose_victims,
    label_problem,
    linode_label,
    member_state,
    replacement_label,
    tag_problem,
    to_member,
)
from alertscaler.providers.linode.nodebalancer import NodeBalancerBackends

__all__ = ["LinodeConfig", "LinodeProvider", "NodeBalancerRef", "create"]

log = logging.getLogger(__name__)

T = TypeVar("T")



def create(config: LinodeConfig, context: ProviderContext) -> LinodeProvider:
    return LinodeProvider(config, context)


class LinodeProvider:
    """The Linodes of one group. Thread-safe: ``scale`` and ``heal`` are serialized; see the module docstring."""

    idempotent = True
    adopts_size = False

    def __init__(self, config: LinodeConfig, context: ProviderContext, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 connect: Callable[[LinodeConfig], Any] = connect) -> None:
        self.config = config
        self.group = context.group
        self.tag = config.group_tag(context.group)
        self._clock, self._sleep, self._connect = clock, sleep, connect
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._lock = threading.Lock()
        nb = config.nodebalancer
        self.backends = None if nb is None else NodeBalancerBackends(nb, context.group, lambda: self.client)

    def __repr__(self) -> str:
        return f"LinodeProvider(group={self.group!r}, tag={self.tag!r}, api={self.config.describe()!r})"

    # -- the one boundary to the SDK ----------------------------------------------------------------------

    @property
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self._connect(self.config)
            return self._client

    def _call(self, doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            translate(exc, f"{self.group}: {doing}")

    def _list(self) -> list[LinodeView]:
        """The group's Linodes (those carrying its tag), oldest first."""
        from linode_api4 import Instance  # type: ignore[import-untyped]

        def fetch() -> list[LinodeView]:
            found = self.client.linode.instances(Instance.tags.contains(self.tag))
            return [LinodeView.of(found[i]) for i in range(len(found))]

        owned = [linode for linode in self._call("listing Linodes", fetch) if linode.carries(self.tag)]
        return sorted(owned, key=lambda linode: (linode.created is None, linode.created, linode.id))

    def _labels_containing(self, text: str) -> set[str]:
        """Labels of every Linode on the account containing ``text`` (ours or not: labels are account-wide)."""
        from linode_api4 import Instance

        def fetch() -> set[str]:
            found = self.client.linode.instances(Instance.label.contains(text))
            return {str(found[i].label) for i in range(len(found))}

        return self._call(f"listing Linodes labelled {text}*", fetch)

    def _get(self, linode_id: int) -> LinodeView | None:
        """One Linode now; None when it is gone (404)."""
        from linode_api4 import Instance

        try:
            return LinodeView.of(self.client.load(Instance, linode_id))
        except Exception as exc:
            if is_not_found(exc):
                return None
            translate(exc, f"{self.group}: reading Linode {linode_id}")

    def _nodes(self) -> dict[str, NodeView]:
        """The NodeBalancer config's nodes by address (``{}`` without a ``nodebalancer``)."""
        return {} if self.backends is None else self.backends.list()

    def _node_of(self, linode: LinodeView, nodes: dict[str, NodeView]) -> NodeView | None:
        return None if self.backends is None else self.backends.node_of(linode, nodes)

    def _member(self, linode: LinodeView, nodes: dict[str, NodeView]) -> Member:
        port = None if self.config.nodebalancer is None else self.config.nodebalancer.port
        return to_member(linode, self._node_of(linode, nodes), port)

    # -- Provider -----------------------------------------------------------------------------------------

    def members(self) -> list[Member]:
        nodes = self._nodes()
        return [self._member(linode, nodes) for linode in self._list()]

    def status(self) -> GroupStatus:
        members = self.members()
        counts = Counter(m.state.value for m in members)
        current = sum(1 for m in members if m.state not in (MemberState.FAILED, MemberState.STOPPING))
        detail = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no Linodes"
        return GroupStatus(current=current, members=tuple(members), detail=detail)

    def scale(self, request: ScaleRequest) -> str:
        if request.desired < 0:
            raise PermanentProviderError(f"{self.group}: desired capacity must be >= 0, got {request.desired}")
        with self._lock:
            return self._converge(request)

    def heal(self, member_id: str) -> str:
        """Replace member ``member_id``: create a new Linode, add it to the NodeBalancer, then remove the old one
        (drain, remove the node, delete). A re-run after a crash finds the replacement by its label."""
        with self._lock:
            return self._heal(member_id)

    def close(self) -> None:
        """Close the HTTP session (Linodes keep running; a new provider finds them by their tag)."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.session.close()
            except Exception as exc:  # closing must not fail the caller
                log.debug("%s: closing the Linode API session: %s", self.group, exc)

    # -- converging ---------------------------------------------------------------------------------------

    def _converge(self, request: ScaleRequest) -> str:
        desired = request.desired
        linodes = self._list()
        nodes = self._nodes()
        states = {linode.id: member_state(linode.status, self._node_of(linode, nodes)) for linode in linodes}
        # drained (by an interrupted scale-in, or by hand): finish removing them; "deleting": already on the way
        leaving = [x for x in linodes if states[x.id] is MemberState.STOPPING and x.status != "deleting"]
        live = [x for x in linodes if states[x.id] not in (MemberState.STOPPING, MemberState.FAILED)]
        notes: list[str] = []
        victims: list[LinodeView] = []
        if len(live) > desired:
            by_id = {str(x.id): x for x in live}
            members = [self._member(x, nodes) for x in live]
            victims = [by_id[m.id] for m in choose_victims(members, len(live) - desired, self.config.scale_in)]
            live = [x for x in live if x not in victims]
        created: list[LinodeView] = []
        create_error: ProviderError | None = None
        if len(live) < desired:
            try:
                self._create(request.action_id, desired - len(live), created)
            except ProviderError as exc:
                create_error = exc
        waiting = [x for x in live if states[x.id] is MemberState.STARTING] + created
        ready, failures = self._await_running(waiting)
        if failures:
            self._cleanup([x for x in waiting if x.id in failures], "failed to boot")
        serving = [x for x in live if x.status == "running"] + list(ready.values())
        attached: list[str] = []
        attach_error: ProviderError | None = None
        try:
            self._attach_missing(serving, nodes, attached)
        except ProviderError as exc:
            attach_error = exc
        remove_error: ProviderError | None = None
        if victims or leaving:  # after the new members serve: a drained one no longer takes new connections
            try:
                self._remove(victims + leaving, nodes, f"scale-in to {desired}", request)
            except ProviderError as exc:
                remove_error = exc
            else:
                if victims:
                    notes.append(f"removed {len(victims)} ({', '.join(x.label for x in victims)})")
                if leaving:
                    notes.append(f"finished removing {len(leaving)} drained ({', '.join(x.label for x in leaving)})")
        ok = len(live) + len(created) - len(failures)
        if created:
            good = [x.label for x in created if x.id not in failures]
            notes.insert(0, f"created {len(good)} ({', '.join(good)})" if good else "created none")
        if attached:
            notes.append(f"added to {self.backends}: {', '.join(attached)}")
        if failures:
            problems = "; ".join(f"{label}: {why}" for label, why in failures.values())
            message = f"{self.group}: {ok} of {desired} Linodes running: {problems} (deleted)"
            for later in (create_error, attach_error, remove_error):
                if later is not None:
                    message += f"; then {later}"
            raise TemporaryProviderError(message, delay=max(DEFAULT_DELAY, self.config.poll_interval)) \
                from create_error or attach_error or remove_error
        for error in (create_error, attach_error, remove_error):
            if error is not None:
                raise error
        if not notes:
            return f"no change, {ok} Linodes"
        return ", ".join(notes) + f", now {ok}"

    def _heal(self, member_id: str) -> str:
        linodes = self._list()
        nodes = self._nodes()
        old = next((x for x in linodes if str(x.id) == member_id), None)
        label = replacement_label(self.config.label_prefix, self.group, member_id)
        replacement = next((x for x in linodes if x.label == label), None)
        if old is None:
            if replacement is None:
                raise PermanentProviderError(f"{self.group}: no member {member_id} (members are the Linodes "
                                             f"tagged {self.tag})")
            self._bring_up(replacement, nodes)
            return f"member {member_id} was already replaced by {replacement.label} ({replacement.id})"
        if replacement is None:
            self._check_names(label)
            replacement = self._call(f"creating Linode {label}", self._create_one, label)
            log.info("%s: created Linode %s (%s) to replace %s (%s)", self.group, label, replacement.id, old.label,
                     old.id)
        new = self._bring_up(replacement, nodes)
        self._remove([old], nodes, f"replaced by {new.label}")
        return f"replaced {old.label} ({old.id}) by {new.label} ({new.id})"

    def _bring_up(self, linode: LinodeView, nodes: dict[str, NodeView]) -> LinodeView:
        """Wait until ``linode`` runs and add it to the NodeBalancer; delete it if it does not boot."""
        ready, failures = self._await_running([linode])
        if failures:
            self._cleanup([linode], "failed to boot")
            why = failures[linode.id][1]
            raise TemporaryProviderError(f"{self.group}: replacement {linode.label}: {why} (deleted; the old "
                                         "member is kept)", delay=max(DEFAULT_DELAY, self.config.poll_interval))
        self._attach_missing([ready[linode.id]], nodes, [])
        return ready[linode.id]

    def _check_names(self, *labels: str) -> None:
        problems = [p for p in (tag_problem(self.tag), *(label_problem(label) for label in labels)) if p]
        if problems:
            raise PermanentProviderError(f"{self.group}: {'; '.join(problems)} (set provider.tag or label_prefix)")

    def _create(self, action_id: int, count: int, created: list[LinodeView]) -> None:
        """Create ``count`` Linodes for ``action_id`` (appending each to ``created`` as soon as it exists)."""
        stem = linode_label(self.config.label_prefix, self.group, action_id, 0)[:-1]  # "<prefix><group>-<id>-"
        taken = self._labels_containing(stem)
        index = 0
        for _ in range(count):
            index += 1
            while linode_label(self.config.label_prefix, self.group, action_id, index) in taken:
                index += 1
            label = linode_label(self.config.label_prefix, self.group, action_id, index)
            self._check_names(label)
            linode = self._call(f"creating Linode {label}", self._create_one, label, index)
            log.info("%s: created Linode %s (%s) for action %s", self.group, label, linode.id, action_id)
            created.append(linode)

    def _create_one(self, label: str, index: int = 1) -> LinodeView:
        """POST one Linode, the ``index``-th of its action (its user data rendered for it). Its root password is
        made here and only lives in this call."""
        cfg = self.config
        options: dict[str, Any] = {"label": label, "tags": [self.tag, *cfg.tags], "private_ip": cfg.private_ip}
        if cfg.firewall_id is not None:
            options["firewall"] = cfg.firewall_id
        if cfg.authorized_keys:
            options["authorized_keys"] = list(cfg.authorized_keys)
        if cfg.authorized_users:
            options["authorized_users"] = list(cfg.authorized_users)
        if cfg.stackscript_id is not None:
            options["stackscript"] = cfg.stackscript_id
            if cfg.stackscript_data:
                options["stackscript_data"] = dict(cfg.stackscript_data)
        if cfg.user_data_text is not None:
            text = userdata.render_for(cfg.user_data_text, self.group, label, index)
            options["metadata"] = self.client.linode.build_instance_metadata(user_data=text)
        linode = self.client.linode.instance_create(cfg.linode_type, cfg.region, image=cfg.image,
                                                    root_pass=secrets.token_urlsafe(32), **options)
        return LinodeView.of(linode)

    def _await_running(self, linodes: list[LinodeView]) -> tuple[dict[int, LinodeView], dict[int, tuple[str, str]]]:
        """Poll until each Linode is ``running``: ``({id: view now}, {id: (label, why)})`` of those that are and
        those that are not within ``boot_timeout``. API errors while polling are retried until then."""
        ready: dict[int, LinodeView] = {}
        failures: dict[int, tuple[str, str]] = {}
        pending = {x.id: x for x in linodes}
        last: dict[int, str] = {x.id: x.status for x in linodes}
        deadline = self._clock() + self.config.boot_timeout
        while pending:
            for linode_id, linode in list(pending.items()):
                try:
                    now = self._get(linode_id)
                except TemporaryProviderError as exc:
                    last[linode_id] = str(exc)
                    continue
                if now is None:
                    failures[linode_id] = (linode.label, "disappeared while booting")
                elif now.status == "running":
                    ready[linode_id] = now
                else:
                    last[linode_id] = now.status
                    continue
                del pending[linode_id]
            remaining = deadline - self._clock()
            if not pending:
                break
            if remaining <= 0:
                for linode_id, linode in pending.items():
                    failures[linode_id] = (linode.label, f"not running within "
                                                         f"{format_duration(self.config.boot_timeout)} "
                                                         f"({last.get(linode_id) or 'provisioning'})")
                break
            self._sleep(min(self.config.poll_interval, remaining))
        for label, why in failures.values():
            log.warning("%s: Linode %s failed to boot: %s", self.group, label, why)
        return ready, failures

    def _attach_missing(self, linodes: Iterable[LinodeView], nodes: dict[str, NodeView], attached: list[str]) -> None:
        """Add each running Linode without a node to the NodeBalancer config (``attached`` gets their labels)."""
        if self.backends is None:
            return
        for linode in linodes:
            if self.backends.node_of(linode, nodes) is None:
                node = self.backends.attach(linode)
                nodes[node.address] = node
                attached.append(linode.label)

    # -- removing -----------------------------------------------------------------------------------------

    def _remove(self, linodes: list[LinodeView], nodes: dict[str, NodeView], why: str,
                request: ScaleRequest | None = None) -> None:
        """Report the Linodes leaving (a scale-in: ``request``), drain their nodes, wait the longer of
        ``drain_time`` (with a node) and the request's drain, remove the nodes, delete the Linodes, wait until
        gone, report them gone."""
        for linode in linodes:
            if not linode.carries(self.tag):  # never reached: every caller lists by tag; kept as the last guard
                raise PermanentProviderError(f"{self.group}: refusing to remove Linode {linode.label}: it does not "
                                             f"carry the tag {self.tag}")
        departures = NO_DEPARTURES if request is None else request.departures
        departures.leaving([self._member(x, nodes) for x in linodes], why)  # out of the targets first
        backends = self.backends
        with_node = [] if backends is None else \
            [(x, node) for x in linodes if (node := backends.node_of(x, nodes)) is not None]
        if backends is not None:
            for linode, node in with_node:
                if node.mode != "drain":
                    backends.drain(node, linode.label, why)
        wait = max(self.config.drain_time if with_node else 0.0, request.drain if request is not None else 0.0)
        if wait > 0 and departures is NO_DEPARTURES:  # a heal's removal, or a caller outside the service
            self._sleep(wait)
        elif wait > 0 and not departures.wait(wait):  # the service stops: drained nodes are finished next run
            raise TemporaryProviderError(f"{self.group}: stopping during the drain of "
                                         f"{', '.join(x.label for x in linodes)}: the next run removes them")
        if backends is not None:
            for linode, node in with_node:
                backends.remove(node, linode.label)
                nodes.pop(node.address, None)
        self._delete(linodes, why)
        departures.gone([str(x.id) for x in linodes])

    def _delete(self, linodes: list[LinodeView], why: str) -> None:
        """Delete ``linodes`` and wait until they are gone, within ``delete_timeout``."""
        from linode_api4 import Instance

        for linode in linodes:
            try:
                Instance(self.client, linode.id).delete()
            except Exception as exc:
                if not is_not_found(exc):
                    translate(exc, f"{self.group}: deleting Linode {linode.label}")
            log.info("%s: deleting Linode %s (%s): %s", self.group, linode.label, linode.id, why)
        await_gone({x.id: x.label for x in linodes}, lambda linode_id: self._get(linode_id) is not None,
                   timeout=self.config.delete_timeout, poll=self.config.poll_interval, clock=self._clock,
                   sleep=self._sleep, what=f"{self.group}: Linodes")

    def _cleanup(self, linodes: list[LinodeView], why: str) -> None:
        """Delete Linodes that failed to boot (they have no node yet); a failure is logged (the next scale
        retries: they carry the tag)."""
        try:
            self._delete(linodes, why)
        except ProviderError as exc:
            log.warning("%s: cleaning up Linodes that failed to boot: %s", self.group, exc)


#: read by the registry: config model, factory, heal abilities (checked by ``check``, kept by the boundary)
DECLARATION = Declaration(LinodeConfig, create, LinodeProvider)
