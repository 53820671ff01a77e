"""`POST /api/v1/precheck` and `POST /api/v1/postcheck` (wire protocol §4.5, §4.6).

One evaluation of `data.governor.decision` per request; the decision is recorded (committed)
before the answer. Policy outcomes are never errors: deny and confirm are 200s. A confirm creates a
pending confirmation (§4.11) and answers with its absolute `confirmationUrl` (built from the
request's base URL) and `metadata.correlationId`.

The endpoints are async and run the whole check (facts, decision, records: one store
transaction, so one commit) as one job of the app's `WorkerPool` (`governor_server.workers`:
inline on the event loop with SQLite and the embedded engine, else on a fixed pool of threads,
each with its engine compiled). The body is built as `present` makes it, which is
`PrecheckResponse`'s shape (the OpenAPI schema), and serialised once.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from governor.decision import decide
from governor_server import budgets
from governor_server.auth import require_role
from governor_server.confirmations import confirmation_url, create_confirmation, iso
from governor_server.decisions import DecisionEntry, record_decision
from governor_server.keys import Principal
from governor_server.policy import (
    action_kind,
    budget_key,
    decision_input,
    present,
    reasons_of,
)
from governor_server.schemas import (
    ErrorResponse,
    PostcheckRequest,
    PrecheckRequest,
    PrecheckResponse,
)
from governor_server.state import ServerState, get_state

router = APIRouter(
    prefix="/api/v1",
    tags=["precheck"],
    responses={
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)

App = Annotated[Principal, Depends(require_role("app"))]
State = Annotated[ServerState, Depends(get_state)]


def _check(
    state: ServerState,
    principal: Principal,
    *,
    phase: str,
    tool: str,
    scope: str | None,
    raw_text: str,
    user_id: str | None,
    corr_id: str | None,
    tags: list[str],
    payload: dict[str, object] | None,
    base_url: str | None = None,
    estimate: int | None = None,
) -> dict[str, Any]:
    user = user_id or principal.default_user
    document = decision_input(
        phase=phase,
        org_id=principal.org_id,
        user_id=user,
        tool=tool,
        scope=scope,
        raw_text=raw_text,
        tags=tags,
        payload=payload,
    )
    budget = None
    decision_id = uuid.uuid4().hex
    # One transaction: the budget facts and hold under the user's ledger lock, and the record.
    keys = [budget_key(principal.org_id, user)] if phase == "pre" else []
    with state.store.transaction(budget_keys=keys) as tx:
        if phase == "pre":
            budget = budgets.decide_precheck(
                state,
                tx,
                limit=budgets.limit_in(tx, principal.org_id, user),
                org_id=principal.org_id,
                user_id=user,
                document=document,
                estimate=estimate,
                corr_id=corr_id,
            )
            decision = budget.decision
        else:
            decision = decide(state.engine, document)
        record_decision(
            tx,
            DecisionEntry(
                id=decision_id,
                org_id=principal.org_id,
                user_id=user,
                phase=phase,
                tool=tool,
                scope=scope,
                decision=decision.decision,
                reasons=reasons_of(decision),
                tags=tags,
                corr_id=corr_id,
                policy_revision=decision.revision,
            ),
        )
    response = present(decision, raw_text, decision_id)
    if budget is not None and budget.metadata() is not None:
        response["metadata"]["budget"] = budget.metadata()
    if decision.decision == "confirm":
        _attach_confirmation(
            state,
            principal,
            response,
            user=user,
            tool=tool,
            scope=scope,
            tags=tags,
            corr_id=corr_id,
            base_url=base_url,
        )
    return response


def _attach_confirmation(
    state: ServerState,
    principal: Principal,
    response: dict[str, Any],
    *,
    user: str,
    tool: str,
    scope: str | None,
    tags: list[str],
    corr_id: str | None,
    base_url: str | None,
) -> None:
    """Create the pending confirmation a confirm asks for; put its URL and id in `response`.

    It waits the policy's `approval.timeout_seconds`. Its payload holds the tool, scope, tags and
    `raw_text_out` (already redacted), never the request's raw text or arguments.
    """
    metadata = response["metadata"]
    approval = metadata.get("approval") or {}
    timeout = approval.get("timeoutSeconds")
    entry = create_confirmation(
        state.store.engine,
        org_id=principal.org_id,
        user_id=user,
        created_by_key=principal.key_prefix,
        request_type="tool_call" if action_kind(tool) == "tool" else action_kind(tool),
        request_desc=f"{tool} ({scope})" if scope else tool,
        request_payload={
            "tool": tool,
            "scope": scope,
            "tags": list(tags),
            "text": response["raw_text_out"],
            "corrId": corr_id,
        },
        reasons=response["reasons"],
        approvers=[str(a) for a in approval.get("approvers", [])],
        ttl_seconds=float(timeout) if isinstance(timeout, int | float) and timeout > 0 else None,
        source="precheck",
        decision_id=metadata["decisionId"],
    )
    metadata["correlationId"] = entry.correlation_id
    metadata["expiresAt"] = iso(entry.expires_at)
    response["confirmationUrl"] = confirmation_url(base_url, entry.correlation_id)


@router.post("/precheck", response_model=PrecheckResponse)
async def precheck(
    body: PrecheckRequest, principal: App, state: State, request: Request
) -> JSONResponse:
    """Decide whether a model or tool call may proceed: allow, deny, confirm or redact."""
    estimate = budgets.estimated_cost(body.budget_context, body.payload)
    response = await state.workers.run(
        _check,
        state,
        principal,
        phase="pre",
        tool=body.tool,
        scope=body.scope,
        raw_text=body.raw_text,
        user_id=body.user_id,
        corr_id=body.corr_id,
        tags=body.tags,
        payload=body.payload,
        base_url=str(request.base_url),
        estimate=estimate,
    )
    return JSONResponse(response)


@router.post("/postcheck", response_model=PrecheckResponse)
async def postcheck(
    body: PostcheckRequest, principal: App, state: State, request: Request
) -> JSONResponse:
    """Check a model's output before it is shown: PII in `raw_text` is redacted or denied."""
    response = await state.workers.run(
        _check,
        state,
        principal,
        phase="post",
        tool=body.tool,
        scope=body.scope,
        raw_text=body.raw_text,
        user_id=None,
        corr_id=body.corr_id,
        tags=[],
        payload=None,
        base_url=str(request.base_url),
    )
    return JSONResponse(response)
