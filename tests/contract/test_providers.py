"""The provider contract: ONE set of tests every provider type passes (see ``PROVIDER_FACTORIES``).

Run: ``PYTHONPATH=src python -m pytest tests/contract/test_providers.py -q``.
"""

from __future__ import annotations

import threading

import pytest

from alertscaler.model.groups import Member, MemberState
from alertscaler.providers.base import Provider
from tests.contract.provider_fixtures import ProviderHarness

pytest_plugins = ["tests.contract.provider_fixtures"]
pytestmark = pytest.mark.usefixtures("no_leftover_processes")


def running(provider: Provider) -> list[Member]:
    return [m for m in provider.members() if m.state is MemberState.RUNNING]


def running_ids(provider: Provider) -> set[str]:
    return {m.id for m in running(provider)}


def assert_size(provider: Provider, size: int) -> list[Member]:
    status = provider.status()
    assert status.current == size, status
    members = running(provider)
    assert len(members) == size, members
    assert len({m.id for m in members}) == size
    addresses = [m.address for m in members if m.address is not None]
    assert len(set(addresses)) == len(addresses), f"duplicate addresses: {addresses}"
    return members


def test_close_releases_the_provider_not_the_members(provider_harness: ProviderHarness) -> None:
    """``Provider.close``: resources released, instances kept running (they belong to the group); twice is
    harmless. And every provider here converges to the size it is asked (``adopts_size`` is False)."""
    provider = provider_harness.new()
    assert provider.adopts_size is False
    provider_harness.scale(provider, 1)
    members = running_ids(provider)
    provider.close()
    provider.close()
    again = provider_harness.new()
    assert running_ids(again) == members
    provider_harness.scale(again, 0)
    assert_size(again, 0)


def test_starts_empty(provider_harness: ProviderHarness) -> None:
    provider = provider_harness.new()
    status = provider.status()
    assert status.current == 0
    assert status.members == ()
    assert provider.members() == []


def test_scale_out_from_zero(provider_harness: ProviderHarness) -> None:
    provider = provider_harness.new()
    message = provider_harness.scale(provider, 2)
    assert isinstance(message, str) and message
    members = assert_size(provider, 2)
    assert provider.status().members == tuple(provider.members())
    for member in members:
        assert member.id
        assert member.created_at is None or member.created_at.tzinfo is not None


def test_scale_out_and_in_converges(provider_harness: ProviderHarness) -> None:
    provider = provider_harness.new()
    provider_harness.scale(provider, 2)
    first = {m.id for m in assert_size(provider, 2)}
    provider_harness.scale(provider, 3)
    grown = {m.id for m in assert_size(provider, 3)}
    assert first < grown, "scaling out must keep the existing members"
    provider_harness.scale(provider, 1)
    shrunk = {m.id for m in assert_size(provider, 1)}
    assert shrunk < grown
    provider_harness.scale(provider, 0)
    assert_size(provider, 0)


def test_same_size_twice_changes_nothing(provider_harness: ProviderHarness) -> None:
    provider = provider_harness.new()
    provider_harness.scale(provider, 2)
    before = running_ids(provider)
    provider_harness.scale(provider, 2)
    assert running_ids(provider) == before
    assert_size(provider, 2)


def test_scale_to_zero_when_empty_is_a_no_op(provider_harness: ProviderHarness) -> None:
    provider = provider_harness.new()
    provider_harness.scale(provider, 0)
    assert_size(provider, 0)


def test_restart_readopts_members(provider_harness: ProviderHarness) -> None:
    first = provider_harness.new()
    if not first.idempotent:
        pytest.skip("only idempotent providers promise to re-adopt their members")
    provider_harness.scale(first, 2)
    ids = running_ids(first)
    first.close()  # instances keep running

    second = provider_harness.new()  # same state directory = alertscaler restarted
    assert second.status().current == 2
    assert running_ids(second) == ids
    provider_harness.scale(second, 2)  # re-running the same action must not duplicate
    assert running_ids(second) == ids
    provider_harness.scale(second, 3)
    assert running_ids(second) > ids
    provider_harness.scale(second, 0)
    assert_size(second, 0)
    assert_size(first, 0)


def test_concurrent_scale_calls_converge(provider_harness: ProviderHarness) -> None:
    provider = provider_harness.new()
    if not provider.idempotent:
        pytest.skip("only idempotent providers promise convergence under concurrent calls")
    errors: list[BaseException] = []

    def scale() -> None:
        try:
            provider_harness.scale(provider, 2)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=scale) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert_size(provider, 2)
