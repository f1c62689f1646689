"""The linode provider's one boundary to the SDK: a ``linode_api4.LinodeClient`` per provider (``connect``) and
the translation of linode-api4 / requests errors into ``TemporaryProviderError`` / ``PermanentProviderError``
(``translate``) — once, here (HTTP statuses through the providers' one classifier, ``common.retries``). Used by
``linode.provider`` only; the SDK is imported on first use (``registry`` checks at load that it is installed).

``connect`` turns the SDK's own retries off (alertscaler retries, after the delay the API asks for) and bounds
every request by ``request_timeout`` (the SDK passes no timeout: a stalled API would hang the worker thread).
``translate``: 429 → temporary with the ``Retry-After`` delay (seconds or an HTTP date), 408 and 5xx →
temporary (``Retry-After`` when given), timeouts and connection errors → temporary, a list that changed
between its pages → temporary, other 4xx → permanent with Linode's reasons and fields
(``{"errors": [{"reason", "field"}]}``). Messages never carry the token (the SDK's errors hold no header).
"""

from __future__ import annotations

from typing import Any, NoReturn

from alertscaler.model.errors import PermanentProviderError, ProviderError, TemporaryProviderError
from alertscaler.providers.common.retries import DEFAULT_DELAY, RetryPolicy, classify
from alertscaler.providers.linode.config import LinodeConfig
from alertscaler.providers.linode.members import error_text

#: HTTP statuses worth retrying besides 5xx: the API is busy (429) or the request timed out (408).
RETRY_STATUSES = frozenset({408, 429})
RETRY_POLICY = RetryPolicy(RETRY_STATUSES, every_5xx=True)


def connect(config: LinodeConfig) -> Any:
    """One ``linode_api4.LinodeClient`` for ``config``: SDK retries off, ``request_timeout`` on every request."""
    try:
        from linode_api4 import LinodeClient  # type: ignore[import-untyped]
        from requests.adapters import HTTPAdapter
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise PermanentProviderError("the linode provider needs linode-api4: pip install 'alertscaler[linode]'") \
            from exc

    class TimeoutAdapter(HTTPAdapter):
        """The SDK passes no timeout: without one a stalled API would hang the worker thread."""

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = config.request_timeout
            return super().send(request, *args, **kwargs)

    from alertscaler import __version__

    client = LinodeClient(config.token.get_secret_value(), base_url=config.api_url, retry=False,
                          user_agent=f"alertscaler/{__version__}")
    adapter = TimeoutAdapter(max_retries=0)
    client.session.mount("http://", adapter)
    client.session.mount("https://", adapter)
    return client


def translate(exc: BaseException, doing: str) -> NoReturn:
    """Raise the alertscaler error for a linode-api4 / requests exception (``raise ... from exc``)."""
    import requests
    from linode_api4.errors import ApiError, UnexpectedResponseError  # type: ignore[import-untyped]

    if isinstance(exc, ProviderError):
        raise exc
    if isinstance(exc, ApiError):
        status = int(exc.status)
        response = exc.response
        detail = error_text(exc.json) or " ".join(str(getattr(response, "text", "") or "").split())[:300] \
            or str(getattr(response, "reason", "") or "no details")
        headers = getattr(response, "headers", None) or {}
        raise classify(status, f"{doing}: HTTP {status}: {detail}", RETRY_POLICY,
                       retry_after=headers.get("Retry-After")) from exc
    if isinstance(exc, requests.Timeout | TimeoutError):
        raise TemporaryProviderError(f"{doing}: no answer from the Linode API in time ({type(exc).__name__})",
                                     delay=DEFAULT_DELAY) from exc
    if isinstance(exc, requests.ConnectionError | ConnectionError):
        raise TemporaryProviderError(f"{doing}: cannot reach the Linode API ({type(exc).__name__}: "
                                     f"{_short(exc)})", delay=DEFAULT_DELAY) from exc
    if isinstance(exc, requests.RequestException | UnexpectedResponseError):
        raise TemporaryProviderError(f"{doing}: {type(exc).__name__}: {_short(exc)}", delay=DEFAULT_DELAY) from exc
    if isinstance(exc, RuntimeError) and "changed since creation" in str(exc):  # PaginatedList, between pages
        raise TemporaryProviderError(f"{doing}: the list changed while its pages were read",
                                     delay=DEFAULT_DELAY) from exc
    raise PermanentProviderError(f"{doing}: unexpected {type(exc).__name__}: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def is_not_found(exc: BaseException) -> bool:
    from linode_api4.errors import ApiError

    return isinstance(exc, ApiError) and exc.status == 404
