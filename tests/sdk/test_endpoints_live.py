"""Budgets, usage, confirmations, tools and analytics through the SDK, against the real server."""

from __future__ import annotations

import uuid

import pytest
from governs_ai import GovernsAIClient, SyncGovernsAIClient, UsageRecord
from governs_ai.exceptions import (
    AnalyticsError,
    AuthenticationError,
    AuthorizationError,
    BudgetError,
    ConfirmationError,
    ConfirmationRejectedError,
    ConfirmationTimeoutError,
    ToolError,
    ToolNotFoundError,
)

from tests.sdk.conftest import ORG, LiveServer

pytestmark = pytest.mark.anyio


def client_for(server: LiveServer, key: str | None = None) -> GovernsAIClient:
    return GovernsAIClient(
        api_key=key or server.app_key, base_url=server.url, org_id=ORG, retry_delay=10
    )


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


# --- budgets and usage ---------------------------------------------------------------------


async def test_recorded_usage_is_reflected_in_the_budget_context(live_server: LiveServer) -> None:
    alice = user()
    async with client_for(live_server) as client:
        before = await client.get_budget_context(alice)
        await client.record_usage(
            UsageRecord(user_id=alice, org_id=ORG, provider="openai", model="gpt-4o", cost=1.5)
        )
        await client.budget.record_usage(
            {"userId": alice, "provider": "openai", "model": "gpt-4o", "cost": 0.5}
        )
        after = await client.budget.get_budget_context(alice)
        history = await client.budget.get_usage_history(alice)
    assert before.current_spend == 0 and before.monthly_limit and before.monthly_limit > 0
    assert after.current_spend == pytest.approx(2.0)
    assert after.remaining_budget == pytest.approx(before.monthly_limit - 2.0)
    assert after.currency == "USD" and after.period_start and after.period_end
    assert len(history) == 2


async def test_check_budget_allows_what_fits_and_refuses_what_does_not(
    live_server: LiveServer,
) -> None:
    bob = user()
    async with client_for(live_server) as client:
        fits = await client.budget.check_budget(0.01, bob)
        too_much = await client.budget.check_budget(1e9, bob)
    assert fits.allowed is True and fits.remaining_budget and fits.remaining_budget > 0
    assert too_much.allowed is False


async def test_budget_limits_need_an_admin_key(live_server: LiveServer) -> None:
    carol = user()
    async with client_for(live_server) as client:
        with pytest.raises(AuthorizationError) as caught:
            await client.budget.update_budget_limit(carol, 5)
    assert isinstance(caught.value, BudgetError) and caught.value.status_code == 403
    async with client_for(live_server, live_server.admin_key) as admin:
        assert await admin.budget.update_budget_limit(carol, 5) is True
        assert (await admin.get_budget_context(carol)).monthly_limit == 5


async def test_usage_for_another_organisation_is_refused_with_403(
    live_server: LiveServer,
) -> None:
    async with client_for(live_server) as client:
        with pytest.raises(BudgetError) as caught:
            await client.record_usage(
                {"org_id": "someone-else", "provider": "p", "model": "m", "cost": 1}
            )
    assert caught.value.status_code == 403 and not caught.value.retryable


async def test_usage_records_are_parsed(live_server: LiveServer) -> None:
    dave = user()
    async with client_for(live_server) as client:
        await client.record_usage(
            {"user_id": dave, "provider": "anthropic", "model": "claude", "cost": 0.2}
        )
        records = await client.analytics.get_usage_records("7d", user_id=dave)
    assert [(r.provider, r.model, r.cost) for r in records] == [("anthropic", "claude", 0.2)]


# --- confirmations -------------------------------------------------------------------------


def approve(server: LiveServer, correlation_id: str, verdict: str = "approve") -> None:
    with server.client(server.approver_key) as http:
        response = http.post(f"/confirmation/{correlation_id}/{verdict}")
    assert response.status_code == 200, response.text


async def test_a_confirmation_is_created_approved_and_polled(live_server: LiveServer) -> None:
    async with client_for(live_server) as client:
        created = await client.create_confirmation(
            request_type="tool_call",
            request_desc="Transfer 10 EUR",
            request_payload={"amount": 10},
            reasons=["payments"],
            user_id="alice",
        )
        assert created.status == "pending" and created.correlation_id in created.confirmation_url
        pending = await client.confirmation.get_confirmation_status(created.correlation_id)
        assert pending.status == "pending" and pending.approved is False
        approve(live_server, created.correlation_id)
        done = await client.confirmation.poll_confirmation(
            created.correlation_id, max_duration=5000, poll_interval=50
        )
    assert done.approved is True and done.status == "approved" and done.approved_at


def test_polling_a_rejected_confirmation_raises_with_the_sync_twin(
    live_server: LiveServer,
) -> None:
    with SyncGovernsAIClient(
        api_key=live_server.app_key, base_url=live_server.url, org_id=ORG
    ) as client:
        created = client.confirmation.create_confirmation(
            request_type="tool_call", request_desc="d", request_payload={}, user_id="alice"
        )
        approve(live_server, created.correlation_id, "reject")
        with pytest.raises(ConfirmationRejectedError):
            client.confirmation.poll_confirmation(created.correlation_id, 2000, 50)


async def test_polling_stops_at_max_duration_and_cancel_is_terminal(
    live_server: LiveServer,
) -> None:
    async with client_for(live_server) as client:
        created = await client.confirmation.create_confirmation(
            request_type="tool_call", request_desc="d", request_payload={}, user_id="alice"
        )
        with pytest.raises(ConfirmationTimeoutError):
            await client.confirmation.poll_confirmation(created.correlation_id, 200, 50)
        assert await client.confirmation.cancel_confirmation(created.correlation_id) is True
        with pytest.raises(ConfirmationError, match="cancelled"):
            await client.confirmation.poll_confirmation(created.correlation_id, 2000, 50)


async def test_an_unknown_confirmation_is_a_404(live_server: LiveServer) -> None:
    async with client_for(live_server) as client:
        with pytest.raises(ConfirmationError) as caught:
            await client.confirmation.get_confirmation_status("does-not-exist")
    assert caught.value.status_code == 404 and "not found" in caught.value.message.lower()


async def test_a_payment_precheck_carries_its_confirmation(live_server: LiveServer) -> None:
    async with client_for(live_server) as client:
        response = await client.precheck.check_tool_call("payments.transfer", {"amount": 10})
    assert response.decision == "confirm" and response.requires_confirmation is True


async def test_a_confirm_precheck_resolves_through_its_confirmation_url(
    live_server: LiveServer,
) -> None:
    frank = user()
    async with client_for(live_server) as client:
        response = await client.precheck.check_tool_call("payments.transfer", {"amount": 9}, frank)
        correlation_id = response.correlation_id
        assert response.decision == "confirm" and correlation_id and response.confirmation_url
        assert response.confirmation_url.rstrip("/").rsplit("/", 1)[-1] == correlation_id
        pending = await client.confirmation.get_confirmation_status(correlation_id)
        assert pending.correlation_id == correlation_id
        assert pending.status == "pending" and pending.approved is False and pending.expires_at
        approve(live_server, correlation_id)
        done = await client.confirmation.poll_confirmation(
            correlation_id, max_duration=5000, poll_interval=50
        )
    assert done.approved is True and done.status == "approved" and done.approved_at


def test_a_confirm_precheck_resolves_with_the_sync_twin_too(live_server: LiveServer) -> None:
    with SyncGovernsAIClient(
        api_key=live_server.app_key, base_url=live_server.url, org_id=ORG
    ) as client:
        response = client.precheck.check_tool_call("payments.refund", {"amount": 1}, user())
        assert response.decision == "confirm" and response.correlation_id
        status = client.confirmation.get_confirmation_status(response.correlation_id)
    assert status.status == "pending" and status.correlation_id == response.correlation_id


# --- tools ---------------------------------------------------------------------------------


async def test_tools_are_registered_listed_read_and_removed(live_server: LiveServer) -> None:
    name = f"weather.{uuid.uuid4().hex[:6]}"
    definition = {"name": name, "description": "Weather", "parameters": {"type": "object"}}
    async with client_for(live_server, live_server.admin_key) as client:
        assert await client.tools.register_tools([definition]) is True
        assert name in [tool["name"] for tool in await client.tools.list_tools()]
        assert (await client.tools.get_tool_metadata(name))["name"] == name
        assert await client.tools.update_tool(name, {**definition, "description": "W"}) is True
        result = await client.tools.execute_tool(name, {"city": "Paris"}, "alice")
        assert "decision" in result
        assert await client.tools.unregister_tool(name) is True
        with pytest.raises(ToolNotFoundError) as caught:
            await client.tools.get_tool_metadata(name)
    assert caught.value.status_code == 404


async def test_executing_a_confirm_tool_hands_back_a_resolvable_confirmation(
    live_server: LiveServer,
) -> None:
    name = f"payments.pay_{uuid.uuid4().hex[:6]}"
    async with client_for(live_server) as client:
        assert await client.tools.register_tools([{"name": name, "description": "Pay"}])
        metadata = await client.tools.get_tool_metadata(name)
        result = await client.tools.execute_tool(name, {"amount": 3}, user())
        correlation_id = result["metadata"]["correlationId"]
        status = await client.confirmation.get_confirmation_status(correlation_id)
        with pytest.raises(ToolNotFoundError) as caught:
            await client.tools.execute_tool(f"nope.{uuid.uuid4().hex[:6]}", {}, "alice")
    assert metadata["name"] == name and isinstance(metadata["metadata"], dict)
    assert result["decision"] == "confirm" and result["requiresConfirmation"] is True
    assert result["confirmationUrl"].endswith(correlation_id) and status.status == "pending"
    assert caught.value.status_code == 404 and not caught.value.retryable


async def test_an_invalid_tool_name_is_refused_with_400(live_server: LiveServer) -> None:
    async with client_for(live_server) as client:
        with pytest.raises(ToolError) as caught:
            await client.tools.register_tools([{"name": "bad name/with slash"}])
    assert caught.value.status_code == 400 and "tool name" in caught.value.message


# --- analytics -----------------------------------------------------------------------------


async def test_decisions_tool_calls_and_spend_are_reported(live_server: LiveServer) -> None:
    erin = user()
    async with client_for(live_server) as client:
        await client.precheck_request(tool="model.chat", raw_text="hi", user_id=erin)
        await client.precheck.check_tool_call("shell.exec", {}, erin)
        await client.record_usage({"user_id": erin, "provider": "openai", "model": "m", "cost": 1})
        decisions = await client.analytics.get_decisions("7d", include_stats=True, user_id=erin)
        tool_calls = await client.analytics.get_tool_calls("7d", user_id=erin)
        spend = await client.analytics.get_spend_analytics("7d", user_id=erin)
    assert decisions.stats.total == 2
    assert decisions.stats.by_decision == {"allow": 1, "deny": 1}
    assert tool_calls.stats.by_tool.get("shell.exec") == 1
    assert spend.total_cost == pytest.approx(1.0)


async def test_analytics_count_every_decision_tool_call_and_cost_of_a_user(
    live_server: LiveServer,
) -> None:
    gina = user()
    async with client_for(live_server) as client:
        await client.precheck.check_chat_message([{"role": "user", "content": "hello"}], gina)
        await client.precheck.check_chat_message(
            [{"role": "user", "content": "mail gina@example.com"}], gina
        )
        await client.precheck.check_tool_call("shell.exec", {"cmd": "ls"}, gina)
        await client.precheck.check_tool_call("payments.transfer", {"amount": 1}, gina)
        await client.record_usage(
            UsageRecord(user_id=gina, org_id=ORG, provider="openai", model="gpt-4o", cost=0.75)
        )
        await client.record_usage(
            {"user_id": gina, "provider": "anthropic", "model": "claude", "cost": 0.5}
        )
        decisions = await client.analytics.get_decisions("24h", include_stats=True, user_id=gina)
        page = await client.analytics.get_decisions("7d", False, user_id=gina, limit=1)
        tool_calls = await client.analytics.get_tool_calls("7d", user_id=gina)
        shell = await client.analytics.get_tool_calls("7d", user_id=gina, tool_name="shell.exec")
        spend = await client.analytics.get_spend_analytics("30d", user_id=gina)
    assert decisions.stats.total == 4 and len(decisions.decisions) == 4
    assert decisions.stats.by_decision == {"allow": 1, "redact": 1, "deny": 1, "confirm": 1}
    assert decisions.stats.by_user == {gina: 4} and decisions.time_range == "24h"
    assert all(record["userId"] == gina for record in decisions.decisions)
    assert page.stats.total == 4 and len(page.decisions) == 1
    assert tool_calls.stats.by_tool == {"shell.exec": 1, "payments.transfer": 1}
    assert tool_calls.stats.total == 2 and len(tool_calls.tool_calls) == 2
    assert shell.stats.total == 1 and shell.tool_calls[0]["decision"] == "deny"
    assert spend.total_cost == pytest.approx(1.25) and spend.currency == "USD"
    assert spend.by_provider == pytest.approx({"openai": 0.75, "anthropic": 0.5})
    assert spend.by_user == pytest.approx({gina: 1.25}) and spend.time_range == "30d"


async def test_analytics_errors_keep_their_status(live_server: LiveServer) -> None:
    async with client_for(live_server) as client:
        with pytest.raises(AnalyticsError) as bad_range:
            await client.analytics.get_decisions("fortnight")
    async with client_for(live_server, "gk_not-a-key") as stranger:
        with pytest.raises(AuthenticationError) as unauthenticated:
            await stranger.analytics.get_spend_analytics("7d")
    assert bad_range.value.status_code == 400 and "timeRange" in bad_range.value.message
    assert isinstance(unauthenticated.value, AnalyticsError)
    assert unauthenticated.value.status_code == 401 and not unauthenticated.value.retryable
