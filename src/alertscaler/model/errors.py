"""The one exception tree of alertscaler. Every module raises from here; nothing else is raised on purpose.

    AlertscalerError
    ├── ConfigError                 policy file invalid: carries every problem with its path
    ├── InputError                  a client's or user's mistake (bad webhook body, bad argument)
    │   └── PayloadTooLarge
    ├── AuthError                   missing / wrong credentials
    ├── NotFound                    unknown group, decision, action
    ├── StoreError
    │   └── StoreUnavailable        database down / locked / disk full: retry later (HTTP 503)
    └── ProviderError
        ├── TemporaryProviderError  retry after ``delay`` seconds (API 5xx, 429, timeouts)
        └── PermanentProviderError  do not retry (4xx, bad config on the cloud side, exit status != 0)

Cloud SDK errors are translated once, at the provider boundary (``raise ... from exc``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class AlertscalerError(Exception):
    """Base of every error alertscaler raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a policy file: where (dotted path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(AlertscalerError):
    """The policy file is invalid. ``problems`` lists every error at once."""

    def __init__(self, problems: Sequence[Problem], source: str = "") -> None:
        self.problems = tuple(problems)
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + f"{len(self.problems)} problem(s):\n" + "\n".join(f"  {p}" for p in self.problems))


class InputError(AlertscalerError):
    """A client's mistake. ``field`` names what is wrong when known."""

    status_code = 422

    def __init__(self, message: str, field: str = "", status_code: int | None = None) -> None:
        self.field = field
        if status_code is not None:
            self.status_code = status_code
        super().__init__(f"{field}: {message}" if field else message)


class PayloadTooLarge(InputError):
    status_code = 413


class AuthError(AlertscalerError):
    """Missing or wrong credentials."""


class NotFound(AlertscalerError):
    """Unknown group, decision or action."""


class StoreError(AlertscalerError):
    """The state store failed."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or written right now; the caller should retry (HTTP 503)."""


class ProviderError(AlertscalerError):
    """A provider call failed."""


class TemporaryProviderError(ProviderError):
    """Retry later. ``delay`` is the provider's hint in seconds (e.g. Retry-After), or None."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        self.delay = delay
        super().__init__(message)


class PermanentProviderError(ProviderError):
    """Retrying will not help; record and stop."""
