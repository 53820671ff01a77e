"""Human approvals with `@govern`: the sync pattern and the async pattern, end to end.

    .venv/bin/python examples/approvals_quickstart.py

Everything goes through a SQLite file (a temporary one here), so the "person" who approves could
just as well be another process: the REST router of `governor.integrations.fastapi`, the
`governor approvals approve ID` command, or a dashboard.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

from governor import (
    ApprovalManager,
    ApprovalPending,
    ApprovalPolicy,
    ApprovalRejected,
    AuditPolicy,
    AutoResumeManager,
    SQLStorage,
    govern,
)

store = SQLStorage(f"sqlite:///{Path(tempfile.mkdtemp()) / 'governor.db'}")
manager = ApprovalManager(store, poll_interval=0.05)


def a_person(approver: str, approved: bool, reason: str) -> None:
    """Somebody answering the first pending request a moment later (any process could)."""

    def answer() -> None:
        while not (pending := store.list_approvals(status="pending")):
            time.sleep(0.05)
        store.decide_approval(
            pending[0].execution_id, approver=approver, approved=approved, reason=reason
        )

    threading.Thread(target=answer).start()


# -- sync pattern: the caller waits (up to timeout_seconds) for a decision --------------------


@govern(
    policies=[ApprovalPolicy(approvers=["cfo@example.com"], timeout_seconds=30)],
    storage=store,
    approval_manager=manager,
)
async def pay_invoice(amount: Decimal, vendor: str) -> str:
    return f"paid {amount} to {vendor}"


# -- async pattern: after 1 s the caller gets ApprovalPending; the work resumes later ---------


@govern(
    policies=[
        ApprovalPolicy(approvers=["cfo@example.com"], timeout_seconds=1, on_timeout="pending"),
        AuditPolicy(sensitive_fields=["iban"]),
    ],
    storage=store,
    approval_manager=manager,
    on_state_saved=lambda execution_id, state: print(
        f"saved {state['checkpoint']} of {execution_id[:8]}"
    ),
)
async def wire_transfer(amount: Decimal, iban: str) -> str:
    return f"wired {amount} to {iban[:4]}..."


async def main() -> None:
    a_person("cfo@example.com", True, "budgeted")
    print(await pay_invoice(Decimal("950.00"), "ACME"))

    a_person("cfo@example.com", False, "duplicate invoice")
    try:
        await pay_invoice(Decimal("950.00"), "ACME")
    except ApprovalRejected as rejected:
        print(f"rejected by {rejected.approver}: {rejected.reason}")

    try:
        await wire_transfer(Decimal("50000.00"), iban="DE89370400440532013000")
    except ApprovalPending as pending:  # also a TimeoutError and a PermissionError
        execution_id = pending.execution_id
        print(f"pending: {execution_id[:8]} waits for {', '.join(pending.approval['approvers'])}")

    # hours later, maybe in another process: someone approves, a worker resumes it exactly once
    store.decide_approval(execution_id, approver="cfo@example.com", approved=True, reason="ok")
    resumer = AutoResumeManager(store)
    resumer.register_function("wire_transfer", wire_transfer)
    results = await resumer.run_once()
    print(f"resumed: {results[execution_id]}")
    execution = store.get_execution(execution_id)
    assert execution is not None
    print(f"stored: {execution.status.value}, inputs {execution.inputs}")


if __name__ == "__main__":
    asyncio.run(main())
