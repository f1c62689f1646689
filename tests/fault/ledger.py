"""The fault suite's checker: what really ran (the fake cloud's ledger) against what the service says (its store,
read through the HTTP API), and what the senders were answered. Pure: everything is passed in.

``check(evidence)`` returns one ``Violation`` per broken promise:

- ``lost``: a notification answered 200 has no decision, or one of its alerts is in none of its decisions;
- ``doubled``: an action id whose command applied its change more than once;
- ``stale``: a change applied to a real size other than the one the service planned from (``from``): the
  service's view was wrong, e.g. the same change applied twice by two actions, or a change missed;
- ``overlap``: two commands of one group running at the same time;
- ``input_5xx``: a 5xx answered to a request (whatever its body: bad input must get a 4xx, and a valid one
  a 200; a 503 that the sender retried until it got an answer is counted in ``Evidence.retried_503``);
- ``diverged``: at the end, a group whose desired capacity differs from its real size;
- ``unfinished``: at the end, an action still pending or running;
- ``history``: an action recorded ``failed`` whose command applied its change, or ``succeeded`` whose command
  never did. An action interrupted by a ``kill -9`` is settled at recovery as what it was, verified by the
  provider (``succeeded``, or ``failed``: judged by the ledger like any other), or — when the provider cannot
  verify it (an ``exec`` group without ``status_command``) — recorded ``failed`` with an error starting
  ``outcome unknown``: that is honest whether or not its command ran, and counted in ``outcome_unknown``. A
  ``failed`` whose command ran is a violation unless its error says so;
- ``unverifiable``: the API could not show everything (a page limit), so the run proves nothing.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Command:
    """One ledger line: a command that finished (``ok``: it applied its change)."""

    action: int
    group: str
    from_: int
    to: int
    real_before: int
    real_after: int
    start: float
    end: float
    pid: int
    outcome: str

    @classmethod
    def parse(cls, line: str) -> Command:
        d = json.loads(line)
        return cls(action=int(d["action"]), group=str(d["group"]), from_=int(d["from"]), to=int(d["to"]),
                   real_before=int(d["real_before"]), real_after=int(d["real_after"]), start=float(d["start"]),
                   end=float(d["end"]), pid=int(d["pid"]), outcome=str(d["outcome"]))


def read_ledger(path: Path) -> list[Command]:
    if not path.exists():
        return []
    return [Command.parse(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class Accepted:
    """A notification answered 200: its id and the fingerprints of its alerts."""

    notification_id: int
    fingerprints: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    """One HTTP answer worth keeping: what was sent (a short description) and the status."""

    what: str
    status: int
    body: str = ""


@dataclass
class Evidence:
    ledger: list[Command]
    accepted: list[Accepted]
    decisions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    desired: dict[str, int]          # group -> desired capacity, from the API
    real: dict[str, int]             # group -> real size, from the fake cloud
    answers: list[Answer] = field(default_factory=list)   # every 5xx and every answer to a bad input
    retried_503: int = 0
    unverifiable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Violation:
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


UNKNOWN = "outcome unknown"  # how an action whose outcome could not be verified is recorded (its error starts so)

KINDS = ("lost", "doubled", "stale", "overlap", "input_5xx", "diverged", "unfinished", "history", "unverifiable")


def check(ev: Evidence) -> list[Violation]:
    out: list[Violation] = []
    out += [Violation("unverifiable", u) for u in ev.unverifiable]
    out += _lost(ev.accepted, ev.decisions)
    applied = [c for c in ev.ledger if c.outcome == "ok"]
    for action, n in sorted(Counter(c.action for c in applied).items()):
        if n > 1:
            out.append(Violation("doubled", f"action {action} applied its change {n} times"))
    for c in applied:
        if c.real_before != c.from_:
            out.append(Violation("stale", f"action {c.action} ({c.group} {c.from_}->{c.to}) ran when the real size "
                                          f"was {c.real_before}"))
    out += _overlaps(ev.ledger)
    for a in ev.answers:
        if a.status >= 500:
            out.append(Violation("input_5xx", f"{a.what}: {a.status} {a.body[:200]}"))
    for group in sorted(set(ev.desired) | set(ev.real)):
        desired, real = ev.desired.get(group), ev.real.get(group)
        if desired != real:
            out.append(Violation("diverged", f"group {group}: desired {desired}, real {real}"))
    for a in ev.actions:
        if a["state"] in ("pending", "running"):
            out.append(Violation("unfinished", f"action {a['id']} ({a['group']} {a['from_capacity']}->"
                                               f"{a['desired']}) still {a['state']}, {a['attempts']} attempts"))
    ran = {c.action for c in applied}
    for a in ev.actions:
        if a["state"] == "failed" and a["id"] in ran and not unknown(a):
            out.append(Violation("history", f"action {a['id']} recorded failed but its command applied the change"
                                            f" (error: {str(a.get('error'))[:160]})"))
        if a["state"] == "succeeded" and a["id"] not in ran:
            out.append(Violation("history", f"action {a['id']} recorded succeeded but no command applied it"))
    return out


def unknown(action: dict[str, Any]) -> bool:
    """Recorded as an outcome that could not be verified (``failed``, error ``outcome unknown: ...``)."""
    return action["state"] == "failed" and str(action.get("error") or "").startswith(UNKNOWN)


def settled_after_interruption(action: dict[str, Any]) -> bool:
    """Settled at recovery with its outcome verified by the provider (after a kill -9 of its replica)."""
    text = str(action.get("result") or action.get("error") or "")
    return text.startswith("settled after an interruption")


def _lost(accepted: Iterable[Accepted], decisions: Iterable[dict[str, Any]]) -> list[Violation]:
    by_notification: dict[int, set[str]] = defaultdict(set)
    decided: set[int] = set()
    for d in decisions:
        nid = d.get("notification_id")
        if nid is None:
            continue
        decided.add(nid)
        for a in d.get("alerts") or ():
            fp = a.get("fingerprint") if isinstance(a, dict) else None
            if fp is not None:
                by_notification[nid].add(fp)
    out = []
    for acc in accepted:
        if acc.notification_id not in decided:
            out.append(Violation("lost", f"notification {acc.notification_id} ({len(acc.fingerprints)} alerts) "
                                         "answered 200, never decided"))
            continue
        missing = [fp for fp in acc.fingerprints if fp not in by_notification[acc.notification_id]]
        if missing:
            out.append(Violation("lost", f"notification {acc.notification_id}: alerts {missing[:5]} "
                                         f"({len(missing)}) in no decision"))
    return out


def _overlaps(ledger: Iterable[Command]) -> list[Violation]:
    out = []
    by_group: dict[str, list[Command]] = defaultdict(list)
    for c in ledger:
        by_group[c.group].append(c)
    for group, commands in sorted(by_group.items()):
        commands.sort(key=lambda c: c.start)
        latest: Command | None = None
        for c in commands:
            if latest is not None and c.start < latest.end:
                out.append(Violation("overlap", f"group {group}: action {c.action} (pid {c.pid}) started "
                                                f"{latest.end - c.start:.3f}s before action {latest.action} "
                                                f"(pid {latest.pid}) ended"))
            if latest is None or c.end > latest.end:
                latest = c
    return out


def summary(ev: Evidence, violations: list[Violation]) -> dict[str, Any]:
    """The figures of a run (for the failure message and RELIABILITY.md)."""
    kinds = Counter(v.kind for v in violations)
    return {
        "accepted_notifications": len(ev.accepted),
        "accepted_alerts": sum(len(a.fingerprints) for a in ev.accepted),
        "decisions": len(ev.decisions),
        "actions": len(ev.actions),
        "commands_ok": sum(c.outcome == "ok" for c in ev.ledger),
        "commands_failed": sum(c.outcome != "ok" for c in ev.ledger),
        "retried_503": ev.retried_503,
        "settled_verified": sum(settled_after_interruption(a) for a in ev.actions),
        "outcome_unknown": sum(unknown(a) for a in ev.actions),
        **{k: kinds.get(k, 0) for k in KINDS},
    }
