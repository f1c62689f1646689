"""What a run of ``alertscaler demo`` did, for the final report: ``Summary`` (how it ended, the decisions,
scale-outs and scale-ins, sizes, the requests, the heal demo and every heal decision with the instances it
names, processes left behind, where the logs are) and its ``lines()``.

Filled and printed by ``demo.running``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from alertscaler.demo.load_stats import Snapshot
from alertscaler.demo.view_states import DecisionRow

__all__ = ["Summary"]


@dataclass
class Summary:
    """What the run did, for the final report."""

    how: str  # finished | interrupted | failed
    stopped_by: str = "Ctrl-C"  # when interrupted
    elapsed: float = 0.0
    duration: float = 0.0
    decisions: list[DecisionRow] = field(default_factory=list)  # oldest first
    max_current: int = 0
    final_current: int | None = None
    load: Snapshot | None = None
    workdir: Path | None = None  # kept
    saved: Path | None = None  # a copy of the logs and configuration (after a failure)
    left_behind: list[int] = field(default_factory=list)  # pids still carrying the stack's marker at the end
    killed: str | None = None  # the instance the heal demo killed

    @property
    def scale_outs(self) -> list[DecisionRow]:
        return [d for d in self.decisions if d.scale_out]

    @property
    def scale_ins(self) -> list[DecisionRow]:
        return [d for d in self.decisions if d.scale_in]

    @property
    def largest(self) -> int:
        sizes = [d.to_capacity for d in self.decisions if d.outcome == "acted" and d.to_capacity is not None]
        return max([self.max_current, *sizes])

    @property
    def heal_decisions(self) -> list[DecisionRow]:
        """Every decision of the heal policy (signals batched, judged, healed, dropped)."""
        return [d for d in self.decisions if d.policy == "heal"]

    def heal_line(self) -> str:
        """How many heal decisions, their reasons, and the instances they are about — the killed one alone when
        scale-ins are quiet (members removed on purpose leave discovery before they stop)."""
        heals = self.heal_decisions
        if not heals:
            return "  heal decisions: none"
        reasons: dict[str, int] = {}
        for d in heals:
            reasons[d.reason] = reasons.get(d.reason, 0) + 1
        counts = ", ".join(f"{reason} {n}" for reason, n in reasons.items())
        members = list(dict.fromkeys(m for d in heals for m in d.members))
        others = [m for m in members if m != self.killed]
        if self.killed is not None and not others:
            about = f"all about the killed {self.killed}" if members else "naming no instance"
        else:
            about = "about " + ", ".join(members) if members else "naming no instance"
            if self.killed is not None:
                about += f" (NOT only the killed {self.killed}: {', '.join(others)})"
        return f"  heal decisions: {len(heals)} ({counts}), {about}"

    def _heal_outcome(self) -> str:
        heals = [d for d in self.decisions if d.policy == "heal" and d.outcome == "acted"]
        if heals:
            return "; ".join(f"{d.reason} at {_clock(d.at or 0)}: {d.message}" for d in heals)
        killed = self.killed or ""
        if killed and any(d.policy == "heal" and d.reason == "unknown_member" and killed in d.message
                          for d in self.decisions):
            # a scale action running at that moment replaced the dead instance first: the heal found it gone
            return "replaced while scaling (a scale action restored the size before the heal's window closed)"
        return "no heal recorded before the end"

    def lines(self) -> list[str]:
        verb = {"finished": "finished", "interrupted": f"stopped early ({self.stopped_by})",
                "failed": "failed"}[self.how]
        out = [f"alertscaler demo {verb} after {_clock(self.elapsed)} of {_clock(self.duration)}"]
        steps = ", ".join(f"{d.from_capacity}→{d.to_capacity} at {_clock(d.at or 0)}"
                          for d in self.decisions if d.scale_out or d.scale_in)
        out.append(f"  scale-outs: {len(self.scale_outs)}, scale-ins: {len(self.scale_ins)}, largest size: "
                   f"{self.largest}" + ("" if self.final_current is None else f", final size: {self.final_current}"))
        if steps:
            out.append(f"  size changes: {steps}")
        if self.killed is not None:
            out.append(f"  heal demo: killed {self.killed}; {self._heal_outcome()}")
        if self.killed is not None or self.heal_decisions:
            out.append(self.heal_line())
        if self.load is not None:
            t = self.load.totals
            other = t.http_errors + t.connection_errors + t.timeouts
            out.append(f"  requests: sent {t.sent}, ok {t.ok}, 503 (overloaded) {t.overloaded}, other errors {other}"
                       + (f", not sent (no instance) {t.no_target + t.dropped}" if t.no_target + t.dropped else ""))
        out.append(f"  processes LEFT BEHIND: {self.left_behind}" if self.left_behind
                   else "  every process stopped: none left behind")
        if self.workdir is not None:
            out.append(f"  working directory kept: {self.workdir} (logs in {self.workdir / 'logs'})")
        elif self.saved is not None:
            out.append(f"  logs and configuration saved in {self.saved}")
        return out


def _clock(seconds: float) -> str:
    whole = int(abs(seconds))
    sign = "-" if seconds < 0 and whole else ""
    return f"{sign}{whole // 60}:{whole % 60:02d}"
