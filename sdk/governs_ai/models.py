"""The request and response models, and their wire form (wire protocol §4).

Plain dataclasses. Each response model has `from_dict` (lenient where the protocol is: camelCase or
snake_case keys) and each request model `to_dict` (the exact keys the server reads). A missing
required response field raises `KeyError`, which the client reports as the call's domain error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "AnalyticsStats",
    "BudgetContext",
    "BudgetStatus",
    "ConfirmationRequest",
    "ConfirmationResponse",
    "ConfirmationStatus",
    "Decision",
    "DecisionAnalytics",
    "HealthStatus",
    "PrecheckRequest",
    "PrecheckResponse",
    "SpendAnalytics",
    "ToolCallAnalytics",
    "UsageRecord",
]


def _get(data: dict[str, Any], camel: str, snake: str, default: Any = None) -> Any:
    if camel in data:
        return data[camel]
    return data.get(snake, default)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class Decision(StrEnum):
    """A precheck decision; a `str`, so ``response.decision == "deny"`` holds."""

    ALLOW = "allow"
    DENY = "deny"
    CONFIRM = "confirm"
    REDACT = "redact"
    BLOCK = "deny"  # legacy alias of DENY

    @classmethod
    def _missing_(cls, value: object) -> Decision | None:
        if isinstance(value, str):
            lowered = value.lower()
            if lowered == "block":
                return cls.DENY
            for member in cls:
                if member.value == lowered:
                    return member
        return None

    @classmethod
    def parse(cls, value: str) -> Decision | str:
        """The enum member for `value` (legacy ``"block"`` is DENY); unknown strings stay str."""
        try:
            return cls(value)
        except ValueError:
            return value


# --- precheck ------------------------------------------------------------------------------


@dataclass
class PrecheckRequest:
    """What to check: `POST /api/v1/precheck`. `None` fields are not sent."""

    tool: str
    scope: str | None = None
    raw_text: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    corr_id: str | None = None
    user_id: str | None = None
    policy_config: dict[str, Any] | None = None
    tool_config: dict[str, Any] | None = None
    budget_context: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire body: snake_case, `None` dropped."""
        body = {
            "tool": self.tool,
            "scope": self.scope,
            "raw_text": self.raw_text,
            "payload": self.payload,
            "tags": self.tags,
            "corr_id": self.corr_id,
            "user_id": self.user_id,
            "policy_config": self.policy_config,
            "tool_config": self.tool_config,
            "budget_context": self.budget_context,
        }
        return {key: value for key, value in body.items() if value is not None}


@dataclass
class PrecheckResponse:
    """The decision. `raw_text_out` is the text to use on `redact` (None if not sent)."""

    decision: Decision | str
    reasons: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    requires_confirmation: bool = False
    confirmation_url: str | None = None
    raw_text_out: str | None = None
    policy_id: str | None = None

    @property
    def correlation_id(self) -> str | None:
        """The confirmation's id on `confirm` (from `metadata.correlationId`), else None."""
        value = (self.metadata or {}).get("correlationId")
        return value if isinstance(value, str) else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrecheckResponse:
        return cls(
            decision=Decision.parse(str(data["decision"])),
            reasons=list(data.get("reasons") or []),
            metadata=data.get("metadata"),
            requires_confirmation=bool(data.get("requiresConfirmation", False)),
            confirmation_url=data.get("confirmationUrl"),
            raw_text_out=data.get("raw_text_out"),
            policy_id=data.get("policy_id"),
        )


# --- budget and usage ----------------------------------------------------------------------


@dataclass
class BudgetContext:
    """A user's budget for the current period (`GET /api/v1/budget/context`)."""

    monthly_limit: float | None
    current_spend: float | None
    remaining_budget: float | None
    currency: str = "USD"
    period_start: str | None = None
    period_end: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BudgetContext:
        return cls(
            monthly_limit=_float(_get(data, "monthlyLimit", "monthly_limit")),
            current_spend=_float(_get(data, "currentSpend", "current_spend")),
            remaining_budget=_float(_get(data, "remainingBudget", "remaining_budget")),
            currency=_get(data, "currency", "currency") or "USD",
            period_start=_get(data, "periodStart", "period_start"),
            period_end=_get(data, "periodEnd", "period_end"),
        )


@dataclass
class BudgetStatus:
    """Whether an estimated cost fits the budget (`budget.check_budget`)."""

    allowed: bool
    reason: str | None = None
    remaining_budget: float | None = None
    estimated_cost: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BudgetStatus:
        return cls(
            allowed=bool(data["allowed"]),
            reason=data.get("reason"),
            remaining_budget=_float(_get(data, "remainingBudget", "remaining_budget")),
            estimated_cost=_float(_get(data, "estimatedCost", "estimated_cost")),
        )


def _utc_now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat() + "Z"


@dataclass
class UsageRecord:
    """One model call's usage and cost (USD), sent with `record_usage`."""

    user_id: str | None
    org_id: str | None
    provider: str
    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float = 0.0
    cost_type: str | None = "external"
    timestamp: str = field(default_factory=_utc_now)
    tool: str | None = None
    decision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The wire body: camelCase, `None` sent as null."""
        return {
            "userId": self.user_id,
            "orgId": self.org_id,
            "provider": self.provider,
            "model": self.model,
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "cost": self.cost,
            "costType": self.cost_type,
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UsageRecord:
        """Read a record in camelCase (the wire) or snake_case (a caller's dict)."""
        return cls(
            user_id=_get(data, "userId", "user_id"),
            org_id=_get(data, "orgId", "org_id"),
            provider=data["provider"],
            model=data["model"],
            input_tokens=_get(data, "inputTokens", "input_tokens"),
            output_tokens=_get(data, "outputTokens", "output_tokens"),
            cost=float(data["cost"]),
            cost_type=_get(data, "costType", "cost_type"),
            timestamp=data.get("timestamp") or _utc_now(),
            tool=data.get("tool"),
            decision=data.get("decision"),
        )


# --- health --------------------------------------------------------------------------------


@dataclass
class HealthStatus:
    """The server's health: `status` is healthy, degraded or unhealthy."""

    status: str
    services: dict[str, Any]
    timestamp: str | None = None
    version: str | None = None

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthStatus:
        return cls(
            status=data["status"],
            services=dict(data["services"]),
            timestamp=data.get("timestamp"),
            version=data.get("version"),
        )


# --- confirmations -------------------------------------------------------------------------


@dataclass
class ConfirmationRequest:
    """A request for a human's approval (`POST /confirmation`)."""

    request_type: str
    request_desc: str
    request_payload: dict[str, Any]
    reasons: list[str] = field(default_factory=list)
    user_id: str | None = None
    correlation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requestType": self.request_type,
            "requestDesc": self.request_desc,
            "requestPayload": self.request_payload,
            "reasons": self.reasons,
            "userId": self.user_id,
            "correlationId": self.correlation_id,
        }


@dataclass
class ConfirmationResponse:
    """A created confirmation: send the user to `confirmation_url`, poll `correlation_id`."""

    correlation_id: str
    confirmation_url: str
    status: str
    expires_at: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfirmationResponse:
        return cls(
            correlation_id=data["correlationId"],
            confirmation_url=data["confirmationUrl"],
            status=data["status"],
            expires_at=data.get("expiresAt"),
        )


@dataclass
class ConfirmationStatus:
    """Where a confirmation stands: pending, approved, rejected, expired or cancelled."""

    correlation_id: str
    status: str
    approved: bool
    approved_at: str | None = None
    rejected_at: str | None = None
    expires_at: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfirmationStatus:
        return cls(
            correlation_id=data["correlationId"],
            status=data["status"],
            approved=bool(data["approved"]),
            approved_at=data.get("approvedAt"),
            rejected_at=data.get("rejectedAt"),
            expires_at=data.get("expiresAt"),
        )


# --- analytics -----------------------------------------------------------------------------


@dataclass
class AnalyticsStats:
    """Counts over a time range: `total` and name → count maps."""

    total: int
    by_decision: dict[str, int] = field(default_factory=dict)
    by_tool: dict[str, int] = field(default_factory=dict)
    by_user: dict[str, int] = field(default_factory=dict)
    by_provider: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalyticsStats:
        return cls(
            total=int(data["total"]),
            by_decision=dict(_get(data, "byDecision", "by_decision") or {}),
            by_tool=dict(_get(data, "byTool", "by_tool") or {}),
            by_user=dict(_get(data, "byUser", "by_user") or {}),
            by_provider=dict(_get(data, "byProvider", "by_provider") or {}),
        )


@dataclass
class DecisionAnalytics:
    """`analytics.get_decisions`: the decision records and their stats."""

    decisions: list[dict[str, Any]]
    stats: AnalyticsStats
    time_range: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecisionAnalytics:
        return cls(
            decisions=list(data["decisions"]),
            stats=AnalyticsStats.from_dict(data["stats"]),
            time_range=data["timeRange"],
        )


@dataclass
class ToolCallAnalytics:
    """`analytics.get_tool_calls`: the tool-call records and their stats (`stats.by_tool`)."""

    tool_calls: list[dict[str, Any]]
    stats: AnalyticsStats
    time_range: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolCallAnalytics:
        return cls(
            tool_calls=list(data["toolCalls"]),
            stats=AnalyticsStats.from_dict(data["stats"]),
            time_range=data["timeRange"],
        )


@dataclass
class SpendAnalytics:
    """`analytics.get_spend_analytics`: cost totals by provider, user and cost type."""

    total_cost: float
    by_provider: dict[str, float]
    by_user: dict[str, float]
    by_cost_type: dict[str, float]
    time_range: str
    currency: str = "USD"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpendAnalytics:
        spend = data.get("spend", data)
        return cls(
            total_cost=float(spend["totalCost"]),
            by_provider=dict(spend["byProvider"]),
            by_user=dict(spend["byUser"]),
            by_cost_type=dict(spend["byCostType"]),
            time_range=spend["timeRange"],
            currency=spend.get("currency") or "USD",
        )
