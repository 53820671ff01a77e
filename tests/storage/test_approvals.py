"""The approval requests of the store contract, on every backend: votes, quorum, stages, expiry,
who may answer, and the execution's status moving with its request."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from governor.approvals.request import arguments_hash, build_request
from governor.errors import (
    ApprovalClosed,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalReasonRequired,
    ApproverNotAllowed,
)
from governor.policies import ApprovalPolicy, ApprovalStage
from governor.storage import (
    ApprovalRecord,
    ApprovalStatus,
    ExecutionRecord,
    ExecutionStatus,
    StorageBackend,
)
from governor.storage.records import utcnow


def pending(
    store: StorageBackend,
    *,
    approvers: list[str] | None = None,
    policy: ApprovalPolicy | None = None,
    quorum: int = 1,
    timeout: int = 60,
) -> ApprovalRecord:
    """Store an execution awaiting approval and its request, as the executor does."""
    approvers = ["alice", "bob"] if approvers is None else approvers
    policy = policy or ApprovalPolicy(approvers=approvers, quorum=quorum, timeout_seconds=timeout)
    stages = [list(s.approvers) for s in policy.stages] or ([approvers] if approvers else [])
    block = {"approvers": approvers, "stages": stages, "timeout_seconds": timeout, "quorum": quorum}
    execution = ExecutionRecord(function_name="pay", status=ExecutionStatus.AWAITING_APPROVAL)
    record = build_request(
        execution_id=execution.id,
        function_name="pay",
        function_qualname="pay",
        function_path="tests.pay",
        approval=block,
        policies=[policy],
        arguments={"args": [10], "kwargs": {}},
        inputs={"args": [10], "kwargs": {}},
        subject={"user_id": "u1"},
        reasons=["approval.required:ApprovalPolicy"],
        decision={"decision": "confirm"},
    )
    with store.transaction() as tx:
        tx.save_execution(execution)
        tx.add_approval(record)
    return record


def status_of(store: StorageBackend, execution_id: str) -> ExecutionStatus:
    execution = store.get_execution(execution_id)
    assert execution is not None
    return execution.status


def test_a_request_is_stored_with_its_execution_and_read_back_whole(store: StorageBackend) -> None:
    record = pending(store)
    stored = store.get_approval(record.execution_id)
    assert stored is not None
    assert stored.status is ApprovalStatus.PENDING and stored.stage == 0
    assert [s.approvers for s in stored.stages] == [["alice", "bob"]]
    assert stored.arguments == {"args": [10], "kwargs": {}}
    assert stored.args_hash == arguments_hash("tests.pay", {"args": [10], "kwargs": {}})
    assert stored.expires_at == stored.stage_deadline  # on_timeout="reject"
    assert [r.execution_id for r in store.list_approvals(status="pending")] == [record.execution_id]
    assert store.list_approvals(status="approved") == []
    assert store.get_approval("nope") is None


def test_one_listed_approver_approves_and_the_execution_becomes_approved(
    store: StorageBackend,
) -> None:
    record = pending(store)
    decided = store.decide_approval(record.execution_id, approver="bob", approved=True, reason="ok")
    assert decided.status is ApprovalStatus.APPROVED and decided.decided_by == "bob"
    assert [(v.approver, v.approved, v.reason) for v in decided.votes] == [("bob", True, "ok")]
    assert status_of(store, record.execution_id) is ExecutionStatus.APPROVED
    assert "approval.granted" in [
        e.event_type for e in store.list_events(execution_id=record.execution_id)
    ]


def test_refusals_change_nothing(store: StorageBackend) -> None:
    record = pending(store)
    eid = record.execution_id
    with pytest.raises(ApproverNotAllowed, match="mallory"):
        store.decide_approval(eid, approver="mallory", approved=True)
    with pytest.raises(ApprovalNotFound):
        store.decide_approval("missing", approver="alice", approved=True)
    stored = store.get_approval(eid)
    assert stored is not None and stored.votes == [] and stored.status is ApprovalStatus.PENDING
    assert status_of(store, eid) is ExecutionStatus.AWAITING_APPROVAL
    store.decide_approval(eid, approver="alice", approved=False, reason="no")
    with pytest.raises(ApprovalClosed, match="already rejected by alice"):
        store.decide_approval(eid, approver="bob", approved=True)
    assert status_of(store, eid) is ExecutionStatus.REJECTED


def test_a_quorum_needs_that_many_different_approvers(store: StorageBackend) -> None:
    record = pending(store, approvers=["a", "b", "c"], quorum=2)
    eid = record.execution_id
    assert store.decide_approval(eid, approver="a", approved=True).status is ApprovalStatus.PENDING
    with pytest.raises(ApproverNotAllowed, match="already answered"):
        store.decide_approval(eid, approver="a", approved=True)
    assert store.decide_approval(eid, approver="c", approved=True).status is ApprovalStatus.APPROVED


def test_stages_are_approved_in_order_each_with_its_own_approvers_and_clock(
    store: StorageBackend,
) -> None:
    policy = ApprovalPolicy(
        stages=[
            ApprovalStage(name="manager", approvers=["m"], timeout_seconds=60),
            ApprovalStage(name="finance", approvers=["f1", "f2"], timeout_seconds=600, quorum=2),
        ]
    )
    record = pending(store, approvers=[], policy=policy)
    eid = record.execution_id
    with pytest.raises(ApproverNotAllowed, match="manager"):
        store.decide_approval(eid, approver="f1", approved=True)
    first = store.decide_approval(eid, approver="m", approved=True)
    assert first.status is ApprovalStatus.PENDING and first.current_stage.name == "finance"
    assert first.stage_deadline - utcnow() > timedelta(seconds=500)
    store.decide_approval(eid, approver="f1", approved=True)
    done = store.decide_approval(eid, approver="f2", approved=True)
    assert done.status is ApprovalStatus.APPROVED
    assert [(v.stage, v.approver) for v in done.votes] == [(0, "m"), (1, "f1"), (1, "f2")]


def test_an_expired_request_is_denied(store: StorageBackend) -> None:
    record = pending(store, timeout=1)
    later = utcnow() + timedelta(seconds=5)
    with pytest.raises(ApprovalExpired):
        store.decide_approval(record.execution_id, approver="alice", approved=True, now=later)
    stored = store.get_approval(record.execution_id)
    assert stored is not None and stored.status is ApprovalStatus.EXPIRED
    assert stored.arguments is None  # never to run: the arguments are erased
    assert status_of(store, record.execution_id) is ExecutionStatus.REJECTED


def test_a_policy_that_requires_a_reason_refuses_an_answer_without_one(
    store: StorageBackend,
) -> None:
    policy = ApprovalPolicy(approvers=["alice"], require_reason=True)
    record = pending(store, approvers=["alice"], policy=policy)
    with pytest.raises(ApprovalReasonRequired):
        store.decide_approval(record.execution_id, approver="alice", approved=True, reason="  ")
    approved = store.decide_approval(
        record.execution_id, approver="alice", approved=True, reason="checked"
    )
    assert approved.status is ApprovalStatus.APPROVED


def test_a_stage_naming_nobody_accepts_any_authenticated_approver(store: StorageBackend) -> None:
    record = pending(store, approvers=[])
    assert record.stages[0].approvers == []
    decided = store.decide_approval(record.execution_id, approver="anyone", approved=True)
    assert decided.status is ApprovalStatus.APPROVED


def test_closing_without_a_vote_never_approves(store: StorageBackend) -> None:
    record = pending(store)
    closed = store.cancel_approval(record.execution_id, by="operator", reason="duplicate")
    assert closed.status is ApprovalStatus.CANCELLED
    assert status_of(store, record.execution_id) is ExecutionStatus.CANCELLED
    with pytest.raises(ApprovalClosed):
        store.decide_approval(record.execution_id, approver="alice", approved=True)


def test_the_lease_of_a_waiting_caller_is_kept_with_the_request(store: StorageBackend) -> None:
    record = pending(store)
    until = utcnow() + timedelta(seconds=30)
    assert store.hold_approval(record.execution_id, until)
    stored = store.get_approval(record.execution_id)
    assert stored is not None and stored.held_until is not None
    assert abs((stored.held_until - until).total_seconds()) < 0.01
    assert not store.hold_approval("missing", until)


def test_concurrent_votes_are_counted_one_by_one(store: StorageBackend) -> None:
    approvers = [f"a{i}" for i in range(8)]
    record = pending(store, approvers=approvers, quorum=8)
    errors: list[Exception] = []

    def vote(name: str) -> None:
        try:
            store.decide_approval(record.execution_id, approver=name, approved=True)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=vote, args=(a,)) for a in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = store.get_approval(record.execution_id)
    assert stored is not None and stored.status is ApprovalStatus.APPROVED
    assert sorted(v.approver for v in stored.votes) == approvers
