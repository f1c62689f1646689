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

from alertscaler.providers.base import Provider, ProviderContext


@dataclass(frozen=True)
class ProviderType:
    name: str
    module: str            # module defining CONFIG_MODEL and create(config, context)
    extra: str | None      # pip extra that installs its SDK


BUILTIN: dict[str, ProviderType] = {
    "local": ProviderType("local", "alertscaler.providers.local", None),
    "exec": ProviderType("exec", "alertscaler.providers.exec", None),
    "fake": ProviderType("fake", "alertscaler.providers.fake", None),
}


def config_model(name: str) -> type[BaseModel]:
    model: type[BaseModel] = _module(name).CONFIG_MODEL
    return model


def create(config: BaseModel, context: ProviderContext) -> Provider:
    name = str(config.model_dump().get("type", ""))
    factory: Callable[[Any, ProviderContext], Provider] = _module(name).create
    return factory(config, context)


def _module(name: str) -> Any:
    if name not in BUILTIN:
        known = ", ".join(sorted(BUILTIN))
        raise ValueError(f"unknown provider type {name!r} (known: {known})")
    return importlib.import_module(BUILTIN[name].module)
