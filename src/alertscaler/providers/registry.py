"""Provider types by name: their typed declaration (config model, factory, abilities) and the one error boundary
every provider is created behind. Used by ``config`` (``config_model``, ``heal_actions``: ``check``) and
``service`` (``create``).

Built-in types register here (module and pip extra); each module declares itself with ``DECLARATION``
(``declaration.Declaration``). Modules are imported when a group uses their type; cloud providers import their
SDK only inside their functions, and a type whose SDK is not installed is refused when the policy file loads
(``config_model``): "provider type 'linode' needs its SDK: pip install 'alertscaler[linode]'".
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from pydantic import BaseModel

from alertscaler.providers.base import ProviderContext
from alertscaler.providers.boundary import Guarded, guard
from alertscaler.providers.declaration import Declaration, Family


@dataclass(frozen=True)
class ProviderType:
    name: str
    module: str  # module defining DECLARATION (a declaration.Declaration)
    extra: str | None = None  # pip extra that installs its SDK
    sdk: tuple[str, ...] = ()  # top-level modules of that SDK, checked at load

    def missing_sdk(self) -> str | None:
        """Why this type cannot run here (its SDK is not installed), or None."""
        absent = [name for name in self.sdk if importlib.util.find_spec(name) is None]
        if not absent:
            return None
        return f"provider type {self.name!r} needs its SDK: pip install 'alertscaler[{self.extra}]'"


BUILTIN: dict[str, ProviderType] = {t.name: t for t in (
    ProviderType("local", "alertscaler.providers.local.provider"),
    ProviderType("exec", "alertscaler.providers.exec.provider"),
    ProviderType("fake", "alertscaler.providers.fake"),
    ProviderType("openstack-heat", "alertscaler.providers.openstack.heat.provider", "openstack", ("openstack",)),
    ProviderType("openstack-nova", "alertscaler.providers.openstack.nova.provider", "openstack", ("openstack",)),
    ProviderType("linode", "alertscaler.providers.linode.provider", "linode", ("linode_api4",)),
    ProviderType("kubernetes", "alertscaler.providers.kubernetes.provider", "kubernetes", ("kubernetes",)),
    ProviderType("tosca", "alertscaler.providers.tosca.provider"),
)}


def config_model(name: str) -> type[BaseModel]:
    """The config model of provider type ``name``. ``ValueError`` for an unknown type or one whose SDK is not
    installed (``config.loading`` reports it at ``<group>.provider.type``)."""
    kind = provider_type(name)
    problem = kind.missing_sdk()
    if problem is not None:
        raise ValueError(problem)
    return family(name).config_model


def create(config: BaseModel, context: ProviderContext) -> Guarded:
    """The provider of one group, behind the error boundary (``boundary``), keeping the abilities its
    declaration gives this config."""
    name = _type_of(config)
    declared = family(name)
    inner = declared.create(config, context)
    return guard(inner, name, context.group, declared.heal_actions(config), provider_type(name).extra)


def heal_actions(config: BaseModel) -> frozenset[str]:
    """The heal actions (``replace``, ``reboot``, ``quarantine``) a group with this provider config supports, as
    its type declares them (see ``declaration``). Used by ``config`` to refuse a heal policy asking for an action
    the provider lacks, and by ``act.healing``; the boundary keeps the same abilities on the provider."""
    return family(_type_of(config)).heal_actions(config)


def provider_type(name: str) -> ProviderType:
    if name not in BUILTIN:
        known = ", ".join(sorted(BUILTIN))
        raise ValueError(f"unknown provider type {name!r} (known: {known})")
    return BUILTIN[name]


def family(name: str) -> Family:
    """The declaration of provider type ``name`` (its module imported on first use)."""
    module = importlib.import_module(provider_type(name).module)
    declared = getattr(module, "DECLARATION", None)
    if not isinstance(declared, Declaration):
        raise TypeError(f"{module.__name__} declares no DECLARATION (a providers.declaration.Declaration)")
    result: Family = declared
    return result


def _type_of(config: BaseModel) -> str:
    return str(config.model_dump().get("type", ""))
