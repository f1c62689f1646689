"""Removed members, the pure part (time passed in): which heal keys name a removed member, how long it is
remembered, the default drain and the discovery lag ``check`` compares it with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alertscaler.act.removals import split_removed
from alertscaler.config import load_policy
from alertscaler.config.prometheus_side import ScrapeJobs
from alertscaler.model.groups import Member, MemberState
from alertscaler.model.removals import ADDRESS_SLACK, REMEMBER, RemovalState, RemovedMember, find_removed

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)

REMOVING = RemovedMember("web", "web-4", "127.0.0.1:20004", RemovalState.REMOVING, "scale-in to 3", T0)
REMOVED = RemovedMember("web", "web-4", "127.0.0.1:20004", RemovalState.REMOVED, "scale-in to 3", T0,
                        removed_at=T0 + 8 * S)


@pytest.mark.parametrize(("member", "key", "started", "named"), [
    (REMOVED, "web-4", None, True),
    (REMOVED, "web-4", T0 + timedelta(days=1), True),
    (REMOVED, "web-5", T0, False),
    (REMOVING, "127.0.0.1:20004", None, True),
    (REMOVED, "127.0.0.1:20004", T0 + 9 * S, True),
    (REMOVED, "127.0.0.1:20004", T0 + 8 * S + ADDRESS_SLACK, True),
    (REMOVED, "127.0.0.1:20004", T0 + 9 * S + ADDRESS_SLACK, False),
    (REMOVED, "127.0.0.1:20004", None, False),
    (RemovedMember("web", "web-4", None, RemovalState.REMOVING, "x", T0), "127.0.0.1:20004", T0, False),
], ids=["id", "id-whenever-the-alert-started", "other-id", "address-while-removing",
        "address-alert-started-at-the-stop", "address-at-the-slack", "address-alert-started-after-the-slack",
        "address-start-unknown", "no-address-known"])
def test_which_keys_name_a_removed_member(member: RemovedMember, key: str, started: datetime | None,
                                          named: bool) -> None:
    assert member.named_by(key, started) is named


@pytest.mark.parametrize(("member", "at", "remembered"), [
    (REMOVED, T0 + 8 * S + REMEMBER - S, True),
    (REMOVED, T0 + 8 * S + REMEMBER, False),
    (REMOVING, T0 + REMEMBER - S, True),
    (REMOVING, T0 + REMEMBER, False),
], ids=["removed-within", "removed-after", "removing-within", "removal-never-ended"])
def test_how_long_a_removed_member_is_remembered(member: RemovedMember, at: datetime, remembered: bool) -> None:
    assert member.remembered(at) is remembered


def test_an_id_match_wins_over_an_address_match() -> None:
    other = RemovedMember("web", "web-9", "127.0.0.1:20009", RemovalState.REMOVING, "scale-in", T0)
    at_its_address = RemovedMember("web", "127.0.0.1:20009", None, RemovalState.REMOVED, "odd ids", T0, T0)
    assert find_removed([other, at_its_address], "127.0.0.1:20009", T0) is at_its_address


LIVE = [Member("web-1", "127.0.0.1:20001", MemberState.RUNNING, T0),
        Member("web-7", "127.0.0.1:20004", MemberState.RUNNING, T0 + 60 * S),  # took web-4's address
        Member("web-4", "127.0.0.1:20004", MemberState.STOPPING, T0 - 60 * S)]


@pytest.mark.parametrize(("keys", "live", "kept", "removed"), [
    ([("web-4", T0), ("web-1", T0)], [], [1], {"web-4": [0]}),
    ([("web-4", T0), ("127.0.0.1:20004", T0), ("web-4", None)], [], [], {"web-4": [0, 1, 2]}),
    ([("127.0.0.1:20004", T0)], LIVE, [0], {}),
    ([("127.0.0.1:20004", T0)], LIVE[2:], [], {"web-4": [0]}),
    ([("web-4", T0)], LIVE, [], {"web-4": [0]}),
], ids=["one-of-two", "every-signal-of-the-member", "a-new-member-holds-the-address",
        "the-leaving-member-itself-holds-it", "by-id-whoever-holds-the-address"])
def test_split_removed(keys: list[tuple[str, datetime | None]], live: list[Member], kept: list[int],
                       removed: dict[str, list[int]]) -> None:
    split = split_removed(keys, [REMOVING], live)
    assert (split.kept, split.removed) == (kept, removed)


@pytest.mark.parametrize(("scrape", "lag", "default"), [
    ({}, 15 + 10 + 15, 15 + 10 + 30),
    ({"refresh_interval": "1s", "scrape_interval": "1s"}, 12, 13),
    ({"http_sd": False, "scrape_interval": "10s"}, 15 + 10 + 10, 15 + 10 + 20),
    ({"refresh_interval": "5s", "scrape_interval": "10s",
      "linode": {"authorization_credentials_file": "/t", "tag": "a", "refresh_interval": "60s"}}, 80, 90),
], ids=["defaults", "the-demos", "no-http-sd", "the-slowest-discovery-job"])
def test_discovery_lag_and_default_drain(scrape: dict[str, object], lag: float, default: float) -> None:
    jobs = ScrapeJobs.model_validate(scrape)
    assert (jobs.discovery_lag(), jobs.default_drain()) == (lag, default)


@pytest.mark.parametrize(("drain", "expected"), [
    ("", 13.0), ("drain: 20s", 20.0), ("drain: 0s", 0.0),
], ids=["default-from-scrape", "set", "zero-stops-at-once"])
def test_a_groups_drain(drain: str, expected: float) -> None:
    policy = load_policy(f"""
server: {{listen: 127.0.0.1:8080, auth: {{insecure_no_auth: true}}}}
scrape: {{refresh_interval: 1s, scrape_interval: 1s}}
groups:
  web:
    provider: {{type: fake}}
    {drain}
""")
    assert policy.drain_of("web") == expected
