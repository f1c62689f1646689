"""A group's ``predict`` section in the policy file: the defaults, the rules it gives ``decide.prediction``, and every
mistake reported with its path; per-direction tolerances of ``track``."""

from __future__ import annotations

import pytest

from alertscaler.config import load_policy
from alertscaler.model.errors import ConfigError

TRACK = "track: {metrics: [{query: 'per_member', target: 28}]}"
PREDICT = "query: 'sum(rate(requests_total[5m]))', per_instance: 28"


def text(group: str) -> str:
    return (f"server: {{auth: {{insecure_no_auth: true}}}}\ngroups:\n  web:\n    provider: {{type: fake}}\n"
            f"    min_size: 1\n    max_size: 20\n{group}")


def problems(group: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_policy(text(group))
    return {p.path: p.message for p in info.value.problems}


def test_the_defaults() -> None:
    policy = load_policy(text(f"    {TRACK}\n    predict: {{{PREDICT}}}\n"))
    web = policy.groups["web"]
    # checked with the other queries alertscaler runs itself (alertscaler check: promtool)
    assert ("groups.web.predict.query", "sum(rate(requests_total[5m]))") in policy.queries()
    assert web.predict is not None
    rules = web.predict.rules()
    assert (rules.per_instance, rules.seasons, rules.step, rules.lead) == (28.0, (86400.0, 604800.0), 300.0, 120.0)
    assert (rules.history, rules.refit, rules.quantile) == (21 * 86400.0, 86400.0, web.predict.quantile)
    assert rules.smoothing.level is None  # chosen at each fit
    assert (rules.quantile, rules.min_skill) == (0.5, 0.3)
    assert web.predict.forecast_only is False


def test_every_setting() -> None:
    web = load_policy(text(
        f"    {TRACK}\n    predict: {{{PREDICT}, seasons: [1h, 1d], step: 1m, lead: 3m, history: 4d, refit: 6h, "
        "quantile: 0.9, min_skill: 0.2, smoothing: {level: 0.4, trend: 0.05, damping: 1, season: 0.2}, "
        "forecast_only: true}\n")).groups["web"]
    assert web.predict is not None
    rules = web.predict.rules()
    assert (rules.seasons, rules.step, rules.lead, rules.history, rules.refit) == (
        (3600.0, 86400.0), 60.0, 180.0, 4 * 86400.0, 21600.0)
    assert (rules.quantile, rules.min_skill, rules.smoothing.level, rules.smoothing.damping) == (0.9, 0.2, 0.4, 1.0)
    assert web.predict.forecast_only is True


@pytest.mark.parametrize(("predict", "path", "fragment"), [
    ("{per_instance: 28}", "groups.web.predict.query", "required"),
    ("{query: q, per_instance: 0}", "groups.web.predict.per_instance", "greater than 0"),
    (f"{{{PREDICT}, seasons: [7m]}}", "groups.web.predict", "not a whole number of steps"),
    (f"{{{PREDICT}, seasons: [1w], history: 10d}}", "groups.web.predict", "could never be learned"),
    (f"{{{PREDICT}, seasons: [], history: 30m}}", "groups.web.predict", "fewer than 12 steps"),
    (f"{{{PREDICT}, quantile: 0.4}}", "groups.web.predict.quantile", "greater than or equal to 0.5"),
    (f"{{{PREDICT}, smoothing: {{level: fast}}}}", "groups.web.predict.smoothing.level", "auto"),
    (f"{{{PREDICT}, lead: soon}}", "groups.web.predict.lead", "must be a duration"),
    (f"{{{PREDICT}, forecast: true}}", "groups.web.predict.forecast", "unknown key"),
], ids=["no-query", "zero-per-instance", "season-not-whole-steps", "history-too-short-for-season",
        "history-too-short", "quantile-below-median", "bad-level", "bad-lead", "unknown-key"])
def test_mistakes_are_named_with_their_path(predict: str, path: str, fragment: str) -> None:
    found = problems(f"    {TRACK}\n    predict: {predict}\n")
    assert fragment in found.get(path, ""), found


def test_predict_needs_track() -> None:
    found = problems(f"    predict: {{{PREDICT}}}\n")
    assert "predict needs a track section" in found["groups.web.predict"], found


def test_track_directions_have_their_own_tolerance() -> None:
    web = load_policy(text("    track: {metrics: [{query: q, target: 28}], tolerance: 0.1, scale_up: {tolerance: 0}, "
                           "scale_down: {tolerance: 0.2, stabilization: 2m}}\n")).groups["web"]
    assert web.track is not None
    rules = web.track.rules(web.bounds)
    assert (rules.tolerance_up, rules.tolerance_down, rules.scale_down.stabilization) == (0.0, 0.2, 120.0)
    assert rules.scale_up.limits == ()  # a direction given replaces HPA's default limits, as before
    assert "less than 1" in problems("    track: {metrics: [{query: q, target: 28}], scale_up: {tolerance: 1}}\n")[
        "groups.web.track.scale_up.tolerance"]
