"""governor/integrations/fastapi.py: the middleware, the approval router and the exception
handlers, over a real app under uvicorn on a SQLite file, driven over sockets with httpx.

Every response any test receives is checked by the client (`no_leak`): it never contains the
SSN that `AuditPolicy(sensitive_fields=["ssn"])` masks, and every non-2xx is
`{"error", "message"}`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException, Request
from pydantic import BaseModel

from governor import (
    ApprovalPolicy,
    AuditPolicy,
    AuthorizationPolicy,
    RateLimitPolicy,
    govern,
)
from governor.approvals import ApprovalManager, AutoResumeManager
from governor.approvals.request import build_request
from governor.context import current_context
from governor.integrations.fastapi import (
    GovernMiddleware,
    create_approval_router,
    install_exception_handlers,
)
from governor.serialization import MASK
from governor.storage import SQLStorage
from governor.storage.records import (
    ExecutionRecord,
    ExecutionStatus,
    new_id,
    utcnow,
)
from tests.integrations._live import serve

SSN = "123-45-6789"

#: bearer token -> what the app's `authenticate` returns (each shape it may return)
APPROVERS: dict[str, Any] = {
    "tok-cfo": "cfo",
    "tok-ceo": {"id": "ceo", "name": "The CEO"},
    "tok-intern": SimpleNamespace(id="intern"),
    "tok-root": "root",
}
#: bearer token -> what the app's `identify` returns for the middleware
USERS: dict[str, Any] = {
    "tok-root": {"id": "root", "roles": ["admin"]},
    "tok-cfo": {"id": "cfo", "roles": ["finance"]},
    "tok-intern": {"id": "intern", "roles": ["member"]},
}


def bearer(value: str | None) -> str | None:
    if value and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None


def authenticate(authorization: str | None = Header(None)) -> Any:
    token = bearer(authorization)
    if token == "tok-banned":
        raise HTTPException(403, "this account is suspended")
    return APPROVERS.get(token or "")


async def identify(request: Request) -> Any:
    token = bearer(request.headers.get("authorization"))
    if token == "tok-revoked":
        raise HTTPException(401, "this session was revoked")
    if token == "tok-broken":
        raise RuntimeError("the session store is down")
    return USERS.get(token or "")


class Payment(BaseModel):
    amount: int
    ssn: str


def build_app(store: SQLStorage, manager: ApprovalManager, resumer: AutoResumeManager) -> FastAPI:
    audit = AuditPolicy(sensitive_fields=["ssn"])
    admins = AuthorizationPolicy(required_roles=["admin"])

    @govern(policies=[admins, audit], storage=store)
    async def admin_report(ssn: str) -> dict[str, str]:
        return {"report": "ok"}

    @govern(policies=[admins], storage=store)
    def admin_report_sync() -> dict[str, str]:
        return {"report": "ok"}

    @govern(policies=[RateLimitPolicy(max_calls=1, window_seconds=3600)], storage=store)
    async def ping() -> str:
        return "pong"

    @govern(
        policies=[
            ApprovalPolicy(approvers=["cfo"], timeout_seconds=1, on_timeout="pending"),
            audit,
        ],
        storage=store,
        approval_manager=manager,
    )
    async def pay(amount: int, ssn: str) -> dict[str, int]:
        return {"paid": amount}

    @govern(
        policies=[
            ApprovalPolicy(approvers=["cfo"], timeout_seconds=20, on_timeout="pending"),
            audit,
        ],
        storage=store,
        approval_manager=manager,
    )
    async def pay_and_wait(amount: int, ssn: str) -> dict[str, int]:
        return {"paid": amount}

    resumer.register_function("pay", pay)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await resumer.start()
        try:
            yield
        finally:
            await resumer.stop()

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(GovernMiddleware, identify=identify)
    app.include_router(
        create_approval_router(store, authenticate=authenticate, manager=manager, resumer=resumer)
    )
    install_exception_handlers(app)

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        return {"context": current_context(), "state": request.state.govern_context}

    @app.get("/whoami-sync")
    def whoami_sync() -> dict[str, Any]:
        return {"context": current_context()}

    @app.get("/admin/report")
    async def report() -> dict[str, str]:
        return await admin_report(SSN)

    @app.get("/admin/report-sync")
    def report_sync() -> dict[str, str]:
        return admin_report_sync()

    @app.get("/ping")
    async def ping_endpoint() -> str:
        return await ping()

    @app.post("/payments")
    async def payments(body: Payment) -> dict[str, int]:
        return await pay(body.amount, body.ssn)

    @app.post("/payments/wait")
    async def payments_wait(body: Payment) -> dict[str, int]:
        return await pay_and_wait(body.amount, body.ssn)

    @app.post("/ops/approve/{execution_id}")
    def ops_approve(execution_id: str) -> dict[str, str]:  # an app answering approvals itself
        record = store.decide_approval(execution_id, approver="ops-bot", approved=True)
        return {"status": record.status.value}

    return app


def no_leak(response: httpx.Response) -> None:
    response.read()
    assert SSN not in response.text, f"{response.request.url} leaked the masked SSN"
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body


@dataclass
class Live:
    url: str
    store: SQLStorage
    resumer: AutoResumeManager

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(
            base_url=self.url, headers=headers, timeout=30, event_hooks={"response": [no_leak]}
        )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    directory: Path = tmp_path_factory.mktemp("fastapi")
    store = SQLStorage(f"sqlite:///{directory / 'governor.db'}")
    manager = ApprovalManager(store, poll_interval=0.02)
    # it polls once a minute: only `wake()` from the router resumes an approval promptly
    resumer = AutoResumeManager(store, poll_interval=60)
    with serve(build_app(store, manager, resumer)) as url:
        yield Live(url, store, resumer)
    store.close()


def add_request(
    store: SQLStorage,
    stages: Sequence[Sequence[str]] = (("cfo",),),
    *,
    quorum: int = 1,
    policies: Sequence[Any] = (),
    now: datetime | None = None,
    timeout_seconds: int = 3600,
    function_name: str = "transfer",
) -> str:
    """Store a pending approval the way the executor does (execution, then request) and return
    its execution id; its saved arguments hold the SSN unmasked, its inputs masked."""
    execution_id = new_id()
    masked = {"args": [], "kwargs": {"amount": 5000, "ssn": MASK}}
    with store.transaction() as tx:
        tx.save_execution(
            ExecutionRecord(
                function_name=function_name,
                id=execution_id,
                function_qualname=function_name,
                status=ExecutionStatus.AWAITING_APPROVAL,
                inputs=masked,
                decision="confirm",
                metadata={"subject": {"user_id": "alice"}, "policies": ["ApprovalPolicy"]},
            )
        )
        tx.add_approval(
            build_request(
                execution_id=execution_id,
                function_name=function_name,
                function_qualname=function_name,
                function_path=f"tests.integrations.{function_name}",
                approval={
                    "required": True,
                    "approvers": sorted({a for stage in stages for a in stage}),
                    "stages": [list(s) for s in stages],
                    "timeout_seconds": timeout_seconds,
                    "quorum": quorum,
                },
                policies=list(policies),
                arguments={"args": [], "kwargs": {"amount": 5000, "ssn": SSN}},
                inputs=masked,
                subject={"user_id": "alice"},
                reasons=["approval.required:big"],
                decision={"decision": "confirm"},
                now=now,
            )
        )
    return execution_id


def state_of(store: SQLStorage, execution_id: str) -> tuple[Any, ...]:
    """Everything a decision could change."""
    record = store.get_approval(execution_id)
    execution = store.get_execution(execution_id)
    assert record is not None and execution is not None
    return (
        record.status,
        record.stage,
        [(v.approver, v.approved) for v in record.votes],
        record.decided_by,
        execution.status,
    )


# -- the middleware --------------------------------------------------------------------------------


def test_the_middleware_runs_the_request_in_the_identified_users_context(live: Live) -> None:
    with live.client("tok-root") as client:
        answer = client.get("/whoami", headers={"X-Request-ID": "req-42"})
    assert answer.status_code == 200
    assert answer.headers["X-Request-ID"] == "req-42"
    body = answer.json()
    assert body["context"] == {
        "user": {"id": "root", "roles": ["admin"]},
        "request_id": "req-42",
        "ip_address": "127.0.0.1",
    }
    assert body["state"] == body["context"]  # request.state.govern_context, as in 0.2.0


def test_sync_endpoints_see_the_context_in_their_worker_thread(live: Live) -> None:
    with live.client("tok-cfo") as client:
        assert client.get("/whoami-sync").json()["context"]["user"]["id"] == "cfo"


def test_identity_headers_are_never_trusted(live: Live) -> None:
    forged = {"X-User-ID": "root", "X-User-Roles": "admin", "X-User-Email": "root@x"}
    with live.client() as client:
        context = client.get("/whoami", headers=forged).json()["context"]
        assert "user" not in context
        assert client.get("/admin/report", headers=forged).status_code == 403


def test_a_request_id_that_is_not_a_plain_token_is_replaced(live: Live) -> None:
    with live.client() as client:
        answer = client.get("/whoami", headers={"X-Request-ID": "<script>"})
    request_id = answer.json()["context"]["request_id"]
    assert request_id != "<script>" and len(request_id) == 32
    assert answer.headers["X-Request-ID"] == request_id


def test_identify_refusing_answers_its_status_and_failing_means_anonymous(live: Live) -> None:
    with live.client("tok-revoked") as client:
        revoked = client.get("/whoami")
    assert revoked.status_code == 401
    assert revoked.json() == {"error": "unauthenticated", "message": "this session was revoked"}
    with live.client("tok-broken") as client:
        assert "user" not in client.get("/whoami").json()["context"]


# -- policy outcomes of governed endpoints ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/report", "/admin/report-sync"])
def test_the_identity_reaches_govern_an_admin_passes_others_get_403(live: Live, path: str) -> None:
    with live.client("tok-root") as client:
        allowed = client.get(path)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"report": "ok"}
    for token in ("tok-intern", None):
        with live.client(token) as client:
            denied = client.get(path)
        assert denied.status_code == 403
        body = denied.json()
        assert body["error"] == "policy_violation"
        assert body["reasons"] and all(r.startswith("authorization.") for r in body["reasons"])
        assert body["execution_id"]


def test_a_rate_limited_endpoint_answers_429(live: Live) -> None:
    with live.client() as client:
        assert client.get("/ping").status_code == 200
        limited = client.get("/ping")
    assert limited.status_code == 429
    body = limited.json()
    assert body["error"] == "rate_limited"
    assert any(r.startswith("rate_limit.") for r in body["reasons"])


def post_payment(live: Live) -> str:
    """POST /payments (waits the policy's 1 s), check the 202, return the execution id."""
    with live.client("tok-intern") as client:
        answer = client.post("/payments", json={"amount": 9000, "ssn": SSN})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    execution_id = body["execution_id"]
    assert body["status"] == "awaiting_approval"
    assert body["status_url"] == f"/govern/approvals/{execution_id}"
    assert answer.headers["Location"] == body["status_url"]
    assert body["approvers"] == ["cfo"]
    return str(execution_id)


@pytest.fixture(scope="module")
def payment(live: Live) -> str:
    """One approval-gated payment made through the app, left pending."""
    return post_payment(live)


def test_an_approval_gated_endpoint_answers_202_with_a_status_url(live: Live, payment: str) -> None:
    with live.client("tok-cfo") as client:
        status = client.get(f"/govern/approvals/{payment}")
    assert status.status_code == 200
    view = status.json()
    assert view["status"] == "pending"
    assert view["function_name"] == "pay"
    assert view["requested_by"] == "intern"
    assert view["approvers"] == ["cfo"]
    assert view["can_decide"] is True
    assert view["inputs"]["args"] == [9000, MASK]
    assert "arguments" not in view and "args_hash" not in view
    stored = live.store.get_approval(payment)
    assert stored is not None and SSN in str(stored.arguments)  # kept, for the resume only


def test_approving_a_gated_call_closes_it_and_the_resumer_runs_it_at_once(live: Live) -> None:
    execution_id = post_payment(live)
    with live.client("tok-cfo") as client:
        answer = client.post(f"/govern/approvals/{execution_id}/approve", json={"reason": "ok"})
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert (view["status"], view["decided_by"], view["reason"]) == ("approved", "cfo", "ok")
    assert view["votes"][0]["approver"] == "cfo" and view["can_decide"] is False
    deadline = time.monotonic() + 10  # the resumer's own poll is a minute away
    execution = live.store.get_execution(execution_id)
    while execution is not None and execution.status is not ExecutionStatus.COMPLETED:
        assert time.monotonic() < deadline, f"not resumed: {execution.status}"
        time.sleep(0.02)
        execution = live.store.get_execution(execution_id)
    assert execution is not None and execution.outputs == {"paid": 9000}
    with live.client("tok-intern") as client:
        detail = client.get(f"/govern/executions/{execution_id}").json()
    assert detail["execution"]["status"] == "completed"
    assert detail["approval"]["status"] == "approved"


def decide_while_waiting(live: Live, verb: str, amount: int) -> tuple[httpx.Response, float]:
    """POST /payments/wait (its policy waits up to 20 s), and `verb` it as the CFO meanwhile:
    the endpoint's answer, and how long it took after the decision."""
    with ThreadPoolExecutor(1) as pool, live.client("tok-intern") as client:
        body = {"amount": amount, "ssn": SSN}
        waiting = pool.submit(client.post, "/payments/wait", json=body)
        execution_id = None
        deadline = time.monotonic() + 10
        with live.client("tok-cfo") as cfo:
            while execution_id is None and time.monotonic() < deadline:
                pending = cfo.get("/govern/approvals/pending?function_name=pay_and_wait")
                found = [
                    a["execution_id"]
                    for a in pending.json()["approvals"]
                    if a["inputs"]["args"][0] == amount
                ]
                execution_id = found[0] if found else None
                time.sleep(0.02)
            assert execution_id is not None
            decided = time.monotonic()
            assert cfo.post(f"/govern/approvals/{execution_id}/{verb}").status_code == 200
        return waiting.result(timeout=30), time.monotonic() - decided


def test_an_approval_while_the_caller_waits_runs_the_call_at_once(live: Live) -> None:
    answer, after = decide_while_waiting(live, "approve", 7)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"paid": 7}
    assert after < 5  # woken by the decision, not by the 20 s timeout


def test_a_rejection_while_the_caller_waits_is_403_approval_rejected(live: Live) -> None:
    answer, after = decide_while_waiting(live, "reject", 8)
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["error"] == "approval_rejected" and body["approver"] == "cfo"
    assert body["execution_id"] and after < 5
    execution = live.store.get_execution(body["execution_id"])
    assert execution is not None and execution.status is ExecutionStatus.REJECTED


# -- deciding through the router -------------------------------------------------------------------


def test_an_unauthenticated_decision_is_401_and_changes_nothing(live: Live) -> None:
    execution_id = add_request(live.store)
    before = state_of(live.store, execution_id)
    for token in (None, "tok-unknown"):
        with live.client(token) as client:
            for verb in ("approve", "reject"):
                answer = client.post(
                    f"/govern/approvals/{execution_id}/{verb}", json={"approver": "cfo"}
                )
                assert answer.status_code == 401
                assert answer.json()["error"] == "unauthenticated"
                assert answer.headers["WWW-Authenticate"] == "Bearer"
            assert client.get(f"/govern/approvals/{execution_id}").status_code == 401
            assert client.get("/govern/approvals/pending").status_code == 401
            assert client.get("/govern/executions").status_code == 401
    assert state_of(live.store, execution_id) == before


def test_an_authenticate_refusal_keeps_its_status_in_the_error_shape(live: Live) -> None:
    with live.client("tok-banned") as client:
        answer = client.get("/govern/approvals/pending")
    assert answer.status_code == 403
    assert answer.json() == {"error": "forbidden", "message": "this account is suspended"}


def test_an_approver_the_stage_does_not_name_is_403_and_changes_nothing(live: Live) -> None:
    execution_id = add_request(live.store)
    before = state_of(live.store, execution_id)
    with live.client("tok-intern") as client:
        assert client.get(f"/govern/approvals/{execution_id}").json()["can_decide"] is False
        for verb in ("approve", "reject"):
            answer = client.post(f"/govern/approvals/{execution_id}/{verb}")
            assert answer.status_code == 403
            assert answer.json()["error"] == "approver_not_allowed"
    assert state_of(live.store, execution_id) == before


def test_an_approver_named_in_the_body_is_ignored(live: Live) -> None:
    execution_id = add_request(live.store)
    before = state_of(live.store, execution_id)
    with live.client("tok-intern") as client:
        forged = client.post(f"/govern/approvals/{execution_id}/approve", json={"approver": "cfo"})
    assert forged.status_code == 403
    assert state_of(live.store, execution_id) == before
    with live.client("tok-cfo") as client:
        answer = client.post(
            f"/govern/approvals/{execution_id}/approve",
            json={"approver": "intern", "reason": "checked the invoice"},
        )
    assert answer.status_code == 200
    assert answer.json()["decided_by"] == "cfo"
    record = live.store.get_approval(execution_id)
    assert record is not None and [v.approver for v in record.votes] == ["cfo"]


def test_a_rejection_closes_the_request_rejected(live: Live) -> None:
    execution_id = add_request(live.store)
    with live.client("tok-cfo") as client:
        answer = client.post(f"/govern/approvals/{execution_id}/reject", json={"reason": "no"})
    assert answer.status_code == 200
    view = answer.json()
    assert (view["status"], view["decided_by"], view["reason"]) == ("rejected", "cfo", "no")
    execution = live.store.get_execution(execution_id)
    assert execution is not None and execution.status is ExecutionStatus.REJECTED
    record = live.store.get_approval(execution_id)
    assert record is not None and record.arguments is None  # never run: arguments erased


def test_deciding_a_decided_request_again_is_409_and_changes_nothing(live: Live) -> None:
    execution_id = add_request(live.store, [["cfo", "ceo"]])
    with live.client("tok-cfo") as client:
        assert client.post(f"/govern/approvals/{execution_id}/approve").status_code == 200
    before = state_of(live.store, execution_id)
    for token in ("tok-ceo", "tok-cfo"):
        with live.client(token) as client:
            for verb in ("approve", "reject"):
                answer = client.post(f"/govern/approvals/{execution_id}/{verb}")
                assert answer.status_code == 409
                assert answer.json()["error"] == "approval_closed"
    assert state_of(live.store, execution_id) == before


def test_an_expired_request_is_410(live: Live) -> None:
    long_ago = utcnow() - timedelta(hours=2)
    execution_id = add_request(live.store, now=long_ago, timeout_seconds=60)
    with live.client("tok-cfo") as client:
        pending = client.get("/govern/approvals/pending").json()["approvals"]
        assert execution_id not in [a["execution_id"] for a in pending]
        answer = client.post(f"/govern/approvals/{execution_id}/approve")
        assert answer.status_code == 410
        assert answer.json()["error"] == "approval_expired"
        view = client.get(f"/govern/approvals/{execution_id}").json()
    assert view["status"] == "expired" and view["can_decide"] is False
    assert live.store.get_approval(execution_id).votes == []  # type: ignore[union-attr]


def test_a_reason_the_policy_requires_is_422_when_missing(live: Live) -> None:
    policy = ApprovalPolicy(approvers=["cfo"], require_reason=True)
    execution_id = add_request(live.store, policies=[policy])
    before = state_of(live.store, execution_id)
    with live.client("tok-cfo") as client:
        for body in (None, {}, {"reason": "   "}):
            answer = client.post(f"/govern/approvals/{execution_id}/approve", json=body)
            assert answer.status_code == 422, body
            assert answer.json()["error"] == "reason_required"
        assert state_of(live.store, execution_id) == before
        answer = client.post(f"/govern/approvals/{execution_id}/approve", json={"reason": "ok"})
    assert answer.status_code == 200 and answer.json()["status"] == "approved"


def test_a_malformed_body_is_422_naming_the_field(live: Live) -> None:
    execution_id = add_request(live.store)
    with live.client("tok-cfo") as client:
        answer = client.post(
            f"/govern/approvals/{execution_id}/approve", json={"reason": "x" * 2001}
        )
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "invalid_request" and body["message"].startswith("reason:")
    with live.client("tok-cfo") as client:
        answer = client.post(
            f"/govern/approvals/{execution_id}/reject",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 422
    assert answer.json() == {"error": "invalid_request", "message": "body: not valid JSON"}
    assert live.store.get_approval(execution_id).votes == []  # type: ignore[union-attr]


def test_an_approver_answers_a_stage_once_and_the_quorum_counts(live: Live) -> None:
    execution_id = add_request(live.store, [["cfo", "ceo", "root"]], quorum=2)
    with live.client("tok-cfo") as client:
        first = client.post(f"/govern/approvals/{execution_id}/approve").json()
        assert (first["status"], first["approvals_needed"], first["can_decide"]) == (
            "pending",
            1,
            False,
        )
        before = state_of(live.store, execution_id)
        again = client.post(f"/govern/approvals/{execution_id}/approve")
        assert again.status_code == 403 and again.json()["error"] == "approver_not_allowed"
        assert "already answered" in again.json()["message"]
    assert state_of(live.store, execution_id) == before
    with live.client("tok-ceo") as client:
        assert client.post(f"/govern/approvals/{execution_id}/approve").json()["status"] == (
            "approved"
        )


def test_stages_are_answered_in_order_by_their_own_approvers(live: Live) -> None:
    execution_id = add_request(live.store, [["cfo"], ["ceo"]])
    with live.client("tok-ceo") as client:
        assert client.post(f"/govern/approvals/{execution_id}/approve").status_code == 403
    with live.client("tok-cfo") as client:
        view = client.post(f"/govern/approvals/{execution_id}/approve").json()
    assert (view["status"], view["stage"], view["approvers"]) == ("pending", 1, ["ceo"])
    assert [s["approvers"] for s in view["stages"]] == [["cfo"], ["ceo"]]
    with live.client("tok-ceo") as client:
        view = client.post(f"/govern/approvals/{execution_id}/approve").json()
    assert view["status"] == "approved"
    assert [(v["stage_name"], v["approver"]) for v in view["votes"]] == [
        ("stage 1", "cfo"),
        ("stage 2", "ceo"),
    ]


def test_approval_errors_an_endpoint_raises_get_the_routers_answers(live: Live) -> None:
    execution_id = add_request(live.store)
    with live.client() as client:
        unknown = client.post("/ops/approve/nope")
        refused = client.post(f"/ops/approve/{execution_id}")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "approval_not_found")
    assert (refused.status_code, refused.json()["error"]) == (403, "approver_not_allowed")


def test_unknown_ids_are_404(live: Live) -> None:
    with live.client("tok-cfo") as client:
        for method, path, code in [
            ("GET", "/govern/approvals/nope", "approval_not_found"),
            ("POST", "/govern/approvals/nope/approve", "approval_not_found"),
            ("POST", "/govern/approvals/nope/reject", "approval_not_found"),
            ("GET", "/govern/executions/nope", "execution_not_found"),
        ]:
            answer = client.request(method, path)
            assert answer.status_code == 404, path
            assert answer.json()["error"] == code


# -- reading ---------------------------------------------------------------------------------------


def test_the_pending_list_shows_masked_inputs_stages_deadlines_and_votes(live: Live) -> None:
    execution_id = add_request(
        live.store, [["cfo", "ceo"]], quorum=2, function_name="wire_transfer"
    )
    with live.client("tok-cfo") as client:
        client.post(f"/govern/approvals/{execution_id}/approve", json={"reason": "fine"})
    with live.client("tok-ceo") as client:
        answer = client.get("/govern/approvals/pending", params={"function_name": "wire_transfer"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["count"] == 1
    (view,) = body["approvals"]
    assert view["execution_id"] == execution_id
    assert view["inputs"] == {"args": [], "kwargs": {"amount": 5000, "ssn": MASK}}
    assert view["approvers"] == ["cfo", "ceo"] and view["quorum"] == 2
    assert view["stages"] == [
        {"name": "approval", "approvers": ["cfo", "ceo"], "quorum": 2, "timeout_seconds": 3600}
    ]
    assert view["votes"][0]["approver"] == "cfo" and view["votes"][0]["reason"] == "fine"
    assert view["approvals_needed"] == 1 and view["can_decide"] is True
    assert datetime.fromisoformat(view["deadline"]) > utcnow()
    assert datetime.fromisoformat(view["expires_at"]) >= datetime.fromisoformat(view["deadline"])
    assert view["reasons"] == ["approval.required:big"] and view["requested_by"] == "alice"


def test_the_executions_endpoints_show_masked_executions_checkpoints_and_approval(
    live: Live, payment: str
) -> None:
    with live.client("tok-intern") as client:
        listed = client.get(
            "/govern/executions", params={"status": "awaiting_approval", "function_name": "pay"}
        )
        assert listed.status_code == 200
        body = listed.json()
        assert payment in [e["id"] for e in body["executions"]]
        assert body["count"] == len(body["executions"])
        assert all(e["status"] == "awaiting_approval" for e in body["executions"])
        limited = client.get("/govern/executions", params={"limit": 1}).json()
        assert limited["count"] == 1
        detail = client.get(f"/govern/executions/{payment}")
    assert detail.status_code == 200
    detail_body = detail.json()
    execution = detail_body["execution"]
    assert execution["status"] == "awaiting_approval" and execution["decision"] == "confirm"
    assert execution["inputs"]["args"] == [9000, MASK]
    assert execution["requested_by"] == "intern"
    assert "metadata" not in execution  # the raw context (IP address, attributes) stays inside
    checkpoints = [s["checkpoint"] for s in detail_body["snapshots"]]
    assert "awaiting_approval" in checkpoints
    assert all(set(s) == {"id", "checkpoint", "captured_at"} for s in detail_body["snapshots"])
    assert detail_body["approval"]["status"] == "pending"
    assert detail_body["approval"]["approvers"] == ["cfo"]


def test_a_bad_query_is_422_naming_the_parameter(live: Live) -> None:
    with live.client("tok-cfo") as client:
        bad_status = client.get("/govern/executions", params={"status": "bogus"})
        bad_limit = client.get("/govern/approvals/pending", params={"limit": 0})
    assert bad_status.status_code == 422
    assert bad_status.json()["error"] == "invalid_request"
    assert bad_status.json()["message"].startswith("status:")
    assert bad_limit.status_code == 422 and bad_limit.json()["message"].startswith("limit:")


def test_the_openapi_schema_documents_the_governance_api(live: Live) -> None:
    with live.client() as client:
        schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert "/govern/approvals/pending" in paths
    assert "/govern/approvals/{execution_id}/approve" in paths
    assert "ApprovalView" in schema["components"]["schemas"]
    assert "arguments" not in schema["components"]["schemas"]["ApprovalView"]["properties"]
