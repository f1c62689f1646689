"""Signed URL verification (``model.signing``), pure: one table of requests against one stored URL, each accepted or
refused with its reason — good, tampered path (group, policy, id), tampered expiry, tampered key id, expired,
revoked, signed with a rotated key (still good), with a retired key, wrong method, malformed queries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.model.errors import Forbidden
from alertscaler.model.signing import (
    SIGNED_METHOD,
    SignedUrl,
    SigningKey,
    UrlTarget,
    derive_key,
    expiry,
    full_url,
    masked,
    presented,
    sign,
    signal_path,
    verify,
)

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SECRET = b"s" * 32
OLD = SigningKey("k1", T0 - timedelta(days=10))
NEW = SigningKey("k2", T0 - timedelta(days=1))
RETIRED = SigningKey("k0", T0 - timedelta(days=20), retired_at=T0 - timedelta(days=1))
KEYS = {k.kid: k for k in (OLD, NEW, RETIRED)}
URL = SignedUrl("0123abcd", UrlTarget.POLICY, "web", "scale_out", "k1", "", T0 - timedelta(days=2),
                expiry(T0, 3600))
OTHER = replace(URL, id="99887766", key_id="k2")


def query_of(url: SignedUrl, *, method: str = SIGNED_METHOD, path: str | None = None, expires: int | None = None,
             kid: str | None = None, secret: bytes = SECRET) -> dict[str, str]:
    kid = kid or url.key_id
    expires = url.expires if expires is None else expires
    sig = sign(derive_key(secret, kid), method, path or url.path, expires, kid)
    return {"expires": str(expires), "kid": kid, "sig": sig}


def check(method: str, path: str, params: dict[str, str], stored: SignedUrl | None, now: datetime = T0) -> str:
    """``ok`` or the refusal's reason."""
    try:
        p = presented(method, path, list(params.items()))
        info = KEYS.get(p.kid)
        verify(p, derive_key(SECRET, p.kid) if info else None, info, stored, now)
    except Forbidden as exc:
        assert "s" * 32 not in str(exc)
        return exc.reason
    return "ok"


GOOD = query_of(URL)

CASES = [
    ("good", "POST", URL.path, GOOD, URL, T0, "ok"),
    ("good-lowercase-method", "post", URL.path, GOOD, URL, T0, "ok"),
    ("good-just-before-expiry", "POST", URL.path, GOOD, URL, URL.expires_at - timedelta(seconds=1), "ok"),
    ("tampered-path-group", "POST", URL.path.replace("/web/", "/db/"), GOOD, URL, T0, "bad_signature"),
    ("tampered-path-policy", "POST", URL.path.replace("scale_out", "scale_in"), GOOD, URL, T0, "bad_signature"),
    ("tampered-path-id", "POST", URL.path.replace("0123abcd", "99887766"), GOOD, OTHER, T0, "bad_signature"),
    ("tampered-expiry", "POST", URL.path, {**GOOD, "expires": str(URL.expires + 86400)}, URL, T0, "bad_signature"),
    ("tampered-kid", "POST", URL.path, {**GOOD, "kid": "k2"}, URL, T0, "bad_signature"),
    ("tampered-signature", "POST", URL.path, {**GOOD, "sig": "A" + GOOD["sig"][1:]}, URL, T0, "bad_signature"),
    ("wrong-secret", "POST", URL.path, query_of(URL, secret=b"x" * 32), URL, T0, "bad_signature"),
    ("wrong-method-get", "GET", URL.path, GOOD, URL, T0, "bad_signature"),
    ("wrong-method-put", "PUT", URL.path, GOOD, URL, T0, "bad_signature"),
    ("expired-at-expiry", "POST", URL.path, GOOD, URL, URL.expires_at, "expired"),
    ("expired-later", "POST", URL.path, GOOD, URL, T0 + timedelta(days=1), "expired"),
    ("revoked", "POST", URL.path, GOOD, replace(URL, revoked_at=T0 - timedelta(minutes=1)), T0, "revoked"),
    ("revoked-and-expired", "POST", URL.path, GOOD, replace(URL, revoked_at=T0), T0 + timedelta(days=1), "revoked"),
    ("rotated-key-still-verifies", "POST", OTHER.path, query_of(OTHER), OTHER, T0, "ok"),
    ("retired-key", "POST", URL.path, query_of(replace(URL, key_id="k0")), replace(URL, key_id="k0"), T0,
     "key_retired"),
    ("unknown-key", "POST", URL.path, query_of(URL, kid="k9"), URL, T0, "unknown_key"),
    ("signed-but-not-on-record", "POST", URL.path, GOOD, None, T0, "unknown_url"),
    ("record-disagrees", "POST", URL.path, GOOD, replace(URL, expires_at=URL.expires_at + timedelta(hours=1)), T0,
     "mismatch"),
    ("missing-sig", "POST", URL.path, {k: v for k, v in GOOD.items() if k != "sig"}, URL, T0, "malformed"),
    ("no-query", "POST", URL.path, {}, URL, T0, "malformed"),
    ("expires-not-a-number", "POST", URL.path, {**GOOD, "expires": "soon"}, URL, T0, "malformed"),
    ("sig-not-base64url", "POST", URL.path, {**GOOD, "sig": "é" * 43}, URL, T0, "malformed"),
    ("kid-too-long", "POST", URL.path, {**GOOD, "kid": "k" * 40}, URL, T0, "malformed"),
]


@pytest.mark.parametrize(("method", "path", "params", "stored", "now", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verification(method: str, path: str, params: dict[str, str], stored: SignedUrl | None, now: datetime,
                      expected: str) -> None:
    assert check(method, path, params, stored, now) == expected


def test_a_repeated_signed_parameter_is_malformed() -> None:
    with pytest.raises(Forbidden) as info:
        presented("POST", URL.path, [*GOOD.items(), ("expires", str(URL.expires + 1))])
    assert info.value.reason == "malformed"


def test_other_query_parameters_are_ignored() -> None:  # Aodh keeps aodh-alarm-ssl-verify in the URL
    assert check("POST", URL.path, {**GOOD, "aodh-alarm-ssl-verify": "0"}, URL) == "ok"


def test_keys_are_independent_per_key_id_and_secret() -> None:
    keys = {derive_key(SECRET, "k1"), derive_key(SECRET, "k2"), derive_key(b"t" * 32, "k1")}
    assert len(keys) == 3 and SECRET not in b"".join(keys)


def test_the_full_url_carries_the_signature_and_listings_cut_it() -> None:
    sig = GOOD["sig"]
    full = full_url("https://as.example.com/", URL, sig)
    assert full == (f"https://as.example.com/api/v1/signal/web/scale_out/0123abcd?expires={URL.expires}&kid=k1"
                    f"&sig={sig}")
    assert masked(sig) == sig[:4] + "…" and sig not in masked(sig)


@pytest.mark.parametrize(("target", "path"), [
    (UrlTarget.POLICY, "/api/v1/signal/web/scale_out/abc"), (UrlTarget.AODH, "/api/v1/inputs/aodh/abc"),
    (UrlTarget.MONASCA, "/api/v1/inputs/monasca/abc")], ids=["policy", "aodh", "monasca"])
def test_paths(target: UrlTarget, path: str) -> None:
    assert signal_path(target, "abc", "web", "scale_out") == path


@pytest.mark.parametrize(("url", "now", "state"), [
    (URL, T0, "active"), (URL, URL.expires_at, "expired"), (replace(URL, revoked_at=T0), T0, "revoked"),
    (replace(URL, key_id="k0"), T0, "key_retired")], ids=["active", "expired", "revoked", "key-retired"])
def test_states(url: SignedUrl, now: datetime, state: str) -> None:
    assert url.state(now, list(KEYS.values())) == state
