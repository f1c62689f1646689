"""Request authentication: bearer token or HTTP basic, compared in constant time. Used by ``api.app``."""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.requests import Request

from alertscaler.config import AuthConfig
from alertscaler.model.errors import AuthError


def check(request: Request, auth: AuthConfig, write: bool) -> None:
    """Raise AuthError unless the request carries valid credentials (or this route needs none)."""
    if not auth.enabled or (not write and not auth.protect_reads):
        return
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and auth.bearer_token is not None:
        if hmac.compare_digest(value.strip().encode(), auth.bearer_token.get_secret_value().encode()):
            return
        raise AuthError("invalid bearer token")
    if scheme == "basic" and auth.basic is not None:
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError("malformed basic credentials") from None
        ok_user = hmac.compare_digest(user.encode(), auth.basic.username.encode())
        ok_pass = hmac.compare_digest(password.encode(), auth.basic.password.get_secret_value().encode())
        if ok_user and ok_pass:
            return
        raise AuthError("invalid username or password")
    wanted = " or ".join(s for s, on in (("Bearer", auth.bearer_token), ("Basic", auth.basic)) if on)
    raise AuthError(f"authentication required ({wanted})")


def challenge(auth: AuthConfig) -> str:
    return 'Basic realm="alertscaler"' if auth.basic is not None else 'Bearer realm="alertscaler"'
