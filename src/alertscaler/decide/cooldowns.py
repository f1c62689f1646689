"""Cooldown clocks: one per group and direction. Called by ``decide.evaluator``."""

from __future__ import annotations

from datetime import datetime, timedelta


def cooldown_remaining(last_step_at: datetime | None, cooldown_s: float, now: datetime) -> float:
    """Seconds until the cooldown ends (0 when it has ended or never started)."""
    if last_step_at is None or cooldown_s <= 0:
        return 0.0
    left = (last_step_at + timedelta(seconds=cooldown_s) - now).total_seconds()
    return max(0.0, left)
