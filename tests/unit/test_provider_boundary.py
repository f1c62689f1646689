"""The provider registry and its one error boundary (``providers.boundary``, ``providers.declaration``):

- whatever a provider method raises, only the documented tree escapes (a ``KeyError`` in ``status``, ``scale``,
  ``heal``... becomes a ``PermanentProviderError`` from it, logged once with the group; provider errors pass);
- the wrapper keeps exactly the abilities the provider has and declares (``isinstance(wrapped, Healer)``);
- every built-in type declares itself (typed), with ``adopts_size`` and abilities ``check`` and the boundary share
  — Kubernetes' ``replace`` included;
- a missing SDK is refused at load with the pip extra to install, and reported so at run time.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any, NoReturn

import pytest
from pydantic import BaseModel

from alertscaler.config import load_policy
from alertscaler.model.errors import (
    ConfigError,
    PermanentProviderError,
    ProviderDeclined,
    ProviderError,
    TemporaryProviderError,
)
from alertscaler.model.groups import GroupStatus, Member
from alertscaler.providers import registry
from alertscaler.providers.base import (
    HEAL_ABILITIES,
    OPTIONAL_ABILITIES,
    Healer,
    Provider,
    ProviderContext,
    Quarantiner,
    Rebooter,
    ScaleRequest,
    Settled,
    Settler,
)
from alertscaler.providers.boundary import MIXINS, Guarded, guard
from alertscaler.providers.declaration import Declaration
from alertscaler.providers.fake import FakeConfig, FakeProvider

REQUEST = ScaleRequest(group="web", from_capacity=1, desired=2, action_id=1, decision_id=1)


class Broken:
    """A provider with every ability, each raising ``error``."""

    idempotent = True
    adopts_size = False

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def _raise(self, *args: object) -> NoReturn:
        raise self.error

    def status(self) -> GroupStatus:
        self._raise()

    def scale(self, request: ScaleRequest) -> str:
        self._raise(request)

    def members(self) -> list[Member]:
        self._raise()

    def close(self) -> None:
        self._raise()

    def heal(self, member_id: str) -> str:
        self._raise(member_id)

    def reboot(self, member_id: str) -> str:
        self._raise(member_id)

    def quarantine(self, member_id: str) -> str:
        self._raise(member_id)

    def settle(self, action_id: int, from_capacity: int, desired: int) -> Settled:
        self._raise(action_id, from_capacity, desired)


ALL_HEALS = frozenset(HEAL_ABILITIES)
CALLS: dict[str, Callable[[Any], object]] = {
    "status": lambda p: p.status(),
    "scale": lambda p: p.scale(REQUEST),
    "members": lambda p: p.members(),
    "close": lambda p: p.close(),
    "heal": lambda p: p.heal("m-1"),
    "reboot": lambda p: p.reboot("m-1"),
    "quarantine": lambda p: p.quarantine("m-1"),
    "settle": lambda p: p.settle(1, 1, 2),
}


def wrapped(error: BaseException, extra: str | None = None) -> Guarded:
    return guard(Broken(error), "fake", "web", ALL_HEALS, extra)


# -- only the documented tree escapes --------------------------------------------------------------------------

UNEXPECTED: list[tuple[str, BaseException]] = [
    ("key-error", KeyError("spec")), ("attribute-error", AttributeError("'NoneType' has no attribute 'id'")),
    ("os-error", OSError(28, "No space left on device")), ("config-error", ConfigError([])),
    ("value-error", ValueError("bad")),
]


@pytest.mark.parametrize("method", list(CALLS), ids=list(CALLS))
@pytest.mark.parametrize("error", [e for _, e in UNEXPECTED], ids=[i for i, _ in UNEXPECTED])
def test_anything_unexpected_becomes_a_permanent_error_from_it(method: str, error: BaseException,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="alertscaler.providers.boundary"), \
            pytest.raises(PermanentProviderError) as info:
        CALLS[method](wrapped(error))
    assert type(info.value) is PermanentProviderError and info.value.__cause__ is error
    assert str(info.value).startswith(f"web: internal error of the fake provider in {method}(): "
                                      f"{type(error).__name__}")
    (record,) = caplog.records
    assert "group=web" in record.getMessage() and f"{method}()" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is error


PASSING: list[tuple[str, ProviderError]] = [
    ("temporary-with-delay", TemporaryProviderError("HTTP 503", delay=7.0)),
    ("permanent", PermanentProviderError("HTTP 400")),
    ("declined", ProviderDeclined("cooldown", current=2)),
]


@pytest.mark.parametrize("method", list(CALLS), ids=list(CALLS))
@pytest.mark.parametrize("error", [e for _, e in PASSING], ids=[i for i, _ in PASSING])
def test_provider_errors_pass_unchanged_and_unlogged(method: str, error: ProviderError,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="alertscaler.providers.boundary"), pytest.raises(ProviderError) as info:
        CALLS[method](wrapped(error))
    assert info.value is error and caplog.records == []


@pytest.mark.parametrize(("extra", "text"), [
    ("linode", "web: provider type 'fake' needs its SDK: pip install 'alertscaler[linode]' (ModuleNotFoundError"),
    (None, "web: provider type 'fake' needs its SDK (ModuleNotFoundError"),
], ids=["with-extra", "no-extra"])
def test_a_missing_sdk_at_run_time_names_the_extra(extra: str | None, text: str) -> None:
    error = ModuleNotFoundError("No module named 'linode_api4'", name="linode_api4")
    with pytest.raises(PermanentProviderError) as info:
        wrapped(error, extra).status()
    assert str(info.value).startswith(text) and info.value.__cause__ is error


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(1)], ids=["keyboard-interrupt", "system-exit"])
def test_base_exceptions_pass(error: BaseException) -> None:
    with pytest.raises(type(error)):
        wrapped(error).status()


def test_results_and_attributes_read_through(tmp_path: Path) -> None:
    fake = FakeProvider(FakeConfig(type="fake", initial=2), ProviderContext("web", tmp_path))
    provider = guard(fake, "fake", "web", ALL_HEALS)
    assert provider.status() == fake.status() and provider.members() == fake.members()
    assert provider.scale(REQUEST) == "2 -> 2" and fake.calls == [REQUEST]
    assert isinstance(provider, Healer) and provider.heal("web-1").startswith("replaced web-1 by web-3")
    assert (provider.idempotent, provider.adopts_size) == (True, False)
    fake.adopts_size = True
    assert provider.adopts_size is True and isinstance(provider, Provider)


# -- abilities ----------------------------------------------------------------------------------------------------


class Plain:
    idempotent = False
    adopts_size = False

    def status(self) -> GroupStatus:
        return GroupStatus(current=0)

    def scale(self, request: ScaleRequest) -> str:
        return "ok"

    def members(self) -> list[Member]:
        return []

    def close(self) -> None:
        pass


class Heals(Plain):
    def heal(self, member_id: str) -> str:
        return member_id


class RebootsAndSettles(Plain):
    def reboot(self, member_id: str) -> str:
        return member_id

    def settle(self, action_id: int, from_capacity: int, desired: int) -> Settled:
        return Settled("succeeded", "ok")


# (id, inner provider, declared heal actions, abilities expected on the wrapper)
ABILITY_CASES: list[tuple[str, Provider, frozenset[str], set[type]]] = [
    ("none", Plain(), ALL_HEALS, set()),
    ("healer", Heals(), ALL_HEALS, {Healer}),
    ("reboot-and-settle", RebootsAndSettles(), ALL_HEALS, {Rebooter, Settler}),
    ("everything", Broken(KeyError()), ALL_HEALS, {Healer, Rebooter, Quarantiner, Settler}),
    ("implemented-not-declared", Broken(KeyError()), frozenset({"reboot"}), {Rebooter, Settler}),
    ("declared-not-implemented", Plain(), frozenset({"replace"}), set()),
]


@pytest.mark.parametrize(("inner", "declared", "expected"), [c[1:] for c in ABILITY_CASES],
                         ids=[c[0] for c in ABILITY_CASES])
def test_the_wrapper_keeps_exactly_the_abilities_implemented_and_declared(inner: Provider, declared: frozenset[str],
                                                                          expected: set[type]) -> None:
    provider = guard(inner, "fake", "web", declared)
    assert {a for a in OPTIONAL_ABILITIES if isinstance(provider, a)} == expected
    assert isinstance(provider, Provider) and provider.inner is inner


def test_every_optional_ability_is_forwarded() -> None:
    assert set(MIXINS) == set(OPTIONAL_ABILITIES)


# -- declarations ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(registry.BUILTIN), ids=sorted(registry.BUILTIN))
def test_every_type_declares_its_model_factory_and_class(name: str) -> None:
    module = importlib.import_module(registry.BUILTIN[name].module)
    declared = module.DECLARATION
    assert isinstance(declared, Declaration) and registry.family(name) is declared
    assert registry.config_model(name) is declared.config_model
    assert issubclass(declared.config_model, BaseModel) and isinstance(declared.provider, type)


@pytest.mark.parametrize(("config", "expected"), [
    ({"type": "kubernetes", "name": "web", "api_url": "https://k8s.example:6443", "token": "t"},
     frozenset({"replace"})),
    ({"type": "fake"}, ALL_HEALS),
    ({"type": "openstack-nova", "flavor": "m1.small", "image": "cirros", "networks": [{"uuid": "n"}]}, ALL_HEALS),
], ids=["kubernetes", "fake", "nova"])
def test_declared_heal_actions(config: dict[str, Any], expected: frozenset[str]) -> None:
    assert registry.heal_actions(registry.config_model(str(config["type"])).model_validate(config)) == expected


KUBERNETES_HEALED = """
server: {auth: {insecure_no_auth: true}}
groups:
  web:
    provider: {type: kubernetes, name: web, api_url: "https://k8s.example:6443", token: t}
    min_size: 1
    max_size: 4
    heal:
      matchers: ['alertname="InstanceDown"']
"""


def test_a_kubernetes_group_with_a_heal_policy_passes_check(tmp_path: Path) -> None:
    policy = load_policy(KUBERNETES_HEALED, base_dir=tmp_path)
    group = policy.groups["web"]
    assert group.heal is not None and group.heal.action.value == "replace"
    assert group.provider is not None and registry.heal_actions(group.provider) == {"replace"}


def test_create_wraps_with_the_declared_abilities(tmp_path: Path) -> None:
    exec_config = registry.config_model("exec").model_validate(
        {"type": "exec", "command": ["/bin/true"], "reboot_command": ["/bin/true"]})
    provider = registry.create(exec_config, ProviderContext("web", tmp_path))
    assert isinstance(provider, Rebooter) and not isinstance(provider, Healer)
    assert not isinstance(provider, Quarantiner)
    assert isinstance(provider.inner, Healer)  # the class has every method; the config declares reboot only
    fake = registry.create(FakeConfig(type="fake"), ProviderContext("web", tmp_path))
    assert isinstance(fake, Healer) and isinstance(fake, Rebooter) and isinstance(fake, Quarantiner)


# -- a missing SDK is refused at load ----------------------------------------------------------------------------


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``without("linode_api4")``: that module is not installed, as far as the registry can tell."""
    def hide(module: str) -> None:
        real = importlib.util.find_spec

        def find_spec(name: str, package: str | None = None) -> ModuleSpec | None:
            return None if name == module else real(name, package)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)

    return hide


@pytest.mark.parametrize(("kind", "sdk", "extra"), [
    ("linode", "linode_api4", "linode"), ("openstack-nova", "openstack", "openstack"),
    ("openstack-heat", "openstack", "openstack"), ("kubernetes", "kubernetes", "kubernetes"),
], ids=["linode", "nova", "heat", "kubernetes"])
def test_a_missing_sdk_is_refused_at_load(without: Callable[[str], None], kind: str, sdk: str, extra: str) -> None:
    without(sdk)
    with pytest.raises(ValueError) as info:
        registry.config_model(kind)
    assert str(info.value) == f"provider type {kind!r} needs its SDK: pip install 'alertscaler[{extra}]'"


def test_check_reports_a_missing_sdk_at_the_provider_type(without: Callable[[str], None], tmp_path: Path) -> None:
    without("kubernetes")
    with pytest.raises(ConfigError) as info:
        load_policy(KUBERNETES_HEALED, base_dir=tmp_path)
    assert [str(p) for p in info.value.problems] == [
        "groups.web.provider.type: provider type 'kubernetes' needs its SDK: pip install 'alertscaler[kubernetes]'"]


def test_types_without_an_sdk_load_whatever_is_installed(without: Callable[[str], None]) -> None:
    for module in ("linode_api4", "openstack", "kubernetes"):
        without(module)
    assert [registry.config_model(name).__name__ for name in ("local", "exec", "fake", "tosca")] == \
        ["LocalConfig", "ExecConfig", "FakeConfig", "ToscaConfig"]
