"""Analytics (wire protocol §4.20-§4.22): decisions, tool calls and spend over a time range.

`timeRange` is `<n>h`, `<n>d` or `<n>w` (default `30d`); `includeStats` is `true|false|1|0` in any
case, absent meaning true (§2.3). Everything is scoped to the key's organisation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from governor_server.analytics import (
    decision_analytics,
    parse_include_stats,
    parse_time_range,
    spend_analytics,
)
from governor_server.auth import require_role
from governor_server.errors import ApiError
from governor_server.keys import Principal
from governor_server.schemas import ErrorResponse
from governor_server.state import ServerState, get_state

router = APIRouter(
    prefix="/api/v1",
    tags=["analytics"],
    responses={
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)

App = Annotated[Principal, Depends(require_role("app"))]
State = Annotated[ServerState, Depends(get_state)]
TimeRange = Annotated[str, Query(alias="timeRange", max_length=16)]
IncludeStats = Annotated[str | None, Query(alias="includeStats", max_length=8)]
UserId = Annotated[str | None, Query(alias="userId", min_length=1, max_length=255)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


def _since(time_range: str) -> datetime:
    try:
        return datetime.now(UTC) - parse_time_range(time_range)
    except ValueError as error:
        raise ApiError(400, "invalid_time_range", f"invalid request: {error}") from None


def _include_stats(value: str | None) -> bool:
    try:
        return parse_include_stats(value)
    except ValueError as error:
        raise ApiError(400, "invalid_include_stats", f"invalid request: {error}") from None


@router.get("/decisions")
def decisions(
    principal: App,
    state: State,
    time_range: TimeRange = "30d",
    include_stats: IncludeStats = None,
    user_id: UserId = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The organisation's decisions in the range, newest first, with stats (§4.20)."""
    records, stats = decision_analytics(
        state.store.engine,
        principal.org_id,
        _since(time_range),
        include_stats=_include_stats(include_stats),
        user_id=user_id,
        limit=limit,
        offset=offset,
    )
    return {"decisions": records, "stats": stats, "timeRange": time_range}


@router.get("/toolcalls")
def tool_calls(
    principal: App,
    state: State,
    time_range: TimeRange = "30d",
    include_stats: IncludeStats = None,
    user_id: UserId = None,
    tool_name: Annotated[str | None, Query(alias="toolName", min_length=1, max_length=255)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The organisation's tool calls in the range (prechecks of tools, executes), §4.21."""
    records, stats = decision_analytics(
        state.store.engine,
        principal.org_id,
        _since(time_range),
        include_stats=_include_stats(include_stats),
        user_id=user_id,
        tool=tool_name,
        tool_calls=True,
        limit=limit,
        offset=offset,
    )
    return {"toolCalls": records, "stats": stats, "timeRange": time_range}


@router.get("/spend")
def spend(
    principal: App,
    state: State,
    time_range: TimeRange = "30d",
    user_id: UserId = None,
    provider: Annotated[str | None, Query(max_length=255)] = None,
    cost_type: Annotated[str | None, Query(alias="costType", max_length=32)] = None,
) -> dict[str, Any]:
    """The organisation's recorded spending in the range, by provider, model, user (§4.22)."""
    figures = spend_analytics(
        state.store.engine,
        principal.org_id,
        _since(time_range),
        user_id=user_id,
        provider=provider,
        cost_type=cost_type,
    )
    return {**figures, "timeRange": time_range}
