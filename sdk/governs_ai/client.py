"""`GovernsAIClient`: the async client and its sub-clients (its blocking twin is in `sync`).

Every method builds a `Call` (in `_calls`, shared with the sync twin) and sends it through the
transport, which applies the current config, retries and error mapping. The HTTP client is
created on the first request, so a client can be built outside an event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from governs_ai import _calls as calls
from governs_ai._polling import settle
from governs_ai._transport import AsyncTransport
from governs_ai.config import DEFAULT_BASE_URL, GovernsAIConfig
from governs_ai.exceptions import GovernsAIError
from governs_ai.models import (
    BudgetContext,
    BudgetStatus,
    ConfirmationRequest,
    ConfirmationResponse,
    ConfirmationStatus,
    DecisionAnalytics,
    HealthStatus,
    PrecheckRequest,
    PrecheckResponse,
    SpendAnalytics,
    ToolCallAnalytics,
    UsageRecord,
)

__all__ = [
    "AnalyticsClient",
    "BudgetClient",
    "ConfirmationClient",
    "GovernsAIClient",
    "PrecheckClient",
    "ToolClient",
]


class _Base:
    def __init__(self, transport: AsyncTransport, client: GovernsAIClient) -> None:
        self._transport = transport
        self._client = client


class PrecheckClient(_Base):
    """`client.precheck`: ask the server whether a request, tool call or chat may proceed."""

    async def check_request(
        self, request: PrecheckRequest | None = None, user_id: str | None = None, **fields: Any
    ) -> PrecheckResponse:
        """Check a `PrecheckRequest`, or one built from keyword fields (`tool=`, `raw_text=`...)."""
        built = calls.precheck_request(request, user_id, fields)
        return await self._transport.send(calls.precheck(built))

    async def check_tool_call(
        self,
        tool_name: str,
        args: Mapping[str, Any],
        user_id: str | None = None,
        scope: str | None = "net.external",
        corr_id: str | None = None,
    ) -> PrecheckResponse:
        """Check a call of `tool_name` with `args` (tagged `tool_call`)."""
        request = calls.tool_call_request(tool_name, args, user_id, scope, corr_id)
        return await self._transport.send(calls.precheck(request))

    async def check_chat_message(
        self,
        messages: list[dict[str, Any]],
        user_id: str | None = None,
        provider: str = "openai",
        corr_id: str | None = None,
    ) -> PrecheckResponse:
        """Check a chat: the last user message is scanned; `PrecheckError` if there is none."""
        request = calls.chat_request(messages, user_id, provider, corr_id)
        return await self._transport.send(calls.precheck(request))

    async def check_file_upload(
        self,
        filename: str,
        user_id: str | None = None,
        file_size: int | None = None,
        mime_type: str | None = None,
        corr_id: str | None = None,
    ) -> PrecheckResponse:
        """Check an upload of `filename` (tool `file.upload`)."""
        request = calls.file_upload_request(filename, file_size, mime_type, user_id, corr_id)
        return await self._transport.send(calls.precheck(request))


class ConfirmationClient(_Base):
    """`client.confirmation`: human approval of a request, and waiting for it."""

    async def create_confirmation(
        self, request: ConfirmationRequest | None = None, user_id: str | None = None, **fields: Any
    ) -> ConfirmationResponse:
        """Create a pending confirmation (from a `ConfirmationRequest` or keyword fields)."""
        built = calls.confirmation_request(request, user_id, fields)
        return await self._transport.send(calls.create_confirmation(built))

    async def get_confirmation_status(self, correlation_id: str) -> ConfirmationStatus:
        """The confirmation's current status."""
        return await self._transport.send(calls.confirmation_status(correlation_id))

    async def poll_confirmation(
        self, correlation_id: str, max_duration: int = 300000, poll_interval: int = 5000
    ) -> ConfirmationStatus:
        """Wait (ms) until approved; raises `ConfirmationRejectedError`, `...ExpiredError`,
        `ConfirmationError` (cancelled) or `ConfirmationTimeoutError` after `max_duration`."""
        deadline = time.monotonic() + max_duration / 1000
        while True:
            status = await self.get_confirmation_status(correlation_id)
            remaining = deadline - time.monotonic()
            if settle(status, remaining, max_duration):
                return status
            await asyncio.sleep(min(poll_interval / 1000, remaining))

    async def cancel_confirmation(self, correlation_id: str) -> bool:
        """Cancel a pending confirmation."""
        return await self._transport.send(calls.cancel_confirmation(correlation_id))


class BudgetClient(_Base):
    """`client.budget`: a user's budget, and the usage that spends it."""

    async def get_budget_context(self, user_id: str | None = None) -> BudgetContext:
        """The user's limit, spend and remaining budget for the current period."""
        return await self._transport.send(calls.budget_context(user_id))

    async def check_budget(self, estimated_cost: float, user_id: str | None = None) -> BudgetStatus:
        """Whether `estimated_cost` (USD) fits the user's remaining budget."""
        status = await self._transport.send(calls.budget_status(estimated_cost, user_id))
        if status is not None:
            return status
        context = await self.get_budget_context(user_id)
        return calls.status_from_context(context, estimated_cost)

    async def record_usage(
        self, usage: UsageRecord | Mapping[str, Any] | None = None, **fields: Any
    ) -> None:
        """Record a model call's usage (a `UsageRecord`, a dict, or keyword fields)."""
        record = calls.usage_record(usage, self._client.get_config().org_id, fields)
        await self._transport.send(calls.record_usage(record))

    async def get_usage_history(
        self, user_id: str | None = None, limit: int | None = None, offset: int | None = None
    ) -> list[Any]:
        """The user's recorded usage, raw."""
        return await self._transport.send(calls.usage_history(user_id, limit, offset))

    async def update_budget_limit(
        self, user_id: str, monthly_limit: float, currency: str = "USD"
    ) -> bool:
        """Set the user's monthly limit (an admin key)."""
        return await self._transport.send(
            calls.update_budget_limit(user_id, monthly_limit, currency)
        )


class ToolClient(_Base):
    """`client.tools`: the organisation's tool registry."""

    async def register_tools(self, tools: list[dict[str, Any]]) -> bool:
        """Register (or update, by `name`) tool definitions."""
        return await self._transport.send(calls.register_tools(tools))

    async def list_tools(self) -> list[dict[str, Any]]:
        """Every registered tool definition."""
        return await self._transport.send(calls.list_tools())

    async def get_tool_metadata(self, tool_name: str) -> dict[str, Any]:
        """A tool's definition; `ToolNotFoundError` if it is not registered."""
        return await self._transport.send(calls.tool_metadata(tool_name))

    async def update_tool(self, tool_name: str, definition: Mapping[str, Any]) -> bool:
        """Replace a tool's definition."""
        return await self._transport.send(calls.update_tool(tool_name, definition))

    async def unregister_tool(self, tool_name: str) -> bool:
        """Remove a tool from the registry."""
        return await self._transport.send(calls.unregister_tool(tool_name))

    async def execute_tool(
        self,
        tool_name: str,
        args: Mapping[str, Any],
        user_id: str | None = None,
        corr_id: str | None = None,
    ) -> dict[str, Any]:
        """Ask the server to run a tool under policy; its answer, raw."""
        return await self._transport.send(calls.execute_tool(tool_name, args, user_id, corr_id))


class AnalyticsClient(_Base):
    """`client.analytics`: decisions, tool calls, spend and usage over a time range."""

    async def get_decisions(
        self,
        time_range: str = "30d",
        include_stats: bool | str = True,
        user_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> DecisionAnalytics:
        """Precheck decisions (`.decisions`) and counts (`.stats.total`, `.stats.by_decision`)."""
        call = calls.decisions(time_range, include_stats, user_id, limit, offset)
        return await self._transport.send(call)

    async def get_tool_calls(
        self,
        time_range: str = "30d",
        include_stats: bool | str = True,
        user_id: str | None = None,
        tool_name: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> ToolCallAnalytics:
        """Tool calls (`.tool_calls`) and counts (`.stats.by_tool`)."""
        call = calls.tool_calls(time_range, include_stats, user_id, tool_name, limit, offset)
        return await self._transport.send(call)

    async def get_spend_analytics(
        self,
        time_range: str = "30d",
        user_id: str | None = None,
        provider: str | None = None,
        cost_type: str | None = None,
    ) -> SpendAnalytics:
        """Spend (`.total_cost`, `.by_provider`, `.by_user`, `.by_cost_type`)."""
        return await self._transport.send(calls.spend(time_range, user_id, provider, cost_type))

    async def get_usage_records(
        self,
        time_range: str = "30d",
        user_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[UsageRecord]:
        """Recorded usage as `UsageRecord`s."""
        call = calls.usage_records(time_range, user_id, provider, model, limit, offset)
        return await self._transport.send(call)


class GovernsAIClient:
    """The async GovernsAI client.

    ``GovernsAIClient(api_key=..., org_id=..., base_url=...)``, ``GovernsAIClient(config)`` or
    ``GovernsAIClient.from_env()``. Times in milliseconds. `http_client` is an
    `httpx.AsyncClient` you own (it is not closed by `close`); otherwise one is created on the
    first request and closed by `close` / ``async with``.
    """

    def __init__(
        self,
        api_key: str | GovernsAIConfig | None = None,
        base_url: str = DEFAULT_BASE_URL,
        org_id: str | None = None,
        timeout: int = 30000,
        retries: int = 3,
        retry_delay: int = 1000,
        logger: logging.Logger | None = None,
        http_client: httpx.AsyncClient | None = None,
        *,
        config: GovernsAIConfig | None = None,
    ) -> None:
        if isinstance(api_key, GovernsAIConfig):
            config, api_key = api_key, None
        if config is None:
            config = GovernsAIConfig(
                api_key=api_key or "",
                base_url=base_url,
                org_id=org_id or "",
                timeout=timeout,
                retries=retries,
                retry_delay=retry_delay,
                logger=logger,
            )
        elif api_key is not None:
            raise TypeError("pass either a config or api_key=, not both")
        self._config = config
        self._transport = AsyncTransport(lambda: self._config, http_client)
        self.precheck = PrecheckClient(self._transport, self)
        self.confirmation = ConfirmationClient(self._transport, self)
        self.budget = BudgetClient(self._transport, self)
        self.tools = ToolClient(self._transport, self)
        self.analytics = AnalyticsClient(self._transport, self)

    @classmethod
    def from_env(
        cls, http_client: httpx.AsyncClient | None = None, **overrides: Any
    ) -> GovernsAIClient:
        """A client from `GOVERNS_*` variables (`ValueError` names a bad or missing one)."""
        return cls(GovernsAIConfig.from_env(**overrides), http_client=http_client)

    # --- configuration -----------------------------------------------------------------------

    def get_config(self) -> GovernsAIConfig:
        """A copy of the current configuration."""
        return self._config.updated({})

    def update_config(self, changes: Mapping[str, Any] | None = None, **fields: Any) -> None:
        """Change settings (`base_url`, `api_key`, `timeout`, ...); applies to the next request."""
        self._config = self._config.updated({**(changes or {}), **fields})

    # --- lifecycle ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the HTTP client the SDK created (not one passed as `http_client`)."""
        await self._transport.aclose()

    async def __aenter__(self) -> GovernsAIClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- top-level calls ---------------------------------------------------------------------

    async def test_connection(self) -> bool:
        """True when `GET /api/v1/health` answers 2xx (one attempt); False otherwise.

        Health is public, so this proves the server is reachable, not that the key is valid.
        """
        try:
            return await self._transport.send(calls.connection())
        except GovernsAIError:
            return False

    async def get_health_status(self) -> HealthStatus:
        """The server's health (`status`, `services`); an unhealthy server is not an error."""
        return await self._transport.send(calls.health())

    async def precheck_request(
        self, request: PrecheckRequest | None = None, user_id: str | None = None, **fields: Any
    ) -> PrecheckResponse:
        """Check a request: ``precheck_request(PrecheckRequest(...), user_id)`` or keyword
        fields (``tool=, scope=, raw_text=, payload=, tags=, user_id=``). One HTTP request."""
        return await self.precheck.check_request(request, user_id, **fields)

    async def get_budget_context(self, user_id: str | None = None) -> BudgetContext:
        """The user's budget for the current period."""
        return await self.budget.get_budget_context(user_id)

    async def record_usage(
        self, usage: UsageRecord | Mapping[str, Any] | None = None, **fields: Any
    ) -> None:
        """Record a model call's usage; `org_id` defaults to the client's."""
        await self.budget.record_usage(usage, **fields)

    async def create_confirmation(
        self, request: ConfirmationRequest | None = None, user_id: str | None = None, **fields: Any
    ) -> ConfirmationResponse:
        """Create a pending confirmation (a `ConfirmationRequest` or keyword fields)."""
        return await self.confirmation.create_confirmation(request, user_id, **fields)
