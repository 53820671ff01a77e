"""`governor approvals list|show|approve|reject` on a real SQLite store: masked views, answers
recorded as `--as` (default: the OS user), one-line refusals and exit codes (0, 1, 2), and a
waiting call approved from the command line."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from governor_cli.main import app
from typer.testing import CliRunner

from governor.approvals.manager import ApprovalManager, ApprovalOutcome, ApprovalRequest
from governor.approvals.request import build_request
from governor.decision import Decision
from governor.events import EventEmitter
from governor.serialization import MASK
from governor.storage import SQLStorage
from governor.storage.records import (
    ApprovalRecord,
    ApprovalStatus,
    ExecutionRecord,
    ExecutionStatus,
    utcnow,
)

runner = CliRunner()
SECRET_VALUE = "hunter2-do-not-leak"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/governor.db"


@pytest.fixture
def store(url: str) -> Any:
    backend = SQLStorage(url)
    yield backend
    backend.close()


def pending(
    store: SQLStorage,
    *,
    stages: list[list[str]] | None = None,
    function: str = "transfer",
    **changes: Any,
) -> ApprovalRecord:
    """Commit an `awaiting_approval` execution with its approval request."""
    stages = [["alice"]] if stages is None else stages
    execution = ExecutionRecord(
        function_name=function,
        function_qualname=f"payments.{function}",
        status=ExecutionStatus.AWAITING_APPROVAL,
    )
    record = build_request(
        execution_id=execution.id,
        function_name=function,
        function_qualname=f"payments.{function}",
        function_path=f"payments.{function}",
        approval={
            "approvers": [a for s in stages for a in s],
            "stages": stages,
            "timeout_seconds": 600,
            "quorum": 1,
        },
        policies=[],
        arguments={"args": [250], "kwargs": {"password": SECRET_VALUE}},
        inputs={"args": [250], "kwargs": {"password": MASK}},
        subject={"user_id": "agent-7"},
        reasons=["approval.required:transfer"],
        decision={"decision": "confirm"},
    )
    for name, value in changes.items():
        setattr(record, name, value)
    with store.transaction() as tx:
        tx.save_execution(execution)
        tx.add_approval(record)
    return record


def governor(url: str | None, *args: str) -> tuple[int, str, str]:
    options = ["--database-url", url] if url else []
    result = runner.invoke(app, ["approvals", *args, *options])
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_pending_requests_and_filters_by_status_and_function(
    store: SQLStorage, url: str
) -> None:
    first = pending(store)
    other = pending(store, function="refund", stages=[["bob", "carol"]])
    done = pending(store)
    store.decide_approval(done.execution_id, approver="alice", approved=False, reason="no")

    code, out, _ = governor(url, "list")
    assert code == 0
    assert first.execution_id in out and other.execution_id in out
    assert done.execution_id not in out
    assert "bob, carol" in out and "pending" in out and "approval 1/1" in out
    assert SECRET_VALUE not in out

    code, out, _ = governor(url, "list", "--status", "all", "--function", "transfer")
    assert code == 0
    assert first.execution_id in out and done.execution_id in out
    assert other.execution_id not in out

    code, out, _ = governor(url, "list", "--status", "rejected", "--json")
    assert code == 0
    [row] = json.loads(out)
    assert row["execution_id"] == done.execution_id
    assert row["status"] == "rejected" and row["decided_by"] == "alice"

    code, _, err = governor(url, "list", "--status", "cancelled")
    assert code == 0 and "no cancelled approval requests" in err


def test_show_has_stages_votes_and_masked_inputs_never_the_arguments(
    store: SQLStorage, url: str
) -> None:
    record = pending(store, stages=[["alice", "bob"], ["carol"]])
    store.decide_approval(record.execution_id, approver="bob", approved=True, reason="ok")

    code, out, _ = governor(url, "show", record.execution_id)
    assert code == 0
    for expected in (
        record.execution_id,
        "transfer (payments.transfer)",
        "status      pending",
        "1. stage 1: alice, bob, quorum 1 (1 approved)",
        "-> 2. stage 2: carol",
        "bob approved (stage 1): ok",
        f'"password": "{MASK}"',
        "approval.required:transfer",
        "agent-7",
    ):
        assert expected in out
    assert SECRET_VALUE not in out

    code, out, _ = governor(url, "show", record.execution_id, "--json")
    assert code == 0
    shown = json.loads(out)
    assert "arguments" not in shown and SECRET_VALUE not in out
    assert shown["inputs"] == {"args": [250], "kwargs": {"password": MASK}}
    assert [s["approvers"] for s in shown["stages"]] == [["alice", "bob"], ["carol"]]
    assert shown["votes"][0]["approver"] == "bob" and shown["stage_index"] == 1


def test_approve_records_the_answer_as_the_named_approver(store: SQLStorage, url: str) -> None:
    record = pending(store, stages=[["alice"], ["carol"]])
    code, out, _ = governor(url, "approve", record.execution_id, "--as", "alice", "--reason", "ok")
    assert code == 0
    assert "now at stage 'stage 2' (2 of 2), waiting for carol" in out

    code, out, _ = governor(url, "approve", record.execution_id, "--as", "carol")
    assert code == 0 and "the request is approved" in out
    stored = store.get_approval(record.execution_id)
    assert stored is not None and stored.status is ApprovalStatus.APPROVED
    assert [(v.approver, v.reason) for v in stored.votes] == [("alice", "ok"), ("carol", None)]
    execution = store.get_execution(record.execution_id)
    assert execution is not None and execution.status is ExecutionStatus.APPROVED


def test_reject_closes_the_request(store: SQLStorage, url: str) -> None:
    record = pending(store)
    code, out, _ = governor(
        url, "reject", record.execution_id, "--as", "alice", "--reason", "wrong account"
    )
    assert code == 0 and "the function will not run" in out
    stored = store.get_approval(record.execution_id)
    assert stored is not None and stored.status is ApprovalStatus.REJECTED
    assert stored.reason == "wrong account"
    execution = store.get_execution(record.execution_id)
    assert execution is not None and execution.status is ExecutionStatus.REJECTED


def test_the_approver_defaults_to_the_os_user(
    store: SQLStorage, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "alice")
    record = pending(store)
    code, out, _ = governor(url, "approve", record.execution_id)
    assert code == 0 and out.startswith("alice approved")
    assert store.get_approval(record.execution_id).decided_by == "alice"  # type: ignore[union-attr]


def test_refusals_exit_1_with_one_line(store: SQLStorage, url: str) -> None:
    record = pending(store)
    code, _, err = governor(url, "approve", record.execution_id, "--as", "mallory")
    assert code == 1
    assert err.strip().count("\n") == 0
    assert err.startswith("error: refused: 'mallory' may not answer stage 'approval'")

    governor(url, "reject", record.execution_id, "--as", "alice")
    code, _, err = governor(url, "approve", record.execution_id, "--as", "alice")
    assert code == 1 and "is already rejected by alice" in err

    late = pending(store, expires_at=utcnow() - timedelta(seconds=1))
    code, _, err = governor(url, "approve", late.execution_id, "--as", "alice")
    assert code == 1 and "expired" in err
    assert store.get_approval(late.execution_id).status is ApprovalStatus.EXPIRED  # type: ignore[union-attr]


def test_bad_input_exits_2(store: SQLStorage, url: str) -> None:
    code, _, err = governor(url, "approve", "no-such-id", "--as", "alice")
    assert code == 2 and "no approval request for execution 'no-such-id'" in err
    code, _, err = governor(url, "show", "no-such-id")
    assert code == 2 and "governor approvals list --status all" in err

    strict = pending(store, require_reason=True)
    code, _, err = governor(url, "approve", strict.execution_id, "--as", "alice")
    assert code == 2 and "requires a reason" in err and "--reason" in err
    assert store.get_approval(strict.execution_id).votes == []  # type: ignore[union-attr]

    code, _, _ = governor(url, "list", "--status", "maybe")
    assert code == 2
    code, _, err = governor("postgresql+nope://x/y", "list")
    assert code == 2 and err.startswith("error:")


def test_the_database_comes_from_governor_database_url(
    store: SQLStorage, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = pending(store)
    monkeypatch.setenv("GOVERNOR_DATABASE_URL", url)
    code, out, _ = governor(None, "list")
    assert code == 0 and record.execution_id in out


def test_help_says_the_approver_name_is_not_authentication() -> None:
    result = runner.invoke(app, ["approvals", "approve", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "full access" in text and "not authenticated" in text


def test_a_waiting_call_is_approved_from_the_command_line(store: SQLStorage, url: str) -> None:
    record = pending(store)
    manager = ApprovalManager(store, poll_interval=0.02)
    request = ApprovalRequest(
        execution_id=record.execution_id,
        function_name=record.function_name,
        function_qualname=record.function_qualname,
        approval={},
        decision=Decision("confirm"),
        inputs={},
        arguments={},
        subject={},
        storage=store,
        emitter=EventEmitter(),
    )
    outcomes: list[ApprovalOutcome] = []
    waiter = threading.Thread(
        target=lambda: outcomes.append(manager.request_approval_sync(request))
    )
    waiter.start()
    code, _, err = governor(url, "approve", record.execution_id, "--as", "alice", "--reason", "go")
    waiter.join(10)
    assert code == 0, err
    assert outcomes == [ApprovalOutcome("approved", "alice", "go")]
