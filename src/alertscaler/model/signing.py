"""Signed URLs as values: what a URL targets, its stored record (never its signature), the signing keys' ids,
and the pure signing and verification (HMAC-SHA256, constant-time comparison). No I/O, no clock, no randomness:
``act.signals`` passes the time, the ids and the key material in.

A signed URL is ``<server>/<path>?expires=<unix seconds>&kid=<key id>&sig=<signature>`` where ``path`` is
``/api/v1/signal/<group>/<policy>/<url id>`` (a group's step policy) or ``/api/v1/inputs/<aodh|monasca>/<url id>``
(an alarm service's notifications, mapped by ``inputs``). The signature is the unpadded base64url HMAC-SHA256,
under the key ``kid`` names, of::

    alertscaler-signed-url-v1 \\n POST \\n <path> \\n <expires> \\n <kid>

so the method, the path (the group, the policy and the URL id with it), the expiry and the key id are all
covered: changing any of them breaks the signature. The host is not signed (a proxy may rewrite it), neither is
the body (as with Heat's pre-signed ``alarm_url``): what the URL may do is fixed by its path.

The key of a key id is derived from the master secret (``derive_key``): HMAC-SHA256(secret, label + key id), so
each key id has its own independent key, and no key is ever stored. ``verify`` checks, in this order: the query
is well formed, the key id is known and not retired, the signature matches (constant time), the URL is on record
and agrees with what was signed, it is not revoked, it has not expired; the first failure raises ``Forbidden``
with its reason code (``REFUSALS``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from alertscaler.model.errors import Forbidden

SIGNED_METHOD = "POST"
VERSION_LABEL = "alertscaler-signed-url-v1"
_KEY_LABEL = b"alertscaler signed-url key\x00"
SIGNAL_PREFIX = "/api/v1/signal"
INPUT_PREFIX = "/api/v1/inputs"

_KID = re.compile(r"[a-z0-9]{1,32}")
_URL_ID = re.compile(r"[a-z0-9]{1,64}")
_SIG = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, base64url without padding
_EXPIRES = re.compile(r"[0-9]{1,12}")

#: every reason code a refusal can have, with what it means
REFUSALS: Mapping[str, str] = {
    "malformed": "the URL lacks expires, kid or sig, or one of them is malformed",
    "unknown_key": "signed with a key this service does not know",
    "key_retired": "signed with a key that was retired (url rotate-key --retire-old)",
    "bad_signature": "the signature does not match (the URL was altered, or the method is not POST)",
    "unknown_url": "no such signed URL on record",
    "mismatch": "the URL does not agree with its record",
    "revoked": "the URL was revoked",
    "expired": "the URL has expired",
}


class UrlTarget(str, Enum):
    """What a signed URL drives: one group's step policy, or an alarm service's notifications (mapped to
    groups and policies by the policy file's ``inputs``)."""

    POLICY = "policy"
    AODH = "aodh"
    MONASCA = "monasca"


def signal_path(target: UrlTarget, url_id: str, group: str | None = None, policy: str | None = None) -> str:
    """The path a URL is signed for (and served at)."""
    if target is UrlTarget.POLICY:
        if not group or not policy:
            raise ValueError("a policy URL needs its group and policy")
        return f"{SIGNAL_PREFIX}/{group}/{policy}/{url_id}"
    return f"{INPUT_PREFIX}/{target.value}/{url_id}"


@dataclass(frozen=True)
class SigningKey:
    """A signing key's id and life; the key itself is derived from the secret, never kept."""

    kid: str
    created_at: datetime
    retired_at: datetime | None = None

    def retired(self, now: datetime) -> bool:
        return self.retired_at is not None and self.retired_at <= now


@dataclass(frozen=True)
class SignedUrl:
    """A signed URL as kept in the store: what it targets, which key signed it, its expiry (whole seconds) and
    revocation. Not its signature: ``sign`` recomputes it from these and the key."""

    id: str
    target: UrlTarget
    group: str | None
    policy: str | None
    key_id: str
    note: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    uses: int = 0

    @property
    def path(self) -> str:
        return signal_path(self.target, self.id, self.group, self.policy)

    @property
    def expires(self) -> int:
        return int(self.expires_at.timestamp())

    def state(self, now: datetime, keys: Sequence[SigningKey] = ()) -> str:
        """``revoked``, ``expired``, ``key_retired`` or ``active``."""
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        if any(k.kid == self.key_id and k.retired(now) for k in keys):
            return "key_retired"
        return "active"

    def describe(self) -> str:
        """What it targets, for messages: ``web/scale_out`` or ``aodh input``."""
        return f"{self.group}/{self.policy}" if self.target is UrlTarget.POLICY else f"{self.target.value} input"


def derive_key(secret: bytes, kid: str) -> bytes:
    """The key of key id ``kid``: HMAC-SHA256(secret, label + kid). Independent per key id; never stored."""
    return hmac.new(secret, _KEY_LABEL + kid.encode(), hashlib.sha256).digest()


def canonical(method: str, path: str, expires: int, kid: str) -> bytes:
    """The text a signature covers (see the module docstring)."""
    return "\n".join((VERSION_LABEL, method.upper(), path, str(expires), kid)).encode()


def sign(key: bytes, method: str, path: str, expires: int, kid: str) -> str:
    """The signature: unpadded base64url of HMAC-SHA256(key, canonical(...))."""
    digest = hmac.new(key, canonical(method, path, expires, kid), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query(expires: int, kid: str, sig: str) -> str:
    return f"expires={expires}&kid={kid}&sig={sig}"


def masked(sig: str) -> str:
    """A signature as listings show it: its first four characters only."""
    return sig[:4] + "…"


def full_url(base: str, url: SignedUrl, sig: str) -> str:
    return f"{base.rstrip('/')}{url.path}?{query(url.expires, url.key_id, sig)}"


@dataclass(frozen=True)
class Presented:
    """What a request to a signed URL carries: its method and path, and the signed query's three values."""

    method: str
    path: str
    expires: int
    kid: str
    sig: str


def presented(method: str, path: str, params: Sequence[tuple[str, str]]) -> Presented:
    """The signed values of a request's query (``params``: every (name, value), repeats included); other
    parameters are ignored (Aodh keeps its own ``aodh-alarm-ssl-verify`` in the URL). Raises ``Forbidden``
    (``malformed``) when one of the three is missing, repeated or not of its form."""
    values: dict[str, str] = {}
    for name, value in params:
        if name in ("expires", "kid", "sig"):
            if name in values:
                raise Forbidden(f"signed URL refused: {name} given twice", "malformed")
            values[name] = value
    missing = [n for n in ("expires", "kid", "sig") if n not in values]
    if missing:
        raise Forbidden(f"signed URL refused: the query lacks {', '.join(missing)} (expected "
                        "?expires=...&kid=...&sig=...)", "malformed")
    for name, pattern in (("expires", _EXPIRES), ("kid", _KID), ("sig", _SIG)):
        if not pattern.fullmatch(values[name]):
            raise Forbidden(f"signed URL refused: {name} is malformed", "malformed")
    return Presented(method.upper(), path, int(values["expires"]), values["kid"], values["sig"])


def valid_url_id(text: str) -> bool:
    return bool(_URL_ID.fullmatch(text))


def verify(p: Presented, key: bytes | None, key_info: SigningKey | None, url: SignedUrl | None,
           now: datetime) -> SignedUrl:
    """The stored URL ``p`` proves, or ``Forbidden`` with the first reason it fails (order in the module
    docstring). ``key_info``/``key``: the key ``p.kid`` names (None: unknown); ``url``: the record of the URL id
    in ``p.path`` (None: none)."""
    if key_info is None or key is None:
        raise Forbidden(f"signed URL refused: {REFUSALS['unknown_key']} ({p.kid})", "unknown_key")
    if key_info.retired(now):
        assert key_info.retired_at is not None
        raise Forbidden(f"signed URL refused: signed with key {p.kid}, retired at {_when(key_info.retired_at)}",
                        "key_retired")
    expected = sign(key, p.method, p.path, p.expires, p.kid)
    if not hmac.compare_digest(expected.encode(), p.sig.encode()):
        raise Forbidden(f"signed URL refused: {REFUSALS['bad_signature']}", "bad_signature")
    if url is None:
        raise Forbidden(f"signed URL refused: {REFUSALS['unknown_url']}", "unknown_url")
    if url.path != p.path or url.key_id != p.kid or url.expires != p.expires:
        raise Forbidden(f"signed URL refused: {REFUSALS['mismatch']} ({url.id})", "mismatch")
    if url.revoked_at is not None:
        raise Forbidden(f"signed URL refused: {url.id} was revoked at {_when(url.revoked_at)}", "revoked")
    if now >= url.expires_at:
        raise Forbidden(f"signed URL refused: {url.id} expired at {_when(url.expires_at)}", "expired")
    return url


def expiry(now: datetime, seconds: float) -> datetime:
    """An expiry ``seconds`` from ``now``, in whole seconds (the URL carries it as an integer)."""
    return datetime.fromtimestamp(int(now.timestamp() + seconds), UTC)


def _when(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")
