"""The one error boundary around every provider, applied once by ``registry.create`` (httpx's
``map_httpcore_exceptions`` style): whatever a provider method raises, only the documented tree
(``model.errors``: ``TemporaryProviderError``, ``PermanentProviderError``, ``ProviderDeclined``) reaches the
engine and the API.

- A ``ProviderError`` passes unchanged: the family translated its SDK's error already.
- A missing SDK (``ImportError`` at run time) → ``PermanentProviderError`` saying which extra to install (the
  registry also refuses such a group at load, so this is a last resort).
- Anything else (``KeyError``, ``AttributeError``, ``OSError``, an ``AlertscalerError`` outside the provider
  tree...) is a bug in the provider, or a condition it does not know: → ``PermanentProviderError``
  (``raise ... from exc``), logged once here with the group, the provider type, the method and the traceback.
  Permanent, not temporary, because retrying an unknown failure blindly could repeat a half-done action of a
  provider that is not idempotent (the executor already treated it so); ``status()`` is polled again anyway.
- ``BaseException`` that is not an ``Exception`` (cancellation, ``KeyboardInterrupt``, ``SystemExit``) passes.

Abilities are kept: the wrapper's class is built per ability set, so ``isinstance(wrapped, Healer)`` is True
exactly when the inner provider implements ``Healer`` and its declaration (``declaration.Declaration``) lists
``replace`` for this config — the same declaration ``check`` reads. ``idempotent`` and ``adopts_size`` read
through to the inner provider; ``inner`` is the provider itself (for tests and tools, never for calls).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from alertscaler.model.errors import PermanentProviderError, ProviderError
from alertscaler.model.groups import GroupStatus, Member
from alertscaler.providers.base import (
    HEAL_ABILITIES,
    OPTIONAL_ABILITIES,
    Healer,
    Provider,
    Quarantiner,
    Rebooter,
    ScaleRequest,
    Settled,
    Settler,
)

log = logging.getLogger(__name__)


class Guarded:
    """One provider behind the boundary: the ``Provider`` methods; the subclasses ``guard`` builds add the
    optional abilities."""

    def __init__(self, inner: Provider, kind: str, group: str, extra: str | None = None) -> None:
        self.inner = inner
        self.kind = kind
        self.group = group
        self.extra = extra

    def __repr__(self) -> str:
        return f"Guarded({self.inner!r})"

    @property
    def idempotent(self) -> bool:
        return self.inner.idempotent

    @idempotent.setter
    def idempotent(self, value: bool) -> None:
        self.inner.idempotent = value

    @property
    def adopts_size(self) -> bool:
        return self.inner.adopts_size

    @adopts_size.setter
    def adopts_size(self, value: bool) -> None:
        self.inner.adopts_size = value

    def status(self) -> GroupStatus:
        with self._boundary("status"):
            return self.inner.status()

    def scale(self, request: ScaleRequest) -> str:
        with self._boundary("scale"):
            return self.inner.scale(request)

    def members(self) -> list[Member]:
        with self._boundary("members"):
            return self.inner.members()

    def close(self) -> None:
        with self._boundary("close"):
            self.inner.close()

    @contextmanager
    def _boundary(self, method: str) -> Iterator[None]:
        try:
            yield
        except ProviderError:
            raise
        except ImportError as exc:
            install = f": pip install 'alertscaler[{self.extra}]'" if self.extra else ""
            log.error("group=%s: the %s provider's %s() cannot import %s%s", self.group, self.kind, method,
                      exc.name or exc, install)
            raise PermanentProviderError(f"{self.group}: provider type {self.kind!r} needs its SDK{install} "
                                         f"({type(exc).__name__}: {exc})") from exc
        except Exception as exc:
            log.error("group=%s: the %s provider's %s() raised %s unexpectedly: %s", self.group, self.kind, method,
                      type(exc).__name__, exc, exc_info=exc)
            raise PermanentProviderError(f"{self.group}: internal error of the {self.kind} provider in {method}(): "
                                         f"{type(exc).__name__}: {exc}") from exc


class _Heals(Guarded):
    def heal(self, member_id: str) -> str:
        with self._boundary("heal"):
            return cast(Healer, self.inner).heal(member_id)


class _Reboots(Guarded):
    def reboot(self, member_id: str) -> str:
        with self._boundary("reboot"):
            return cast(Rebooter, self.inner).reboot(member_id)


class _Quarantines(Guarded):
    def quarantine(self, member_id: str) -> str:
        with self._boundary("quarantine"):
            return cast(Quarantiner, self.inner).quarantine(member_id)


class _Settles(Guarded):
    def settle(self, action_id: int, from_capacity: int, desired: int) -> Settled:
        with self._boundary("settle"):
            return cast(Settler, self.inner).settle(action_id, from_capacity, desired)


#: optional ability -> the mixin forwarding its method through the boundary (one per ``OPTIONAL_ABILITIES``)
MIXINS: dict[type, type[Guarded]] = {Healer: _Heals, Rebooter: _Reboots, Quarantiner: _Quarantines,
                                     Settler: _Settles}


def abilities_of(inner: Provider, heal_actions: frozenset[str]) -> frozenset[type]:
    """The optional abilities the wrapper keeps: those ``inner`` implements — for a heal ability, only when its
    action is among the declared ``heal_actions``."""
    declared = {HEAL_ABILITIES[action] for action in heal_actions if action in HEAL_ABILITIES}
    heal = set(HEAL_ABILITIES.values())
    return frozenset(ability for ability in OPTIONAL_ABILITIES
                     if isinstance(inner, ability) and (ability not in heal or ability in declared))


def guard(inner: Provider, kind: str, group: str, heal_actions: frozenset[str], extra: str | None = None) -> Guarded:
    """``inner`` behind the boundary, with the abilities ``abilities_of`` keeps."""
    return _wrapper_class(abilities_of(inner, heal_actions))(inner, kind, group, extra)


@functools.cache
def _wrapper_class(abilities: frozenset[type]) -> type[Guarded]:
    missing = [a.__name__ for a in abilities if a not in MIXINS]
    if missing:  # a new ability Protocol in base.OPTIONAL_ABILITIES needs its mixin here
        raise TypeError(f"the provider boundary cannot forward {', '.join(missing)}")
    mixins = tuple(MIXINS[a] for a in OPTIONAL_ABILITIES if a in abilities)
    if not mixins:
        return Guarded
    name = "Guarded" + "".join(OPTIONAL_ABILITIES[a].capitalize() for a in OPTIONAL_ABILITIES if a in abilities)
    return type(name, mixins, {"__module__": __name__})
