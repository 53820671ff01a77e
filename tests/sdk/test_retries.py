"""The client's own retries and the error mapping of the 429/5xx paths.

The development server never answers 429 or 5xx on purpose, so these tests use a TEST DOUBLE:
an `httpx.MockTransport` scripted with the answers of a rate-limited or failing server, passed in
as the client's `http_client`. Everything else (the SDK's transport, retry policy, error mapping)
is the real code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from governs_ai import GovernsAIClient, SyncGovernsAIClient
from governs_ai.exceptions import (
    BudgetError,
    ConfirmationError,
    GovernsAIError,
    PrecheckError,
    RateLimitError,
    ToolNotFoundError,
)

pytestmark = pytest.mark.anyio

ALLOW = {"decision": "allow", "reasons": [], "metadata": {}, "requiresConfirmation": False}
HEALTH = {"status": "healthy", "services": {"database": "ok"}}


def scripted(*answers: httpx.Response) -> tuple[list[httpx.Request], Callable[..., httpx.Response]]:
    """A handler answering with `answers` in turn (the last one repeats), and what it saw."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[min(len(seen), len(answers)) - 1]

    return seen, handler


def rate_limited(seconds: str) -> httpx.Response:
    return httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": seconds})


def async_client(handler: Callable[..., httpx.Response], **options: Any) -> GovernsAIClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return GovernsAIClient(
        api_key="k", org_id="o", base_url="http://double", http_client=http, **options
    )


def sync_client(handler: Callable[..., httpx.Response], **options: Any) -> SyncGovernsAIClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return SyncGovernsAIClient(
        api_key="k", org_id="o", base_url="http://double", http_client=http, **options
    )


async def test_a_429_is_retried_after_the_servers_retry_after() -> None:
    seen, handler = scripted(rate_limited("1"), httpx.Response(200, json=ALLOW))
    client = async_client(handler, retry_delay=1)
    started = time.monotonic()
    response = await client.precheck_request(tool="model.chat", raw_text="hi")
    assert response.decision == "allow"
    assert len(seen) == 2  # a 429 was not acted on, so even a precheck is retried
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 (s) beat retry_delay (1 ms)


def test_the_sync_twin_honours_retry_after_too() -> None:
    seen, handler = scripted(rate_limited("1"), httpx.Response(200, json=HEALTH))
    started = time.monotonic()
    assert sync_client(handler, retry_delay=1).get_health_status().status == "healthy"
    assert len(seen) == 2 and time.monotonic() - started >= 1.0


async def test_exhausted_429s_raise_a_rate_limit_error_with_its_status() -> None:
    seen, handler = scripted(rate_limited("0"))
    client = async_client(handler, retries=2)
    with pytest.raises(RateLimitError) as caught:
        await client.get_budget_context("alice")
    error = caught.value
    assert isinstance(error, BudgetError)
    assert error.status_code == 429 and error.retryable and error.retry_after == 0
    assert error.message == "Failed to get budget context: slow down"
    assert len(seen) == 3


async def test_a_retry_after_beyond_a_minute_is_raised_at_once() -> None:
    seen, handler = scripted(rate_limited("3600"), httpx.Response(200, json=HEALTH))
    with pytest.raises(RateLimitError) as caught:
        await async_client(handler).get_health_status()
    assert caught.value.retry_after == 3600 and len(seen) == 1


async def test_a_5xx_on_an_idempotent_call_is_retried_with_back_off() -> None:
    seen, handler = scripted(
        httpx.Response(502, json={"message": "bad gateway"}),
        httpx.Response(500, text="oops"),
        httpx.Response(200, json={"correlationId": "c1", "status": "pending", "approved": False}),
    )
    status = await async_client(handler, retry_delay=1).confirmation.get_confirmation_status("c1")
    assert status.status == "pending" and len(seen) == 3


async def test_a_5xx_on_a_precheck_is_not_retried_the_server_may_have_acted() -> None:
    seen, handler = scripted(httpx.Response(500, json={"message": "boom"}))
    with pytest.raises(PrecheckError) as caught:
        await async_client(handler, retry_delay=1).precheck_request(tool="t", raw_text="x")
    assert caught.value.status_code == 500 and caught.value.retryable is True
    assert caught.value.message == "Precheck request failed: boom"
    assert len(seen) == 1


async def test_record_usage_is_not_repeated_after_a_5xx() -> None:
    seen, handler = scripted(httpx.Response(503, json={"message": "busy"}))
    with pytest.raises(BudgetError) as caught:
        await async_client(handler, retry_delay=1).record_usage(
            {"provider": "openai", "model": "gpt-4o", "cost": 0.01, "user_id": "alice"}
        )
    assert caught.value.status_code == 503 and len(seen) == 1


async def test_retries_zero_means_a_single_attempt() -> None:
    seen, handler = scripted(httpx.Response(503, json=HEALTH | {"status": "unhealthy"}))
    health = await async_client(handler, retries=0).get_health_status()
    assert health.status == "unhealthy"  # an unhealthy 503 is an answer, not an error
    seen2, handler2 = scripted(httpx.Response(502, text="bad gateway"))
    with pytest.raises(GovernsAIError) as caught:
        await async_client(handler2, retries=0).get_health_status()
    assert caught.value.status_code == 502 and len(seen) == len(seen2) == 1


async def test_update_config_changes_retries_on_the_next_call() -> None:
    seen, handler = scripted(httpx.Response(502, text="bad gateway"))
    client = async_client(handler, retries=0, retry_delay=1)
    with pytest.raises(GovernsAIError):
        await client.get_health_status()
    client.update_config({"retries": 2})
    with pytest.raises(GovernsAIError):
        await client.get_health_status()
    assert len(seen) == 1 + 3


async def test_a_404_with_not_found_is_a_tool_not_found_error() -> None:
    seen, handler = scripted(httpx.Response(404, json={"message": "Tool not found: nope"}))
    with pytest.raises(ToolNotFoundError) as caught:
        await async_client(handler).tools.get_tool_metadata("nope")
    assert caught.value.status_code == 404 and not caught.value.retryable


async def test_a_404_confirmation_keeps_its_status() -> None:
    _, handler = scripted(httpx.Response(404, json={"message": "Confirmation not found: x"}))
    with pytest.raises(ConfirmationError) as caught:
        await async_client(handler).confirmation.get_confirmation_status("x")
    assert caught.value.status_code == 404 and "not found" in caught.value.message


async def test_a_malformed_success_body_is_the_calls_error_with_its_status() -> None:
    _, handler = scripted(httpx.Response(200, json={"reasons": []}))
    with pytest.raises(PrecheckError, match="decision") as caught:
        await async_client(handler).precheck_request(tool="t", raw_text="x")
    assert caught.value.status_code == 200 and not caught.value.retryable
