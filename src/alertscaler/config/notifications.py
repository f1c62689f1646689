"""The policy file's ``notification_methods`` section (like Monasca's notification methods): name → how an alarm
transition is sent. Part of ``config``; read by ``act.notifying`` (through ``PolicyFile.notification_methods``);
an alarm's actions name a method with ``notify:NAME`` (``config.alarms``), checked by ``notification_references``.

.. code-block:: yaml

    notification_methods:
      ops-hook:
        type: webhook
        url: https://hooks.example.com/alarms
        shape: monasca            # or aodh: the body Aodh's REST notifier sends
        secret_env: HOOK_SECRET   # or secret_file / secret: signs each request (X-Alertscaler-Signature)
        timeout: 5s
        retries: 5                # attempts after the first (0..20)
        backoff: 30s              # the first wait; doubled after each failure, up to max_backoff, with jitter
        max_backoff: 10m
      ops-mail:
        type: email
        to: [ops@example.com]
        from: alertscaler@example.com
        host: smtp.example.com
        port: 587                 # default 25, 465 with security: ssl, 587 with starttls
        security: starttls        # none | starttls | ssl
        username: alertscaler
        password_file: /etc/alertscaler/smtp-password
      audit:
        type: log
        level: warning

Secrets (``secret``, ``password``) are read from the environment or a file (``alertscaler.secrets``) and held as
``SecretStr``: never in a log line, an error, the API or the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from alertscaler.config.sections import ConfigModel
from alertscaler.model.durations import PositiveDuration, format_duration
from alertscaler.model.errors import Problem
from alertscaler.model.notifications import MethodKind, Retry, Shape
from alertscaler.model.urls import http_url
from alertscaler.secrets import resolve_secret

MIN_SECRET: Final = 16
MAX_RETRIES: Final = 20
_NAME: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ADDRESS: Final = re.compile(r"^[^@\s<>,;\"']+@[^@\s<>,;\"']+$")
_ACTION_KEYS: Final = ("alarm_actions", "ok_actions", "insufficient_data_actions", "undetermined_actions")


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value[:80]!r} is not an email address like ops@example.com")
    return value


Address = Annotated[str, AfterValidator(_address)]


def _readable(value: str | None, info: ValidationInfo) -> str | None:
    """A ``ca_file``: made absolute (under the policy file's directory) and readable now."""
    if value is None:
        return None
    path = Path(value).expanduser()
    base = (info.context or {}).get("base")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    try:
        path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    return str(path)


class _Retrying(ConfigModel):
    timeout: PositiveDuration = 5.0
    retries: Annotated[int, Field(ge=0, le=MAX_RETRIES)] = 5
    backoff: PositiveDuration = 30.0
    max_backoff: PositiveDuration = 600.0

    @field_validator("ca_file", check_fields=False)
    @classmethod
    def _ca_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _readable(value, info)

    @model_validator(mode="after")
    def _backoffs(self) -> _Retrying:
        if self.max_backoff < self.backoff:
            raise ValueError(f"max_backoff ({format_duration(self.max_backoff)}) is shorter than backoff "
                             f"({format_duration(self.backoff)})")
        return self

    def retry(self) -> Retry:
        return Retry(attempts=self.retries + 1, backoff=self.backoff, max_backoff=self.max_backoff)


class WebhookMethod(_Retrying):
    """``type: webhook``: POST the transition as JSON, Monasca's webhook body or Aodh's REST notifier's."""

    type: Literal["webhook"]
    url: str
    shape: Shape = Shape.MONASCA
    secret: SecretStr | None = None
    ca_file: str | None = None  # PEM CA bundle to verify an https receiver with (default: the system's)

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        return resolve_secret(data, "secret", (info.context or {}).get("base"))

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value, "https://hooks.example.com/alarms")

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET:
            raise ValueError(f"too short: use at least {MIN_SECRET} characters (e.g. head -c 32 /dev/urandom | "
                             "base64 > FILE)")
        return value

    @property
    def kind(self) -> MethodKind:
        return MethodKind.WEBHOOK


class EmailMethod(_Retrying):
    """``type: email``: a plain-text email through an SMTP server."""

    type: Literal["email"]
    to: Annotated[list[Address], Field(min_length=1)]
    from_: Address = Field(alias="from")
    host: Annotated[str, Field(min_length=1)] = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    timeout: PositiveDuration = 10.0
    ca_file: str | None = None  # PEM CA bundle to verify the server's certificate with (default: the system's)

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        data = resolve_secret(data, "password", (info.context or {}).get("base"))
        if isinstance(data, dict) and isinstance(data.get("to"), str):
            data = {**data, "to": [data["to"]]}  # one address (Monasca's address) or a list
        return data

    @model_validator(mode="after")
    def _login(self) -> EmailMethod:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (password_env / password_file / password)")
        if self.password is not None and self.security == "none" and not _loopback(self.host):
            raise ValueError(f"the password would cross the network in clear to {self.host}: set security: "
                             "starttls or ssl")
        return self

    @property
    def smtp_port(self) -> int:
        return self.port or {"none": 25, "starttls": 587, "ssl": 465}[self.security]

    @property
    def kind(self) -> MethodKind:
        return MethodKind.EMAIL


class LogMethod(ConfigModel):
    """``type: log``: a line in alertscaler's log (delivered at once, never retried)."""

    type: Literal["log"]
    level: Literal["info", "warning", "error"] = "warning"

    def retry(self) -> Retry:
        return Retry(attempts=1)

    @property
    def timeout(self) -> float:
        return 1.0

    @property
    def kind(self) -> MethodKind:
        return MethodKind.LOG


NotificationMethod = Annotated[WebhookMethod | EmailMethod | LogMethod, Field(discriminator="type")]
_MODELS: Final[dict[str, type[WebhookMethod] | type[EmailMethod] | type[LogMethod]]] = {
    "webhook": WebhookMethod, "email": EmailMethod, "log": LogMethod}

DEFAULT_URL_METHOD: Final = WebhookMethod(type="webhook", url="http://url.action.invalid/")
"""How a URL action (``http(s)://`` in an alarm's actions, Aodh style) is sent: no signature, the defaults'
timeout and retries; the shape follows the alarm's style."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_notification_methods(raw: Any, problems_of: Callable[[ValidationError, str], list[Problem]],
                              context: Mapping[str, Any]) -> tuple[dict[str, NotificationMethod], list[Problem]]:
    """The ``notification_methods`` section, each method validated on its own (every problem of every method, with
    its path); ``problems_of`` turns pydantic's errors into problems (``config.loading``)."""
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [Problem("notification_methods", "must be a mapping of method name to method (type: webhook, "
                                                    "email or log, and its settings)")]
    methods: dict[str, NotificationMethod] = {}
    problems: list[Problem] = []
    for name, body in raw.items():
        where = f"notification_methods.{name}"
        if not _NAME.match(str(name)):
            problems.append(Problem(where, "method names may use letters, digits, _, . and - only (at most 64)"))
            continue
        kind = body.get("type") if isinstance(body, dict) else None
        if not isinstance(body, dict) or kind is None:
            problems.append(Problem(f"{where}.type", "required: webhook, email or log"))
            continue
        model = _MODELS.get(str(kind))
        if model is None:
            problems.append(Problem(f"{where}.type", f"must be webhook, email or log, got {str(kind)[:40]!r}"))
            continue
        try:
            methods[str(name)] = model.model_validate(body, context=dict(context))
        except ValidationError as exc:
            problems.extend(problems_of(exc, where))
    return methods, problems


def notification_references(raw_alarms: Any, raw_methods: Any) -> list[Problem]:
    """Every ``notify:NAME`` in an alarm's actions must name a method of ``notification_methods``. Read from the
    raw data, so that a reference is checked even when its alarm or the method has other problems."""
    names = sorted(str(n) for n in raw_methods) if isinstance(raw_methods, dict) else []
    known = ", ".join(names) or "none defined"
    out: list[Problem] = []
    for alarm, body in (raw_alarms.items() if isinstance(raw_alarms, dict) else ()):
        for key in _ACTION_KEYS:
            values = body.get(key) if isinstance(body, dict) else None
            for i, text in enumerate(values if isinstance(values, list) else []):
                if not isinstance(text, str) or not text.strip().lower().startswith("notify:"):
                    continue
                method = text.strip()[len("notify:"):].removeprefix("//")
                if _NAME.match(method) and method not in names:
                    out.append(Problem(f"alarms.{alarm}.{key}[{i}]",
                                       f"no notification method {method!r} (notification_methods: {known})"))
    return out
