"""The policy file's service-wide sections as typed models: ``server`` (listen, auth), ``store`` (URL or path,
sync mode, retention), ``prometheus`` (queries, rule sync) and ``actions`` (retries). Part of ``config``."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alertscaler.model.durations import Duration, format_duration
from alertscaler.model.urls import http_url
from alertscaler.prometheus.combining import DEFAULT_PER_REQUEST, MAX_PER_REQUEST
from alertscaler.secrets import resolve_secret

DEFAULT_MAX_BODY = 1024 * 1024


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasicAuth(ConfigModel):
    username: Annotated[str, Field(min_length=1)]
    password: SecretStr

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        return resolve_secret(data, "password", (info.context or {}).get("base"))


#: the problem reported at ``server.auth`` when no authentication is configured (absent, empty or null)
MISSING_AUTH = ("no authentication configured: set credentials (bearer_token_file / bearer_token_env / "
                "bearer_token, or basic: {username, password_file}), or insecure_no_auth: true to run without "
                "authentication explicitly")


class AuthConfig(ConfigModel):
    """Who may call the API. State-changing routes always require auth; reads too if ``protect_reads``."""

    bearer_token: SecretStr | None = None
    basic: BasicAuth | None = None
    protect_reads: bool = False
    insecure_no_auth: bool = False

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        return resolve_secret(data, "bearer_token", (info.context or {}).get("base"))

    @model_validator(mode="after")
    def _something(self) -> AuthConfig:
        if self.bearer_token is None and self.basic is None and not self.insecure_no_auth:
            raise ValueError(MISSING_AUTH)
        if self.insecure_no_auth and (self.bearer_token is not None or self.basic is not None):
            raise ValueError("insecure_no_auth: true contradicts the credentials set here (bearer_token / basic): "
                             "remove one or the other")
        if self.insecure_no_auth and self.protect_reads:
            raise ValueError("protect_reads: true needs credentials, and insecure_no_auth: true says there are none")
        if self.bearer_token is not None and len(self.bearer_token.get_secret_value()) < 8:
            raise ValueError("bearer_token: too short (use at least 8 characters)")
        return self

    @property
    def enabled(self) -> bool:
        return self.bearer_token is not None or self.basic is not None


def _no_password() -> bytes:
    return b""  # an encrypted key is refused (OpenSSL would otherwise prompt on the terminal)


class TlsConfig(ConfigModel):
    """``server.tls``: serve HTTPS with this PEM certificate (chain) and its unencrypted PEM key. Relative paths
    are under the policy file's directory. Checked at load (both readable, and a matching pair); re-read on
    SIGHUP without a restart (``api.tls``)."""

    cert_file: str
    key_file: str

    @field_validator("cert_file", "key_file")
    @classmethod
    def _readable(cls, value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base")
        path = Path(value).expanduser()
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror}") from None
        return str(path)

    @model_validator(mode="after")
    def _pair(self) -> TlsConfig:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.cert_file, self.key_file, _no_password)
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ValueError(f"{self.cert_file} and {self.key_file} are not a PEM certificate and its unencrypted "
                             f"key: {reason}") from None
        return self


class ServerConfig(ConfigModel):
    """``server``. ``auth`` has no default: a policy file either sets credentials or says
    ``insecure_no_auth: true`` (the loader reports its absence at ``server.auth`` with both ways to fix it)."""

    listen: str = "127.0.0.1:8080"
    auth: AuthConfig
    max_body_bytes: Annotated[int, Field(gt=0)] = DEFAULT_MAX_BODY
    reevaluate_interval: Duration = 5.0
    alert_stale_after: Duration = 24 * 3600.0
    state_dir: str = "./alertscaler-state"
    public_url: str | None = None
    tls: TlsConfig | None = None  # HTTPS on the listener; None: plain HTTP

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"must be HOST:PORT like 127.0.0.1:8080, got {value!r}")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value, "https://alertscaler.example.com")

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @property
    def loopback_only(self) -> bool:
        """True when ``listen`` accepts connections from this machine only (127.0.0.0/8, ::1, localhost)."""
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name (or 0.0.0.0 / ::): reachable from elsewhere

    def insecure_warning(self) -> str | None:
        """What ``serve`` logs at every start and ``check`` prints when the API runs without authentication;
        None when it has credentials. ``loopback_only`` tells how loud it must be."""
        if self.auth.enabled:
            return None
        who = ("any process on this machine" if self.loopback_only
               else f"anyone who can reach {self.listen} (it listens beyond loopback)")
        return (f"server.auth.insecure_no_auth is true: the API has no authentication, so {who} can scale, "
                "heal, pause and resume groups and post fake alerts; set bearer_token_file or basic instead")

    @property
    def url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


DEFAULT_RETENTION = 90 * 86400.0
DEFAULT_LEASE = 30.0
DEFAULT_HEARTBEAT = 10.0


class StoreConfig(ConfigModel):
    url: str | None = None
    path: str | None = None
    sqlite_synchronous: Literal["full", "normal"] = "full"
    #: finished history (notifications, decisions, actions, heal records) older than this is deleted; 0: kept
    retention: Duration = DEFAULT_RETENTION
    #: replicas sharing the store: a replica's running actions and groups stay its own this long after its last
    #: heartbeat (a peer takes them over only then), and it heart-beats this often
    lease: Duration = DEFAULT_LEASE
    heartbeat_interval: Duration = DEFAULT_HEARTBEAT

    @field_validator("lease")
    @classmethod
    def _lease(cls, value: float) -> float:
        if not 3 <= value <= 3600:
            raise ValueError(f"must be between 3s and 1h, got {format_duration(value)}")
        return value

    @model_validator(mode="after")
    def _heartbeat(self) -> StoreConfig:
        if not 1 <= self.heartbeat_interval <= self.lease / 3:
            raise ValueError(f"heartbeat_interval must be at least 1s and at most a third of lease "
                             f"({format_duration(self.lease)}): two heartbeats may fail before the lease ends, "
                             f"got {format_duration(self.heartbeat_interval)}")
        return self

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: float) -> float:
        if 0 < value < 86400:
            raise ValueError(f"must be 0 (keep everything) or at least 1d, got {format_duration(value)}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        return resolve_secret(data, "url", (info.context or {}).get("base"))

    @model_validator(mode="after")
    def _one(self) -> StoreConfig:
        if self.url and self.path:
            raise ValueError("give url or path, not both")
        if self.url and not self.url.startswith(("sqlite", "postgresql")):
            raise ValueError("url: must start with sqlite:// or postgresql+psycopg://")
        return self


def checked_verify(value: bool | str) -> bool | str:
    """A ``verify`` setting of an outbound client (``prometheus``, ``alertmanager``): true, false, or the path of a
    CA bundle that loads (else serving would crash on it later)."""
    if isinstance(value, str):
        try:
            ssl.create_default_context(cafile=value)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"true, false or the path of a CA bundle (PEM); cannot load {value!r}: {exc}") from None
    return value


class PrometheusConfig(ConfigModel):
    """Where alertscaler reaches Prometheus, for everything it asks of it: target tracking, ``guard`` /
    ``size_by`` checks, the heal freeze's readiness probe, ``backtest`` and rule sync. The token and TLS settings
    apply to all of them (one ``prometheus.client.PrometheusClient.from_config``)."""

    url: str = "http://127.0.0.1:9090"         # unset: queries ask this default, the heal freeze asks nobody
    bearer_token: SecretStr | None = None      # for queries (target tracking); or bearer_token_env / _file
    verify: bool | str = True                  # TLS: system CAs, false, or a CA bundle path
    timeout: Duration = 10.0                   # per query
    # target tracking asks up to this many groups' queries in ONE request (``or``-combined); 1: one each
    queries_per_request: Annotated[int, Field(ge=1, le=MAX_PER_REQUEST)] = DEFAULT_PER_REQUEST
    rules_dir: str | None = None              # where ``rules sync`` installs the generated rule file
    rule_file: str = "alertscaler.rules.yml"  # its name there (prometheus.yml's rule_files must match it)
    sync_rules_on_start: bool = False         # ``serve`` syncs the rules before taking traffic

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        return resolve_secret(data, "bearer_token", (info.context or {}).get("base"))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("verify")
    @classmethod
    def _ca_bundle(cls, value: bool | str) -> bool | str:
        return checked_verify(value)

    @property
    def url_set(self) -> bool:
        """Whether the policy file gives ``url``. Without it the heal freeze does not probe Prometheus (a default
        URL nobody runs would freeze heals for good); queries still use the default."""
        return "url" in self.model_fields_set

    @field_validator("rule_file")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if "/" in value or not value.endswith((".yml", ".yaml")) or value.startswith("."):
            raise ValueError("must be a plain file name ending in .yml, like alertscaler.rules.yml")
        return value


class ActionsConfig(ConfigModel):
    max_attempts: Annotated[int, Field(ge=1)] = 8
    backoff_initial: Duration = 1.0
    backoff_max: Duration = 300.0
