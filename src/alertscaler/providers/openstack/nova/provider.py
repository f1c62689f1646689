"""Provider type ``openstack-nova``: a group is the set of Nova servers carrying the group's ownership metadata.

Talks to Nova (and Glance, to resolve an image name) through openstacksdk, with ONE ``Connection`` per provider,
created on first use and reused: keystoneauth caches the token and fetches a new one only when it expires or
is refused (401), so scaling costs no token request per alert. Credentials: the shared ``auth`` section
(``openstack.auth.OpenStackAuth``: clouds.yaml, ``OS_*`` environment, application credentials, or
``auth_type: none`` with ``endpoint_override``).

Ownership: every server created gets the metadata ``<owner_key>=<owner_value>`` (default
``alertscaler_group=<group>``), the ``discovery_metadata`` (default ``prometheus_autoscaling=true``: the tag the
generated ``openstack_sd_configs`` job keeps), the extra ``metadata``, and ``alertscaler_action=<action id>``.
``members()`` / ``status()`` list ONLY servers whose metadata carries the ownership pair; nothing else in the
project is ever counted or deleted, whatever its name.

``scale`` converges (``idempotent = True``): it deletes the group's servers in ``ERROR`` (not counted in
``current``; a server stuck there does not block the group), picks scale-in victims
per ``scale_in`` (``unhealthy_first`` — failed, unknown, starting, then running, oldest first —, ``oldest`` or
``newest``), deletes them and waits until they are gone; or creates the missing servers, named
``<name_prefix><group>-<action id>-<n>``, and waits for ``ACTIVE`` within ``boot_timeout``. A re-run of the
same action after a crash finds the servers it already created (they carry the ownership metadata) and
creates only what is still missing. A server that goes ``ERROR`` or is not ``ACTIVE`` in time is deleted and
the action fails: ``TemporaryProviderError`` for timeouts and server-side faults ("No valid host was found"),
``PermanentProviderError`` when every fault is a 4xx. API errors go through ``openstack.auth.translate``
(5xx / 429 → temporary with the ``Retry-After`` delay, 4xx → permanent with Nova's message, unreachable →
temporary). Time is read from ``clock`` and waited with ``sleep`` (constructor arguments, for tests).

Healing (``openstack.nova.healing``): ``heal`` (replace: the replacement first, then the old server), ``reboot``
(HARD, in place) and ``quarantine`` (the server leaves the group and discovery by its metadata, and keeps
running; ``quarantined()`` lists them).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from alertscaler.model.durations import PositiveDuration, format_duration
from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.model.groups import GroupStatus, Member, MemberState
from alertscaler.providers.base import ProviderContext, ScaleRequest
from alertscaler.providers.common import userdata
from alertscaler.providers.common.deleting import await_gone
from alertscaler.providers.common.retries import DEFAULT_DELAY
from alertscaler.providers.declaration import Declaration
from alertscaler.providers.openstack import auth as openstack_auth
from alertscaler.providers.openstack.auth import OpenStackAuth
from alertscaler.providers.openstack.nova import healing as nova_healing
from alertscaler.providers.openstack.nova.servers import (
    ACTION_KEY,
    GONE_STATUSES,
    MAX_METADATA_LENGTH,
    QUARANTINED_AT_KEY,
    REPLACES_KEY,
    NetworkRef,
    ScaleInPolicy,
    ServerView,
    check_template,
    choose_victims,
    encode_user_data,
    looks_like_uuid,
    render_template,
    server_name,
    to_member,
)

__all__ = ["NetworkRef", "NovaConfig", "NovaProvider", "create"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class NovaConfig(BaseModel):
    """``provider: {type: openstack-nova, ...}`` of a group."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: Literal["openstack-nova"]
    auth: OpenStackAuth = Field(default_factory=OpenStackAuth)
    image: str = Field(min_length=1)  # id (used as is) or name (looked up in Glance)
    flavor: str = Field(min_length=1)  # id or name
    networks: list[NetworkRef] = Field(default_factory=list)  # empty (or "auto"): Nova's networks "auto"
    key_name: str | None = None
    security_groups: list[str] = Field(default_factory=list)
    user_data: str | None = Field(default=None, repr=False)  # a template: {group}, {name}, {index}
    user_data_file: str | None = None  # the same, from a file read at load (relative to the policy file)
    owner_key: str = Field(default="alertscaler_group", min_length=1, max_length=MAX_METADATA_LENGTH)
    owner_value: str | None = Field(default=None, min_length=1, max_length=MAX_METADATA_LENGTH)  # default: group
    discovery_metadata: dict[str, str] = Field(default_factory=lambda: {"prometheus_autoscaling": "true"})
    metadata: dict[str, str] = Field(default_factory=dict)
    name_prefix: str = Field(default="", max_length=64)
    availability_zone: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)  # members' address is ip:port when set
    boot_timeout: PositiveDuration = 300.0
    delete_timeout: PositiveDuration = 300.0
    poll_interval: PositiveDuration = 5.0
    scale_in: ScaleInPolicy = "unhealthy_first"

    _template: str | None = PrivateAttr(default=None)

    @field_validator("networks", mode="before")
    @classmethod
    def _auto(cls, value: Any) -> Any:
        if value == "auto" or value is None:
            return []
        if isinstance(value, str):
            raise ValueError("must be auto or a list of {uuid: NETWORK_ID} / {port: PORT_ID}")
        return value

    @field_validator("user_data")
    @classmethod
    def _template_ok(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)

    @field_validator("user_data_file")
    @classmethod
    def _file_ok(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("user_data") is not None:
            raise ValueError("give either user_data or user_data_file, not both")
        return userdata.checked_file(value, (info.context or {}).get("base"), userdata.NOVA)


    @field_validator("security_groups")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        if any(not name for name in value):
            raise ValueError("security group names must not be empty")
        return value

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]*", value):
            raise ValueError("may use letters, digits, '.', '_' and '-' only (it starts host names)")
        return value

    @field_validator("metadata", "discovery_metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for key, item in value.items():
            if not 1 <= len(key) <= MAX_METADATA_LENGTH or len(item) > MAX_METADATA_LENGTH:
                raise ValueError(f"{key[:40]!r}: Nova metadata keys are 1-255 characters, values at most 255")
        clash = sorted({info.data.get("owner_key", ""), ACTION_KEY, REPLACES_KEY, QUARANTINED_AT_KEY} & set(value))
        if clash:
            raise ValueError(f"must not set {', '.join(clash)} (set by alertscaler)")
        if info.field_name == "metadata" and len(value) + len(info.data.get("discovery_metadata") or {}) + 2 > 128:
            raise ValueError("at most 126 metadata items with discovery_metadata (Nova's default quota is 128)")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> NovaConfig:
        if self.poll_interval > self.boot_timeout:
            raise ValueError("poll_interval must not be longer than boot_timeout")
        self._template = userdata.template_of(self.user_data, self.user_data_file)
        return self

    @property
    def template(self) -> str | None:
        """The user data template (``user_data``, or the text of ``user_data_file`` as read at load)."""
        return self._template

    def user_data_report(self) -> userdata.Report | None:
        """What ``check`` prints about the user data (format, size against Nova's limit, warnings)."""
        return userdata.report(self._template, self.user_data_file, userdata.NOVA)




def create(config: NovaConfig, context: ProviderContext) -> NovaProvider:
    return NovaProvider(config, context)


class NovaProvider:
    """The Nova servers of one group. Thread-safe: ``scale`` calls are serialized; see the module docstring."""

    idempotent = True
    adopts_size = False

    def __init__(self, config: NovaConfig, context: ProviderContext, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 connect: Callable[[OpenStackAuth], Any] = openstack_auth.connect,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self.group = context.group
        self.owner_value = config.owner_value or context.group
        self._clock, self._sleep, self._connect, self._now = clock, sleep, connect, now
        self._conn: Any = None
        self._conn_lock = threading.Lock()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"NovaProvider(group={self.group!r}, auth={self.config.auth.describe()})"

    # -- the one boundary to the SDK ----------------------------------------------------------------------

    @property
    def conn(self) -> Any:
        with self._conn_lock:
            if self._conn is None:
                self._conn = self._connect(self.config.auth)
            return self._conn

    def _call(self, doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            self._fail(exc, doing)

    def _fail(self, exc: BaseException, doing: str) -> NoReturn:
        openstack_auth.translate(exc, f"{self.group}: {doing}")

    def _list(self) -> list[ServerView]:
        """The group's servers (those carrying the ownership metadata), oldest first."""
        def fetch() -> list[ServerView]:
            return [ServerView.of(s) for s in self.conn.compute.servers(details=True)]

        servers = self._call("listing servers", fetch)
        owned = [s for s in servers if s.metadata.get(self.config.owner_key) == self.owner_value]
        return sorted(owned, key=lambda s: (s.created or "", s.id))

    def _get(self, server_id: str) -> ServerView | None:
        """One server now; None when it is gone (404, or shown as deleted)."""
        try:
            server = ServerView.of(self.conn.compute.get_server(server_id))
        except Exception as exc:
            if 404 in (getattr(exc, "status_code", None), getattr(exc, "http_status", None)):
                return None
            self._fail(exc, f"reading server {server_id}")
        return None if server.status in GONE_STATUSES else server

    # -- Provider -----------------------------------------------------------------------------------------

    def members(self) -> list[Member]:
        return [to_member(s, self.config.port, ACTION_KEY) for s in self._list()]

    def status(self) -> GroupStatus:
        members = self.members()
        counts = Counter(m.state.value for m in members)
        current = sum(1 for m in members if m.state not in (MemberState.FAILED, MemberState.STOPPING))
        detail = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no servers"
        return GroupStatus(current=current, members=tuple(members), detail=detail)

    def scale(self, request: ScaleRequest) -> str:
        if request.desired < 0:
            raise PermanentProviderError(f"{self.group}: desired capacity must be >= 0, got {request.desired}")
        with self._lock:
            return self._converge(request)

    # -- healing (nova_healing) -------------------------------------------------------------------------------

    def heal(self, member_id: str) -> str:
        """Replace a member: boot its replacement like scale-out does, wait for ACTIVE, then delete the old one."""
        with self._lock:
            return nova_healing.replace(self, member_id)

    def reboot(self, member_id: str) -> str:
        """HARD-reboot a member in place and wait until it is ACTIVE again."""
        with self._lock:
            return nova_healing.reboot(self, member_id)

    def quarantine(self, member_id: str) -> str:
        """Take a member out of the group and out of discovery by its metadata; it keeps running."""
        with self._lock:
            return nova_healing.quarantine(self, member_id, self._now())

    def quarantined(self) -> list[Member]:
        """The servers this group has quarantined (never counted, never deleted by alertscaler)."""
        return nova_healing.quarantined(self)

    def close(self) -> None:
        """Close the connection (servers keep running; a new provider finds them by their metadata)."""
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception as exc:  # closing must not fail the caller
                log.debug("%s: closing the OpenStack connection: %s", self.group, exc)

    # -- converging ---------------------------------------------------------------------------------------

    def _converge(self, request: ScaleRequest) -> str:
        desired = request.desired
        servers = self._list()
        failed = [s for s in servers if s.state is MemberState.FAILED]
        live = [s for s in servers if s.state not in (MemberState.FAILED, MemberState.STOPPING)]
        notes: list[str] = []
        if failed:  # not waited for: a server stuck in ERROR must not block the group
            self._cleanup(failed, "in ERROR")
            notes.append(f"deleted {len(failed)} failed ({', '.join(s.name for s in failed)})")
        if len(live) > desired:
            by_id = {s.id: s for s in live}
            members = [to_member(s, self.config.port, ACTION_KEY) for s in live]
            victims = [by_id[m.id] for m in choose_victims(members, len(live) - desired, self.config.scale_in)]
            self._delete(victims, "scale-in")
            notes.append(f"deleted {len(victims)} ({', '.join(s.name for s in victims)})")
            live = [s for s in live if s not in victims]
        created: list[ServerView] = []
        create_error: Exception | None = None
        if len(live) < desired:
            try:
                self._create(request.action_id, desired - len(live), {s.name for s in servers}, created)
            except (TemporaryProviderError, PermanentProviderError) as exc:
                create_error = exc
        waiting = [s for s in live if s.state is MemberState.STARTING] + created
        failures, codes = self._await_active(waiting)
        ok = len(live) + len(created) - len(failures)
        if created:
            good = [s.name for s in created if s.id not in failures]
            notes.insert(0, f"created {len(good)} ({', '.join(good)})" if good else "created none")
        if failures:
            self._cleanup([s for s in waiting if s.id in failures], "failed to build")
            problems = "; ".join(f"{name}: {why}" for name, why in failures.values())
            message = f"{self.group}: {ok} of {desired} servers ACTIVE: {problems} (deleted)"
            if create_error is not None:
                message += f"; then {create_error}"
            if all(400 <= c < 500 for c in codes) and len(codes) == len(failures):
                raise PermanentProviderError(message) from create_error
            raise TemporaryProviderError(message, delay=max(DEFAULT_DELAY,
                                                            self.config.poll_interval)) from create_error
        if create_error is not None:
            raise create_error
        if not notes:
            return f"no change, {ok} servers"
        return ", ".join(notes) + f", now {ok}"

    def _create(self, action_id: int, count: int, taken: set[str], created: list[ServerView]) -> None:
        """Create ``count`` servers for ``action_id`` (appending each to ``created`` as soon as it exists)."""
        cfg = self.config
        image_id, flavor_id = self._boot_refs()
        index = 0
        for _ in range(count):
            index += 1
            while server_name(cfg.name_prefix, self.group, action_id, index) in taken:
                index += 1
            name = server_name(cfg.name_prefix, self.group, action_id, index)
            created.append(self._boot(name, {ACTION_KEY: str(action_id)}, image_id, flavor_id, index))
            log.info("%s: created server %s (%s) for action %s", self.group, name, created[-1].id, action_id)

    def _boot_refs(self) -> tuple[str, str]:
        """``(image id, flavor id)`` of new servers (an image name is looked up in Glance)."""
        cfg = self.config
        flavor = self._call(f"finding flavor {cfg.flavor!r}", self.conn.compute.find_flavor, cfg.flavor,
                            ignore_missing=False)
        image_id = cfg.image
        if not looks_like_uuid(cfg.image):
            image = self._call(f"finding image {cfg.image!r}", self.conn.image.find_image, cfg.image,
                               ignore_missing=False)
            image_id = image.id
        return image_id, str(flavor.id)

    def _boot(self, name: str, extra: dict[str, str], image_id: str, flavor_id: str, index: int = 1) -> ServerView:
        """POST one server of the group (ownership and discovery metadata, plus ``extra``; its user data rendered
        for ``name`` and ``index``, its number in the action); it is BUILDing."""
        attrs = self._server_attrs(name, extra, image_id, flavor_id, index)
        server = self._call(f"creating server {name}", self.conn.compute.create_server, **attrs)
        return ServerView(id=str(server.id), name=name, status="BUILD", metadata=attrs["metadata"])

    def _server_attrs(self, name: str, extra: dict[str, str], image_id: str, flavor_id: str,
                      index: int = 1) -> dict[str, Any]:
        cfg = self.config
        metadata = {**cfg.metadata, **cfg.discovery_metadata, cfg.owner_key: self.owner_value, **extra}
        networks: Any = [net.model_dump(exclude_none=True) for net in cfg.networks] or "auto"
        attrs: dict[str, Any] = {"name": name, "image_id": image_id, "flavor_id": flavor_id,
                                 "networks": networks, "metadata": metadata}
        if cfg.key_name:
            attrs["key_name"] = cfg.key_name
        if cfg.security_groups:
            attrs["security_groups"] = [{"name": g} for g in cfg.security_groups]
        if cfg.availability_zone:
            attrs["availability_zone"] = cfg.availability_zone
        if cfg.template is not None:
            attrs["user_data"] = encode_user_data(render_template(cfg.template, self.group, name, index))
        return attrs

    def _await_active(self, servers: list[ServerView]) -> tuple[dict[str, tuple[str, str]], list[int]]:
        """Poll until each server is ACTIVE; return ``{id: (name, why)}`` of those that are not, and the
        fault codes seen. API errors while polling are retried until ``boot_timeout``."""
        failures: dict[str, tuple[str, str]] = {}
        codes: list[int] = []
        pending = {s.id: s for s in servers}
        last: dict[str, str] = {}
        deadline = self._clock() + self.config.boot_timeout
        while pending:
            for server_id, server in list(pending.items()):
                try:
                    now = self._get(server_id)
                except TemporaryProviderError as exc:
                    last[server_id] = str(exc)
                    continue
                if now is None:
                    failures[server_id] = (server.name, "disappeared while building")
                elif now.status == "ACTIVE":
                    pass
                elif now.state is MemberState.FAILED:
                    failures[server_id] = (server.name, now.fault_text())
                    codes += [c for c in (now.fault_code(),) if c is not None]
                else:
                    last[server_id] = now.status
                    continue
                del pending[server_id]
            remaining = deadline - self._clock()
            if not pending:
                break
            if remaining <= 0:
                for server_id, server in pending.items():
                    seen = last.get(server_id, "BUILD")
                    failures[server_id] = (server.name, f"not ACTIVE within "
                                                        f"{format_duration(self.config.boot_timeout)} ({seen})")
                break
            self._sleep(min(self.config.poll_interval, remaining))
        for name, why in failures.values():
            log.warning("%s: server %s failed to build: %s", self.group, name, why)
        return failures, codes

    def _delete(self, servers: list[ServerView], why: str) -> None:
        """Delete ``servers`` (ours, by construction) and wait until they are gone, within ``delete_timeout``."""
        for server in servers:
            if server.metadata.get(self.config.owner_key) != self.owner_value:
                raise PermanentProviderError(f"{self.group}: refusing to delete {server.name}: not ours")
            self._call(f"deleting server {server.name}", self.conn.compute.delete_server, server.id,
                       ignore_missing=True)
            log.info("%s: deleting server %s (%s): %s", self.group, server.name, server.id, why)
        await_gone({s.id: s.name for s in servers}, lambda server_id: self._get(server_id) is not None,
                   timeout=self.config.delete_timeout, poll=self.config.poll_interval, clock=self._clock,
                   sleep=self._sleep, what=f"{self.group}: servers")

    def _cleanup(self, servers: list[ServerView], why: str) -> None:
        """Delete failed servers; a failure to do so is logged (the next scale retries it)."""
        try:
            self._delete(servers, why)
        except (TemporaryProviderError, PermanentProviderError) as exc:
            log.warning("%s: cleaning up failed servers: %s", self.group, exc)


#: read by the registry: config model, factory, heal abilities (checked by ``check``, kept by the boundary)
DECLARATION = Declaration(NovaConfig, create, NovaProvider)
