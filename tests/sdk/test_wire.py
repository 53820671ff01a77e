"""What the SDK puts on the wire and how it reads answers (wire protocol §4), the config and
`from_env`, and `with_retry`. Requests are captured by an `httpx.MockTransport` (a test double
for the server: these tests are about bytes, not behaviour)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from governs_ai import (
    Decision,
    GovernsAIClient,
    GovernsAIConfig,
    PrecheckResponse,
    RetryConfig,
    UsageRecord,
    with_retry,
)
from governs_ai.exceptions import GovernsAIError, NetworkError, PrecheckError

pytestmark = pytest.mark.anyio

DECISIONS = {"decisions": [], "stats": {"total": 3, "byDecision": {"allow": 3}}, "timeRange": "7d"}


def capture(body: dict[str, Any], status: int = 200) -> tuple[list[httpx.Request], Any]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    return seen, handler


def client(handler: Any, base_url: str = "http://h") -> GovernsAIClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return GovernsAIClient(api_key="gk_1", org_id="acme", base_url=base_url, http_client=http)


def test_decision_is_a_string_enum_and_block_means_deny() -> None:
    assert Decision.DENY == "deny" and Decision("block") is Decision.DENY
    assert Decision.BLOCK is Decision.DENY
    response = PrecheckResponse.from_dict({"decision": "block"})
    assert response.decision == "deny" and response.decision is Decision.DENY
    assert PrecheckResponse.from_dict({"decision": "transform"}).decision == "transform"


async def test_get_decisions_sends_include_stats_as_the_string_true() -> None:
    seen, handler = capture(DECISIONS)
    result = await client(handler).analytics.get_decisions("7d", include_stats=True)
    assert result.stats.total == 3 and result.stats.by_decision == {"allow": 3}
    assert seen[0].url.path == "/api/v1/decisions"
    assert dict(seen[0].url.params) == {"timeRange": "7d", "includeStats": "true"}


async def test_a_precheck_body_is_snake_case_without_nulls_and_a_prefix_is_kept() -> None:
    seen, handler = capture({"decision": "allow"})
    await client(handler, "http://h/gov/").precheck_request(
        tool="model.chat", raw_text="hi", user_id="alice"
    )
    request = seen[0]
    assert str(request.url) == "http://h/gov/api/v1/precheck"
    assert request.headers["X-Governs-Key"] == "gk_1"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "tool": "model.chat",
        "raw_text": "hi",
        "payload": {},
        "tags": [],
        "user_id": "alice",
    }


async def test_usage_is_camel_case_with_the_clients_org_and_a_utc_timestamp() -> None:
    seen, handler = capture({"success": True}, status=201)
    await client(handler).record_usage(
        {"user_id": "alice", "provider": "openai", "model": "gpt-4o", "cost": 0.25}
    )
    body = json.loads(seen[0].content)
    assert body["orgId"] == "acme" and body["userId"] == "alice" and body["cost"] == 0.25
    assert body["timestamp"].endswith("Z") and set(body) >= {"inputTokens", "costType"}
    await client(handler).budget.record_usage(
        UsageRecord(user_id="bob", org_id=None, provider="p", model="m", cost=1.0)
    )
    assert json.loads(seen[1].content)["orgId"] == "acme"


async def test_names_in_paths_are_escaped() -> None:
    seen, handler = capture({"name": "a/b"})
    await client(handler).tools.get_tool_metadata("a/b?c")
    assert seen[0].url.raw_path == b"/tools/a%2Fb%3Fc"


async def test_a_confirmation_may_be_created_from_keyword_fields() -> None:
    seen, handler = capture(
        {"correlationId": "c1", "confirmationUrl": "http://h/confirm/c1", "status": "pending"},
        status=201,
    )
    created = await client(handler).create_confirmation(
        request_type="tool_call",
        request_desc="pay",
        request_payload={"amount": 1},
        reasons=["r"],
        user_id="alice",
    )
    assert created.correlation_id == "c1"
    assert json.loads(seen[0].content) == {
        "requestType": "tool_call",
        "requestDesc": "pay",
        "requestPayload": {"amount": 1},
        "reasons": ["r"],
        "userId": "alice",
        "correlationId": None,
    }


def test_from_env_reads_milliseconds_and_names_a_bad_variable() -> None:
    env = {
        "GOVERNS_API_KEY": "gk_1",
        "GOVERNS_ORG_ID": "acme",
        "GOVERNS_BASE_URL": "http://h",
        "GOVERNS_TIMEOUT": "2500",
        "GOVERNS_RETRIES": "0",
    }
    config = GovernsAIConfig.from_env(env)
    assert (config.timeout, config.retries, config.retry_delay) == (2500, 0, 1000)
    with pytest.raises(ValueError, match="GOVERNS_TIMEOUT='2.5'"):
        GovernsAIConfig.from_env({**env, "GOVERNS_TIMEOUT": "2.5"})
    with pytest.raises(ValueError, match="GOVERNS_RETRIES"):
        GovernsAIConfig.from_env({**env, "GOVERNS_RETRIES": "-1"})
    with pytest.raises(ValueError, match="GOVERNS_ORG_ID"):
        GovernsAIConfig.from_env({"GOVERNS_API_KEY": "k"})
    assert "gk_1" not in repr(config)


def test_from_env_builds_a_client_outside_an_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVERNS_API_KEY", "gk_1")
    monkeypatch.setenv("GOVERNS_ORG_ID", "acme")
    monkeypatch.setenv("GOVERNS_RETRY_DELAY", "250")
    client = GovernsAIClient.from_env()
    assert client.get_config().retry_delay == 250
    with pytest.raises(ValueError, match="unknown config field"):
        client.update_config({"base_ur": "x"})
    with pytest.raises(ValueError, match="timeout"):
        client.update_config(timeout=0)


async def test_with_retry_takes_milliseconds_and_a_plain_callable() -> None:
    attempts: list[int] = []

    @with_retry(
        RetryConfig(
            max_retries=5, retry_delay=1, retry_condition=lambda e: getattr(e, "retryable", False)
        )
    )
    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise NetworkError("down")
        return "ok"

    assert await flaky() == "ok" and len(attempts) == 3

    @with_retry(max_retries=5, retry_delay=1)
    def never() -> None:
        attempts.append(1)
        raise PrecheckError("bad request", 400, retryable=False)

    with pytest.raises(GovernsAIError):
        never()
    assert len(attempts) == 4  # not retryable: one attempt
