"""Provider types by name: their typed config model and factory. Used by ``config`` and ``service``.

Built-in types register here; cloud providers import their SDK only in their own module, loaded when a
group uses them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from alertscaler.providers.base import HEAL_ABILITIES, Provider, ProviderContext


@dataclass(frozen=True)
class ProviderType:
    name: str
    module: str            # module defining CONFIG_MODEL, create(config, context) and PROVIDER (the class)
    extra: str | None      # pip extra that installs its SDK


BUILTIN: dict[str, ProviderType] = {
    "local": ProviderType("local", "alertscaler.providers.local.provider", None),
    "exec": ProviderType("exec", "alertscaler.providers.exec.provider", None),
    "fake": ProviderType("fake", "alertscaler.providers.fake", None),
    "openstack-heat": ProviderType("openstack-heat", "alertscaler.providers.openstack.heat.provider", "openstack"),
    "openstack-nova": ProviderType("openstack-nova", "alertscaler.providers.openstack.nova.provider", "openstack"),
    "linode": ProviderType("linode", "alertscaler.providers.linode.provider", "linode"),
    "kubernetes": ProviderType("kubernetes", "alertscaler.providers.kubernetes.provider", "kubernetes"),
    "tosca": ProviderType("tosca", "alertscaler.providers.tosca.provider", None),
}


def config_model(name: str) -> type[BaseModel]:
    model: type[BaseModel] = _module(name).CONFIG_MODEL
    return model


def create(config: BaseModel, context: ProviderContext) -> Provider:
    name = str(config.model_dump().get("type", ""))
    factory: Callable[[Any, ProviderContext], Provider] = _module(name).create
    return factory(config, context)


def heal_actions(config: BaseModel) -> frozenset[str]:
    """The heal actions (``replace``, ``reboot``, ``quarantine``) a group with this provider config supports:
    the module's ``heal_actions(config)`` when it depends on the configuration (``exec`` needs a heal command),
    else the abilities (``base.HEAL_ABILITIES``) of its ``PROVIDER`` class. Used by ``config`` to refuse a heal
    policy asking for an action the provider lacks."""
    module = _module(str(config.model_dump().get("type", "")))
    by_config = getattr(module, "heal_actions", None)
    if callable(by_config):
        return frozenset(by_config(config))
    cls = getattr(module, "PROVIDER", None)
    if cls is None:
        return frozenset()
    return frozenset(action for action, ability in HEAL_ABILITIES.items() if issubclass(cls, ability))


def _module(name: str) -> Any:
    if name not in BUILTIN:
        known = ", ".join(sorted(BUILTIN))
        raise ValueError(f"unknown provider type {name!r} (known: {known})")
    return importlib.import_module(BUILTIN[name].module)
