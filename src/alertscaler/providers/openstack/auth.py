"""OpenStack credentials and connections shared by the ``openstack-heat`` and ``openstack-nova`` providers.

Owns: the ``auth`` section of an OpenStack group (``OpenStackAuth``), building ONE openstacksdk
``Connection`` per provider from it (keystoneauth caches the token and refreshes it before it expires, so
no token is fetched per alert), and translating openstacksdk / keystoneauth errors into
``TemporaryProviderError`` / ``PermanentProviderError`` — once, here (HTTP statuses through the providers'
one classifier, ``common.retries.classify``).

Three ways to authenticate, as OpenStack users have them:

- ``cloud: NAME`` — an entry of ``clouds.yaml`` (``OS_CLIENT_CONFIG_FILE`` or the usual places);
- nothing at all — the ``OS_*`` environment variables (``OS_AUTH_URL``, ``OS_APPLICATION_CREDENTIAL_ID``...);
- explicit fields: ``auth_url`` with ``application_credential_id`` + ``application_credential_secret``
  (preferred) or ``username`` + ``password`` + project. Secrets accept ``*_env`` / ``*_file``.

``auth_type: none`` with ``endpoint_override`` talks to an endpoint without Keystone (a standalone Heat
in ``noauth`` mode, a test stand-in). Called by the two OpenStack provider modules only; the SDK is
imported lazily so that alertscaler runs without the ``openstack`` extra.
"""

from __future__ import annotations

from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from alertscaler.model.durations import Duration
from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.providers.common.retries import DEFAULT_DELAY, RetryPolicy, classify
from alertscaler.secrets import resolve_secret

#: HTTP statuses worth retrying: the cloud is busy or briefly broken, not refusing the request. A
#: ``Retry-After: 0`` means the default delay.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
RETRY_POLICY = RetryPolicy(RETRY_STATUSES, zero_is_no_hint=True)


class OpenStackAuth(BaseModel):
    """How to reach the cloud. Leave everything unset to use the ``OS_*`` environment."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    cloud: str | None = None
    auth_type: Literal["password", "v3applicationcredential", "token", "none"] | None = None
    auth_url: str | None = None
    application_credential_id: str | None = None
    application_credential_secret: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    project_name: str | None = None
    project_id: str | None = None
    user_domain_name: str | None = None
    project_domain_name: str | None = None
    region_name: str | None = None
    interface: Literal["public", "internal", "admin"] | None = None
    #: service type -> URL, e.g. ``{orchestration: http://127.0.0.1:8004/v1/admin}``
    endpoint_override: dict[str, str] = Field(default_factory=dict)
    verify: bool | str = True
    timeout: Duration = 30.0

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any, info: Any) -> Any:
        base = (info.context or {}).get("base")
        for name in ("application_credential_secret", "password", "token"):
            data = resolve_secret(data, name, base)
        return data

    @model_validator(mode="after")
    def _coherent(self) -> OpenStackAuth:
        explicit = self.auth_url is not None
        if self.cloud is not None and explicit:
            raise ValueError("give either cloud (a clouds.yaml entry) or auth_url, not both")
        if self.auth_type == "none":
            if not self.endpoint_override:
                raise ValueError("auth_type none needs endpoint_override (service type -> URL)")
            return self
        if explicit:
            kind = self.kind
            if kind == "v3applicationcredential" and (
                self.application_credential_id is None or self.application_credential_secret is None
            ):
                raise ValueError("application credentials need application_credential_id and "
                                 "application_credential_secret (or application_credential_secret_env/_file)")
            if kind == "password" and (self.username is None or self.password is None):
                raise ValueError("password auth needs username and password (or password_env / password_file)")
            if kind == "token" and self.token is None:
                raise ValueError("token auth needs token (or token_env / token_file)")
        elif self.cloud is None and (self.application_credential_id or self.username or self.password):
            raise ValueError("credentials given without auth_url (or set cloud: to use clouds.yaml)")
        return self

    @property
    def kind(self) -> str:
        """The keystoneauth plugin explicit fields select."""
        if self.auth_type is not None:
            return self.auth_type
        if self.application_credential_id is not None:
            return "v3applicationcredential"
        if self.token is not None:
            return "token"
        return "password"

    def describe(self) -> str:
        """Where credentials come from, for logs and ``status`` (never a secret)."""
        if self.auth_type == "none":
            return "no auth (endpoint_override)"
        if self.cloud is not None:
            return f"clouds.yaml cloud {self.cloud!r}"
        if self.auth_url is not None:
            return f"{self.kind} at {self.auth_url}"
        return "OS_* environment"

    def connect_kwargs(self) -> dict[str, Any]:
        """Arguments for ``openstack.connect`` (secrets revealed here and only here)."""
        kwargs: dict[str, Any] = {"verify": self.verify, "api_timeout": self.timeout}
        if self.region_name:
            kwargs["region_name"] = self.region_name
        if self.interface:
            kwargs["interface"] = self.interface
        for service, url in self.endpoint_override.items():
            kwargs[f"{service.replace('-', '_')}_endpoint_override"] = url
        if self.auth_type == "none":
            return {**kwargs, "auth_type": "none", "load_yaml_config": False, "load_envvars": False}
        if self.cloud is not None:
            # load_envvars: openstacksdk reads OS_CLIENT_CONFIG_FILE / OS_CLIENT_SECURE_FILE only with it (the
            # named cloud's settings are not mixed with other OS_* variables: those form a cloud of their own)
            return {**kwargs, "cloud": self.cloud, "load_envvars": True}
        if self.auth_url is None:
            return {**kwargs, "load_yaml_config": False, "load_envvars": True}
        auth: dict[str, Any] = {"auth_url": self.auth_url}
        secret = {"v3applicationcredential": self.application_credential_secret,
                  "password": self.password, "token": self.token}[self.kind]
        if self.kind == "v3applicationcredential":
            auth["application_credential_id"] = self.application_credential_id
            auth["application_credential_secret"] = _reveal(secret)
        elif self.kind == "token":
            auth["token"] = _reveal(secret)
        else:
            auth.update(username=self.username, password=_reveal(secret),
                        user_domain_name=self.user_domain_name or "Default")
        if self.kind != "v3applicationcredential":
            for key in ("project_name", "project_id"):
                if getattr(self, key):
                    auth[key] = getattr(self, key)
            auth["project_domain_name"] = self.project_domain_name or "Default"
        return {**kwargs, "auth_type": self.kind, "auth": auth, "load_yaml_config": False, "load_envvars": False}


def _reveal(secret: SecretStr | None) -> str:
    return "" if secret is None else secret.get_secret_value()


def connect(auth: OpenStackAuth, app_name: str = "alertscaler") -> Any:
    """One ``openstack.connection.Connection``; errors come out translated."""
    try:
        import openstack
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise PermanentProviderError("the openstack providers need openstacksdk: "
                                     "pip install 'alertscaler[openstack]'") from exc
    try:
        return openstack.connect(app_name=app_name, **auth.connect_kwargs())
    except Exception as exc:
        translate(exc, "connecting to OpenStack")


def translate(exc: BaseException, doing: str) -> NoReturn:
    """Raise the alertscaler error for an openstacksdk / keystoneauth exception (``raise ... from exc``)."""
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as os_exc

    if isinstance(exc, TemporaryProviderError | PermanentProviderError):
        raise exc
    status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
    detail = _detail(exc)
    if isinstance(status, int):
        raise classify(status, f"{doing}: HTTP {status}: {detail}", RETRY_POLICY, retry_after=_retry_after(exc)) \
            from exc
    if isinstance(exc, ks.ConnectionError | ks.DiscoveryFailure | os_exc.ResourceTimeout | TimeoutError):
        raise TemporaryProviderError(f"{doing}: {type(exc).__name__}: {detail}", delay=DEFAULT_DELAY) from exc
    if isinstance(exc, ks.AuthorizationFailure | ks.MissingRequiredOptions | os_exc.ConfigException
                  | ks.NoMatchingPlugin | ks.EndpointNotFound | os_exc.EndpointNotFound
                  | os_exc.DuplicateResource | os_exc.InvalidRequest | os_exc.NotSupported
                  | os_exc.NotFoundException):  # find_*(ignore_missing=False) raises it without a response
        raise PermanentProviderError(f"{doing}: {type(exc).__name__}: {detail}") from exc
    if isinstance(exc, os_exc.SDKException | ks.ClientException):
        raise TemporaryProviderError(f"{doing}: {type(exc).__name__}: {detail}", delay=DEFAULT_DELAY) from exc
    raise PermanentProviderError(f"{doing}: unexpected {type(exc).__name__}: {detail}") from exc


def _detail(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    text = str(details) if details else str(exc)
    return " ".join(text.split())[:500] or type(exc).__name__


def _retry_after(exc: BaseException) -> str | None:
    """The ``Retry-After`` header of the failed response, when there is one."""
    response = getattr(exc, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    return str(value) if value else None
