"""Sending a `Call`: building the HTTP request, mapping failures onto `governs_ai.exceptions`,
and retrying. `AsyncTransport` and `SyncTransport` differ only in the I/O; every decision is made
by the functions of this module, which both share.

The config is read again before every attempt, so `update_config` (base URL, key, timeout,
retries) takes effect on the next request without rebuilding the HTTP client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from governs_ai._calls import Call
from governs_ai._version import __version__
from governs_ai.config import GovernsAIConfig
from governs_ai.exceptions import (
    AuthenticationError,
    AuthorizationError,
    GovernsAIError,
    NetworkError,
    RateLimitError,
    combined,
)

T = TypeVar("T")

USER_AGENT = f"governs-ai-python-sdk/{__version__} (governor)"

#: The longest back-off between two attempts, and the longest `Retry-After` honoured (s); a
#: server asking for a longer wait gets a `RateLimitError` right away.
MAX_DELAY = 60.0

_log = logging.getLogger("governs_ai")


def url_for(base_url: str, path: str) -> str:
    """`base_url` + `path` (a base URL with a path prefix is kept: ``http://h/gov``)."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def request_arguments(config: GovernsAIConfig, call: Call[Any]) -> dict[str, Any]:
    """Keyword arguments of `httpx.(Async)Client.request` for `call` under `config`."""
    arguments: dict[str, Any] = {
        "method": call.method,
        "url": url_for(config.base_url, call.path),
        "headers": {
            "X-Governs-Key": config.api_key,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
        "timeout": httpx.Timeout(config.timeout / 1000),
    }
    if call.params:
        arguments["params"] = dict(call.params)
    if call.body is not None:
        arguments["json"] = call.body
    return arguments


@dataclass(frozen=True)
class Failure:
    """A failed attempt: the error to raise, whether the server may have acted, its wait."""

    error: GovernsAIError
    sent: bool
    retry_after: float | None = None


def _body(response: httpx.Response) -> Any:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return response.json()
        except ValueError:
            pass
    return {"message": response.text} if response.text else {}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP-date: fall back to our own back-off
    return max(seconds, 0.0)


def handle(call: Call[T], response: httpx.Response) -> T | Failure:
    """The parsed answer of `response`, or the `Failure` it stands for."""
    data = _body(response)
    status = response.status_code
    if response.is_success or status in call.accept:
        try:
            return call.parse(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if not response.is_success:
                pass  # an accepted error status without the expected body: report the status
            else:
                message = f"{call.action}: unexpected response from the server ({exc!r})"
                return Failure(call.domain(message, status, False, data), sent=True)
    server_message = data.get("message") if isinstance(data, dict) else None
    detail = server_message if isinstance(server_message, str) and server_message else None
    retry_after = _retry_after(response) if status in (429, 503) else None
    kind: type[GovernsAIError] | None = None
    if status == 401:
        kind, default = AuthenticationError, "Invalid API key"
    elif status == 403:
        kind, default = AuthorizationError, "Insufficient permissions"
    elif status == 429:
        kind, default = RateLimitError, "Rate limit exceeded"
    elif status == 404 and call.not_found is not None:
        kind, default = call.not_found, "Not found"
    elif status >= 500:
        default = "Server error"
    else:
        default = "Client error"
    message = f"{call.action}: {detail or default}"
    retryable = status == 429 or status >= 500
    if kind is None:
        cls = call.domain
    elif kind is call.not_found:
        cls = kind
    else:
        cls = combined(call.domain, kind)
    error = cls(message, status, retryable, data)
    if isinstance(error, RateLimitError):
        error.retry_after = retry_after
    return Failure(error, sent=True, retry_after=retry_after)


def network_failure(call: Call[Any], config: GovernsAIConfig, exc: httpx.HTTPError) -> Failure:
    """A `NetworkError` (of the call's domain) for a request that got no response."""
    url = url_for(config.base_url, call.path)
    if isinstance(exc, httpx.TimeoutException):
        reason = f"request timed out after {config.timeout} ms"
    elif isinstance(exc, httpx.ConnectError):
        reason = "could not connect"
    else:
        reason = type(exc).__name__
    detail = f" ({exc})" if str(exc) else ""
    message = f"{call.action}: network error: {reason} to {url}{detail}"
    error = combined(call.domain, NetworkError)(message, None, True, None)
    # Not sent: the connection was never made, so the server cannot have acted on the request.
    sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
    return Failure(error, sent=sent)


def next_delay(
    call: Call[Any], config: GovernsAIConfig, attempt: int, failure: Failure
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to raise `failure.error` now.

    Retried: retryable errors (network, 429, 5xx), at most `config.retries` times, for idempotent
    calls; other calls only when the server did not act (no connection, or 429). The wait is the
    server's `Retry-After` when given (up to `MAX_DELAY`), else `retry_delay` × 2^attempt.
    """
    error = failure.error
    if not call.retry or attempt >= config.retries or not error.retryable:
        return None
    not_processed = not failure.sent or isinstance(error, RateLimitError)
    if not (call.idempotent or not_processed):
        return None
    if failure.retry_after is not None:
        return failure.retry_after if failure.retry_after <= MAX_DELAY else None
    return min(config.retry_delay / 1000 * 2**attempt, MAX_DELAY)


def _note_retry(config: GovernsAIConfig, call: Call[Any], failure: Failure, delay: float) -> None:
    (config.logger or _log).info(
        "governs_ai: %s %s failed (%s); retrying in %.2f s",
        call.method,
        call.path,
        failure.error,
        delay,
    )


class AsyncTransport:
    """Sends calls with an `httpx.AsyncClient`, created on first use unless one is given."""

    def __init__(
        self, config: Callable[[], GovernsAIConfig], http_client: httpx.AsyncClient | None
    ) -> None:
        self._config = config
        self._client = http_client
        self._owns_client = http_client is None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            config = self._config()
            try:
                response = await self._http().request(**request_arguments(config, call))
            except httpx.HTTPError as exc:
                outcome: T | Failure = network_failure(call, config, exc)
            else:
                outcome = handle(call, response)
            if not isinstance(outcome, Failure):
                return outcome
            delay = next_delay(call, config, attempt, outcome)
            if delay is None:
                raise outcome.error
            _note_retry(config, call, outcome, delay)
            await asyncio.sleep(delay)
            attempt += 1

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
        self._client = None if self._owns_client else self._client


class SyncTransport:
    """Sends calls with an `httpx.Client`, created on first use unless one is given."""

    def __init__(
        self, config: Callable[[], GovernsAIConfig], http_client: httpx.Client | None
    ) -> None:
        self._config = config
        self._client = http_client
        self._owns_client = http_client is None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client()
        return self._client

    def send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            config = self._config()
            try:
                response = self._http().request(**request_arguments(config, call))
            except httpx.HTTPError as exc:
                outcome: T | Failure = network_failure(call, config, exc)
            else:
                outcome = handle(call, response)
            if not isinstance(outcome, Failure):
                return outcome
            delay = next_delay(call, config, attempt, outcome)
            if delay is None:
                raise outcome.error
            _note_retry(config, call, outcome, delay)
            time.sleep(delay)
            attempt += 1

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
        self._client = None if self._owns_client else self._client
