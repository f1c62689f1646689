"""Outside signals and signed URLs: what ``api.signals`` calls to hand out, list, revoke and verify signed URLs,
rotate the signing key, and decide on a signal (a signed URL's POST, an Aodh alarm action, a Monasca webhook
notification).

A signal is decided the way a firing alert of the policy is (``decide.evaluator.evaluate_step``: one step,
cooldowns and bounds apply) and recorded by ``act.recording`` (trigger ``signal``; pauses, holds, change freezes,
approval rules and dry runs apply there), in ONE transaction that first claims the signal's de-duplication key
(``Tx.claim_signal``): a retry carrying the same key (``Idempotency-Key``, ``X-OpenStack-Request-Id`` or
``X-Request-Id``; a Monasca notification's alarm id, timestamp and state) is recorded ``duplicate`` and never
steps twice, even when racing its first try on another replica. The transaction commits before the request is
answered. A resolved alarm (OK) and one without data (insufficient data / UNDETERMINED) are recorded, never acted
on. A signal never becomes a believed-firing alert: it is one step, as Heat's signal is (the alarm service's
``repeat_actions`` / periodic notifications re-send it if the alarm stays on).

Refused signed URLs are recorded too (``refuse``: a ``refused`` decision naming the reason), and answered 403.

The signing secret (``SigningSecret``): ``inputs.signed_urls.secret`` (or ``_file`` / ``_env``) when the policy
file sets it; otherwise ``<state_dir>/url-signing.key``, created with 32 random bytes and mode 0600 on first use
(refused if group or others may read it). Each key id's key is derived from it (``model.signing.derive_key``);
neither the secret nor a key is ever logged, stored, or returned by the API. On PostgreSQL (replicas) the secret
must be configured, so that every replica signs and verifies alike.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from alertscaler.act.recording import About, Evidence, Recorded, record, record_skip
from alertscaler.config import PolicyFile
from alertscaler.decide.evaluator import evaluate_step
from alertscaler.model.decisions import Reason, Trigger
from alertscaler.model.durations import format_duration
from alertscaler.model.errors import Conflict, Forbidden, InputError, NotFound, StoreUnavailable
from alertscaler.model.policies import Direction
from alertscaler.model.signals import AlarmState, Signal, SignalSource
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
    verify,
)
from alertscaler.store.base import StateStore, Tx

log = logging.getLogger(__name__)

KEY_FILE = "url-signing.key"
MAX_NOTE = 200
MAX_SHOWN_PATH = 120  # characters of a refused request's path kept in its decision


class SigningSecret:
    """The secret every signing key is derived from, for one policy file (see the module docstring)."""

    def __init__(self, policy: PolicyFile) -> None:
        self.policy = policy
        self._secret: bytes | None = None

    def get(self) -> bytes:
        if self._secret is None:
            configured = self.policy.inputs.signed_urls.secret
            if configured is not None:
                self._secret = configured.get_secret_value().encode()
            elif self.policy.store_url().startswith("postgresql"):
                raise Conflict("signed URLs on a PostgreSQL store need inputs.signed_urls.secret_file (or secret_env): "
                               "every replica must sign and verify with the same secret")
            else:
                self._secret = _key_file(self.policy.state_dir() / KEY_FILE)
        return self._secret

    def key(self, kid: str) -> bytes:
        return derive_key(self.get(), kid)


def _key_file(path: Path) -> bytes:
    """The secret kept in ``path``: created (32 random bytes, hex, mode 0600) when missing; refused when group or
    others may read it. Errors name the file, never its content."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise Conflict(f"cannot create the URL signing secret {path}: {exc.strerror}") from None
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        log.warning("created the URL signing secret %s (mode 0600); replicas must share it: set "
                    "inputs.signed_urls.secret_file to a copy of it", path)
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise Conflict(f"the URL signing secret {path} is readable by group or others "
                           f"({stat.filemode(mode)}): chmod 600 {path}")
        text = path.read_text().strip()
    except OSError as exc:
        raise Conflict(f"cannot read the URL signing secret {path}: {exc.strerror}") from None
    if len(text) < 32:
        raise Conflict(f"the URL signing secret {path} is too short (at least 32 characters)")
    return text.encode()


@dataclass(frozen=True)
class Created:
    """A URL handed out: its record and the full URL (shown once; never stored)."""

    url: SignedUrl
    full: str


@dataclass(frozen=True)
class Received:
    """What a signal gave: its id, whether it was a retry (``duplicate``: ``first_decisions`` are the decisions the
    first one gave), and the decisions recorded now."""

    signal_id: int
    duplicate: bool
    recorded: tuple[Recorded, ...]
    first_decisions: tuple[int, ...] = ()


class Signals:
    def __init__(self, policy: PolicyFile, store: StateStore, clock: Callable[[], datetime],
                 publish: Callable[[Sequence[Recorded]], None]) -> None:
        self.policy = policy
        self.store = store
        self.clock = clock
        self.publish = publish  # act.recording.publish to the metrics and the groups' workers
        self.secret = SigningSecret(policy)

    # --- handing out ---------------------------------------------------------------------------------
    def create(self, target: UrlTarget, group: str | None, policy: str | None, expires_in: float | None,
               note: str, base: str) -> Created:
        """A new signed URL for ``group``'s ``policy`` (``target`` POLICY) or an input; ``expires_in`` seconds
        (None: ``inputs.signed_urls.default_expires``), at most ``max_expires``. Blocking (a transaction)."""
        limits = self.policy.inputs.signed_urls
        if target is UrlTarget.POLICY:
            self._check_target(group, policy)
        elif group is not None or policy is not None:
            raise InputError("an input URL names no group or policy", field="group")
        seconds = limits.default_expires if expires_in is None else expires_in
        if not 0 < seconds <= limits.max_expires:
            raise InputError(f"must be more than 0s and at most {format_duration(limits.max_expires)} "
                             "(inputs.signed_urls.max_expires)", field="expires")
        if len(note) > MAX_NOTE:
            raise InputError(f"must be at most {MAX_NOTE} characters", field="note")
        self.secret.get()  # no secret, no URL: refused before anything is written
        now = self.clock()
        with self.store.transaction() as tx:
            key = _current_key(tx, now) or tx.add_signing_key(_new_kid(), now)
            url = SignedUrl(secrets.token_hex(8), target, group, policy, key.kid, note, now, expiry(now, seconds))
            tx.add_signed_url(url)
        log.info("signed URL %s created for %s, key %s, expires %s", url.id, url.describe(), url.key_id,
                 url.expires_at.isoformat(timespec="seconds"))
        return Created(url, full_url(base, url, self._sig(url)))

    def _check_target(self, group: str | None, policy: str | None) -> None:
        if not group:
            raise InputError("required: the group whose policy the URL drives", field="group")
        config = self.policy.groups.get(group)
        if config is None:
            raise NotFound(f"no group named {group!r}")
        if policy not in (Direction.SCALE_OUT.value, Direction.SCALE_IN.value):
            raise InputError("must be scale_out or scale_in", field="policy")
        if getattr(config, policy) is None:
            raise InputError(f"group {group!r} has no {policy} policy", field="policy")

    def _sig(self, url: SignedUrl) -> str:
        return sign(self.secret.key(url.key_id), SIGNED_METHOD, url.path, url.expires, url.key_id)

    def shown(self, url: SignedUrl, base: str) -> str:
        """The URL as a listing shows it: the signature cut to its first characters."""
        try:
            sig = masked(self._sig(url))
        except Conflict:
            sig = "…"
        return full_url(base, url, sig)

    def revoke(self, url_id: str) -> SignedUrl:
        with self.store.transaction() as tx:
            url = tx.revoke_signed_url(url_id, self.clock())
        if url is None:
            raise NotFound(f"no signed URL {url_id[:64]!r}")
        log.warning("signed URL %s (%s) revoked", url.id, url.describe())
        return url

    def rotate(self, retire_old: bool) -> tuple[SigningKey, list[str]]:
        """A new signing key for new URLs; the older keys keep verifying their URLs unless ``retire_old``."""
        self.secret.get()
        now = self.clock()
        with self.store.transaction() as tx:
            newest = max((k.created_at for k in tx.signing_keys()), default=now - timedelta(seconds=1))
            key = tx.add_signing_key(_new_kid(), max(now, newest + timedelta(microseconds=1)))  # the newest: current
            retired = tx.retire_signing_keys(key.kid, now) if retire_old else []
        log.warning("URL signing key rotated: new key %s%s", key.kid,
                    f"; retired {', '.join(retired)} (their URLs are refused from now)" if retired else "")
        return key, retired

    # --- receiving -----------------------------------------------------------------------------------
    def verified(self, method: str, path: str, params: Sequence[tuple[str, str]], url_id: str) -> SignedUrl:
        """The stored URL a request proves, or ``Forbidden`` (recorded by the caller: ``refuse``). Blocking."""
        p = presented(method, path, params)
        keys = {k.kid: k for k in self.store.signing_keys()}
        info = keys.get(p.kid)
        url = self.store.get_signed_url(url_id)
        return verify(p, self.secret.key(p.kid) if info is not None else None, info, url, self.clock())

    def refuse(self, refusal: Forbidden, method: str, path: str, url_id: str) -> Recorded | None:
        """Record a refused signed URL (a ``refused`` decision; the group is the stored URL's, if the id is on
        record). Never raises for an unavailable store (logged): the refusal stands either way."""
        shown = path if len(path) <= MAX_SHOWN_PATH else path[:MAX_SHOWN_PATH] + "…"
        try:
            url = self.store.get_signed_url(url_id)
            about = About(url.group, url.policy, Trigger.SIGNAL, self.policy.groups.get(url.group or "")) \
                if url is not None and url.group is not None else About(None, None, Trigger.SIGNAL)
            with self.store.transaction() as tx:
                done = record_skip(tx, about, Reason.REFUSED, f"{refusal} [{refusal.reason}] ({method} {shown})",
                                   self.clock(), numbered=True)
        except StoreUnavailable as exc:
            log.warning("signed URL refused (%s, %s %s); recording the refusal failed: %s", refusal.reason, method,
                        shown, exc)
            return None
        self.publish([done])
        return done

    def targets_of(self, signal: Signal, url: SignedUrl | None) -> list[tuple[str, str]]:
        """The (group, policy) pairs a signal drives: its URL's, else those ``inputs`` maps its alarm to."""
        if url is not None and url.target is UrlTarget.POLICY:
            assert url.group is not None and url.policy is not None
            return [(url.group, url.policy)]
        return self.policy.inputs.targets(signal.source, signal.names)

    def receive(self, signal: Signal, source: SignalSource, url: SignedUrl | None, body: str) -> Received:
        """Decide on ``signal`` (arrived as ``source``'s input, or through ``url``), recorded in one transaction
        with its de-duplication key; then published. Blocking."""
        now = self.clock()
        targets = self.targets_of(signal, url)
        key = _scoped_key(signal.key, url, source)
        with self.store.transaction() as tx:
            signal_id, seen = tx.claim_signal(signal.source, key, url.id if url else None, signal.alarm,
                                              signal.state, body, now)
            if url is not None:
                tx.mark_url_used(url.id, now)
            if seen is not None:
                done = self._duplicate(tx, signal, targets, signal_id, now)
                received = Received(signal_id, True, tuple(done), tuple(seen))
            else:
                done = self._decide(tx, signal, source, targets, url, now)
                tx.set_signal_decisions(signal_id, [r.decision_id for r in done if r.decision_id is not None])
                received = Received(signal_id, False, tuple(done))
        self.publish(done)
        return received

    def _duplicate(self, tx: Tx, signal: Signal, targets: list[tuple[str, str]], first: int,
                   now: datetime) -> list[Recorded]:
        evidence = Evidence([signal.summary(now)], 1, starts_at=now)
        message = f"already received: {signal.described()} is a retry of signal {first}; not acted again"
        abouts = [self._about(g, p) for g, p in targets] or [self._about(None, None)]
        return [record_skip(tx, about, Reason.DUPLICATE, message, now, evidence, numbered=True) for about in abouts]

    def _about(self, group: str | None, policy: str | None) -> About:
        return About(group, policy, Trigger.SIGNAL, self.policy.groups.get(group) if group else None)

    def _decide(self, tx: Tx, signal: Signal, source: SignalSource, targets: list[tuple[str, str]],
                url: SignedUrl | None, now: datetime) -> list[Recorded]:
        evidence = Evidence([signal.summary(now)], 1, starts_at=now)
        via = f" via signed URL {url.id}" if url is not None else f" from the {source.value} input"
        if not targets:
            return [record_skip(tx, self._about(None, None), Reason.NO_GROUP,
                                f"{signal.described()}: no inputs.{source.value} mapping names it (by name or id)",
                                now, evidence, numbered=True)]
        present = {g: self.policy.groups[g].initial_desired for g, _ in targets if g in self.policy.groups}
        if len(present) > 1:
            tx.lock_groups(present)  # in name order, before anything else: no deadlock between replicas
        out = []
        for group, policy in targets:
            about = self._about(group, policy)
            config = about.config
            step = getattr(config, policy, None) if config is not None else None
            if config is None or step is None:
                out.append(record_skip(tx, about, Reason.NO_GROUP, f"{signal.described()}{via}: group {group!r} "
                                       f"has no {policy} policy (any more)", now, evidence, numbered=True))
            elif signal.state is AlarmState.OK:
                out.append(record_skip(tx, about, Reason.RESOLVED, f"{signal.described()}{via}: resolved; a resolved "
                                       "alarm never scales by itself", now, evidence, numbered=True))
            elif signal.state is AlarmState.INSUFFICIENT_DATA:
                out.append(record_skip(tx, about, Reason.INSUFFICIENT_DATA, f"{signal.described()}{via}: no data; "
                                       "no action", now, evidence, numbered=True))
            else:
                direction = Direction(policy)
                state = tx.lock_group(group, config.initial_desired)
                verdict = evaluate_step(state, step, direction, config.bounds_at(now), now)
                verdict = replace(verdict, message=f"{verdict.message} ({signal.described()}{via})")
                out.append(record(tx, about, verdict, now, state=state, step=direction, evidence=evidence,
                                  numbered=True))
        return out


def request_key(headers: dict[str, str]) -> str | None:
    """What recognises a retried request: ``Idempotency-Key``, else ``X-OpenStack-Request-Id`` (Aodh sends one per
    notification, kept across its retries), else ``X-Request-Id`` (header names lower-case). At most 200
    printable ASCII characters (422 naming the header otherwise)."""
    for name in ("idempotency-key", "x-openstack-request-id", "x-request-id"):
        value = headers.get(name)
        if value is None:
            continue
        if not value or len(value) > 200 or not value.isascii() or not value.isprintable():
            raise InputError("must be 1 to 200 printable ASCII characters", field=name)
        return f"{name}:{value}"
    return None


def _scoped_key(key: str | None, url: SignedUrl | None, source: SignalSource) -> str | None:
    """A de-duplication key scoped to where it arrived (a URL, or an input), so that two senders' keys never
    collide."""
    if key is None:
        return None
    return f"{url.id if url is not None else source.value}|{key}"


def _current_key(tx: Tx, now: datetime) -> SigningKey | None:
    """The key new URLs are signed with: the newest not retired."""
    keys = [k for k in tx.signing_keys() if not k.retired(now)]
    return keys[-1] if keys else None


def _new_kid() -> str:
    return "k" + secrets.token_hex(4)

