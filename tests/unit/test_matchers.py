"""Alertmanager-syntax matchers: parsing and matching, table-driven."""

from __future__ import annotations

import pytest

from alertscaler.ingest.routing import Route, route
from alertscaler.model.matchers import Matcher, MatcherSet
from alertscaler.model.policies import Direction

LABELS = {"alertname": "HighLoad", "severity": "critical", "group": "web"}


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        ('alertname="HighLoad"', True),
        ("alertname=HighLoad", True),
        ('alertname!="HighLoad"', False),
        ('severity=~"crit.*"', True),
        ('severity=~"crit"', False),            # anchored: no partial match
        ('severity!~"warn|info"', True),
        ('missing=""', True),                   # an absent label equals ""
        ('missing!=""', False),
        ('alertname = "HighLoad"', True),
        ('group=~"web|api"', True),
    ],
    ids=["eq-quoted", "eq-bare", "ne", "re", "re-anchored", "nre", "absent-eq-empty", "absent-ne-empty",
         "spaces", "re-alternation"],
)
def test_matcher(text: str, hit: bool) -> None:
    assert Matcher.parse(text).matches(LABELS) is hit


@pytest.mark.parametrize(
    "text",
    ["alertname", '="x"', 'alert-name="x"', 'a=~"("', 'a="x'],
    ids=["no-operator", "no-name", "bad-name", "bad-regex", "unbalanced-quote"],
)
def test_bad_matcher_names_the_problem(text: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        Matcher.parse(text)


def test_escaped_quote_roundtrip() -> None:
    m = Matcher.parse(r'summary="say \"hi\""')
    assert m.value == 'say "hi"'
    assert Matcher.parse(str(m)) == m


def test_empty_set_matches_nothing_and_routes_in_order() -> None:
    assert not MatcherSet(()).matches(LABELS)
    routes = [Route("api", Direction.SCALE_OUT, MatcherSet.parse(['group="api"'])),
              Route("web", Direction.SCALE_OUT, MatcherSet.parse(['alertname="HighLoad"', 'group="web"'])),
              Route("all", Direction.SCALE_OUT, MatcherSet.parse(['severity=~".+"']))]
    assert [r.group for r in route(LABELS, routes)] == ["web", "all"]
