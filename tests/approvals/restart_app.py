"""A tiny payments app for the restart tests, run as separate processes:

    python -m tests.approvals.restart_app call DB_URL AMOUNT RECIPIENT
        calls the governed `transfer` and waits for approval (sync pattern); the test kills it
    python -m tests.approvals.restart_app approve DB_URL APPROVER
        approves every pending request, as a person in another process would
    python -m tests.approvals.restart_app resume DB_URL EXPECTED
        a resume worker: resumes approved executions until EXPECTED of them are completed

`transfer` appends one line per run to the file named by GOVERNOR_TEST_RUNS (O_APPEND, fsync),
so the test counts runs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from decimal import Decimal

from governor import (
    ApprovalManager,
    ApprovalPolicy,
    AutoResumeManager,
    ExecutionStatus,
    SQLStorage,
    govern,
)

DB_URL = sys.argv[2] if len(sys.argv) > 2 else "sqlite://"
store = SQLStorage(DB_URL)
runs_file = os.environ.get("GOVERNOR_TEST_RUNS", "")
manager = ApprovalManager(store, poll_interval=0.05, lease_seconds=1.0)


@govern(
    policies=[ApprovalPolicy(approvers=["cfo"], timeout_seconds=3600)],
    storage=store,
    approval_manager=manager,
)
def transfer(amount: Decimal, recipient: str) -> str:
    fd = os.open(runs_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {amount} {recipient}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return f"sent {amount} to {recipient}"


def main() -> None:
    command = sys.argv[1]
    if command == "call":
        transfer(Decimal(sys.argv[3]), sys.argv[4])  # waits; the test SIGKILLs this process
    elif command == "approve":
        for record in store.list_approvals(status="pending", limit=None):
            store.decide_approval(record.execution_id, approver=sys.argv[3], approved=True)
    elif command == "resume":
        expected = int(sys.argv[3])
        resumer = AutoResumeManager(store, poll_interval=0.05)
        resumer.register_function("transfer", transfer)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            asyncio.run(resumer.run_once())
            done = store.list_executions(status=ExecutionStatus.COMPLETED, limit=None)
            if len(done) >= expected:
                return
            time.sleep(0.05)
        raise SystemExit(f"only {len(done)} of {expected} executions completed in 60 s")


if __name__ == "__main__":
    main()
