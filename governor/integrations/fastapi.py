"""FastAPI integration: who is calling, the approval API, and policy outcomes as HTTP answers.

Three parts, each usable alone::

    app = FastAPI()
    app.add_middleware(GovernMiddleware, identify=user_from_session)      # 1. who is calling
    app.include_router(create_approval_router(store, authenticate=approver))  # 2. /govern API
    install_exception_handlers(app)                                       # 3. 202/403/429

1. `GovernMiddleware` runs every HTTP request inside the governance context
   (`governor.context`) `{"user": {...}, "request_id": ..., "ip_address": ...}`, so the policies
   of `@govern` functions called by an endpoint see the authenticated caller. The user comes
   ONLY from the app's `identify(request)`, which verifies a session, a JWT, an API key.
   Identity headers (`X-User-ID`, `X-User-Roles`, as governor 0.2.0 read them) are never
   trusted: any client can send them, so reading them would let anyone claim the `admin` role.

2. `create_approval_router` serves the governance API under `prefix` (default `/govern`). Every
   route needs an identity from the app's `authenticate` dependency (401 otherwise); the approver
   of a decision is that identity, never a field of the request body. Shapes (JSON):

   - `GET  /approvals/pending?function_name=&limit=&offset=` -> 200 `ApprovalList`
     `{count, approvals: [ApprovalView]}`: requests still approvable, oldest first.
   - `GET  /approvals/{execution_id}` -> 200 `ApprovalView` (any status), 404.
   - `POST /approvals/{execution_id}/approve`, `.../reject`, optional body `{"reason": "..."}`
     -> 200 `ApprovalView` (the request as it now stands), 401, 403 (not an approver of the
     current stage, or already answered it), 404, 409 (already decided), 410 (expired), 422
     (the policy requires a reason). A refused answer changes nothing.
   - `GET  /executions?status=&function_name=&limit=&offset=` -> 200 `ExecutionList`
     `{count, executions: [ExecutionView]}`, newest first.
   - `GET  /executions/{execution_id}` -> 200 `ExecutionDetail`
     `{execution, snapshots: [{id, checkpoint, captured_at}], approval: ApprovalSummary | null}`.

   Only masked data leaves: the stored (masked) inputs and outputs. A request's unmasked
   `arguments` (kept to resume the call) and its `args_hash` (a hash of those arguments: a
   low-entropy value such as an SSN could be recovered from it by trying every candidate) are
   never returned, nor the raw governance context (IP address, the caller's attributes).

3. `install_exception_handlers(app)` answers the outcomes a governed endpoint raises:
   `ApprovalPending` -> 202 `{"status": "awaiting_approval", "execution_id", "status_url",
   "approvers"}` with a `Location` header; `RateLimitExceeded` -> 429; `ApprovalRejected` and
   `PolicyViolation` -> 403 `{"error", "message", "reasons", "execution_id"}`; an `ApprovalError`
   raised by an endpoint as the router maps it. The message is built from the function's name
   and the decision's reasons (stable codes, which never carry the sensitive value), not from the
   exception's text.

Every non-2xx answer of the router and of these handlers is `{"error": "<stable code>",
"message": "<what happened and what to do>"}` (plus `reasons` / `execution_id` for denials).
"""

from __future__ import annotations

import inspect
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import NoMatchFound
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from governor.approvals.manager import ApprovalManager
from governor.context import reset_context, set_context
from governor.errors import (
    ApprovalClosed,
    ApprovalError,
    ApprovalExpired,
    ApprovalMismatch,
    ApprovalNotFound,
    ApprovalPending,
    ApprovalReasonRequired,
    ApprovalRejected,
    ApproverNotAllowed,
    ConfigurationError,
    PolicyViolation,
    RateLimitExceeded,
    StorageError,
)
from governor.storage import StorageBackend, get_default_storage
from governor.storage.records import (
    ApprovalRecord,
    ApprovalStatus,
    ExecutionRecord,
    ExecutionStatus,
    SnapshotRecord,
    utcnow,
)

__all__ = [
    "ApprovalList",
    "ApprovalSummary",
    "ApprovalView",
    "AwaitingApproval",
    "CheckpointView",
    "DecisionBody",
    "ErrorBody",
    "ExecutionDetail",
    "ExecutionList",
    "ExecutionView",
    "GovernMiddleware",
    "PolicyDenial",
    "StageView",
    "VoteView",
    "create_approval_router",
    "install_exception_handlers",
]

logger = logging.getLogger("governor.integrations.fastapi")

#: What `identify` may return: a user mapping (`{"id", "roles", ...}`), a bare user id, or None.
Identity = Mapping[str, Any] | str | None
#: `identify(request)`, sync or async.
Identify = Callable[[Request], Identity | Awaitable[Identity]]
#: `status_url(request, execution_id)`, or a template with `{execution_id}`.
StatusURL = str | Callable[[Request, str], str]

#: The name of the route serving one approval request (`request.url_for` / `url_path_for`).
APPROVAL_ROUTE = "governor_approval"
#: Where the approval API is when no route of that name is found.
DEFAULT_STATUS_URL = "/govern/approvals/{execution_id}"

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


# -- 1. the middleware -----------------------------------------------------------------------------


class GovernMiddleware:
    """Run every HTTP request inside the governance context of its authenticated caller.

    A pure ASGI middleware (not `BaseHTTPMiddleware`): the context variable it sets is the one
    the endpoint, its dependencies and sync endpoints' worker threads see, and it costs one
    `identify` call per request.

    - `identify(request) -> {"id", "roles", "permissions", "org_id", ...} | "user-id" | None`,
      sync or async: the app's verification of the caller (session cookie, JWT, API key). It sees
      the headers, cookies and client address, not the body. None means anonymous. If it raises
      `HTTPException`, the request is answered with that status (`{"error", "message"}`) and the
      app is not called; any other exception is logged and the request continues anonymously
      (a broken identity source never grants an identity).
    - Without `identify` the context holds only `request_id` and `ip_address`: identity headers
      are never read, because any client can set them.
    - `request_id`: the `request_id_header` of the request when it is a plain token (letters,
      digits, `._:-`, at most 128), else a fresh one; it is echoed in the response header.
    - `ip_address`: the ASGI client address. Behind a proxy, run uvicorn with `--proxy-headers`
      and `--forwarded-allow-ips` so that address is the real client's; this middleware never
      reads `X-Forwarded-For` itself.

    The context is also stored as `request.state.govern_context` (governor 0.2.0's place).
    WebSocket and lifespan messages pass through untouched: a WebSocket endpoint that calls
    governed functions sets the context itself (`governance_context(user=...)`).
    """

    def __init__(
        self,
        app: ASGIApp,
        identify: Identify | None = None,
        *,
        request_id_header: str = "X-Request-ID",
    ) -> None:
        if identify is not None and not callable(identify):
            raise ConfigurationError(
                "GovernMiddleware(identify=...) must be a function(request) returning the "
                f"authenticated user (a mapping or an id) or None, got {type(identify).__name__}"
            )
        self.app = app
        self.identify = identify
        self.request_id_header = request_id_header
        self._header_key = request_id_header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)  # no `receive`: identify cannot consume the body
        request_id = self._request_id(request)
        context: dict[str, Any] = {"request_id": request_id, "ip_address": _client_ip(scope)}
        if self.identify is not None:
            try:
                user = await self._identify(request)
            except StarletteHTTPException as refusal:
                response = _http_error_response(refusal)
                response.headers[self.request_id_header] = request_id
                await response(scope, receive, send)
                return
            if user is not None:
                context["user"] = user
        request.state.govern_context = context
        token = set_context(context)
        try:
            await self.app(scope, receive, self._echo_request_id(send, request_id))
        finally:
            reset_context(token)

    def _request_id(self, request: Request) -> str:
        given = request.headers.get(self.request_id_header)
        if given is not None and _REQUEST_ID.fullmatch(given):
            return given
        return uuid.uuid4().hex

    async def _identify(self, request: Request) -> dict[str, Any] | None:
        assert self.identify is not None
        try:
            value: Any = self.identify(request)
            if inspect.isawaitable(value):
                value = await value
            return _user_of(value)
        except StarletteHTTPException:
            raise
        except Exception:
            logger.exception(
                "governor: identify(request) raised for %s %s; the request continues anonymously",
                request.method,
                request.url.path,
            )
            return None

    def _echo_request_id(self, send: Send, request_id: str) -> Send:
        key = self._header_key
        value = request_id.encode("latin-1")

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == key for name, _ in headers):
                    headers.append((key, value))
                    message = {**message, "headers": headers}
            await send(message)

        return send_with_request_id


def _user_of(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return {"id": value} if value else None
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(
        f"identify(request) returned {type(value).__name__}; return a mapping such as "
        "{'id': ..., 'roles': [...]}, a user id, or None"
    )


def _client_ip(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


# -- wire models -----------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every non-2xx answer: a stable machine code and a message a person can act on."""

    error: str
    message: str


class PolicyDenial(ErrorBody):
    """A governed call refused by policy (403) or by a rate limit (429)."""

    reasons: list[str] = Field(default_factory=list)
    execution_id: str | None = None


class AwaitingApproval(BaseModel):
    """202: the call is stored and waits for people; poll `status_url` (also `Location`)."""

    status: Literal["awaiting_approval"] = "awaiting_approval"
    execution_id: str
    status_url: str
    approvers: list[str] = Field(default_factory=list)
    message: str


class StageView(BaseModel):
    """One stage of a request: who may approve it, how many must, for how long."""

    name: str
    approvers: list[str] = Field(description="Empty: any authenticated approver may answer.")
    quorum: int
    timeout_seconds: int


class VoteView(BaseModel):
    """One approver's answer at one stage."""

    stage: int
    stage_name: str
    approver: str
    approved: bool
    reason: str | None
    decided_at: datetime


class ApprovalView(BaseModel):
    """An approval request as people see it (masked inputs; never the saved arguments)."""

    execution_id: str
    function_name: str
    status: ApprovalStatus
    created_at: datetime | None
    requested_by: str | None = Field(description="The user id of the governed call's caller.")
    inputs: Any = Field(description="The call's inputs, with sensitive fields masked.")
    reasons: list[str]
    stage: int = Field(description="Index of the current stage (the last one once closed).")
    stage_name: str
    stage_count: int
    approvers: list[str] = Field(description="Who may answer the current stage.")
    quorum: int
    approvals_needed: int = Field(description="Approvals the current stage still needs.")
    timeout_seconds: int
    deadline: datetime = Field(description="When the current stage times out.")
    expires_at: datetime = Field(description="After this, the request can no longer be decided.")
    on_timeout: str
    require_reason: bool
    stages: list[StageView]
    votes: list[VoteView]
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    can_decide: bool = Field(description="Whether the caller may answer the current stage now.")


class ApprovalList(BaseModel):
    """`GET /approvals/pending`."""

    count: int
    approvals: list[ApprovalView]


class DecisionBody(BaseModel):
    """Body of approve/reject (optional). Other fields, such as an `approver`, are ignored:
    the approver is the authenticated caller."""

    model_config = ConfigDict(extra="ignore")

    reason: str | None = Field(default=None, max_length=2000)


class CheckpointView(BaseModel):
    """A snapshot's checkpoint (its state is not returned here)."""

    id: str
    checkpoint: str
    captured_at: datetime | None


class ApprovalSummary(BaseModel):
    """The approval request of an execution, in brief."""

    status: ApprovalStatus
    stage_name: str
    approvers: list[str]
    deadline: datetime
    expires_at: datetime
    votes: int
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None


class ExecutionView(BaseModel):
    """A governed call as stored (inputs and outputs masked by the executor)."""

    id: str
    function_name: str
    function_qualname: str
    status: ExecutionStatus
    decision: str | None
    requested_by: str | None
    policies: list[str]
    inputs: Any
    outputs: Any
    error: str | None
    error_type: str | None
    policy_revision: str | None
    parent_id: str | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: float | None
    created_at: datetime | None
    updated_at: datetime | None


class ExecutionList(BaseModel):
    """`GET /executions`."""

    count: int
    executions: list[ExecutionView]


class ExecutionDetail(BaseModel):
    """`GET /executions/{id}`: the execution, its checkpoints, its approval request if any."""

    execution: ExecutionView
    snapshots: list[CheckpointView]
    approval: ApprovalSummary | None


# -- views -----------------------------------------------------------------------------------------


def _approval_view(record: ApprovalRecord, caller: str | None, now: datetime) -> ApprovalView:
    stage = record.current_stage
    names = [s.name for s in record.stages]
    yes = sum(1 for v in record.votes if v.stage == record.stage and v.approved)
    pending = record.status is ApprovalStatus.PENDING
    return ApprovalView(
        execution_id=record.execution_id,
        function_name=record.function_name,
        status=record.status,
        created_at=record.requested_at,
        requested_by=_user_id(record.subject),
        inputs=record.inputs,
        reasons=list(record.reasons),
        stage=record.stage,
        stage_name=stage.name,
        stage_count=len(record.stages),
        approvers=list(stage.approvers),
        quorum=stage.quorum,
        approvals_needed=max(stage.quorum - yes, 0) if pending else 0,
        timeout_seconds=stage.timeout_seconds,
        deadline=record.stage_deadline,
        expires_at=record.expires_at,
        on_timeout=record.on_timeout,
        require_reason=record.require_reason,
        stages=[
            StageView(
                name=s.name,
                approvers=list(s.approvers),
                quorum=s.quorum,
                timeout_seconds=s.timeout_seconds,
            )
            for s in record.stages
        ],
        votes=[
            VoteView(
                stage=v.stage,
                stage_name=names[v.stage] if 0 <= v.stage < len(names) else str(v.stage),
                approver=v.approver,
                approved=v.approved,
                reason=v.reason,
                decided_at=v.decided_at,
            )
            for v in record.votes
        ],
        decided_at=record.decided_at,
        decided_by=record.decided_by,
        reason=record.reason,
        can_decide=caller is not None and _may_decide(record, caller, now),
    )


def _may_decide(record: ApprovalRecord, caller: str, now: datetime) -> bool:
    """What `decide_approval` would accept from `caller` now (a hint: the store decides)."""
    if record.status is not ApprovalStatus.PENDING or now >= record.expires_at:
        return False
    stage = record.current_stage
    if stage.approvers and caller not in stage.approvers:
        return False
    return not any(v.stage == record.stage and v.approver == caller for v in record.votes)


def _approval_summary(record: ApprovalRecord) -> ApprovalSummary:
    return ApprovalSummary(
        status=record.status,
        stage_name=record.current_stage.name,
        approvers=list(record.current_stage.approvers),
        deadline=record.stage_deadline,
        expires_at=record.expires_at,
        votes=len(record.votes),
        decided_at=record.decided_at,
        decided_by=record.decided_by,
        reason=record.reason,
    )


def _execution_view(record: ExecutionRecord) -> ExecutionView:
    metadata = record.metadata if isinstance(record.metadata, Mapping) else {}
    subject = metadata.get("subject")
    policies = metadata.get("policies")
    return ExecutionView(
        id=record.id,
        function_name=record.function_name,
        function_qualname=record.function_qualname,
        status=record.status,
        decision=record.decision,
        requested_by=_user_id(subject) if isinstance(subject, Mapping) else None,
        policies=[str(p) for p in policies] if isinstance(policies, list) else [],
        inputs=record.inputs,
        outputs=record.outputs,
        error=record.error,
        error_type=record.error_type,
        policy_revision=record.policy_revision,
        parent_id=record.parent_id,
        started_at=record.started_at,
        completed_at=record.completed_at,
        duration_ms=record.duration_ms,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _checkpoint_view(record: SnapshotRecord) -> CheckpointView:
    return CheckpointView(
        id=record.id, checkpoint=record.checkpoint, captured_at=record.captured_at
    )


def _user_id(subject: Mapping[str, Any]) -> str | None:
    value = subject.get("user_id")
    return None if value is None or value == "" else str(value)


# -- errors ----------------------------------------------------------------------------------------


class _Refusal(Exception):
    """A refusal of the router: answered as `{"error", "message"}` with `status_code`."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return _error(self.status_code, self.code, self.message, headers=self.headers)


def _error(
    status_code: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        {"error": code, "message": message, **extra},
        status_code=status_code,
        headers=dict(headers or {}),
    )


def _http_error_response(error: StarletteHTTPException) -> JSONResponse:
    """An `HTTPException` (from the app's `authenticate`/`identify`) in our error shape."""
    detail = error.detail
    if isinstance(detail, Mapping) and isinstance(detail.get("message"), str):
        code = str(detail.get("error") or _STATUS_CODES.get(error.status_code, "error"))
        message = str(detail["message"])
    else:
        code = _STATUS_CODES.get(error.status_code, "error")
        message = detail if isinstance(detail, str) and detail else f"HTTP {error.status_code}"
    return _error(error.status_code, code, message, headers=error.headers)


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            parts.append("body: not valid JSON")
            continue
        loc = [str(p) for p in item.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            loc = loc[1:]
        where = ".".join(loc) or "body"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is invalid"


#: How each approval error is answered: (status, code). Subclasses before their bases.
_APPROVAL_ERRORS: tuple[tuple[type[ApprovalError], int, str], ...] = (
    (ApprovalNotFound, 404, "approval_not_found"),
    (ApproverNotAllowed, 403, "approver_not_allowed"),
    (ApprovalExpired, 410, "approval_expired"),
    (ApprovalClosed, 409, "approval_closed"),
    (ApprovalReasonRequired, 422, "reason_required"),
    (ApprovalMismatch, 409, "approval_mismatch"),
)


def _approval_error_response(error: ApprovalError) -> JSONResponse:
    for cls, status_code, code in _APPROVAL_ERRORS:
        if isinstance(error, cls):
            return _error(status_code, code, str(error))
    return _error(409, "approval_error", str(error))


class _GovernRoute(APIRoute):
    """A route whose every refusal is `{"error", "message"}`: our own, the app's
    `authenticate` raising `HTTPException`, and request validation (naming the field)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except _Refusal as refusal:
                return refusal.response()
            except ApprovalError as error:
                return _approval_error_response(error)
            except StorageError:
                logger.exception("governor: the store failed serving %s", request.url.path)
                return _error(
                    503, "storage_unavailable", "the governance store is unavailable; retry later"
                )
            except RequestValidationError as error:
                return _error(422, "invalid_request", _validation_message(error))
            except StarletteHTTPException as error:
                return _http_error_response(error)

        return guarded


# -- 2. the approval router ------------------------------------------------------------------------


def _identity_name(identity: Any) -> str | None:
    """The approver id of what `authenticate` returned: a str, or a mapping/object with `id`."""
    if identity is None or isinstance(identity, bool):
        return None
    if isinstance(identity, Mapping):
        value = identity.get("id")
    elif isinstance(identity, str | int):
        value = identity
    else:
        value = getattr(identity, "id", None)
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


def create_approval_router(
    storage: StorageBackend | None = None,
    *,
    authenticate: Callable[..., Any],
    manager: ApprovalManager | None = None,
    resumer: Any = None,
    prefix: str = "/govern",
    tags: Sequence[str | Enum] | None = ("governance",),
    auth_scheme: str = "Bearer",
) -> APIRouter:
    """The governance API (pending approvals, approve/reject, executions) as an `APIRouter`.

    - `storage`: the store to read and decide in (default: `manager`'s store, else the
      process's shared store, looked up per request).
    - `authenticate`: a FastAPI dependency (it may take its own dependencies: `Header`,
      `Security(HTTPBearer())`, a session) returning the caller's identity: a str, or a
      mapping/object with an `id`. None (or raising `HTTPException(401)`) means anonymous: 401.
      The identity is the approver of a decision and must be what the approval policies name
      (`ApprovalPolicy(approvers=[...])`).
    - `manager`: an `ApprovalManager`; decisions go through `manager.decide`, which also wakes a
      caller of this process waiting for that request at once.
    - `resumer`: an object with `wake()` (sync or async), e.g. an `AutoResumeManager`, called
      after a decision approves a request so that the approved call resumes promptly.
    - `auth_scheme`: the `WWW-Authenticate` challenge of a 401.

    See the module docstring for routes and shapes.
    """
    if not callable(authenticate):
        raise ConfigurationError(
            "create_approval_router(authenticate=...) must be a FastAPI dependency returning "
            "the caller's identity"
        )
    router = APIRouter(
        prefix=prefix,
        tags=list(tags or []),
        route_class=_GovernRoute,
        responses={
            401: {"model": ErrorBody, "description": "No authenticated caller."},
            422: {"model": ErrorBody, "description": "Invalid query or body."},
            503: {"model": ErrorBody, "description": "The store is unavailable."},
        },
    )

    def store() -> StorageBackend:
        if storage is not None:
            return storage
        if manager is not None:
            return manager.storage
        return get_default_storage()

    # (B008: FastAPI reads these defaults as declarations; nothing is called per request)
    async def caller(identity: Any = Depends(authenticate)) -> str:  # noqa: B008
        name = _identity_name(identity)
        if name is None:
            raise _Refusal(
                401,
                "unauthenticated",
                "authenticate to use the governance API",
                headers={"WWW-Authenticate": auth_scheme},
            )
        return name

    async def load(execution_id: str) -> ApprovalRecord:
        record = await run_in_threadpool(store().get_approval, execution_id)
        if record is None:
            raise _Refusal(
                404, "approval_not_found", f"no approval request for execution {execution_id}"
            )
        return record

    @router.get(
        "/approvals/pending",
        response_model=ApprovalList,
        name="governor_pending_approvals",
        summary="Approval requests waiting for people",
    )
    async def pending_approvals(
        function_name: str | None = Query(None, max_length=500),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
        who: str = Depends(caller),
    ) -> ApprovalList:
        records = await run_in_threadpool(
            store().list_approvals,
            status=ApprovalStatus.PENDING,
            function_name=function_name,
            limit=limit,
            offset=offset,
        )
        now = utcnow()
        # a request past `expires_at` can no longer be decided; the store expires it lazily
        views = [_approval_view(r, who, now) for r in records if now < r.expires_at]
        return ApprovalList(count=len(views), approvals=views)

    @router.get(
        "/approvals/{execution_id}",
        response_model=ApprovalView,
        name=APPROVAL_ROUTE,
        summary="One approval request",
        responses={404: {"model": ErrorBody}},
    )
    async def get_approval(execution_id: str, who: str = Depends(caller)) -> ApprovalView:
        return _approval_view(await load(execution_id), who, utcnow())

    async def decide(
        execution_id: str, approved: bool, body: DecisionBody | None, who: str
    ) -> ApprovalView:
        reason = body.reason if body is not None else None
        target = store()
        if manager is not None:
            record = await run_in_threadpool(
                manager.decide,
                execution_id,
                approved=approved,
                approver=who,
                reason=reason,
                storage=target,
            )
        else:
            record = await run_in_threadpool(
                target.decide_approval,
                execution_id,
                approver=who,
                approved=approved,
                reason=reason,
            )
        if record.status is ApprovalStatus.APPROVED:
            await _wake(resumer, execution_id)
        return _approval_view(record, who, utcnow())

    decision_responses: dict[int | str, dict[str, Any]] = {
        403: {"model": ErrorBody, "description": "Not an approver of the current stage."},
        404: {"model": ErrorBody},
        409: {"model": ErrorBody, "description": "Already decided."},
        410: {"model": ErrorBody, "description": "Expired."},
    }

    @router.post(
        "/approvals/{execution_id}/approve",
        response_model=ApprovalView,
        name="governor_approve",
        summary="Approve as the authenticated caller",
        responses=decision_responses,
    )
    async def approve(
        execution_id: str, body: DecisionBody | None = None, who: str = Depends(caller)
    ) -> ApprovalView:
        return await decide(execution_id, True, body, who)

    @router.post(
        "/approvals/{execution_id}/reject",
        response_model=ApprovalView,
        name="governor_reject",
        summary="Reject as the authenticated caller",
        responses=decision_responses,
    )
    async def reject(
        execution_id: str, body: DecisionBody | None = None, who: str = Depends(caller)
    ) -> ApprovalView:
        return await decide(execution_id, False, body, who)

    @router.get(
        "/executions",
        response_model=ExecutionList,
        name="governor_executions",
        summary="Governed calls, newest first",
    )
    async def list_executions(
        status: ExecutionStatus | None = Query(None),  # noqa: B008
        function_name: str | None = Query(None, max_length=500),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
        who: str = Depends(caller),
    ) -> ExecutionList:
        records = await run_in_threadpool(
            store().list_executions,
            status=status,
            function_name=function_name,
            limit=limit,
            offset=offset,
        )
        views = [_execution_view(r) for r in records]
        return ExecutionList(count=len(views), executions=views)

    @router.get(
        "/executions/{execution_id}",
        response_model=ExecutionDetail,
        name="governor_execution",
        summary="One governed call, its checkpoints and its approval request",
        responses={404: {"model": ErrorBody}},
    )
    async def get_execution(execution_id: str, who: str = Depends(caller)) -> ExecutionDetail:
        return await run_in_threadpool(_execution_detail, store(), execution_id)

    return router


def _execution_detail(store: StorageBackend, execution_id: str) -> ExecutionDetail:
    record = store.get_execution(execution_id)
    if record is None:
        raise _Refusal(404, "execution_not_found", f"no execution {execution_id}")
    approval = store.get_approval(execution_id)
    return ExecutionDetail(
        execution=_execution_view(record),
        snapshots=[_checkpoint_view(s) for s in store.list_snapshots(execution_id)],
        approval=_approval_summary(approval) if approval is not None else None,
    )


async def _wake(resumer: Any, execution_id: str) -> None:
    """Tell the resumer an approved call may run now; its failure never undoes the decision."""
    wake = getattr(resumer, "wake", None)
    if not callable(wake):
        return
    try:
        result = wake()
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception(
            "governor: resumer.wake() failed after execution %s was approved; it resumes on "
            "the resumer's next poll",
            execution_id,
        )


# -- 3. policy outcomes of governed endpoints ------------------------------------------------------


def install_exception_handlers(app: Starlette, *, status_url: StatusURL | None = None) -> None:
    """Answer the outcomes of `@govern` calls made by `app`'s endpoints as JSON, never a 500.

    - `ApprovalPending` -> 202 `AwaitingApproval` with `Location: <status_url>`;
    - `RateLimitExceeded` -> 429 `PolicyDenial` (`error: "rate_limited"`);
    - `ApprovalRejected` -> 403 `PolicyDenial` (`error: "approval_rejected"`);
    - `PolicyViolation` -> 403 `PolicyDenial` (`error: "policy_violation"`);
    - `ApprovalError` (an endpoint answering approvals itself) -> 404/403/409/410/422 as the
      approval router answers.

    `status_url`: a template with `{execution_id}`, or `status_url(request, execution_id)`;
    default: the path of the approval router's `GET /approvals/{execution_id}` in `app`, or
    `/govern/approvals/{execution_id}` when the router is not found.
    """
    app.add_exception_handler(ApprovalPending, _pending_handler(status_url))
    app.add_exception_handler(RateLimitExceeded, _rate_limited)
    app.add_exception_handler(ApprovalRejected, _rejected)
    app.add_exception_handler(PolicyViolation, _violated)
    app.add_exception_handler(ApprovalError, _approval_error)


def _resolve_status_url(status_url: StatusURL | None, request: Request, execution_id: str) -> str:
    if callable(status_url):
        return str(status_url(request, execution_id))
    if isinstance(status_url, str):
        return status_url.format(execution_id=execution_id)
    try:
        path = request.app.url_path_for(APPROVAL_ROUTE, execution_id=execution_id)
    except NoMatchFound:
        return DEFAULT_STATUS_URL.format(execution_id=execution_id)
    return f"{request.scope.get('root_path', '')}{path}"


def _pending_handler(
    status_url: StatusURL | None,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def pending(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApprovalPending)
        url = _resolve_status_url(status_url, request, exc.execution_id)
        approval = exc.approval if isinstance(exc.approval, Mapping) else {}
        approvers = [str(a) for a in approval.get("approvers", []) or []]
        who = ", ".join(approvers) or "an approver"
        body = AwaitingApproval(
            execution_id=exc.execution_id,
            status_url=url,
            approvers=approvers,
            message=(
                f"{exc.function_name or 'the call'} needs approval by {who} before it runs; "
                f"it is stored as execution {exc.execution_id}: follow status_url"
            ),
        )
        return JSONResponse(
            body.model_dump(mode="json"), status_code=202, headers={"Location": url}
        )

    return pending


def _denial(
    status_code: int, code: str, exc: PolicyViolation, what: str, **extra: Any
) -> JSONResponse:
    reasons = [str(r) for r in exc.reasons]
    name = exc.function_name or "the call"
    # phase "post": the function ran and its result is withheld
    outcome = "its result is withheld" if exc.phase == "post" else "it did not run"
    message = f"{name} {what}; {outcome}"
    if reasons:
        message += f" ({', '.join(reasons)})"
    return _error(
        status_code,
        code,
        message,
        reasons=reasons,
        execution_id=exc.execution_id,
        **extra,
    )


async def _rate_limited(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimitExceeded)
    return _denial(429, "rate_limited", exc, "exceeded a rate limit")


async def _rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApprovalRejected)
    return _denial(403, "approval_rejected", exc, "was not approved", approver=exc.approver)


async def _violated(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PolicyViolation)
    return _denial(403, "policy_violation", exc, "was denied by policy")


async def _approval_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApprovalError)
    return _approval_error_response(exc)
