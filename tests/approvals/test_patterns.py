"""The approval patterns of `@govern`, end to end on real stores (memory and a SQLite file).

Sync pattern: the caller waits; a decision recorded through the store by anyone (another thread
here, another process in test_restart.py) lets it run or raises `ApprovalRejected`. Async
pattern: on timeout the caller gets `ApprovalPending` and `on_state_saved`; a later approval is
resumed exactly once with the original arguments.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from governor import (
    ApprovalClosed,
    ApprovalManager,
    ApprovalMismatch,
    ApprovalPending,
    ApprovalPolicy,
    ApprovalRejected,
    ApprovalStage,
    AuditPolicy,
    AutoResumeManager,
    BackgroundJobQueue,
    ExecutionStatus,
    govern,
)
from governor.storage import ApprovalStatus, StorageBackend
from tests.storage.conftest import make_store


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    backend = make_store(request.param, tmp_path)
    yield backend
    backend.close()


@pytest.fixture
def manager(store: StorageBackend) -> ApprovalManager:
    return ApprovalManager(store, poll_interval=0.02, lease_seconds=0.5)


def wait_for_request(store: StorageBackend, count: int = 1, timeout: float = 10) -> list[str]:
    """The ids of the pending requests, once `count` of them are stored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = store.list_approvals(status="pending")
        if len(found) >= count:
            return [r.execution_id for r in found]
        time.sleep(0.01)
    raise AssertionError("no approval request was stored")


def decide_later(store: StorageBackend, approver: str, approved: bool, reason: str = "") -> None:
    """Decide the first pending request from another thread, as a person would."""

    def run() -> None:
        (eid, *_) = wait_for_request(store)
        store.decide_approval(eid, approver=approver, approved=approved, reason=reason or None)

    threading.Thread(target=run, daemon=True).start()


def test_sync_pattern_the_call_waits_for_an_approver_and_then_runs(
    store: StorageBackend, manager: ApprovalManager
) -> None:
    ran: list[tuple[Decimal, str]] = []

    @govern(
        policies=[ApprovalPolicy(approvers=["cfo@x.com"], timeout_seconds=10)],
        storage=store,
        approval_manager=manager,
    )
    async def transfer(amount: Decimal, to: str) -> str:
        ran.append((amount, to))
        return "sent"

    decide_later(store, "cfo@x.com", True, "budgeted")
    assert asyncio.run(transfer(Decimal("50000.00"), "BigCorp")) == "sent"
    assert ran == [(Decimal("50000.00"), "BigCorp")]
    (execution,) = store.list_executions()
    assert execution.status is ExecutionStatus.COMPLETED
    record = store.get_approval(execution.id)
    assert record is not None and record.decided_by == "cfo@x.com"
    assert record.reason == "budgeted" and record.arguments is None  # erased once run
    kinds = [e.event_type for e in store.list_events(execution_id=execution.id, limit=None)]
    assert kinds.count("approval.granted") == 1 and kinds[-1] == "execution.completed"


def test_sync_pattern_on_a_sync_function_and_a_rejection(
    store: StorageBackend, manager: ApprovalManager
) -> None:
    @govern(
        policies=[ApprovalPolicy(approvers=["ops"], timeout_seconds=10)],
        storage=store,
        approval_manager=manager,
    )
    def drop(table: str) -> None:
        raise AssertionError("must not run")

    decide_later(store, "ops", False, "not today")
    with pytest.raises(ApprovalRejected, match="rejected by ops: not today") as caught:
        drop("users")
    assert caught.value.approver == "ops"
    (execution,) = store.list_executions()
    assert execution.status is ExecutionStatus.REJECTED
    assert store.list_audit_records()[-1].record["outcome"] == "rejected"


def test_an_unlisted_approver_cannot_approve_and_the_call_times_out_rejected(
    store: StorageBackend, manager: ApprovalManager
) -> None:
    @govern(
        policies=[ApprovalPolicy(approvers=["cfo"], timeout_seconds=1)],
        storage=store,
        approval_manager=manager,
    )
    async def wire(amount: int) -> int:
        raise AssertionError("must not run")

    refused: list[Exception] = []

    def intruder() -> None:
        (eid,) = wait_for_request(store)
        try:
            store.decide_approval(eid, approver="mallory", approved=True)
        except Exception as exc:
            refused.append(exc)

    threading.Thread(target=intruder, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(ApprovalRejected, match="expired"):
        asyncio.run(wire(5))
    assert time.monotonic() - started >= 0.9  # it waited for the policy's own timeout
    assert [type(e).__name__ for e in refused] == ["ApproverNotAllowed"]
    (record,) = store.list_approvals(status=None)
    assert record.status is ApprovalStatus.EXPIRED and record.votes == []
    assert "approval.timeout" in [e.event_type for e in store.list_events(limit=None)]


def test_async_pattern_pending_then_approved_then_resumed_exactly_once(
    store: StorageBackend, manager: ApprovalManager
) -> None:
    ran: list[tuple[Decimal, str]] = []
    saved: list[tuple[str, dict[str, Any]]] = []

    @govern(
        policies=[
            ApprovalPolicy(approvers=["cfo"], timeout_seconds=1, on_timeout="pending"),
            AuditPolicy(sensitive_fields=["account"]),
        ],
        storage=store,
        approval_manager=manager,
        on_state_saved=lambda eid, state: saved.append((eid, state)),
    )
    async def transfer(amount: Decimal, account: str) -> dict[str, str]:
        ran.append((amount, account))
        return {"status": "sent", "account": account}

    with pytest.raises(TimeoutError) as caught:  # the README's `except TimeoutError`
        asyncio.run(transfer(Decimal("99.50"), account="DE-secret"))
    pending = caught.value
    assert isinstance(pending, ApprovalPending) and isinstance(pending, PermissionError)
    eid = pending.execution_id
    assert [e for e, s in saved if s["checkpoint"] == "awaiting_approval"] == [eid]
    execution = store.get_execution(eid)
    assert execution is not None and execution.status is ExecutionStatus.AWAITING_APPROVAL
    assert "DE-secret" not in repr(execution.inputs)  # masked in the records
    record = store.get_approval(eid)
    assert record is not None and record.held_until is None  # the caller let go
    assert "DE-secret" not in repr(record.inputs)

    resumer = AutoResumeManager(store)
    resumer.register_function("transfer", transfer)
    with pytest.raises(ApprovalPending):  # not approved yet: nothing runs
        asyncio.run(resumer.resume_by_execution_id(eid))
    store.decide_approval(eid, approver="cfo", approved=True)

    resumer2 = AutoResumeManager(store)
    resumer2.register_function("transfer", transfer)

    async def race() -> list[Any]:
        return await asyncio.gather(resumer.run_once(), resumer2.run_once())

    outcomes = asyncio.run(race())
    assert ran == [(Decimal("99.50"), "DE-secret")]  # original arguments, once
    results = [r for o in outcomes for r in o.values()]
    assert {"status": "sent", "account": "DE-secret"} in results
    done = store.get_execution(eid)
    assert done is not None and done.status is ExecutionStatus.COMPLETED
    assert "DE-secret" not in repr(done.outputs)
    with pytest.raises(ApprovalClosed):
        asyncio.run(resumer.resume_by_execution_id(eid))
    assert asyncio.run(resumer.run_once()) == {}
    assert ran == [(Decimal("99.50"), "DE-secret")]
    trail = [
        (a.action.rsplit(".", 1)[-1], a.actor, a.record.get("outcome"))
        for a in store.list_audit_records()
    ]
    assert trail == [
        ("transfer", None, "awaiting_approval"),
        ("approve", "cfo", None),  # every answer is in the hash chain
        ("transfer", None, "completed"),
    ]
    assert store.verify_audit_chain() is None


def test_an_approval_is_bound_to_its_arguments(
    store: StorageBackend, manager: ApprovalManager
) -> None:
    @govern(
        policies=[ApprovalPolicy(approvers=["cfo"], timeout_seconds=1, on_timeout="pending")],
        storage=store,
        approval_manager=manager,
    )
    def pay(amount: int) -> int:
        return amount

    with pytest.raises(ApprovalPending) as first:
        pay(10)
    with pytest.raises(ApprovalPending) as second:
        pay(10_000)
    assert first.value.execution_id != second.value.execution_id  # a new approval each
    eid = first.value.execution_id
    store.decide_approval(eid, approver="cfo", approved=True)
    # someone edits the approved arguments in the database: the resume refuses them
    with store.transaction() as tx:
        record = tx.load_approval(eid)
        assert record is not None
        record.arguments = {"args": [10_000_000], "kwargs": {}}
        tx.update_approval(record)
    resumer = AutoResumeManager(store)
    resumer.register_function("pay", pay)
    with pytest.raises(ApprovalMismatch, match="not the ones that were approved"):
        asyncio.run(resumer.resume_by_execution_id(eid))
    execution = store.get_execution(eid)
    assert execution is not None and execution.status is ExecutionStatus.FAILED


def test_a_callback_handler_decides_at_once_and_a_quorum_counts_people(
    store: StorageBackend, manager: ApprovalManager
) -> None:
    asked: list[str] = []

    async def callback(execution_id: str, name: str, inputs: Any, approvers: list[str]) -> Any:
        asked.append(name)
        return True, approvers[len(asked) - 1], "ok"

    class TwoPeople:
        async def handle_approval_request(
            self, execution_id: str, name: str, inputs: Any, approvers: list[str]
        ) -> Any:
            return await callback(execution_id, name, inputs, approvers)

    @govern(
        policies=[ApprovalPolicy(approvers=["a", "b"], quorum=2, timeout_seconds=2)],
        storage=store,
        approval_manager=manager,
        approval_handler=TwoPeople(),
    )
    async def deploy(version: str) -> str:
        return version

    # the handler answers once per stage: one approval of two, the call times out rejected
    with pytest.raises(ApprovalRejected):
        asyncio.run(deploy("1.0"))
    (record,) = store.list_approvals(status=None)
    assert [v.approver for v in record.votes] == ["a"]


def test_sequential_stages_each_with_its_approvers(
    store: StorageBackend, manager: ApprovalManager
) -> None:
    order: list[str] = []

    @govern(
        policies=[
            ApprovalPolicy(
                stages=[
                    ApprovalStage(name="safety", approvers=["s"]),
                    ApprovalStage(name="executive", approvers=["e"]),
                ],
                timeout_seconds=10,
            )
        ],
        storage=store,
        approval_manager=manager,
    )
    async def ship(model: str) -> str:
        return model

    def people() -> None:
        (eid,) = wait_for_request(store)
        for approver in ("s", "e"):
            while True:
                record = store.get_approval(eid)
                assert record is not None
                if record.current_stage.approvers == [approver]:
                    break
                time.sleep(0.01)
            order.append(record.current_stage.name)
            store.decide_approval(eid, approver=approver, approved=True)

    threading.Thread(target=people, daemon=True).start()
    assert asyncio.run(ship("m1")) == "m1"
    assert order == ["safety", "executive"]


def test_a_cancelled_caller_leaves_the_request_pending_and_resumable(
    store: StorageBackend, manager: ApprovalManager
) -> None:
    ran: list[int] = []

    @govern(
        policies=[ApprovalPolicy(approvers=["cfo"], timeout_seconds=60)],
        storage=store,
        approval_manager=manager,
    )
    async def pay(amount: int) -> int:
        ran.append(amount)
        return amount

    async def give_up() -> None:
        task = asyncio.create_task(pay(7))
        await asyncio.to_thread(wait_for_request, store)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(give_up())
    (record,) = store.list_approvals(status="pending")
    assert record.held_until is None
    execution = store.get_execution(record.execution_id)
    assert execution is not None and execution.status is ExecutionStatus.AWAITING_APPROVAL
    store.decide_approval(record.execution_id, approver="cfo", approved=True)

    async def resume_via_queue() -> Any:
        queue = BackgroundJobQueue(workers=1)
        await queue.start()
        resumer = AutoResumeManager(store, job_queue=queue)
        resumer.register_function(None, pay)
        (job_id,) = (await resumer.run_once()).values()
        job = await queue.wait_for_job(job_id, timeout=10)
        await queue.stop()
        return job

    job = asyncio.run(resume_via_queue())
    assert job is not None and job.status == "completed" and job.result == 7
    assert ran == [7]
