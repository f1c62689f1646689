"""``openstack_auth``: the ``auth`` section (validation, what it hands openstacksdk) and ``translate`` (SDK errors
to Temporary / Permanent provider errors), table-driven. No network."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import pydantic
import pytest
import requests

pytest.importorskip("openstack")

from keystoneauth1 import exceptions as ks
from openstack import exceptions as os_exc

from alertscaler.model.errors import PermanentProviderError, TemporaryProviderError
from alertscaler.providers.common.retries import DEFAULT_DELAY
from alertscaler.providers.openstack.auth import OpenStackAuth, translate

SECRET = "s3cret-Value-9f"
KEYSTONE = "http://127.0.0.1:5000/v3"


# -- OpenStackAuth ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "kind", "describe"), [
    ({}, "password", "OS_* environment"),
    ({"cloud": "mycloud"}, "password", "clouds.yaml cloud 'mycloud'"),
    ({"auth_url": KEYSTONE, "application_credential_id": "ac", "application_credential_secret": SECRET},
     "v3applicationcredential", f"v3applicationcredential at {KEYSTONE}"),
    ({"auth_url": KEYSTONE, "username": "demo", "password": SECRET, "project_name": "demo"},
     "password", f"password at {KEYSTONE}"),
    ({"auth_url": KEYSTONE, "token": SECRET}, "token", f"token at {KEYSTONE}"),
    ({"auth_type": "none", "endpoint_override": {"compute": "http://127.0.0.1:8774/v2.1"}}, "none",
     "no auth (endpoint_override)"),
], ids=["environment", "clouds-yaml", "application-credential", "password", "token", "noauth"])
def test_valid_auth(data: dict[str, Any], kind: str, describe: str) -> None:
    auth = OpenStackAuth.model_validate(data)
    assert auth.kind == kind
    assert auth.describe() == describe
    assert SECRET not in repr(auth) and SECRET not in str(auth) and SECRET not in auth.describe()


@pytest.mark.parametrize(("data", "message"), [
    ({"cloud": "x", "auth_url": KEYSTONE}, "either cloud"),
    ({"auth_type": "none"}, "auth_type none needs endpoint_override"),
    ({"auth_url": KEYSTONE, "application_credential_id": "ac"}, "need application_credential_id and "
                                                                 "application_credential_secret"),
    ({"auth_url": KEYSTONE, "username": "demo"}, "password auth needs username and password"),
    ({"auth_url": KEYSTONE, "auth_type": "token"}, "token auth needs token"),
    ({"application_credential_id": "ac", "application_credential_secret": SECRET}, "without auth_url"),
    ({"auth_url": KEYSTONE, "password": SECRET, "password_env": "X"}, "give only one of password, password_env"),
    ({"auth_url": KEYSTONE, "username": "u", "password_env": "ALERTSCALER_TEST_UNSET_VAR"},
     "environment variable ALERTSCALER_TEST_UNSET_VAR is not set"),
    ({"auth_type": "kerberos"}, "auth_type"),
    ({"auth_url": KEYSTONE, "passwd": SECRET}, "Extra inputs are not permitted"),
], ids=["cloud-and-auth-url", "noauth-without-endpoint", "app-credential-without-secret", "password-missing",
        "token-missing", "credentials-without-auth-url", "secret-twice", "secret-env-unset", "unknown-auth-type",
        "unknown-key"])
def test_invalid_auth(data: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        OpenStackAuth.model_validate(data)
    assert message in str(info.value)
    assert SECRET not in str(info.value)


def test_secret_from_env_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("ALERTSCALER_TEST_AC_SECRET", SECRET)
    auth = OpenStackAuth.model_validate({"auth_url": KEYSTONE, "application_credential_id": "ac",
                                         "application_credential_secret_env": "ALERTSCALER_TEST_AC_SECRET"})
    assert auth.connect_kwargs()["auth"]["application_credential_secret"] == SECRET
    (tmp_path / "pw").write_text(SECRET + "\n")
    auth = OpenStackAuth.model_validate({"auth_url": KEYSTONE, "username": "u", "password_file": "pw"},
                                        context={"base": tmp_path})
    assert auth.connect_kwargs()["auth"]["password"] == SECRET
    assert SECRET not in repr(auth)


@pytest.mark.parametrize(("data", "expected"), [
    ({}, {"load_yaml_config": False, "load_envvars": True}),
    ({"cloud": "c"}, {"cloud": "c", "load_envvars": True}),  # OS_CLIENT_CONFIG_FILE is read only with envvars
    ({"auth_type": "none", "endpoint_override": {"compute": "http://h/v2.1", "block-storage": "http://b"}},
     {"auth_type": "none", "compute_endpoint_override": "http://h/v2.1",
      "block_storage_endpoint_override": "http://b", "load_yaml_config": False, "load_envvars": False}),
    ({"auth_url": KEYSTONE, "application_credential_id": "ac", "application_credential_secret": SECRET,
      "region_name": "R1", "interface": "internal"},
     {"auth_type": "v3applicationcredential", "region_name": "R1", "interface": "internal",
      "auth": {"auth_url": KEYSTONE, "application_credential_id": "ac", "application_credential_secret": SECRET}}),
    ({"auth_url": KEYSTONE, "username": "u", "password": SECRET, "project_name": "p"},
     {"auth_type": "password", "auth": {"auth_url": KEYSTONE, "username": "u", "password": SECRET,
                                        "user_domain_name": "Default", "project_name": "p",
                                        "project_domain_name": "Default"}}),
], ids=["environment", "clouds-yaml", "noauth", "application-credential", "password"])
def test_connect_kwargs(data: dict[str, Any], expected: dict[str, Any]) -> None:
    kwargs = OpenStackAuth.model_validate(data).connect_kwargs()
    assert {k: kwargs[k] for k in expected} == expected
    assert kwargs["api_timeout"] == 30.0 and kwargs["verify"] is True


# -- translate ----------------------------------------------------------------------------------------------


def _response(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _http(status: int, details: str, headers: dict[str, str] | None = None) -> os_exc.HttpException:
    return os_exc.HttpException(message=f"{status} error", response=_response(status, headers), details=details)


def _in_a_minute() -> str:
    return email.utils.formatdate(time.time() + 60, usegmt=True)


# (id, make the exception, expected error class, text in its message, expected delay)
CASES: list[tuple[str, Callable[[], BaseException], type[Exception], str, float | None]] = [
    ("503-retry-after", lambda: _http(503, "Nova is busy", {"Retry-After": "7"}), TemporaryProviderError,
     "HTTP 503: Nova is busy", 7.0),
    ("429-retry-after-date", lambda: _http(429, "slow down", {"Retry-After": _in_a_minute()}),
     TemporaryProviderError, "HTTP 429: slow down", 60.0),
    ("500", lambda: _http(500, "boom"), TemporaryProviderError, "HTTP 500: boom", DEFAULT_DELAY),
    ("409", lambda: _http(409, "Cannot 'delete' instance while it is in task_state rebuilding"),
     TemporaryProviderError, "HTTP 409", DEFAULT_DELAY),
    ("400-nova-message", lambda: _http(400, "Invalid flavorRef provided."), PermanentProviderError,
     "HTTP 400: Invalid flavorRef provided.", None),
    ("403-quota", lambda: _http(403, "Quota exceeded for instances"), PermanentProviderError,
     "HTTP 403: Quota exceeded", None),
    ("401-keystone", lambda: ks.Unauthorized("The request you have made requires authentication."),
     PermanentProviderError, "HTTP 401", None),
    ("keystone-503", lambda: ks.ServiceUnavailable("down", response=_response(503, {"Retry-After": "3"})),
     TemporaryProviderError, "HTTP 503", 3.0),
    ("connect-failure", lambda: ks.ConnectFailure("Unable to establish connection"), TemporaryProviderError,
     "ConnectFailure", DEFAULT_DELAY),
    ("discovery-failure", lambda: ks.DiscoveryFailure("Could not find versioned identity endpoints"),
     TemporaryProviderError, "DiscoveryFailure", DEFAULT_DELAY),
    ("sdk-timeout", lambda: os_exc.ResourceTimeout("Timeout waiting for the server"), TemporaryProviderError,
     "ResourceTimeout", DEFAULT_DELAY),
    ("authorization-failure", lambda: ks.AuthorizationFailure("bad plugin"), PermanentProviderError,
     "AuthorizationFailure", None),
    ("missing-options", lambda: ks.MissingRequiredOptions([]), PermanentProviderError, "MissingRequiredOptions",
     None),
    ("config", lambda: os_exc.ConfigException("Cloud nope was not found."), PermanentProviderError,
     "Cloud nope was not found.", None),
    ("find-not-found", lambda: os_exc.NotFoundException("No Flavor found for m1.huge"), PermanentProviderError,
     "NotFoundException: No Flavor found for m1.huge", None),
    ("duplicate-name", lambda: os_exc.DuplicateResource("More than one Image exists with the name 'cirros'."),
     PermanentProviderError, "DuplicateResource", None),
    ("endpoint-not-found", lambda: ks.EndpointNotFound("Could not find requested endpoint"), PermanentProviderError,
     "EndpointNotFound", None),
    ("other-sdk-error", lambda: os_exc.SDKException("weird answer"), TemporaryProviderError,
     "SDKException: weird answer", DEFAULT_DELAY),
    ("bug", lambda: ValueError("oops"), PermanentProviderError, "unexpected ValueError: oops", None),
]


@pytest.mark.parametrize(("make", "kind", "text", "delay"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_translate(make: Callable[[], BaseException], kind: type[Exception], text: str, delay: float | None) -> None:
    exc = make()
    with pytest.raises(kind) as info:
        translate(exc, "web: creating server web-1-1")
    error = info.value
    assert type(error) is kind
    assert str(error).startswith("web: creating server web-1-1: ")
    assert text in str(error)
    assert error.__cause__ is exc
    if delay is not None:
        assert isinstance(error, TemporaryProviderError) and error.delay is not None
        assert error.delay == pytest.approx(delay, abs=2)


@pytest.mark.parametrize("error", [TemporaryProviderError("busy", delay=9), PermanentProviderError("no")],
                         ids=["temporary", "permanent"])
def test_translate_passes_provider_errors_through(error: Exception) -> None:
    with pytest.raises(type(error)) as info:
        translate(error, "doing")
    assert info.value is error
