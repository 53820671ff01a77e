"""`/confirmation` (wire protocol §4.11-§4.13a): create, status, cancel, approve, reject; and the
organisation's approver list, `/api/v1/approvers` (admin keys).

Un-prefixed, as the 1.0.0 SDK calls them. App keys create, read and cancel; approver (and admin)
keys read, approve and reject. The approver is the key: its prefix, role and identity are recorded
as who decided, whatever a body says. An approver key decides only while its identity is on the
organisation's approver list and, when the confirmation names approvers, among them (403
`approver_not_allowed` / `approver_not_designated` otherwise, and nothing changes); admin keys
always may. Another organisation's id is `404 Confirmation not found`, and a confirmation that is
no longer pending (decided, cancelled, expired) answers 409.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from governor_server.auth import current_principal, require_role
from governor_server.confirmations import (
    CORRELATION_ID_PATTERN,
    MAX_TTL_SECONDS,
    ApproverNotAllowed,
    Confirmation,
    ConfirmationConflict,
    ConfirmationNotFound,
    Decider,
    cancel_confirmation,
    confirmation_url,
    create_confirmation,
    decide_confirmation,
    get_confirmation,
    iso,
)
from governor_server.errors import ApiError
from governor_server.keys import (
    IDENTITY_PATTERN,
    Principal,
    add_approvers,
    list_approvers,
    remove_approver,
)
from governor_server.schemas import ErrorResponse
from governor_server.state import ServerState, get_state

__all__ = ["router"]

router = APIRouter(
    tags=["confirmations"],
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)

Anyone = Annotated[Principal, Depends(current_principal)]
App = Annotated[Principal, Depends(require_role("app"))]
Approver = Annotated[Principal, Depends(require_role("approver"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
State = Annotated[ServerState, Depends(get_state)]


class ConfirmationCreateRequest(BaseModel):
    """`POST /confirmation` (§4.11), camelCase as the SDK sends it; unknown fields are ignored.

    `expiresInSeconds` and `approvers` are our extensions (the SDK never sends them): how long the
    confirmation waits, and the identities that may decide it (any listed approver when empty).
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    request_type: str = Field(alias="requestType", min_length=1, max_length=64)
    request_desc: str = Field(alias="requestDesc", max_length=10_000)
    request_payload: dict[str, Any] = Field(alias="requestPayload", default_factory=dict)
    reasons: list[str] = Field(default_factory=list, max_length=100)
    user_id: str | None = Field(alias="userId", default=None, min_length=1, max_length=255)
    correlation_id: str | None = Field(
        alias="correlationId", default=None, pattern=CORRELATION_ID_PATTERN
    )
    expires_in_seconds: float | None = Field(
        alias="expiresInSeconds", default=None, gt=0, le=MAX_TTL_SECONDS
    )
    approvers: list[Annotated[str, Field(pattern=IDENTITY_PATTERN)]] = Field(
        default_factory=list, max_length=100
    )


class DecisionRequest(BaseModel):
    """Optional body of approve/reject: a reason (`note` is accepted as its alias).

    A name such as `approver` is ignored: the approver is the key that calls.
    """

    model_config = ConfigDict(extra="ignore")

    reason: str | None = Field(
        default=None, max_length=2_000, validation_alias=AliasChoices("reason", "note")
    )


class ConfirmationStatusResponse(BaseModel):
    """The §4.12 status object; also the answer of create, cancel, approve and reject."""

    correlationId: str  # noqa: N815 - wire names (camelCase, as the SDK reads them)
    status: str
    approved: bool
    approvedAt: str | None  # noqa: N815
    rejectedAt: str | None  # noqa: N815
    cancelledAt: str | None  # noqa: N815
    expiresAt: str  # noqa: N815
    createdAt: str  # noqa: N815
    confirmationUrl: str  # noqa: N815
    requestType: str  # noqa: N815
    requestDesc: str  # noqa: N815
    requestPayload: dict[str, Any]  # noqa: N815
    reasons: list[str]
    approvers: list[str]
    userId: str  # noqa: N815
    decisionId: str | None  # noqa: N815
    decidedBy: dict[str, str | None] | None  # noqa: N815 - keyPrefix, role, identity
    decisionReason: str | None  # noqa: N815


def _wire(request: Request, entry: Confirmation) -> ConfirmationStatusResponse:
    url = confirmation_url(str(request.base_url), entry.correlation_id)
    return ConfirmationStatusResponse(**entry.to_wire(url))


def _not_found(error: ConfirmationNotFound) -> ApiError:
    return ApiError(404, "confirmation_not_found", str(error))


def _conflict(error: ConfirmationConflict) -> ApiError:
    return ApiError(409, error.code, error.message)


@router.post("/confirmation", status_code=201, response_model=ConfirmationStatusResponse)
def create(
    body: ConfirmationCreateRequest, principal: App, state: State, request: Request
) -> ConfirmationStatusResponse:
    """Create a pending confirmation for the key's organisation (id generated unless given)."""
    try:
        entry = create_confirmation(
            state.store.engine,
            org_id=principal.org_id,
            user_id=body.user_id or principal.default_user,
            created_by_key=principal.key_prefix,
            request_type=body.request_type,
            request_desc=body.request_desc,
            request_payload=body.request_payload,
            reasons=body.reasons,
            approvers=body.approvers,
            correlation_id=body.correlation_id,
            ttl_seconds=body.expires_in_seconds,
        )
    except ConfirmationConflict as error:
        raise _conflict(error) from error
    return _wire(request, entry)


@router.get("/confirmation/{correlation_id}", response_model=ConfirmationStatusResponse)
def status(
    correlation_id: str, principal: Anyone, state: State, request: Request
) -> ConfirmationStatusResponse:
    """The confirmation's status: pending, approved, rejected, expired or cancelled."""
    try:
        entry = get_confirmation(state.store.engine, principal.org_id, correlation_id)
    except ConfirmationNotFound as error:
        raise _not_found(error) from error
    return _wire(request, entry)


@router.delete("/confirmation/{correlation_id}", response_model=ConfirmationStatusResponse)
def cancel(
    correlation_id: str, principal: App, state: State, request: Request
) -> ConfirmationStatusResponse:
    """Cancel a pending confirmation (409 once it is decided, cancelled or expired)."""
    try:
        entry = cancel_confirmation(
            state.store.engine,
            principal.org_id,
            correlation_id,
            decider=Decider(principal.key_prefix, principal.role, identity=principal.identity),
        )
    except ConfirmationNotFound as error:
        raise _not_found(error) from error
    except ConfirmationConflict as error:
        raise _conflict(error) from error
    return _wire(request, entry)


def _decide(
    correlation_id: str,
    approve: bool,
    body: DecisionRequest | None,
    principal: Principal,
    state: ServerState,
    request: Request,
) -> ConfirmationStatusResponse:
    decider = Decider(
        principal.key_prefix,
        principal.role,
        body.reason if body else None,
        identity=principal.identity,
    )
    try:
        entry = decide_confirmation(
            state.store.engine,
            principal.org_id,
            correlation_id,
            approve=approve,
            decider=decider,
            org_name=principal.org_name,
        )
    except ApproverNotAllowed as error:
        raise ApiError(403, error.code, error.message) from error
    except ConfirmationNotFound as error:
        raise _not_found(error) from error
    except ConfirmationConflict as error:
        raise _conflict(error) from error
    return _wire(request, entry)


@router.post("/confirmation/{correlation_id}/approve", response_model=ConfirmationStatusResponse)
def approve(
    correlation_id: str,
    principal: Approver,
    state: State,
    request: Request,
    body: DecisionRequest | None = None,
) -> ConfirmationStatusResponse:
    """Approve a pending confirmation; the calling key (a listed approver, or an admin) is
    recorded."""
    return _decide(correlation_id, True, body, principal, state, request)


@router.post("/confirmation/{correlation_id}/reject", response_model=ConfirmationStatusResponse)
def reject(
    correlation_id: str,
    principal: Approver,
    state: State,
    request: Request,
    body: DecisionRequest | None = None,
) -> ConfirmationStatusResponse:
    """Reject a pending confirmation; the calling key (a listed approver, or an admin) is
    recorded."""
    return _decide(correlation_id, False, body, principal, state, request)


# -- the approver list (admin keys) --------------------------------------------------------------


class ApproverResponse(BaseModel):
    """One identity on the organisation's approver list."""

    identity: str
    addedAt: str  # noqa: N815 - wire names (camelCase, like the rest of the protocol)
    addedBy: str  # noqa: N815


class ApproverListResponse(BaseModel):
    """`GET /api/v1/approvers`: the organisation's approver list, by identity."""

    approvers: list[ApproverResponse]


IdentityPath = Annotated[str, Path(pattern=IDENTITY_PATTERN)]


def _approver_list(state: ServerState, principal: Principal) -> ApproverListResponse:
    return ApproverListResponse(
        approvers=[
            ApproverResponse(identity=a.identity, addedAt=iso(a.added_at) or "", addedBy=a.added_by)
            for a in list_approvers(state.store.engine, principal.org_id)
        ]
    )


@router.get("/api/v1/approvers", response_model=ApproverListResponse)
def approvers(principal: Admin, state: State) -> ApproverListResponse:
    """The identities whose approver keys may decide the organisation's confirmations."""
    return _approver_list(state, principal)


@router.put("/api/v1/approvers/{identity}", response_model=ApproverListResponse)
def add_approver(identity: IdentityPath, principal: Admin, state: State) -> ApproverListResponse:
    """Put `identity` on the approver list (idempotent); answers with the whole list."""
    add_approvers(state.store.engine, principal.org_id, [identity], principal.key_prefix)
    return _approver_list(state, principal)


@router.delete("/api/v1/approvers/{identity}", response_model=ApproverListResponse)
def delete_approver(identity: IdentityPath, principal: Admin, state: State) -> ApproverListResponse:
    """Take `identity` off the approver list (404 when it is not on it)."""
    if not remove_approver(state.store.engine, principal.org_id, identity):
        raise ApiError(
            404,
            "approver_not_found",
            f"Approver not found: {identity} is not on the approver list of organisation "
            f"{principal.org_name!r}",
        )
    return _approver_list(state, principal)
