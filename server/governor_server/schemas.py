"""The wire models of the GovernsAI protocol (../shared/specs/governsai-wire-protocol.md §4).

Request fields are snake_case as the SDK sends them; unknown fields are ignored. The precheck
response serves both client families at once: camelCase keys for the full client
(`requiresConfirmation`, `confirmationUrl`) and snake_case ones for the simple clients
(`raw_text_out`, `policy_id`, `ts`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ErrorResponse",
    "HealthResponse",
    "PostcheckRequest",
    "PrecheckRequest",
    "PrecheckResponse",
]

#: Longest text a precheck scans (characters); a longer one is refused with 422.
MAX_TEXT = 1_000_000

_Name = Field(min_length=1, max_length=255)


class PrecheckRequest(BaseModel):
    """`POST /api/v1/precheck` (§4.5): full-client and minimal simple-client bodies alike.

    `policy_config`, `tool_config` and `budget_context` are client-controlled echoes: accepted,
    never read (a client must not relax its own enforcement).
    """

    model_config = ConfigDict(extra="ignore")

    tool: str = _Name
    raw_text: str = Field(max_length=MAX_TEXT)
    scope: str | None = Field(default=None, max_length=255)
    payload: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=100)
    user_id: str | None = Field(default=None, min_length=1, max_length=255)
    corr_id: str | None = Field(default=None, max_length=255)
    policy_config: Any = None
    tool_config: Any = None
    budget_context: Any = None


class PostcheckRequest(BaseModel):
    """`POST /api/v1/postcheck` (§4.6): the model's output, scanned before it is shown."""

    model_config = ConfigDict(extra="ignore")

    tool: str = _Name
    raw_text: str = Field(max_length=MAX_TEXT)
    scope: str | None = Field(default=None, max_length=255)
    corr_id: str | None = Field(default=None, max_length=255)


class PrecheckResponse(BaseModel):
    """The decision, readable by both client families (§4.5)."""

    decision: Literal["allow", "deny", "confirm", "redact"]
    reasons: list[str]
    metadata: dict[str, Any]
    requiresConfirmation: bool  # noqa: N815 - wire name (full client)
    confirmationUrl: str | None  # noqa: N815 - wire name (full client)
    raw_text_out: str
    policy_id: str | None
    ts: int


class HealthResponse(BaseModel):
    """`GET /api/v1/health` (§4.1): `status` and `services` are what the SDK requires."""

    status: Literal["healthy", "degraded", "unhealthy"]
    services: dict[str, str]
    timestamp: str
    version: str
    engine: str
    bundle_revision: str | None


class ErrorResponse(BaseModel):
    """Every non-2xx body (§2.5): the SDK shows `message`; `error` is a stable code."""

    error: str
    message: str
