"""Budgets and usage (wire protocol §4.4, §4.7–§4.10): context, status, usage, limits.

Every query is scoped to the key's organisation; the user comes from `userId` (query or body),
else the key's default user. Amounts on the wire are floats of USD; inside, micro-units (see
`governor_server.budgets`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from governor_server import budgets
from governor_server.auth import require_role
from governor_server.budget_models import ORG_DEFAULT
from governor_server.errors import ApiError
from governor_server.keys import Principal
from governor_server.schemas import ErrorResponse
from governor_server.state import ServerState, get_state

router = APIRouter(
    prefix="/api/v1",
    tags=["budgets"],
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)

App = Annotated[Principal, Depends(require_role("app"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
State = Annotated[ServerState, Depends(get_state)]
UserQuery = Annotated[
    str | None, Query(alias="userId", min_length=1, max_length=255, description="the end user")
]

#: Most usage records one `GET /api/v1/usage` returns.
MAX_PAGE = 1000


def _amount(value: object) -> object:
    """Refuse what JSON would only turn into a number by accident (a bool, a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number (an amount of {budgets.CURRENCY})")
    return value


def _camel(name: str, *others: str) -> Any:
    return AliasChoices(name, *others)


class UsageBody(BaseModel):
    """`POST /api/v1/usage` (§4.8); keys camelCase as the SDK sends them (snake_case accepted)."""

    model_config = ConfigDict(extra="ignore")

    user_id: str | None = Field(
        default=None, min_length=1, max_length=255, validation_alias=_camel("userId", "user_id")
    )
    org_id: str | None = Field(
        default=None, max_length=255, validation_alias=_camel("orgId", "org_id")
    )
    provider: str = Field(min_length=1, max_length=255)
    model: str = Field(min_length=1, max_length=255)
    input_tokens: int | None = Field(
        default=None, ge=0, le=2**62, validation_alias=_camel("inputTokens", "input_tokens")
    )
    output_tokens: int | None = Field(
        default=None, ge=0, le=2**62, validation_alias=_camel("outputTokens", "output_tokens")
    )
    cost: float = Field(ge=0, allow_inf_nan=False)
    cost_type: str | None = Field(
        default=None, max_length=32, validation_alias=_camel("costType", "cost_type")
    )
    timestamp: datetime | None = None
    correlation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        validation_alias=_camel("correlationId", "corrId", "correlation_id", "corr_id"),
    )

    _check_cost = field_validator("cost", mode="before")(_amount)


class LimitBody(BaseModel):
    """`PATCH /api/v1/spend/budget-limits/{userId}` (§4.10); `monthlyLimit: null` removes it."""

    model_config = ConfigDict(extra="ignore")

    monthly_limit: float | None = Field(
        ge=0, allow_inf_nan=False, validation_alias=_camel("monthlyLimit", "monthly_limit")
    )
    currency: str = Field(default=budgets.CURRENCY, min_length=1, max_length=16)

    @field_validator("monthly_limit", mode="before")
    @classmethod
    def _check_limit(cls, value: object) -> object:
        return None if value is None else _amount(value)


@router.get("/budget/context")
def budget_context(principal: App, state: State, user_id: UserQuery = None) -> dict[str, Any]:
    """The user's monthly limit, spending this month and what remains (USD)."""
    user = user_id or principal.default_user
    return budgets.budget_context(state, principal.org_id, user)


@router.get("/budget/status")
def budget_status(
    principal: App,
    state: State,
    user_id: UserQuery = None,
    estimated_cost: Annotated[float, Query(alias="estimatedCost")] = 0.0,
) -> dict[str, Any]:
    """Whether a call costing `estimatedCost` fits the user's budget now (no hold is placed)."""
    estimate = budgets.to_micro(estimated_cost, "estimatedCost")
    user = user_id or principal.default_user
    return budgets.budget_status(state, principal.org_id, user, estimate)


@router.post("/usage", status_code=201)
def record_usage(body: UsageBody, principal: App, state: State) -> dict[str, Any]:
    """Book spending on the user's budget; settles the precheck hold it matches, if any."""
    if body.org_id is not None and body.org_id not in (principal.org_id, principal.org_name):
        raise ApiError(
            403,
            "forbidden",
            f"forbidden: orgId {body.org_id!r} is not the organisation of key "
            f"{principal.key_prefix} ({principal.org_name})",
        )
    usage = budgets.NewUsage(
        org_id=principal.org_id,
        user_id=body.user_id or principal.default_user,
        provider=body.provider,
        model=body.model,
        amount=budgets.to_micro(body.cost, "cost"),
        input_tokens=body.input_tokens,
        output_tokens=body.output_tokens,
        cost_type=body.cost_type,
        correlation_id=body.correlation_id,
        reported_at=body.timestamp,
    )
    record, settled = budgets.record_usage(state.store, usage)
    return {
        "success": True,
        "id": record.id,
        "cost": budgets.from_micro(record.amount),
        "reservationId": settled,
        "settled": settled is not None,
    }


@router.get("/usage")
def list_usage(
    principal: App,
    state: State,
    user_id: UserQuery = None,
    provider: Annotated[str | None, Query(max_length=255)] = None,
    model: Annotated[str | None, Query(max_length=255)] = None,
    time_range: Annotated[str | None, Query(alias="timeRange", max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The organisation's usage records, newest first (`records`; `usage` is the same list)."""
    since = budgets.time_range_start(time_range, datetime.now(UTC))
    records = [
        budgets.usage_wire(r, principal.org_name)
        for r in budgets.list_usage(
            state.store,
            principal.org_id,
            user_id=user_id,
            provider=provider,
            model=model,
            since=since,
            limit=limit,
            offset=offset,
        )
    ]
    return {"records": records, "usage": records, "limit": limit, "offset": offset}


@router.patch("/spend/budget-limits/{userId}")
def update_budget_limit(
    body: LimitBody,
    principal: Admin,
    state: State,
    user_id: Annotated[str, Path(alias="userId", min_length=1, max_length=255)],
) -> JSONResponse:
    """Set a user's monthly limit (`*`: the organisation's default); admin keys only."""
    if body.currency.upper() != budgets.CURRENCY:
        raise ApiError(
            422,
            "validation_error",
            f"invalid request: currency: budgets are kept in {budgets.CURRENCY}, "
            f"got {body.currency!r}",
        )
    amount = (
        None if body.monthly_limit is None else budgets.to_micro(body.monthly_limit, "monthlyLimit")
    )
    budgets.set_limit(state.store.engine, principal.org_id, user_id, amount, budgets.CURRENCY)
    effective = budgets.resolve_limit(state, principal.org_id, user_id)
    return JSONResponse(
        {
            "success": True,
            "userId": user_id,
            "scope": "organisation" if user_id == ORG_DEFAULT else "user",
            "monthlyLimit": None if amount is None else budgets.from_micro(amount),
            "currency": budgets.CURRENCY,
            "effectiveLimit": budgets.from_micro(effective.amount or 0),
            "limitSource": effective.source,
        }
    )
