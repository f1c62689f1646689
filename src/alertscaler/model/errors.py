"""The one exception tree of alertscaler. Every module raises from here; nothing else is raised on purpose.

    AlertscalerError
    ├── ConfigError                 policy file invalid: carries every problem with its path
    ├── InputError                  a client's or user's mistake (bad webhook body, bad argument)
    │   └── PayloadTooLarge
    ├── AuthError                   missing / wrong credentials
    ├── Forbidden                   a signed URL refused: tampered, expired, revoked (HTTP 403; ``reason`` says which)
    ├── NotFound                    unknown group, decision, action
    ├── StoreError
    │   └── StoreUnavailable        database down / locked / disk full: retry later (HTTP 503)
    ├── ProviderError
    │   ├── TemporaryProviderError  retry after ``delay`` seconds (API 5xx, 429, timeouts)
    │   └── PermanentProviderError  do not retry (4xx, bad config on the cloud side, exit status != 0)
    │       └── ProviderDeclined    the cloud answered but did not change the group (Heat cooldown or
    │                               limits): the group stays at ``current``
    └── QueryError                  a PromQL query gave no usable number (``query`` names it)
        ├── BadQuery                Prometheus rejected the PromQL: its ``error_type`` and message verbatim
        ├── PrometheusUnavailable   unreachable, timed out, 5xx, refused auth, not Prometheus' JSON: the cause
        ├── EmptyResult             one value expected, no series (the metric is missing)
        └── AmbiguousResult         one value expected, several series (``labels`` of each)
    └── AlertmanagerError           Alertmanager's API v2 refused a request (HTTP 400: a bad filter or alert)
        └── AlertmanagerUnavailable unreachable, timed out, 5xx, refused auth, not Alertmanager's JSON

Cloud SDK errors are translated once, at the provider boundary (``raise ... from exc``); httpx errors from
Prometheus once, in ``prometheus.client``; from Alertmanager once, in ``alertmanager.client``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


class Forbidden(AlertscalerError):
    """A credential that cannot be accepted (HTTP 403): a signed URL tampered with, expired, revoked, or signed with
    a retired key. ``reason`` is a short code (``bad_signature``, ``expired``, ``revoked``...), the message says it
    in words; neither ever holds a secret."""

    def __init__(self, message: str, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class NotFound(AlertscalerError):
    """Unknown group, decision or action."""


class Conflict(AlertscalerError):
    """The request cannot be carried out in the current state (HTTP 409), e.g. approving a change that expired
    or whose group moved since; the message says why."""


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


class ProviderDeclined(PermanentProviderError):
    """The cloud accepted the request but chose not to change the group (e.g. Heat's own cooldown or
    min/max). Not retried; ``current`` is the size the group stays at (None when unknown)."""

    def __init__(self, message: str, current: int | None = None) -> None:
        self.current = current
        super().__init__(message)


class QueryError(AlertscalerError):
    """A PromQL query gave no usable number. ``query`` is the expression (it may be long: messages shorten it)."""

    def __init__(self, message: str, query: str = "") -> None:
        self.query = query
        super().__init__(message)


def _short(query: str, limit: int = 200) -> str:
    return repr(query if len(query) <= limit else query[: limit - 1] + "…")


class BadQuery(QueryError):
    """Prometheus rejected the query (HTTP 400/422): ``error`` and ``error_type`` are Prometheus' own, verbatim
    (e.g. ``bad_data`` / ``1:6: parse error: unclosed left parenthesis``). Also raised when the result has a type
    the caller cannot use (a string, a range vector for an instant query): then ``error_type`` is empty."""

    def __init__(self, query: str, error: str, error_type: str = "", status_code: int | None = None) -> None:
        self.error = error
        self.error_type = error_type
        self.status_code = status_code
        if error_type:
            super().__init__(f"Prometheus rejected the query {_short(query)}: {error_type}: {error}", query)
        else:
            super().__init__(f"the query {_short(query)} cannot be used: {error}", query)


class PrometheusUnavailable(QueryError):
    """No usable answer from Prometheus: connection refused, timeout, HTTP 5xx (503 while it starts), a refused
    login, or a body that is not Prometheus' JSON. ``status_code`` is the HTTP status when one came back."""

    def __init__(self, message: str, query: str = "", status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message, query)


class EmptyResult(QueryError):
    """One value was expected and the query matched no series (metric missing, or a selector matching nothing)."""

    def __init__(self, query: str) -> None:
        super().__init__(f"the query {_short(query)} returned no series: one value expected "
                         "(is the metric scraped? do the label matchers match?)", query)


class AmbiguousResult(QueryError):
    """One value was expected and the query returned several series; ``labels`` holds each one's labels."""

    def __init__(self, query: str, labels: Sequence[Mapping[str, str]]) -> None:
        self.labels = tuple(dict(x) for x in labels)
        shown = ", ".join(_selector(x) for x in self.labels[:5])
        more = f" and {len(self.labels) - 5} more" if len(self.labels) > 5 else ""
        super().__init__(f"the query {_short(query)} returned {len(self.labels)} series, one value expected: "
                         f"{shown}{more} (aggregate them, e.g. sum(...) or max(...), or match one)", query)


def _selector(labels: Mapping[str, str]) -> str:
    name = labels.get("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{inner}}}"


class AlertmanagerError(AlertscalerError):
    """Alertmanager's API v2 gave no usable answer to ``operation`` (e.g. ``GET /api/v2/alerts``); as such
    (not a subclass) it refused the request itself (HTTP 400: a bad ``filter`` matcher or alert)."""

    def __init__(self, message: str, operation: str = "", status_code: int | None = None) -> None:
        self.operation = operation
        self.status_code = status_code
        super().__init__(message)


class AlertmanagerUnavailable(AlertmanagerError):
    """Alertmanager could not be asked: connection refused, timeout, HTTP 5xx, a refused login (401/403), a
    wrong URL (404), or a body that is not its API's JSON. Silence checks then fail open or closed."""
