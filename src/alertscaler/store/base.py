"""The StateStore Protocol: what ``act``, ``api`` and ``service`` may ask of the durable state.

Implemented by ``store.sql.SqlStore`` (SQLite by default, PostgreSQL for HA). Every method raises
``StoreUnavailable`` when the database cannot be reached, is locked for too long or is out of space;
other database failures raise ``StoreError``. Times are timezone-aware UTC datetimes, passed in by the
caller (the store never reads the clock), so tests control time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from alertscaler.model.alarms import AlarmStatus, Transition
from alertscaler.model.alerts import Notification
from alertscaler.model.approvals import ApprovalState, PendingApproval
from alertscaler.model.controls import Pause
from alertscaler.model.decisions import Action, ActionState, Decision, HealTarget, Outcome, Reason, Trigger
from alertscaler.model.groups import GroupState
from alertscaler.model.healing import HealRecord, HealSignal
from alertscaler.model.notifications import Attempt, AttemptOutcome, DeliveryStatus, NewOutgoing, Outgoing
from alertscaler.model.removals import RemovedMember
from alertscaler.model.signals import AlarmState, SignalSource
from alertscaler.model.signing import SignedUrl, SigningKey

_T = TypeVar("_T")


@dataclass(frozen=True)
class Receipt:
    """Result of recording one webhook call. ``new`` + ``duplicates`` = number of alerts in it."""

    notification_id: int
    new: int
    duplicates: int
    new_keys: frozenset[str] = frozenset()  # the dedup keys this notification was the first to record


@dataclass(frozen=True)
class StoredNotification:
    """A recorded notification waiting to be turned into decisions.

    ``new_keys``: the dedup keys (``Alert.dedup_key``) that THIS notification was the first to record;
    its other alerts are duplicates of earlier notifications.
    """

    id: int
    received_at: datetime
    body: dict[str, Any]
    new_keys: frozenset[str]


@dataclass(frozen=True)
class NewDecision:
    group: str | None
    policy: str | None
    trigger: Trigger
    outcome: Outcome
    reason: Reason
    from_capacity: int | None
    to_capacity: int | None
    message: str
    decided_at: datetime
    alerts: list[dict[str, Any]] = field(default_factory=list)
    notification_id: int | None = None
    alert_starts_at: datetime | None = None
    received_at: datetime | None = None


@dataclass(frozen=True)
class ActiveAlert:
    """A firing alert routed to a group's policy, kept until it resolves (or goes stale)."""

    group: str
    policy: str
    fingerprint: str
    labels: dict[str, str]
    starts_at: datetime
    last_seen_at: datetime
    notification_id: int
    last_reason: str | None = None


@dataclass(frozen=True)
class AlertRoute:
    """What the active alerts of one (group, policy) amount to: how many, the oldest confirmation, and how
    many carry each ``last_reason`` (None: no decision recorded for them yet)."""

    group: str
    policy: str
    count: int
    oldest_seen_at: datetime
    reasons: dict[str | None, int]


@dataclass(frozen=True)
class PendingSignal:
    """A stored heal signal not yet judged (``id``: to mark it judged)."""

    id: int
    signal: HealSignal


@dataclass(frozen=True)
class Lease:
    """A RUNNING action's owner and until when it holds the action. Set by ``claim_action`` /
    ``add_action(claim=True)`` / ``take_over_action``, renewed by ``heartbeat``."""

    owner: str
    until: datetime


@dataclass(frozen=True)
class ReplicaInfo:
    """One alertscaler process sharing the store; live while ``expires_at`` is after the caller's now."""

    id: str
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    stopped_at: datetime | None = None


@dataclass(frozen=True)
class ActionLease:
    """Who holds a RUNNING action (``owner`` None: nobody — never leased, e.g. left by an older version)."""

    action_id: int
    group: str
    owner: str | None
    until: datetime | None


class Tx(Protocol):
    """One atomic unit of work. Everything done through it commits together or not at all."""

    def lock_group(self, name: str, initial_desired: int) -> GroupState:
        """Return the group's state, creating it with ``initial_desired`` if missing, and hold a lock on it
        (PostgreSQL: row lock; SQLite: the write transaction) until the end of the transaction."""

    def lock_groups(self, initial: Mapping[str, int]) -> dict[str, GroupState]:
        """``lock_group`` for many groups (name → initial desired) in a few statements, not two per group;
        the locks are taken in name order."""

    def save_group(self, state: GroupState) -> None: ...

    def record_notifications(self, items: Sequence[tuple[Notification, datetime]],
                             processed_at: datetime | None = None) -> list[Receipt]:
        """``StateStore.record_notifications`` inside this transaction. With ``processed_at`` the
        notifications are recorded as processed: the caller turns them into decisions in the same
        transaction (one commit for both)."""

    def add_decision(self, decision: NewDecision) -> int: ...

    def add_skip(self, decision: NewDecision) -> None:
        """Record a decision whose id the caller does not need (a skip). It may be written later in the
        transaction — batched with others, always before the commit and in the order of the calls."""

    def add_action(self, decision_id: int, group: str, from_capacity: int, desired: int, now: datetime,
                   claim: bool = False, targets: Sequence[HealTarget] = (), lease: Lease | None = None) -> int:
        """Create a pending action for an acted decision (and link the decision to it). With ``claim`` the
        action is created already RUNNING (attempts 1, started_at ``now``, held by ``lease`` if given) if the
        group has no other unfinished action, for the caller to execute at once; ``claimed_action`` tells
        whether it was."""

    def claimed_action(self, action_id: int) -> bool:
        """True if ``action_id`` (created in this transaction) was created RUNNING by ``add_action(claim=True)``."""

    def rebase_next_action(self, group: str, planned_from: int, real_from: int) -> int | None:
        """The group's next PENDING action, if it is a scale action planned from ``planned_from`` (the target
        of an action that failed for good), now starts from ``real_from`` (the size the group really has): its
        provider call then tells the real starting point. Returns the next PENDING action's id (rebased or
        not: a newer decision is queued), or None when nothing is queued. Call with the group locked."""

    def upsert_active_alert(self, alert: ActiveAlert) -> None:
        """Insert, or refresh labels / last_seen_at / notification_id of, the (group, policy, fingerprint) row.
        A refresh keeps ``last_reason``."""

    def upsert_active_alerts(self, alerts: Sequence[ActiveAlert], reason: str | None = None,
                             set_reason: bool = False) -> None:
        """``upsert_active_alert`` for many; with ``set_reason`` the rows' ``last_reason`` becomes ``reason``
        (inserted or refreshed). May be written later in the transaction, batched, before anything that
        reads or changes active alerts and before the commit, in the order of the calls."""

    def set_alert_reason(self, group: str, policy: str, fingerprint: str, reason: str | None) -> None: ...

    def set_alert_reasons(self, group: str, policy: str, fingerprints: Sequence[str], reason: str | None) -> None:
        """``set_alert_reason`` for many alerts of one route at once (one batched statement)."""

    def remove_active_alert(self, group: str, policy: str, fingerprint: str) -> bool:
        """Forget a resolved / stale alert. True if it was active."""

    def route_summary(self, group: str, policy: str) -> AlertRoute | None:
        """``StateStore.active_alert_routes`` for one route, inside this transaction (None: no alert)."""

    def route_alerts(self, group: str, policy: str, limit: int) -> list[ActiveAlert]:
        """Up to ``limit`` active alerts of a route, the earliest started first."""

    def remove_stale_alerts(self, group: str, policy: str, seen_before: datetime) -> list[ActiveAlert]:
        """Forget the route's alerts last confirmed before ``seen_before``; return them."""

    def set_route_reason(self, group: str, policy: str, reason: str | None) -> None:
        """Set ``last_reason`` of every active alert of the route (one statement)."""

    def drop_route(self, group: str, policy: str) -> int:
        """Forget every active alert of the route (its policy is gone); return how many."""

    # --- healing
    def add_heal_signals(self, group: str, signals: Sequence[HealSignal], notification_id: int | None = None) -> int:
        """Store heal signals (a repeat of a pending signal of the same member and source is skipped)."""

    def pending_heal_signals(self, group: str) -> list[PendingSignal]: ...

    def consume_heal_signals(self, ids: Sequence[int], decision_id: int) -> None:
        """Mark signals judged by ``decision_id``."""

    def drop_heal_signals(self, ids: Sequence[int]) -> None:
        """Delete signals judged without a decision of their own (about a removed member already reported)."""

    def heal_history_in(self, group: str, since: datetime) -> list[HealRecord]: ...

    def heal_slots(self, group: str) -> dict[str, str]:
        """Replacement member id -> the slot it took over."""

    # --- members removed on purpose (model.removals)
    def removed_members_of(self, group: str, now: datetime) -> list[RemovedMember]:
        """The members of ``group`` remembered as removed at ``now`` (removing, or stopped within ``REMEMBER``)."""

    def mark_removed_reported(self, group: str, member_ids: Sequence[str], now: datetime) -> list[str]:
        """Claim each member's one ``removed_member`` decision: the ids not reported before (now they are)."""

    # --- operators' pauses
    def pauses(self) -> list[Pause]:
        """Every stored pause (expired ones too: ``Pause.holds``), read once per transaction."""

    def set_pause(self, pause: Pause) -> None:
        """Pause ``pause.scope`` (a group, or ``*``: every group), replacing its earlier pause."""

    def clear_pause(self, scope: str) -> Pause | None:
        """Resume ``scope``: the pause removed (None: it was not paused)."""

    # --- approvals (changes waiting for an operator)
    def pending_approvals(self, group: str) -> list[PendingApproval]:
        """The group's pending approvals (expired ones not yet marked included), oldest first."""

    def add_approval(self, approval: PendingApproval, decision_message: str | None = None) -> None:
        """Keep a change that waits (its ``pending_approval`` decision added first, in this transaction);
        ``decision_message`` rewrites that decision's message (it names the approval's id, known only now)."""

    def get_approval(self, decision_id: int, lock: bool = False) -> PendingApproval | None:
        """One approval; ``lock``: held until the end of the transaction (lock the group's row first)."""

    def resolve_approval(self, decision_id: int, state: ApprovalState, now: datetime, by: str,
                         resolution_id: int | None) -> bool:
        """End a PENDING approval as ``state``; False when it was no longer pending."""

    # --- alarms (model.alarms; store.sql_alarms)
    def lock_alarm_states(self, keys: Sequence[tuple[str, str]], now: datetime,
                          ) -> dict[tuple[str, str], AlarmStatus]:
        """The stored states of (alarm, dims_key) ``keys`` (absent: never stored), locked until the end of the
        transaction (in key order); every key locked must then be saved (``save_alarm_state``)."""

    def save_alarm_state(self, status: AlarmStatus, now: datetime) -> None: ...

    def add_alarm_transitions(self, transitions: Sequence[Transition], recorded_at: datetime,
                              notification_id: int | None = None) -> list[int]: ...

    # --- the notification outbox (model.notifications; store.sql_outbox)
    def enqueue_notifications(self, items: Sequence[NewOutgoing], now: datetime) -> list[int]:
        """Put notifications in the outbox, due at ``now`` (with the transition that causes them)."""

    # --- signed URLs and outside signals (model.signing, model.signals; store.sql_signals)
    def signing_keys(self) -> list[SigningKey]:
        """Every signing key id, oldest first (retired ones too)."""

    def add_signing_key(self, kid: str, now: datetime) -> SigningKey: ...

    def retire_signing_keys(self, keep: str, now: datetime) -> list[str]:
        """Retire every key but ``keep`` not yet retired; their ids."""

    def add_signed_url(self, url: SignedUrl) -> None: ...

    def get_signed_url(self, url_id: str) -> SignedUrl | None: ...

    def revoke_signed_url(self, url_id: str, now: datetime) -> SignedUrl | None:
        """Revoke a URL (a revoked one keeps its first revocation); the URL after (None: no such URL)."""

    def mark_url_used(self, url_id: str, now: datetime) -> None: ...

    def claim_signal(self, source: SignalSource, key: str | None, url_id: str | None, alarm: str, state: AlarmState,
                     body: str, now: datetime) -> tuple[int, list[int] | None]:
        """Record an outside signal, claiming its de-duplication ``key`` (None: always new): (its id, None) when
        new, else (the first one's id, the decisions it gave). Call it first in the transaction."""

    def set_signal_decisions(self, signal_id: int, decision_ids: Sequence[int]) -> None: ...

    def mark_processed(self, notification_id: int, now: datetime) -> bool:
        """Claim the notification for processing in this transaction. False if it was already processed (or
        another replica's transaction claimed it first): the caller must then decide nothing for it.
        Call it FIRST in the transaction: on PostgreSQL the row lock it takes serialises replicas."""


class StateStore(Protocol):
    def migrate(self) -> None:
        """Create or upgrade the schema (alembic). Idempotent."""

    def ping(self) -> None:
        """Raise StoreUnavailable if the store cannot be used right now."""

    def close(self) -> None: ...

    def write_busy(self) -> bool:
        """True while this process has a write transaction open and a new one would have to wait."""

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a short store call for a caller on the event loop: the store decides whether it runs right
        there (embedded SQLite, no write transaction of ours open) or in a worker thread."""

    def prune(self, before: datetime, batch: int = 2000) -> dict[str, int]:
        """Delete what is finished and older than ``before`` (retention); rows deleted per table."""

    # --- ingest -----------------------------------------------------------------------------------
    def record_notification(self, notification: Notification, received_at: datetime) -> Receipt:
        """Durably store the notification and claim its alerts' dedup keys, in one transaction.
        Returns only after the commit. A key already claimed by an earlier notification is a duplicate."""

    def record_notifications(self, items: Sequence[tuple[Notification, datetime]]) -> list[Receipt]:
        """``record_notification`` for several notifications in ONE transaction (group commit: one fsync
        for a burst of webhooks). Within the batch, earlier notifications claim keys first."""

    def pending_notifications(self, limit: int = 100) -> list[StoredNotification]:
        """Recorded but not yet processed notifications, oldest first."""

    def transaction(self) -> AbstractContextManager[Tx]: ...

    def notification_body(self, notification_id: int) -> dict[str, Any] | None:
        """The raw webhook body of a recorded notification (for providers that pass it on, like exec)."""

    # --- groups -----------------------------------------------------------------------------------
    def group_states(self) -> list[GroupState]: ...

    def get_group_state(self, name: str) -> GroupState | None: ...

    def pauses(self) -> list[Pause]:
        """Every stored pause (expired ones too: ``Pause.holds`` tells), ordered by scope."""

    def approvals(self, group: str | None = None, pending_only: bool = True, limit: int = 100,
                  ) -> list[PendingApproval]:
        """Approvals, newest first: the pending ones (or every kept one), optionally of one group."""

    def get_approval(self, decision_id: int) -> PendingApproval | None: ...

    def due_approvals(self, now: datetime) -> list[PendingApproval]:
        """Pending approvals whose expiry is at or before ``now``, oldest first."""

    # --- decisions --------------------------------------------------------------------------------
    def list_decisions(
        self,
        group: str | None = None,
        outcome: Outcome | None = None,
        reason: Reason | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Decision]:
        """Newest first. ``Decision.provider_call_at`` is the linked action's first start, if any."""

    def get_decision(self, decision_id: int) -> Decision | None: ...

    # --- actions ----------------------------------------------------------------------------------
    def list_actions(self, group: str | None = None, state: ActionState | None = None,
                     limit: int = 100) -> list[Action]:
        """Newest first."""

    def get_action(self, action_id: int) -> Action | None: ...

    def next_action(self, group: str) -> Action | None:
        """The group's oldest unfinished action (pending or running), whatever its ``not_before``."""

    def claim_action(self, action_id: int, now: datetime, lease: Lease | None = None) -> Action | None:
        """Atomically move a PENDING action to RUNNING (attempts + 1; started_at set on the first claim), held
        by ``lease`` if given. None if it was not pending (another worker or replica has it)."""

    def release_action(self, action_id: int, not_before: datetime, error: str,
                       called_at: datetime | None = None, owner: str | None = None) -> None:
        """RUNNING → PENDING after a temporary error; it may be claimed again from ``not_before``.
        ``called_at``: when the provider was actually called; on the first attempt it replaces ``started_at``
        (the claim time), so that ``provider_call_at`` is the real call. With ``owner``: only while that
        replica still holds the action (a peer that took it over meanwhile wins; logged)."""

    def finish_action(self, action_id: int, state: ActionState, now: datetime,
                      result: str | None = None, error: str | None = None,
                      called_at: datetime | None = None, owner: str | None = None) -> None:
        """RUNNING (or PENDING) → SUCCEEDED / FAILED. ``called_at`` and ``owner`` as for ``release_action``."""

    def running_actions(self) -> list[Action]:
        """Every RUNNING action, whoever holds it (see ``expired_actions`` for those a replica may recover)."""

    # --- replicas and leases (several replicas on one store) --------------------------------------
    def act_as(self, claims: Callable[[str, datetime], Lease | None] | None) -> None:
        """Set how ``Tx.add_action(claim=True)`` without a ``lease`` claims for this process: ``claims(group,
        now)`` gives the lease, or None to leave the action pending (another replica drives the group)."""

    def heartbeat(self, replica: str, now: datetime, until: datetime) -> frozenset[int]:
        """The replica is alive until ``until`` (its row is created on the first call) and so are the leases
        of every RUNNING action it holds: one transaction, one statement for all the actions. Returns the
        ids of the actions renewed — an action the caller runs that is missing was taken over by a peer
        (this replica's lease had expired): the caller must stop treating it as its own."""

    def leave(self, replica: str, now: datetime) -> list[int]:
        """A clean stop: the replica is dead from ``now``, its groups are released and the leases of the
        RUNNING actions it still holds expire at ``now`` (handed back: a peer takes them over at once, as it
        would after a crash). Returns the ids of the actions handed back."""

    def live_replicas(self, now: datetime) -> list[ReplicaInfo]:
        """Replicas whose heartbeat holds at ``now``, ordered by id."""

    def expired_actions(self, now: datetime) -> list[Action]:
        """RUNNING actions whose lease expired before ``now`` or that never had one: their replica died
        (or stopped and handed them back). Oldest first. Only these may be recovered, via ``take_over_action``."""

    def take_over_action(self, action_id: int, now: datetime, lease: Lease) -> Action | None:
        """Atomically make ``lease`` the holder of a RUNNING action whose lease has expired (one conditional
        UPDATE: of two replicas trying, one wins). None if the action is not running or its lease still
        holds (a live peer runs it: never touch it). The action stays RUNNING, attempts unchanged: the
        caller then settles it as after a crash (resume, reconcile, fail)."""

    def action_lease(self, action_id: int) -> ActionLease | None:
        """Who holds a RUNNING action (None: the action is not running or does not exist)."""

    def balance_groups(self, replica: str, groups: Sequence[str], now: datetime) -> frozenset[str]:
        """Spread ``groups`` over the live replicas by rendezvous hashing (``store.replicas``) and return the
        groups ``replica`` drives from now on. In one transaction (serialised between replicas): the
        replica releases the groups it holds that hash to another live replica — except a group whose action
        it is still running (it keeps it until the action ends) — and takes those that hash to it and are
        free, held by itself, or held by a replica that is no longer live. A group another live replica
        still holds is not taken: it moves at that replica's next ``balance_groups``. Nothing is owned by
        a replica that is not live at ``now`` (call ``heartbeat`` first)."""

    def group_owners(self, now: datetime) -> dict[str, str]:
        """Group → the live replica that drives it (groups released or held by a dead replica are absent)."""

    def active_alerts(self, group: str | None = None) -> list[ActiveAlert]: ...

    # --- alarms -------------------------------------------------------------------------------------
    def alarm_states(self, alarm: str | None = None) -> list[AlarmStatus]:
        """The stored state of every alarm and dimension set (or of one alarm), by alarm and dimensions."""

    def alarm_history(self, alarm: str, limit: int = 100, dimensions: Mapping[str, str] | None = None,
                      ) -> list[tuple[Transition, list[str]]]:
        """An alarm's transitions, newest first, each with the actions that were due on it."""

    # --- the notification outbox (store.sql_outbox) -------------------------------------------------
    def due_notifications(self, now: datetime, limit: int = 50) -> list[Outgoing]:
        """Pending notifications due at ``now`` that nobody holds a claim on, the longest due first."""

    def next_notification_due(self) -> datetime | None:
        """When the earliest pending notification is due (None: nothing pending)."""

    def claim_notification(self, notification_id: int, replica: str, now: datetime,
                           until: datetime) -> Outgoing | None:
        """Claim a due notification until ``until`` (None: not due, not pending, or another's claim holds)."""

    def finish_notification(self, notification_id: int, replica: str, attempt: Attempt,
                            outcome: AttemptOutcome) -> bool:
        """Record an attempt and move the row on, releasing the claim (False: the claim was no longer ours)."""

    def list_notifications(self, alarm: str | None = None, status: DeliveryStatus | None = None,
                           method: str | None = None, since: datetime | None = None,
                           limit: int = 100) -> list[Outgoing]:
        """Notifications, newest first, each with its attempts."""

    def get_notification(self, notification_id: int) -> Outgoing | None: ...

    def pending_heal_groups(self) -> list[tuple[str, datetime]]:
        """Groups with pending heal signals, with the arrival of the oldest (the batch window's start)."""

    def add_heal_records(self, group: str, records: Sequence[tuple[HealRecord, int | None, str | None]]) -> None:
        """Heals done: (record, action id, replacement id)."""

    def heal_history(self, group: str, since: datetime) -> list[HealRecord]: ...

    def removed_members(self, now: datetime, group: str | None = None) -> list[RemovedMember]:
        """Every member remembered as removed at ``now`` (optionally of one group), by group and member id."""

    def add_removing(self, group: str, members: Sequence[tuple[str, str | None]], why: str, now: datetime) -> None:
        """Members (id, address) leave discovery at ``now`` (``removing``); forgets those no longer remembered."""

    def mark_removed(self, group: str, member_ids: Sequence[str], now: datetime) -> None:
        """The ``removing`` members are stopped: ``removed`` from ``now``."""

    def forget_removing(self, group: str, member_ids: Sequence[str]) -> None:
        """Removals abandoned (the members stay): their ``removing`` rows are deleted."""

    def signing_keys(self) -> list[SigningKey]:
        """Every signing key id, oldest first (retired ones too)."""

    def signed_urls(self, group: str | None = None, limit: int = 100) -> list[SignedUrl]:
        """Signed URLs, newest first (revoked and expired ones too), optionally of one group's."""

    def get_signed_url(self, url_id: str) -> SignedUrl | None: ...

    def active_alert_routes(self) -> list[AlertRoute]:
        """One summary per (group, policy) with active alerts, ordered by group and policy: one aggregate
        query, however many alerts are active (the re-evaluation timer reads alerts only when it acts)."""
