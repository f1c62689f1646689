"""The ``provider:`` section of a ``linode`` group (``LinodeConfig``, ``NodeBalancerRef``), checked at load.

Owns the checks that can be made without calling Linode: the API token (``token``, ``token_env`` or
``token_file``, via ``model.secrets.resolve_secret``, held as ``SecretStr``), the API URL, tags and label
prefix against Linode's rules, SSH keys given as keys (never as paths: the SDK would read a file), StackScript
or cloud-init user data (``user_data`` / ``user_data_file``, read at load), the NodeBalancer it manages, and
the durations. Used by ``linode.provider`` (which declares it in ``DECLARATION``) and, through the registry, by
``config.load_policy``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alertscaler.model.durations import Duration, PositiveDuration
from alertscaler.providers.common import userdata
from alertscaler.providers.linode.members import NodeMode, ScaleInOrder, tag_problem
from alertscaler.secrets import resolve_secret

DEFAULT_API_URL = "https://api.linode.com/v4"
#: Key types the Linode SDK accepts as keys (anything else it tries to open as a file).
SSH_KEY_TYPES = ("ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp")
#: ``stackscript_data`` is sent as JSON of at most 65,535 characters.
MAX_STACKSCRIPT_DATA = 65535


@dataclass(frozen=True)
class _SecretProblem:
    """Why ``token_env`` / ``token_file`` could not be read (names the variable or file, never a value)."""

    message: str


class NodeBalancerRef(BaseModel):
    """``nodebalancer: {id, config_id, port, weight, mode}``: the NodeBalancer config (one port of it) whose
    backends are the group's members, each at ``<private IPv4>:<port>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(gt=0)
    config_id: int = Field(gt=0)
    port: int = Field(ge=1, le=65535)  # the members' port behind the NodeBalancer
    weight: int | None = Field(default=None, ge=1, le=255)  # Linode's default when unset
    mode: NodeMode = "accept"  # mode of the nodes alertscaler adds (backup: used only when accept nodes are down)


class LinodeConfig(BaseModel):
    """``provider: {type: linode, ...}`` of a group."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    type: Literal["linode"]
    token: SecretStr  # a personal access token: Linodes read/write (+ NodeBalancers read/write with nodebalancer)
    api_url: str = DEFAULT_API_URL
    region: str = Field(min_length=1)  # e.g. us-east; the NodeBalancer's region
    linode_type: str = Field(min_length=1)  # the plan, e.g. g6-nanode-1 (the API's "type")
    image: str = Field(min_length=1)  # e.g. linode/debian12, or private/12345
    tag: str | None = None  # the group's ownership tag; default autoscale-<group>
    tags: list[str] = Field(default_factory=list)  # more tags (e.g. the one Prometheus' linode_sd job keeps)
    label_prefix: str = Field(default="", max_length=32)
    authorized_keys: list[str] = Field(default_factory=list)
    authorized_users: list[str] = Field(default_factory=list)
    private_ip: bool = True
    firewall_id: int | None = Field(default=None, gt=0)  # a Cloud Firewall for every Linode created
    stackscript_id: int | None = Field(default=None, gt=0)
    stackscript_data: dict[str, str] = Field(default_factory=dict, repr=False)
    user_data: str | None = Field(default=None, repr=False)  # cloud-init user data (Metadata service): a template
    user_data_file: str | None = None  # the same, from a file read at load (relative to the policy file)
    nodebalancer: NodeBalancerRef | None = None
    scale_in: ScaleInOrder = "oldest"  # after the unhealthy ones
    boot_timeout: PositiveDuration = 300.0
    delete_timeout: PositiveDuration = 300.0
    drain_time: Duration = 30.0  # a node stays in drain mode this long before it is removed
    poll_interval: PositiveDuration = 5.0
    request_timeout: PositiveDuration = 30.0

    _user_data_text: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _secret(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        names = ("token", "token_env", "token_file")
        try:
            if all(data.get(name) is None for name in names):
                raise ValueError("required: token_file (a file holding a Linode personal access token), "
                                 "token_env or token")
            return resolve_secret(data, "token", (info.context or {}).get("base"))
        except ValueError as exc:  # reported at ``token``, with the other problems of the section
            return {**{k: v for k, v in data.items() if k not in names}, "token": _SecretProblem(str(exc))}

    @field_validator("token", mode="before")
    @classmethod
    def _token_problem(cls, value: Any) -> Any:
        if isinstance(value, _SecretProblem):
            raise ValueError(value.message)
        return value

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if not text.strip():
            raise ValueError("is empty")
        if any(c.isspace() for c in text):
            raise ValueError("must be one word (a Linode personal access token)")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL like {DEFAULT_API_URL}")
        if not re.fullmatch(r"/v4(beta)?", parts.path.rstrip("/")):
            raise ValueError(f"must end with the API version, /v4 or /v4beta (like {DEFAULT_API_URL})")
        return value.rstrip("/")

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        problem = None if value is None else tag_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            problem = tag_problem(tag)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("label_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise ValueError("may use letters, digits, '-', '_' and '.', starting with a letter or digit "
                             "(it starts Linode labels)")
        if any(twice in value for twice in ("--", "__", "..")):
            raise ValueError("must not contain '--', '__' or '..' (Linode labels cannot)")
        return value

    @field_validator("authorized_keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for i, key in enumerate(value):
            if not key.startswith(SSH_KEY_TYPES):
                raise ValueError(f"[{i}] is not a public SSH key (ssh-ed25519 AAAA..., ssh-rsa AAAA...): give the "
                                 "key itself, not a path")
        return [key.strip() for key in value]

    @field_validator("stackscript_data")
    @classmethod
    def _udf(cls, value: dict[str, str]) -> dict[str, str]:
        if len(json.dumps(value)) > MAX_STACKSCRIPT_DATA:
            raise ValueError(f"is longer than {MAX_STACKSCRIPT_DATA} characters as JSON")
        return value

    @field_validator("user_data")
    @classmethod
    def _user_data(cls, value: str | None) -> str | None:
        return None if value is None else userdata.check(value, userdata.LINODE)

    @field_validator("user_data_file")
    @classmethod
    def _file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("user_data") is not None:
            raise ValueError("give either user_data or user_data_file, not both")
        return userdata.checked_file(value, (info.context or {}).get("base"), userdata.LINODE)


    @model_validator(mode="after")
    def _coherent(self) -> LinodeConfig:
        if self.stackscript_data and self.stackscript_id is None:
            raise ValueError("stackscript_data needs stackscript_id")
        if self.stackscript_id is not None and (self.user_data is not None or self.user_data_file is not None):
            raise ValueError("give either a StackScript (stackscript_id) or cloud-init user data, not both")
        if self.nodebalancer is not None and not self.private_ip:
            raise ValueError("nodebalancer needs private_ip: true (NodeBalancer backends are private addresses)")
        if self.tag is not None and self.tag in self.tags:
            raise ValueError(f"tags: {self.tag!r} is already the group's tag")
        if self.poll_interval > self.boot_timeout:
            raise ValueError("poll_interval must not be longer than boot_timeout")
        self._user_data_text = userdata.template_of(self.user_data, self.user_data_file)
        return self

    @property
    def user_data_text(self) -> str | None:
        """The cloud-init user data template (``user_data``, or the text of ``user_data_file`` as read at load):
        ``{group}``, ``{name}`` (the Linode's label) and ``{index}`` are filled per Linode
        (``common.userdata``)."""
        return self._user_data_text

    def user_data_report(self) -> userdata.Report | None:
        """What ``check`` prints about the user data (format, size against Linode's limit, warnings)."""
        return userdata.report(self._user_data_text, self.user_data_file, userdata.LINODE)

    def group_tag(self, group: str) -> str:
        """The tag that makes a Linode a member of ``group``: ``tag``, or ``autoscale-<group>``."""
        return self.tag if self.tag is not None else f"autoscale-{group}"

    def describe(self) -> str:
        """Where the provider talks to, for logs and ``repr`` (never the token)."""
        return f"{self.api_url} region {self.region}"

