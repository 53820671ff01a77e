"""Every HTTP call of the SDK as data: method, path, query, body, how to parse the answer, which
error it raises, and whether it may be retried. Shared by the async and the sync client, which
differ only in how they send a `Call` (see `_transport`).

Paths and field names are those of the wire protocol (§4, §5): un-prefixed `/confirmation` and
`/tools`, `/api/v1/...` for the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from governs_ai.exceptions import (
    AnalyticsError,
    BudgetError,
    ConfirmationError,
    GovernsAIError,
    PrecheckError,
    ToolError,
    ToolExecutionError,
    ToolNotFoundError,
)
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

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and how to read its answer.

    `idempotent`: repeating it cannot change the outcome, so every retryable failure (network
    error, 429, 5xx) is retried. Other calls are retried only when the server provably did not
    act on them: the connection was never established, or it answered 429.
    `accept`: non-2xx statuses whose body is still the answer (an unhealthy server's 503).
    `retry`: False makes it a single attempt whatever the config says.
    """

    method: str
    path: str
    parse: Callable[[Any], T]
    domain: type[GovernsAIError]
    action: str
    params: Mapping[str, str] | None = None
    body: Any = None
    idempotent: bool = False
    not_found: type[GovernsAIError] | None = None
    accept: frozenset[int] = field(default_factory=frozenset)
    retry: bool = True


def _segment(value: str) -> str:
    """A path segment, percent-encoded (a `/` or `?` in a name cannot change the path)."""
    return quote(value, safe="")


def query(**values: Any) -> dict[str, str]:
    """Query parameters: `None` dropped, bools as ``true``/``false`` (not Python's ``True``)."""
    params: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, str):
            params[name] = value
        else:
            params[name] = str(value)
    return params


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _true(data: Any) -> bool:
    return True


def _none(data: Any) -> None:
    return None


# --- health --------------------------------------------------------------------------------


def health() -> Call[HealthStatus]:
    """`GET /api/v1/health`; an unhealthy server's 503 is still a `HealthStatus`."""
    return Call(
        "GET",
        "/api/v1/health",
        lambda data: HealthStatus.from_dict(_object(data)),
        GovernsAIError,
        "Health check failed",
        idempotent=True,
        accept=frozenset({503}),
    )


def connection() -> Call[bool]:
    """`GET /api/v1/health` once, without retries: True on any 2xx."""
    return Call(
        "GET", "/api/v1/health", _true, GovernsAIError, "Connection test failed", retry=False
    )


# --- precheck ------------------------------------------------------------------------------


def precheck_request(
    request: PrecheckRequest | None,
    user_id: str | None,
    fields: Mapping[str, Any],
) -> PrecheckRequest:
    """The request of `precheck_request(request, user_id)` or `precheck_request(**fields)`."""
    if request is not None:
        if fields:
            raise TypeError("pass either a PrecheckRequest or keyword fields, not both")
        if user_id is not None and request.user_id != user_id:
            request = PrecheckRequest(**{**request.__dict__, "user_id": user_id})
        return request
    if "tool" not in fields:
        raise TypeError("precheck_request() needs a PrecheckRequest or at least tool=")
    return PrecheckRequest(user_id=user_id, **fields)


def precheck(request: PrecheckRequest) -> Call[PrecheckResponse]:
    """`POST /api/v1/precheck`: one request, no enrichment calls."""
    return Call(
        "POST",
        "/api/v1/precheck",
        lambda data: PrecheckResponse.from_dict(_object(data)),
        PrecheckError,
        "Precheck request failed",
        body=request.to_dict(),
    )


def tool_call_request(
    tool_name: str,
    args: Mapping[str, Any],
    user_id: str | None,
    scope: str | None,
    corr_id: str | None,
) -> PrecheckRequest:
    """The precheck of a tool call (wire protocol §4.5: tag `tool_call`)."""
    return PrecheckRequest(
        tool=tool_name,
        scope=scope,
        raw_text=f"Tool call: {tool_name}",
        payload={"args": dict(args)},
        tags=["tool_call"],
        corr_id=corr_id,
        user_id=user_id,
    )


def chat_request(
    messages: list[dict[str, Any]],
    user_id: str | None,
    provider: str,
    corr_id: str | None,
) -> PrecheckRequest:
    """The precheck of a chat: the last user message's text, all messages in the payload."""
    user_texts = [m.get("content") for m in messages if m.get("role") == "user"]
    if not user_texts:
        raise PrecheckError("No user message found in chat")
    return PrecheckRequest(
        tool="model.chat",
        scope="net.external",
        raw_text=str(user_texts[-1] or ""),
        payload={"messages": list(messages), "provider": provider},
        tags=["chat", "model"],
        corr_id=corr_id,
        user_id=user_id,
    )


def file_upload_request(
    filename: str,
    file_size: int | None,
    mime_type: str | None,
    user_id: str | None,
    corr_id: str | None,
) -> PrecheckRequest:
    """The precheck of a file upload (tool `file.upload`)."""
    return PrecheckRequest(
        tool="file.upload",
        scope="net.external",
        raw_text=f"File upload: {filename}",
        payload={"filename": filename, "fileSize": file_size, "mimeType": mime_type},
        tags=["file", "upload"],
        corr_id=corr_id,
        user_id=user_id,
    )


# --- budget and usage ----------------------------------------------------------------------


def budget_context(user_id: str | None) -> Call[BudgetContext]:
    """`GET /api/v1/budget/context?userId=`."""
    return Call(
        "GET",
        "/api/v1/budget/context",
        lambda data: BudgetContext.from_dict(_object(data)),
        BudgetError,
        "Failed to get budget context",
        params=query(userId=user_id),
        idempotent=True,
    )


def _budget_status(data: Any) -> BudgetStatus | None:
    status = _object(data).get("status", data)
    if isinstance(status, dict) and "allowed" in status:
        return BudgetStatus.from_dict(status)
    return None


def budget_status(estimated_cost: float, user_id: str | None) -> Call[BudgetStatus | None]:
    """`GET /api/v1/budget/status`; None when the answer has no `allowed` (use the context)."""
    return Call(
        "GET",
        "/api/v1/budget/status",
        _budget_status,
        BudgetError,
        "Budget check failed",
        params=query(userId=user_id, estimatedCost=float(estimated_cost)),
        idempotent=True,
    )


def status_from_context(context: BudgetContext, estimated_cost: float) -> BudgetStatus:
    """`check_budget`'s fallback: allowed when the remaining budget covers the cost."""
    remaining = context.remaining_budget
    allowed = remaining is not None and remaining >= estimated_cost
    return BudgetStatus(
        allowed=allowed,
        reason=None if allowed else "budget_exceeded",
        remaining_budget=remaining,
        estimated_cost=estimated_cost,
    )


def usage_record(
    usage: UsageRecord | Mapping[str, Any] | None, org_id: str, fields: Mapping[str, Any]
) -> UsageRecord:
    """A `UsageRecord` from a record, a dict (camel or snake keys) or keyword fields."""
    if usage is None:
        usage = dict(fields)
    elif fields:
        raise TypeError("pass either a usage record or keyword fields, not both")
    if isinstance(usage, UsageRecord):
        record = usage
    else:
        data = dict(usage)
        missing = [name for name in ("provider", "model", "cost") if name not in data]
        if missing:
            raise BudgetError(f"usage record is missing {', '.join(missing)}")
        data.setdefault("org_id", data.get("orgId") or org_id)
        record = UsageRecord.from_dict(data)
    if record.org_id is None:
        record.org_id = org_id
    return record


def record_usage(record: UsageRecord) -> Call[None]:
    """`POST /api/v1/usage` (not retried once sent: a repeat would count the cost twice)."""
    return Call(
        "POST", "/api/v1/usage", _none, BudgetError, "Failed to record usage", body=record.to_dict()
    )


def _records(data: Any) -> list[dict[str, Any]]:
    data = _object(data)
    records = data.get("records", data.get("usage", []))
    if not isinstance(records, list):
        raise TypeError("records is not a list")
    return records


def usage_history(user_id: str | None, limit: int | None, offset: int | None) -> Call[list[Any]]:
    """`GET /api/v1/usage?limit=&offset=&userId=`: the raw records."""
    return Call(
        "GET",
        "/api/v1/usage",
        _records,
        BudgetError,
        "Failed to get usage history",
        params=query(limit=limit, offset=offset, userId=user_id),
        idempotent=True,
    )


def update_budget_limit(user_id: str, monthly_limit: float, currency: str) -> Call[bool]:
    """`PATCH /api/v1/spend/budget-limits/{userId}` (setting a value twice is harmless)."""
    return Call(
        "PATCH",
        f"/api/v1/spend/budget-limits/{_segment(user_id)}",
        _true,
        BudgetError,
        "Failed to update budget limit",
        body={"monthlyLimit": float(monthly_limit), "currency": currency},
        idempotent=True,
    )


# --- confirmations -------------------------------------------------------------------------


def confirmation_request(
    request: ConfirmationRequest | None, user_id: str | None, fields: Mapping[str, Any]
) -> ConfirmationRequest:
    """The request of `create_confirmation(request, user_id)` or `create_confirmation(**fields)`."""
    if request is None:
        return ConfirmationRequest(**{"user_id": user_id, **fields})
    if fields:
        raise TypeError("pass either a ConfirmationRequest or keyword fields, not both")
    if user_id is not None:
        request = ConfirmationRequest(**{**request.__dict__, "user_id": user_id})
    return request


def create_confirmation(request: ConfirmationRequest) -> Call[ConfirmationResponse]:
    """`POST /confirmation`."""
    return Call(
        "POST",
        "/confirmation",
        lambda data: ConfirmationResponse.from_dict(_object(data)),
        ConfirmationError,
        "Failed to create confirmation",
        body=request.to_dict(),
    )


def confirmation_status(correlation_id: str) -> Call[ConfirmationStatus]:
    """`GET /confirmation/{correlationId}`."""
    return Call(
        "GET",
        f"/confirmation/{_segment(correlation_id)}",
        lambda data: ConfirmationStatus.from_dict(_object(data)),
        ConfirmationError,
        "Failed to get confirmation status",
        idempotent=True,
    )


def cancel_confirmation(correlation_id: str) -> Call[bool]:
    """`DELETE /confirmation/{correlationId}` (a repeat would answer 409: not retried once sent)."""
    return Call(
        "DELETE",
        f"/confirmation/{_segment(correlation_id)}",
        _true,
        ConfirmationError,
        "Failed to cancel confirmation",
    )


# --- tools ---------------------------------------------------------------------------------


def register_tools(tools: list[dict[str, Any]]) -> Call[bool]:
    """`POST /tools`: an upsert by name, so repeating it is harmless."""
    return Call(
        "POST",
        "/tools",
        _true,
        ToolError,
        "Failed to register tools",
        body={"tools": list(tools)},
        idempotent=True,
    )


def list_tools() -> Call[list[dict[str, Any]]]:
    """`GET /tools`."""

    def parse(data: Any) -> list[dict[str, Any]]:
        tools = _object(data).get("tools", [])
        if not isinstance(tools, list):
            raise TypeError("tools is not a list")
        return tools

    return Call("GET", "/tools", parse, ToolError, "Failed to list tools", idempotent=True)


def tool_metadata(name: str) -> Call[dict[str, Any]]:
    """`GET /tools/{name}`: the stored definition, raw."""
    return Call(
        "GET",
        f"/tools/{_segment(name)}",
        _object,
        ToolError,
        "Failed to get tool metadata",
        idempotent=True,
        not_found=ToolNotFoundError,
    )


def update_tool(name: str, definition: Mapping[str, Any]) -> Call[bool]:
    """`PUT /tools/{name}`."""
    return Call(
        "PUT",
        f"/tools/{_segment(name)}",
        _true,
        ToolError,
        "Failed to update tool",
        body=dict(definition),
        idempotent=True,
    )


def unregister_tool(name: str) -> Call[bool]:
    """`DELETE /tools/{name}` (a repeat would answer 404: not retried once sent)."""
    return Call(
        "DELETE",
        f"/tools/{_segment(name)}",
        _true,
        ToolError,
        "Failed to unregister tool",
        not_found=ToolNotFoundError,
    )


def execute_tool(
    name: str, args: Mapping[str, Any], user_id: str | None, corr_id: str | None
) -> Call[dict[str, Any]]:
    """`POST /tools/{name}/execute`: the server's answer, raw."""
    return Call(
        "POST",
        f"/tools/{_segment(name)}/execute",
        _object,
        ToolExecutionError,
        "Tool execution failed",
        body={"args": dict(args), "userId": user_id, "corrId": corr_id},
        not_found=ToolNotFoundError,
    )


# --- analytics -----------------------------------------------------------------------------


def decisions(
    time_range: str,
    include_stats: bool | str,
    user_id: str | None,
    limit: int | None,
    offset: int | None,
) -> Call[DecisionAnalytics]:
    """`GET /api/v1/decisions` (`includeStats` sent as ``true``/``false``)."""
    return Call(
        "GET",
        "/api/v1/decisions",
        lambda data: DecisionAnalytics.from_dict(_object(data)),
        AnalyticsError,
        "Failed to get decisions",
        params=query(
            timeRange=time_range,
            includeStats=include_stats,
            userId=user_id,
            limit=limit,
            offset=offset,
        ),
        idempotent=True,
    )


def tool_calls(
    time_range: str,
    include_stats: bool | str,
    user_id: str | None,
    tool_name: str | None,
    limit: int | None,
    offset: int | None,
) -> Call[ToolCallAnalytics]:
    """`GET /api/v1/toolcalls`."""
    return Call(
        "GET",
        "/api/v1/toolcalls",
        lambda data: ToolCallAnalytics.from_dict(_object(data)),
        AnalyticsError,
        "Failed to get tool calls",
        params=query(
            timeRange=time_range,
            includeStats=include_stats,
            userId=user_id,
            toolName=tool_name,
            limit=limit,
            offset=offset,
        ),
        idempotent=True,
    )


def spend(
    time_range: str, user_id: str | None, provider: str | None, cost_type: str | None
) -> Call[SpendAnalytics]:
    """`GET /api/v1/spend`."""
    return Call(
        "GET",
        "/api/v1/spend",
        lambda data: SpendAnalytics.from_dict(_object(data)),
        AnalyticsError,
        "Failed to get spend analytics",
        params=query(timeRange=time_range, userId=user_id, provider=provider, costType=cost_type),
        idempotent=True,
    )


def usage_records(
    time_range: str,
    user_id: str | None,
    provider: str | None,
    model: str | None,
    limit: int | None,
    offset: int | None,
) -> Call[list[UsageRecord]]:
    """`GET /api/v1/usage?timeRange=...`: parsed records."""
    return Call(
        "GET",
        "/api/v1/usage",
        lambda data: [UsageRecord.from_dict(_object(r)) for r in _records(data)],
        AnalyticsError,
        "Failed to get usage records",
        params=query(
            timeRange=time_range,
            userId=user_id,
            provider=provider,
            model=model,
            limit=limit,
            offset=offset,
        ),
        idempotent=True,
    )
