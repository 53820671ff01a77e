"""`governor.executor`: exact rate limits under concurrency (one event loop, 200 threads, four
processes on one SQLite file), argument binding, redaction, and exactly-once approval claims."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

from governor import (
    ApprovalOutcome,
    ApprovalPending,
    ApprovalPolicy,
    ApprovalRequest,
    ExecutionStatus,
    RateLimitExceeded,
    RateLimitPolicy,
    SQLStorage,
    govern,
)
from governor.executor import _Binder, _redact_arguments, _RedactionError
from governor.storage import StorageBackend
from tests.storage.conftest import sqlite_url

MAX_CALLS = 10
CALLERS = 200
PROCESSES = 4


def limited(store: StorageBackend) -> Any:
    @govern(
        policies=[RateLimitPolicy(name="api", max_calls=MAX_CALLS, window_seconds=60)],
        storage=store,
        capture_state=False,
    )
    def call(i: int) -> int:
        return i

    return call


def test_200_concurrent_async_calls_admit_exactly_10(store: StorageBackend) -> None:
    ran: list[int] = []

    @govern(
        policies=[RateLimitPolicy(name="api", max_calls=MAX_CALLS, window_seconds=60)],
        storage=store,
        capture_state=False,
    )
    async def call(i: int) -> int:
        ran.append(i)
        return i

    async def one(i: int) -> bool:
        try:
            await call(i)
            return True
        except RateLimitExceeded:
            return False

    async def main() -> list[bool]:
        return list(await asyncio.gather(*(one(i) for i in range(CALLERS))))

    assert sum(asyncio.run(main())) == MAX_CALLS
    assert len(ran) == MAX_CALLS
    audits = store.list_audit_records(limit=None)
    assert len(audits) == CALLERS and sum(a.decision == "allow" for a in audits) == MAX_CALLS
    assert store.verify_audit_chain() is None


def call_from_threads(call: Any, callers: int) -> tuple[int, list[str]]:
    barrier = threading.Barrier(callers)
    admitted: list[bool] = []
    errors: list[str] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            try:
                call(i)
                admitted.append(True)
            except RateLimitExceeded:
                admitted.append(False)
        except BaseException as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(admitted), errors


def test_200_threads_calling_a_sync_function_admit_exactly_10(sqlite: SQLStorage) -> None:
    admitted, errors = call_from_threads(limited(sqlite), CALLERS)
    assert errors == [] and admitted == MAX_CALLS
    assert len(sqlite.list_audit_records(limit=None)) == CALLERS


def _process(url: str, callers: int, start: Any, results: Any) -> None:
    """A worker process: its own store on the shared file, `callers` threads."""
    try:
        store = SQLStorage(url)
        call = limited(store)
        start.wait()
        results.put(call_from_threads(call, callers))
        store.close()
    except BaseException as error:
        results.put((0, [repr(error)]))


def test_4_processes_sharing_one_sqlite_file_admit_exactly_10(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    SQLStorage(url).close()  # the schema exists before the workers start
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(target=_process, args=(url, CALLERS // PROCESSES, start, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert [error for _, errors in outcomes for error in errors] == []
    assert sum(admitted for admitted, _ in outcomes) == MAX_CALLS
    store = SQLStorage(url)
    try:
        audits = store.list_audit_records(limit=None)
        assert len(audits) == CALLERS and sum(a.decision == "allow" for a in audits) == MAX_CALLS
        assert store.verify_audit_chain() is None
    finally:
        store.close()


def test_binding_maps_positional_keyword_default_and_variadic_arguments() -> None:
    def f(a: int, b: int = 2, *rest: int, c: int, **extra: Any) -> None: ...

    bound = _Binder(f).bind((1, 5, 7, 8), {"c": 3, "token": "t"})
    assert bound.named == {"a": 1, "b": 5, "rest": (7, 8), "c": 3, "token": "t"}
    plain = {"a": 1, "b": 5, "rest": [7, 8], "c": 3, "token": "MASKED"}
    assert bound.inputs(plain) == {"args": [1, 5, 7, 8], "kwargs": {"c": 3, "token": "MASKED"}}
    assert bound.call_args(bound.named) == ((1, 5, 7, 8), {"c": 3, "token": "t"})

    def simple(a: int, b: int = 2) -> None: ...

    binder = _Binder(simple)
    assert binder.bind((1,), {}).named == {"a": 1, "b": 2}
    assert binder.bind((), {"b": 5, "a": 1}).named == {"a": 1, "b": 5}
    for args, kwargs in (((), {}), ((1, 2, 3), {}), ((1,), {"a": 1}), ((1,), {"c": 3})):
        with pytest.raises(TypeError):
            binder.bind(args, kwargs)

    class Agent:
        def act(self, x: int) -> None: ...

    agent = Agent()
    method = _Binder(Agent.act).bind((agent, 4), {})
    assert method.named == {"x": 4} and method.instance is agent
    assert method.call_args(method.named) == ((agent, 4), {})


def test_redactions_apply_to_named_positional_and_nested_text_and_fail_closed() -> None:
    def send(message: str, meta: dict[str, Any]) -> None: ...

    meta = {"note": "call 555"}
    bound = _Binder(send).bind(("hi ann@x.io", meta), {})
    redacted = _redact_arguments(
        bound,
        [
            {"path": "args.args.0", "start": 3, "end": 11, "kind": "email", "replacement": "[E]"},
            {"path": "args.meta.note", "start": 5, "end": 8, "kind": "p", "replacement": "#"},
        ],
    )
    assert redacted == {"message": "hi [E]", "meta": {"note": "call #"}}
    same_text_three_ways = [
        {"path": p, "start": 3, "end": 11, "kind": "email", "replacement": "[E]"}
        for p in ("args.message", "args.args.0", "args.kwargs.message")
    ]
    overlapping = [{"path": "args.message", "start": 0, "end": 5, "replacement": "[X]"}]
    assert _redact_arguments(bound, same_text_three_ways)["message"] == "hi [E]"
    assert _redact_arguments(bound, same_text_three_ways + overlapping)["message"] == "[X]"
    assert meta == {"note": "call 555"}  # the caller's object is not changed
    for path in ("raw_text", "args.missing", "args.meta"):
        with pytest.raises(_RedactionError):
            _redact_arguments(bound, [{"path": path, "start": 0, "end": 1, "replacement": ""}])


class ResumedElsewhere:
    """An approval manager whose approval is resumed by another worker before it answers."""

    def __init__(self) -> None:
        self.requests: list[ApprovalRequest] = []

    async def request_approval(self, request: ApprovalRequest) -> ApprovalOutcome:
        return self.request_approval_sync(request)

    def request_approval_sync(self, request: ApprovalRequest) -> ApprovalOutcome:
        self.requests.append(request)
        store = request.storage
        # stored, with its arguments, before the manager is asked
        assert "awaiting_approval" in [
            s.checkpoint for s in store.list_snapshots(request.execution_id)
        ]
        assert store.claim_execution(
            request.execution_id, ExecutionStatus.AWAITING_APPROVAL, ExecutionStatus.RUNNING
        )
        store.update_execution(request.execution_id, status=ExecutionStatus.COMPLETED)
        return ApprovalOutcome.pending()


def test_a_pending_execution_is_never_written_over_after_another_worker_resumed_it(
    store: StorageBackend,
) -> None:
    manager = ResumedElsewhere()

    @govern(
        policies=[ApprovalPolicy(approvers=["ops"])],
        approval_manager=manager,
        storage=store,
        capture_state=False,
    )
    def deploy(version: str) -> str:
        return version

    with pytest.raises(ApprovalPending) as caught:
        deploy("2.0")
    (request,) = manager.requests
    assert request.approvers == ["ops"] and request.arguments["args"] == ["2.0"]
    assert request.function is deploy.__original__  # type: ignore[attr-defined]
    execution = store.get_execution(caught.value.execution_id)
    assert execution is not None and execution.status is ExecutionStatus.COMPLETED
    (audit,) = store.list_audit_records()
    assert audit.record["outcome"] == "awaiting_approval"


def test_an_approval_another_worker_claimed_first_is_not_run_twice(
    store: StorageBackend,
) -> None:
    ran: list[str] = []

    class ApprovedButTaken(ResumedElsewhere):
        def request_approval_sync(self, request: ApprovalRequest) -> ApprovalOutcome:
            super().request_approval_sync(request)
            return ApprovalOutcome("approved", approver="alice")

    @govern(
        policies=[ApprovalPolicy(approvers=["ops"])],
        approval_manager=ApprovedButTaken(),
        storage=store,
    )
    def deploy(version: str) -> str:
        ran.append(version)
        return version

    with pytest.raises(ApprovalPending, match="another worker"):
        deploy("2.0")
    assert ran == []
