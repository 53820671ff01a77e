"""`GovernsAIClient` (async) and `SyncGovernsAIClient` against the real server: connection,
health, prechecks on the development bundle, errors with their real HTTP status, a server that
is down, and `update_config` taking effect on the next request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from governs_ai import (
    Decision,
    GovernsAIClient,
    GovernsAIConfig,
    PrecheckRequest,
    SyncGovernsAIClient,
)
from governs_ai.exceptions import (
    AuthenticationError,
    AuthorizationError,
    GovernsAIError,
    NetworkError,
    PrecheckError,
)

from tests.sdk.conftest import ORG, LiveServer, closed_port_url

pytestmark = pytest.mark.anyio

PII = "I'm Alice (alice@example.com), SSN 123-45-6789."


def client_for(server: LiveServer, key: str | None = None, **options: Any) -> GovernsAIClient:
    return GovernsAIClient(
        api_key=key or server.app_key, base_url=server.url, org_id=ORG, **options
    )


async def test_test_connection_is_true_for_a_running_server(live_server: LiveServer) -> None:
    async with client_for(live_server) as client:
        assert await client.test_connection() is True


async def test_health_status_reports_healthy_services(live_server: LiveServer) -> None:
    async with client_for(live_server) as client:
        health = await client.get_health_status()
    assert health.status == "healthy" and health.healthy
    assert health.services == {"database": "ok", "engine": "ok"}
    assert health.version and health.timestamp


async def test_plain_text_is_allowed_and_the_decision_compares_to_a_string(
    live_server: LiveServer,
) -> None:
    async with client_for(live_server) as client:
        response = await client.precheck_request(
            tool="model.chat",
            scope="net.external",
            raw_text="Summarise my last invoice, please.",
            payload={"messages": [], "provider": "openai"},
            tags=["chat", "model"],
            user_id="alice",
        )
    assert response.decision == "allow" and response.decision is Decision.ALLOW
    assert response.reasons == [] and response.requires_confirmation is False
    assert response.metadata is not None and response.metadata["policyId"] == "development-1"


async def test_pii_is_redacted_and_the_redacted_text_is_returned(live_server: LiveServer) -> None:
    request = PrecheckRequest(tool="model.chat", scope="net.external", raw_text=PII)
    async with client_for(live_server) as client:
        response = await client.precheck_request(request, "alice")
    assert response.decision == "redact"
    assert response.raw_text_out == "I'm Alice ([REDACTED_EMAIL]), SSN [REDACTED_US_SSN]."
    assert "pii.redacted:email" in response.reasons


async def test_a_denied_tool_is_a_deny_decision_not_an_error(live_server: LiveServer) -> None:
    async with client_for(live_server) as client:
        response = await client.precheck.check_tool_call("shell.exec", {"cmd": "ls"}, "alice")
    assert response.decision == "deny"
    assert response.reasons == ["precheck.tool_denied:shell.exec"]


async def test_one_precheck_is_one_http_request(live_server: LiveServer) -> None:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        client = client_for(live_server, http_client=http)
        await client.precheck.check_chat_message(
            [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}], "bob"
        )
        await client.close()  # does not close a client it did not create
        assert not http.is_closed
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/api/v1/precheck")]
    assert seen[0].headers["X-Governs-Key"] == live_server.app_key


async def test_a_chat_without_a_user_message_fails_before_any_request() -> None:
    client = GovernsAIClient(api_key="k", org_id=ORG, base_url=closed_port_url())
    with pytest.raises(PrecheckError, match="No user message"):
        await client.precheck.check_chat_message([{"role": "system", "content": "x"}], "bob")


async def test_a_bad_key_is_an_authentication_error_with_status_401(
    live_server: LiveServer,
) -> None:
    async with client_for(live_server, key="gk_00000000_nope") as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.precheck_request(tool="model.chat", raw_text="hi", user_id="alice")
    error = caught.value
    assert isinstance(error, PrecheckError)  # `except PrecheckError` catches it too
    assert error.status_code == 401 and error.retryable is False
    assert "governor keys" in error.message  # the server's own message is kept


async def test_a_key_without_the_role_is_an_authorization_error_with_status_403(
    live_server: LiveServer,
) -> None:
    async with client_for(live_server, key=live_server.approver_key) as client:
        with pytest.raises(AuthorizationError) as caught:
            await client.precheck_request(tool="model.chat", raw_text="hi")
    assert isinstance(caught.value, PrecheckError)
    assert caught.value.status_code == 403 and caught.value.retryable is False


async def test_an_invalid_request_keeps_its_422_and_the_servers_message(
    live_server: LiveServer,
) -> None:
    async with client_for(live_server) as client:
        with pytest.raises(PrecheckError) as caught:
            await client.precheck_request(tool="", raw_text="hi")
    assert caught.value.status_code == 422 and caught.value.retryable is False
    assert "tool" in caught.value.message


async def test_a_server_that_is_down_is_a_retryable_network_error() -> None:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        client = GovernsAIClient(
            api_key="k", org_id=ORG, base_url=closed_port_url(), retry_delay=1, http_client=http
        )
        assert await client.test_connection() is False
        with pytest.raises(NetworkError) as caught:
            await client.precheck_request(tool="model.chat", raw_text="hi")
    error = caught.value
    assert isinstance(error, PrecheckError)
    assert error.retryable is True and error.status_code is None
    # test_connection: one attempt; the precheck: 1 + 3 retries (the connection never opened,
    # so the server cannot have acted on it).
    assert len(seen) == 1 + 4


async def test_update_config_switches_the_base_url_and_key_on_the_next_request(
    live_server: LiveServer,
) -> None:
    async with GovernsAIClient(
        api_key="gk_00000000_nope", org_id=ORG, base_url=closed_port_url(), retries=0
    ) as client:
        assert await client.test_connection() is False
        client.update_config({"base_url": live_server.url})
        assert client.get_config().base_url == live_server.url
        assert await client.test_connection() is True
        with pytest.raises(AuthenticationError):
            await client.precheck_request(tool="model.chat", raw_text="hi")
        client.update_config(api_key=live_server.app_key)
        response = await client.precheck_request(tool="model.chat", raw_text="hi")
    assert response.decision == "allow"


async def test_get_config_is_a_copy(live_server: LiveServer) -> None:
    client = client_for(live_server)
    client.get_config().base_url = "http://elsewhere"
    assert client.get_config().base_url == live_server.url


async def test_a_config_object_may_be_passed_positionally(live_server: LiveServer) -> None:
    config = GovernsAIConfig(api_key=live_server.app_key, base_url=live_server.url, org_id=ORG)
    async with GovernsAIClient(config) as client:
        assert (await client.precheck_request(tool="shell.exec", raw_text="x")).decision == "deny"


def test_the_sync_twin_speaks_the_same_protocol(live_server: LiveServer) -> None:
    with SyncGovernsAIClient(
        api_key=live_server.app_key, base_url=live_server.url, org_id=ORG
    ) as client:
        assert client.test_connection() is True
        assert client.get_health_status().status == "healthy"
        assert client.precheck_request(tool="model.chat", raw_text=PII).decision == "redact"
        denied = client.precheck.check_tool_call("shell.exec", {}, "alice")
        assert denied.decision == Decision.DENY == "deny"
        client.update_config({"api_key": "gk_00000000_nope"})
        with pytest.raises(AuthenticationError) as caught:
            client.precheck_request(tool="model.chat", raw_text="hi")
    assert caught.value.status_code == 401 and not caught.value.retryable


def test_the_sync_twin_reports_a_server_that_is_down() -> None:
    client = SyncGovernsAIClient(api_key="k", org_id=ORG, base_url=closed_port_url(), retries=0)
    with client:
        assert client.test_connection() is False
        with pytest.raises(NetworkError) as caught:
            client.get_health_status()
    assert caught.value.retryable is True and isinstance(caught.value, GovernsAIError)
