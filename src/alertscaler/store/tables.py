"""The schema (``Table`` objects, created and upgraded by the alembic migrations in ``store/migrations``;
tests/contract checks they match), the UTC datetime and storable free-text column types, and the row ↔ value mappers.
Used by ``store.sql`` and the migrations' ``env.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Row

from alertscaler.model.approvals import ApprovalKind, ApprovalState, PendingApproval
from alertscaler.model.controls import Pause
from alertscaler.model.decisions import Action, ActionState, Decision, HealTarget, Outcome, Reason, Trigger
from alertscaler.model.groups import GroupState
from alertscaler.store.base import ActiveAlert

# --- types ------------------------------------------------------------------------------------------


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every back end.

    PostgreSQL: ``TIMESTAMP WITH TIME ZONE``. SQLite: naive UTC text (``YYYY-MM-DD HH:MM:SS.ffffff``,
    which sorts and compares correctly). Naive datetimes are refused: the caller must say it means UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class SafeText(sa.types.TypeDecorator[str]):
    """Free text from outside (a decision's message, an action's error and result: a provider's output, an
    exception's message) made storable on every back end, at this one boundary: a NUL (PostgreSQL refuses it
    in text) becomes the two characters ``\\0``; a surrogate code point (it has no UTF-8 form: SQLite's and
    psycopg's drivers refuse it) becomes U+FFFD. Anything else is stored as given."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return storable_text(value) if value is not None else None


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` with each NUL as ``\\0`` and each surrogate code point as U+FFFD (see ``SafeText``)."""
    if "\0" in text:
        text = text.replace("\0", "\\0")
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def _id_type() -> sa.types.TypeEngine[int]:
    """BIGINT (BIGSERIAL) on PostgreSQL; INTEGER on SQLite so the column is the rowid."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# --- schema (must match migrations/versions; tests/contract checks it) -------------------------------

metadata = sa.MetaData()

notifications = sa.Table(
    "notifications", metadata,
    sa.Column("id", _id_type(), primary_key=True),
    sa.Column("receiver", sa.Text, nullable=False),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the webhook JSON as received
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("processed_at", UtcDateTime, nullable=True),
    sa.Index("ix_notifications_pending", "id",
             postgresql_where=sa.text("processed_at IS NULL"),
             sqlite_where=sa.text("processed_at IS NULL")),
    sqlite_autoincrement=True,
)

seen_keys = sa.Table(
    "seen_keys", metadata,
    sa.Column("dedup_key", sa.Text, primary_key=True),
    sa.Column("notification_id", _id_type(), sa.ForeignKey("notifications.id"), nullable=False),
    sa.Index("ix_seen_keys_notification", "notification_id"),
)

group_states = sa.Table(
    "group_states", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("desired", sa.Integer, nullable=False),
    sa.Column("last_scale_out_at", UtcDateTime, nullable=True),
    sa.Column("last_scale_in_at", UtcDateTime, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=True),
    sa.Column("held_until", UtcDateTime, nullable=True),  # a manual scale's hold: policies may not move it before
)

# Operators' pauses: one row per paused group, or ``*`` for every group (model.controls); a row whose ``until``
# has passed is an expired pause (over, kept until resumed or replaced).
pauses = sa.Table(
    "pauses", metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("since", UtcDateTime, nullable=False),
    sa.Column("until", UtcDateTime, nullable=True),  # NULL: until resumed
    sa.Column("reason", sa.Text, nullable=False),
)

# Changes that waited for an operator's approval (model.approvals), keyed by their ``pending_approval`` decision;
# a row stays once resolved (approved, rejected, expired, superseded) until retention prunes it.
approvals = sa.Table(
    "approvals", metadata,
    sa.Column("decision_id", _id_type(), primary_key=True, autoincrement=False),
    sa.Column("group_name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),       # scale | heal
    sa.Column("policy", sa.Text, nullable=True),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("step", sa.String(16), nullable=True),        # a step policy's direction: its cooldown runs once done
    sa.Column("from_capacity", sa.Integer, nullable=False),
    sa.Column("to_capacity", sa.Integer, nullable=False),
    sa.Column("targets", sa.Text, nullable=True),           # heal: JSON list of {member_id, action, slot}
    sa.Column("why", SafeText, nullable=False),
    sa.Column("message", SafeText, nullable=False),         # what the change does, in the policy's words
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),      # pending | approved | rejected | expired | superseded
    sa.Column("resolved_at", UtcDateTime, nullable=True),
    sa.Column("resolved_by", SafeText, nullable=True),
    sa.Column("resolution_id", _id_type(), nullable=True),  # the decision that recorded how it ended
    sa.Index("ix_approvals_group_state", "group_name", "state"),
    sa.Index("ix_approvals_state_expires", "state", "expires_at"),
)

decisions = sa.Table(
    "decisions", metadata,
    sa.Column("id", _id_type(), primary_key=True),
    sa.Column("group_name", sa.Text, nullable=True),
    sa.Column("policy", sa.Text, nullable=True),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("from_capacity", sa.Integer, nullable=True),
    sa.Column("to_capacity", sa.Integer, nullable=True),
    sa.Column("message", SafeText, nullable=False),
    sa.Column("alerts", sa.Text, nullable=False),  # JSON list of objects
    sa.Column("notification_id", _id_type(), sa.ForeignKey("notifications.id"), nullable=True),
    sa.Column("alert_starts_at", UtcDateTime, nullable=True),
    sa.Column("received_at", UtcDateTime, nullable=True),
    sa.Column("decided_at", UtcDateTime, nullable=False),
    # No foreign key (it would be circular with actions.decision_id); set only by Tx.add_action.
    sa.Column("action_id", _id_type(), nullable=True),
    sa.Index("ix_decisions_decided_at", "decided_at"),
    sa.Index("ix_decisions_group_decided_at", "group_name", "decided_at"),
    sqlite_autoincrement=True,
)

actions = sa.Table(
    "actions", metadata,
    sa.Column("id", _id_type(), primary_key=True),
    sa.Column("decision_id", _id_type(), sa.ForeignKey("decisions.id"), nullable=False),
    sa.Column("group_name", sa.Text, nullable=False),
    sa.Column("from_capacity", sa.Integer, nullable=False),
    sa.Column("desired", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("not_before", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=True),  # first claim only
    sa.Column("finished_at", UtcDateTime, nullable=True),
    sa.Column("error", SafeText, nullable=True),
    sa.Column("result", SafeText, nullable=True),
    sa.Column("kind", sa.String(16), nullable=False, server_default="scale"),  # scale | heal
    sa.Column("targets", sa.Text, nullable=True),  # heal: JSON list of {member_id, action, slot}
    # The replica running it (replicas.id; no foreign key: replica rows are forgotten) and until when its
    # lease holds; a peer may take a RUNNING action over only once the lease has expired (or was never set).
    sa.Column("owner", sa.Text, nullable=True),
    sa.Column("lease_expires_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("decision_id", name="uq_actions_decision_id"),
    sa.Index("ix_actions_group_state", "group_name", "state"),
    sa.Index("ix_actions_state", "state"),
    sa.Index("ix_actions_owner", "owner"),
    sqlite_autoincrement=True,
)

# One row per running (or recently running) alertscaler process; live while ``expires_at`` is in the future.
replicas = sa.Table(
    "replicas", metadata,
    sa.Column("id", sa.Text, primary_key=True),  # host:pid:random, made at start (store.replicas)
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("heartbeat_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("stopped_at", UtcDateTime, nullable=True),  # set by a clean stop (leave)
)

# Which replica drives a group (timers, tracking, schedules, its worker). Valid while the owner is live: no
# per-row expiry, so a heartbeat renews every group of a replica by renewing its replicas row.
group_owners = sa.Table(
    "group_owners", metadata,
    sa.Column("group_name", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=True),  # NULL: released, free to take
    sa.Column("since", UtcDateTime, nullable=False),
    sa.Index("ix_group_owners_owner", "owner"),
)

active_alerts = sa.Table(
    "active_alerts", metadata,
    sa.Column("group_name", sa.Text, primary_key=True),
    sa.Column("policy", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, primary_key=True),
    sa.Column("labels", sa.Text, nullable=False),  # JSON object
    sa.Column("starts_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
    sa.Column("notification_id", _id_type(), sa.ForeignKey("notifications.id"), nullable=False),
    sa.Column("last_reason", sa.Text, nullable=True),
)

heal_signals = sa.Table(
    "heal_signals", metadata,
    sa.Column("id", _id_type(), primary_key=True),
    sa.Column("group_name", sa.Text, nullable=False),
    sa.Column("member_key", sa.Text, nullable=False),     # a member id or address
    sa.Column("source", sa.String(16), nullable=False),   # alert | status
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("notification_id", _id_type(), sa.ForeignKey("notifications.id"), nullable=True),
    sa.Column("decision_id", _id_type(), nullable=True),  # the heal decision that judged it (NULL: pending)
    sa.Index("ix_heal_signals_pending", "group_name", "received_at",
             postgresql_where=sa.text("decision_id IS NULL"), sqlite_where=sa.text("decision_id IS NULL")),
    sqlite_autoincrement=True,
)

heal_history = sa.Table(
    "heal_history", metadata,
    sa.Column("id", _id_type(), primary_key=True),
    sa.Column("group_name", sa.Text, nullable=False),
    sa.Column("slot", sa.Text, nullable=False),
    sa.Column("member_id", sa.Text, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("action_id", _id_type(), sa.ForeignKey("actions.id"), nullable=True),
    sa.Column("replaced_by", sa.Text, nullable=True),     # replace: the new member (it inherits the slot)
    sa.Index("ix_heal_history_group_at", "group_name", "at"),
    sa.Index("ix_heal_history_replaced_by", "group_name", "replaced_by"),
    sqlite_autoincrement=True,
)

removed_members = sa.Table(
    "removed_members", metadata,
    sa.Column("group_name", sa.Text, primary_key=True),
    sa.Column("member_id", sa.Text, primary_key=True),
    sa.Column("address", sa.Text, nullable=True),
    sa.Column("state", sa.String(16), nullable=False),    # removing | removed (model.removals.RemovalState)
    sa.Column("why", SafeText, nullable=False),
    sa.Column("since", UtcDateTime, nullable=False),       # left discovery
    sa.Column("removed_at", UtcDateTime, nullable=True),   # stopped
    sa.Column("reported_at", UtcDateTime, nullable=True),  # its one removed_member decision
    sa.Index("ix_removed_members_since", "since"),
)

# Alarms (model.alarms): the current state of each alarm and dimension set, and one row per transition.
alarm_states = sa.Table(
    "alarm_states", metadata,
    sa.Column("alarm", sa.Text, primary_key=True),
    sa.Column("dims_key", sa.Text, primary_key=True),      # model.alarms.dims_key: sorted JSON, {} for none
    sa.Column("dimensions", sa.Text, nullable=False),      # JSON object
    sa.Column("state", sa.String(24), nullable=False),     # ok | alarm | insufficient_data
    sa.Column("since", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("reason", SafeText, nullable=False),
    sa.Column("alerts", sa.Text, nullable=False),          # JSON: fingerprint -> {signal, firing, at}
)

alarm_history = sa.Table(
    "alarm_history", metadata,
    sa.Column("id", _id_type(), primary_key=True),
    sa.Column("alarm", sa.Text, nullable=False),
    sa.Column("dims_key", sa.Text, nullable=False),
    sa.Column("dimensions", sa.Text, nullable=False),
    sa.Column("old_state", sa.String(24), nullable=False),
    sa.Column("new_state", sa.String(24), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),          # when the state changed (the alert's start or end)
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    sa.Column("reason", SafeText, nullable=False),
    sa.Column("actions", sa.Text, nullable=False),         # JSON list: the actions due for the new state
    sa.Column("notification_id", _id_type(), nullable=True),
    sa.Index("ix_alarm_history_alarm_id", "alarm", "id"),
    sa.Index("ix_alarm_history_recorded_at", "recorded_at"),
    sqlite_autoincrement=True,
)

# Signed URLs (model.signing, store.sql_signals): the signing keys' ids (never a key: each is derived from the
# configured secret and its id); the URLs handed out (never their signature); the outside signals accepted, each
# with its unique de-duplication key (NULL: none) and the decisions it gave.
url_keys = sa.Table(
    "url_keys", metadata,
    sa.Column("kid", sa.String(32), primary_key=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("retired_at", UtcDateTime, nullable=True),   # from then on its URLs are refused
)

signed_urls = sa.Table(
    "signed_urls", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("target", sa.String(16), nullable=False),     # policy | aodh | monasca (model.signing.UrlTarget)
    sa.Column("group_name", sa.Text, nullable=True),        # target policy: the group and its policy
    sa.Column("policy", sa.Text, nullable=True),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("note", SafeText, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Column("last_used_at", UtcDateTime, nullable=True),
    sa.Column("uses", sa.Integer, nullable=False),
)

signals = sa.Table(
    "signals", metadata,
    sa.Column("id", _id_type(), primary_key=True),
    sa.Column("source", sa.String(16), nullable=False),     # url | aodh | monasca (model.signals.SignalSource)
    sa.Column("dedup_key", sa.Text, nullable=True),
    sa.Column("url_id", sa.String(64), nullable=True),      # the signed URL it came through
    sa.Column("alarm", SafeText, nullable=True),
    sa.Column("state", sa.String(24), nullable=False),      # alarm | ok | insufficient_data
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("decision_ids", sa.Text, nullable=False),     # JSON list
    sa.Column("body", SafeText, nullable=False),            # the JSON body as received ("" for none)
    sa.UniqueConstraint("dedup_key", name="uq_signals_dedup_key"),
    sa.Index("ix_signals_received_at", "received_at"),
    sqlite_autoincrement=True,
)

# The notification outbox (model.notifications, store.sql_outbox): one row per notification of an alarm transition
# to send (written in the transaction that stores the transition), its stable id, status and claim; one row per
# delivery attempt. No secret is stored: the method's settings are read from the policy file at each attempt.
outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", _id_type(), primary_key=True),
    sa.Column("uid", sa.String(64), nullable=False),        # the stable id receivers de-duplicate on
    sa.Column("method", sa.Text, nullable=False),           # a notification_methods name, or "url"
    sa.Column("kind", sa.String(16), nullable=False),       # webhook | email | log
    sa.Column("target", SafeText, nullable=False),          # the URL (a URL action), else the method's name
    sa.Column("alarm", SafeText, nullable=True),
    sa.Column("group_name", sa.Text, nullable=True),        # the group whose driving replica delivers it
    sa.Column("history_id", _id_type(), nullable=True),     # the alarm_history row, when known
    sa.Column("event", SafeText, nullable=False),           # JSON: model.notifications.AlarmEvent
    sa.Column("status", sa.String(16), nullable=False),     # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("claimed_by", sa.Text, nullable=True),        # the replica sending it now ...
    sa.Column("claimed_until", UtcDateTime, nullable=True),  # ... until then (then another may)
    sa.Column("finished_at", UtcDateTime, nullable=True),
    sa.Column("last_result", SafeText, nullable=False),
    sa.UniqueConstraint("uid", name="uq_outbox_uid"),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
    sa.Index("ix_outbox_created_at", "created_at"),
    sa.Index("ix_outbox_alarm_id", "alarm", "id"),
    sqlite_autoincrement=True,
)

outbox_attempts = sa.Table(
    "outbox_attempts", metadata,
    sa.Column("id", _id_type(), primary_key=True),
    sa.Column("outbox_id", _id_type(), sa.ForeignKey("outbox.id"), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("replica", sa.Text, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("status", SafeText, nullable=False),          # HTTP 503 | SMTP 250 | logged | error
    sa.Column("detail", SafeText, nullable=False),          # the reply's or the error's text, never a secret
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Index("ix_outbox_attempts_outbox", "outbox_id", "attempt"),
    sqlite_autoincrement=True,
)

_UNFINISHED: Final = (ActionState.PENDING.value, ActionState.RUNNING.value)

# Decisions with ``provider_call_at``: the linked action's first start.
_DECISIONS_WITH_CALL: Final = (
    sa.select(decisions, actions.c.started_at.label("provider_call_at"))
    .select_from(decisions.outerjoin(actions, actions.c.id == decisions.c.action_id))
)


# --- helpers ----------------------------------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: object) -> str:
    """JSON text for a column. ASCII-only (``ensure_ascii``): any Python string, even one holding a lone surrogate
    (which has no UTF-8 form, so no driver can send it), becomes storable text, and a NUL is escaped too; the API
    refuses such input at the door, this keeps anything else (a Prometheus label, a provider's answer) from
    making a whole transaction fail."""
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _check_limit(limit: int) -> int:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return limit


def _unique(keys: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(keys))


def _group_from_row(row: Row[Any]) -> GroupState:
    return GroupState(name=row.name, desired=row.desired, last_scale_out_at=row.last_scale_out_at,
                      last_scale_in_at=row.last_scale_in_at, updated_at=row.updated_at, held_until=row.held_until)


def _pause_from_row(row: Row[Any]) -> Pause:
    return Pause(scope=row.scope, since=row.since, until=row.until, reason=row.reason)


def _approval_from_row(r: Row[Any]) -> PendingApproval:
    return PendingApproval(
        decision_id=r.decision_id, group=r.group_name, kind=ApprovalKind(r.kind), policy=r.policy,
        trigger=Trigger(r.trigger), step=r.step, from_capacity=r.from_capacity, to_capacity=r.to_capacity,
        targets=tuple(HealTarget(**t) for t in json.loads(r.targets or "[]")), why=r.why, message=r.message,
        created_at=r.created_at, expires_at=r.expires_at, state=ApprovalState(r.state), resolved_at=r.resolved_at,
        resolved_by=r.resolved_by, resolution_id=r.resolution_id)


def _decision_from_row(r: Row[Any]) -> Decision:
    return Decision(id=r.id, group=r.group_name, policy=r.policy, trigger=Trigger(r.trigger),
                    outcome=Outcome(r.outcome), reason=Reason(r.reason), from_capacity=r.from_capacity,
                    to_capacity=r.to_capacity, message=r.message, alerts=json.loads(r.alerts),
                    notification_id=r.notification_id, alert_starts_at=r.alert_starts_at,
                    received_at=r.received_at, decided_at=r.decided_at, provider_call_at=r.provider_call_at,
                    action_id=r.action_id)


def _action_from_row(row: Row[Any]) -> Action:
    return Action(id=row.id, decision_id=row.decision_id, group=row.group_name,
                  from_capacity=row.from_capacity, desired=row.desired, state=ActionState(row.state),
                  attempts=row.attempts, not_before=row.not_before, created_at=row.created_at,
                  started_at=row.started_at, finished_at=row.finished_at, error=row.error, result=row.result,
                  kind=row.kind, targets=tuple(HealTarget(**t) for t in json.loads(row.targets or "[]")))


def _alert_from_row(row: Row[Any]) -> ActiveAlert:
    return ActiveAlert(group=row.group_name, policy=row.policy, fingerprint=row.fingerprint,
                       labels=json.loads(row.labels), starts_at=row.starts_at, last_seen_at=row.last_seen_at,
                       notification_id=row.notification_id, last_reason=row.last_reason)
