"""`POST /api/v1/precheck` and `POST /api/v1/postcheck` (wire protocol §4.5, §4.6).

One evaluation of `data.governor.decision` per request; the decision is recorded (committed)
before the answer. Policy outcomes are never errors: deny and confirm are 200s.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from governor.decision import decide
from governor_server.auth import require_role
from governor_server.decisions import DecisionEntry, record_decision
from governor_server.keys import Principal
from governor_server.policy import decision_input, present, reasons_of
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
) -> PrecheckResponse:
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
        store=state.store,
    )
    decision = decide(state.engine, document)
    decision_id = uuid.uuid4().hex
    record_decision(
        state.store.engine,
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
    return PrecheckResponse(**present(decision, raw_text, decision_id))


@router.post("/precheck", response_model=PrecheckResponse)
def precheck(body: PrecheckRequest, principal: App, state: State) -> PrecheckResponse:
    """Decide whether a model or tool call may proceed: allow, deny, confirm or redact."""
    return _check(
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
    )


@router.post("/postcheck", response_model=PrecheckResponse)
def postcheck(body: PostcheckRequest, principal: App, state: State) -> PrecheckResponse:
    """Check a model's output before it is shown: PII in `raw_text` is redacted or denied."""
    return _check(
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
    )
