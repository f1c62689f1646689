"""What a provider module declares to the registry: one ``DECLARATION = Declaration(...)`` per provider type,
typed by its config model. Read by ``registry`` (config model, factory, abilities) and through it by
``config.loading`` (``check``: may this group be healed that way?) and ``registry.create``'s error boundary (which
abilities the wrapped provider keeps): both read the same declaration.

Abilities: the heal actions of a config are ``heal_actions(config)`` when the module gives it (``exec`` and
``tosca``: they depend on the configuration), else those whose Protocol (``base.HEAL_ABILITIES``) the
``provider`` class implements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel

from alertscaler.providers.base import HEAL_ABILITIES, Provider, ProviderContext

C = TypeVar("C", bound=BaseModel)


class Family(Protocol):
    """A provider type as the registry uses it, whatever its config model."""

    @property
    def config_model(self) -> type[BaseModel]: ...

    @property
    def provider(self) -> type: ...

    def create(self, config: BaseModel, context: ProviderContext) -> Provider: ...

    def heal_actions(self, config: BaseModel) -> frozenset[str]: ...


@dataclass(frozen=True)
class Declaration(Generic[C]):
    """``config_model``: the pydantic model of the group's ``provider:`` section; ``factory``: a provider for one
    group; ``provider``: the class it returns (its heal abilities are the type's, unless ``heal_actions_of``
    says which a given config supports)."""

    config_model: type[C]
    factory: Callable[[C, ProviderContext], Provider]
    provider: type
    heal_actions_of: Callable[[C], frozenset[str]] | None = None

    def create(self, config: BaseModel, context: ProviderContext) -> Provider:
        return self.factory(self._typed(config), context)

    def heal_actions(self, config: BaseModel) -> frozenset[str]:
        """The heal actions (``replace``, ``reboot``, ``quarantine``) a group with ``config`` supports."""
        if self.heal_actions_of is not None:
            return frozenset(self.heal_actions_of(self._typed(config)))
        return frozenset(action for action, ability in HEAL_ABILITIES.items() if issubclass(self.provider, ability))

    def _typed(self, config: BaseModel) -> C:
        if not isinstance(config, self.config_model):
            raise TypeError(f"expected a {self.config_model.__name__}, got a {type(config).__name__}")
        return config
