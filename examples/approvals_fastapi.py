"""Human approval of a governed FastAPI endpoint, end to end.

Run it from the repository root (state goes to GOVERNOR_DATABASE_URL, else
./.governor/governor.db):

    .venv/bin/uvicorn examples.approvals_fastapi:app --port 8000
    # or: .venv/bin/python examples/approvals_fastapi.py

A payment above 1000 needs the CFO's approval. The request waits up to 2 s for it, then answers
202 with the execution id; the CFO approves through the governance API (`/govern/...`), and the
`AutoResumeManager` started in the app's lifespan runs the payment at once. Who is calling comes
from the bearer token only (a fixed table here; verify a session or a JWT in a real app).

    H='Content-Type: application/json'
    # alice pays 250: no approval needed -> 200 {"charged": 250}
    curl -s localhost:8000/payments -H 'Authorization: Bearer alice-token' -H "$H" \\
         -d '{"amount": 250, "card_number": "4111 1111 1111 1111"}'
    # bob may not pay at all -> 403 {"error": "policy_violation", "reasons": [...]}
    curl -s localhost:8000/payments -H 'Authorization: Bearer bob-token' -H "$H" \\
         -d '{"amount": 250, "card_number": "4111 1111 1111 1111"}'
    # alice pays 5000 -> 202 {"status": "awaiting_approval", "execution_id": "<id>", ...}
    curl -si localhost:8000/payments -H 'Authorization: Bearer alice-token' -H "$H" \\
         -d '{"amount": 5000, "card_number": "4111 1111 1111 1111"}'
    # what waits for people (the card number is masked)
    curl -s localhost:8000/govern/approvals/pending -H 'Authorization: Bearer cfo-token'
    # alice cannot approve it, whatever the body says -> 403 approver_not_allowed
    curl -s -X POST localhost:8000/govern/approvals/<id>/approve \\
         -H 'Authorization: Bearer alice-token' -H "$H" -d '{"approver": "cfo"}'
    # the CFO approves -> 200, and the payment runs
    curl -s -X POST localhost:8000/govern/approvals/<id>/approve \\
         -H 'Authorization: Bearer cfo-token' -H "$H" -d '{"reason": "invoice checked"}'
    curl -s localhost:8000/govern/executions/<id> -H 'Authorization: Bearer cfo-token'
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from governor import ApprovalPolicy, AuditPolicy, AuthorizationPolicy, govern
from governor.approvals import ApprovalManager, AutoResumeManager
from governor.integrations.fastapi import (
    GovernMiddleware,
    create_approval_router,
    install_exception_handlers,
)

#: bearer token -> user. A demo table: a real app verifies a session or a signed token here.
USERS: dict[str, dict[str, Any]] = {
    "alice-token": {"id": "alice", "roles": ["payments"]},
    "bob-token": {"id": "bob", "roles": []},
    "cfo-token": {"id": "cfo", "roles": ["finance"]},
}


def identify(request: Request) -> dict[str, Any] | None:
    """The caller of any request, for the policies of `@govern` (None: anonymous)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return USERS.get(token.strip()) if scheme.lower() == "bearer" else None


bearer = HTTPBearer(auto_error=False)


def approver(
    credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
) -> str | None:
    """The caller of the governance API: the approver of a decision (None: 401)."""
    user = USERS.get(credentials.credentials) if credentials is not None else None
    return user["id"] if user is not None else None


manager = ApprovalManager(poll_interval=0.1)


@govern(
    policies=[
        AuthorizationPolicy(required_roles=["payments"]),
        ApprovalPolicy(
            approvers=["cfo"],
            timeout_seconds=2,
            on_timeout="pending",  # after 2 s: answer 202, keep the request approvable
            when=[{"attribute": "args.amount", "op": "gt", "value": 1000}],
        ),
        AuditPolicy(sensitive_fields=["card_number"], compliance_tags=["PCI-DSS"]),
    ],
    approval_manager=manager,
)
async def charge(amount: int, card_number: str) -> dict[str, int]:
    return {"charged": amount}


resumer = AutoResumeManager(poll_interval=5)
resumer.register_function("charge", charge)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await resumer.start()
    try:
        yield
    finally:
        await resumer.stop()


app = FastAPI(title="payments", lifespan=lifespan)
app.add_middleware(GovernMiddleware, identify=identify)
app.include_router(create_approval_router(authenticate=approver, manager=manager, resumer=resumer))
install_exception_handlers(app)


class Payment(BaseModel):
    amount: int
    card_number: str


@app.post("/payments")
async def pay(payment: Payment) -> dict[str, int]:
    return await charge(payment.amount, payment.card_number)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
