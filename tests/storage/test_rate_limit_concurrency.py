"""The concurrency proof: a limit of 10 calls per 60 s admits exactly 10 of 200 concurrent callers,
from threads of one process and from 4 processes sharing one SQLite file (or one PostgreSQL).

The admission is the decorator's: lock the key, count, decide, record, commit. The Rego
evaluation slots in where `count < MAX_CALLS` is decided.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from governor.storage import AuditRecord, SQLStorage, StorageBackend
from tests.storage.conftest import make_store, postgres_url, run_in_processes, sqlite_url

MAX_CALLS = 10
WINDOW_SECONDS = 60
CALLERS = 200
PROCESSES = 4


def admit(store: StorageBackend, key: str) -> bool:
    """One governed call's rate-limit decision, exactly as the decorator makes it."""
    with store.rate_limit_window([key], WINDOW_SECONDS, time.time()) as window:
        if window.count(key) < MAX_CALLS:
            window.record(key)
            return True
    return False


def call_concurrently(store: StorageBackend, key: str, callers: int) -> tuple[int, list[str]]:
    """Run `callers` threads released together; return how many were admitted, and errors."""
    barrier = threading.Barrier(callers)
    admitted: list[bool] = []
    errors: list[str] = []

    def call() -> None:
        try:
            barrier.wait()
            allowed = admit(store, key)
            store.append_audit_record(
                AuditRecord(
                    action="function:tests.limited",
                    decision="allow" if allowed else "deny",
                    actor=f"pid-{os.getpid()}",
                    reasons=[] if allowed else ["rate_limit.exceeded"],
                )
            )
            admitted.append(allowed)
        except BaseException as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(admitted), errors


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_200_threads_against_a_limit_of_10_admit_exactly_10(kind: str, tmp_path: Path) -> None:
    store = make_store(kind, tmp_path)
    try:
        admitted, errors = call_concurrently(store, "rate:tests.limited", CALLERS)
        assert errors == []
        assert admitted == MAX_CALLS
        assert not admit(store, "rate:tests.limited")
        assert len(store.list_audit_records(limit=None)) == CALLERS + 0
        assert store.verify_audit_chain() is None
    finally:
        store.clear()
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_4_processes_sharing_one_database_admit_exactly_10_in_total(
    kind: str, tmp_path: Path
) -> None:
    if kind == "sqlite":
        url = sqlite_url(tmp_path)  # not created yet: the workers create it
    else:
        url = postgres_url()
        SQLStorage(url).clear()
    admitted, errors = run_in_processes(
        call_concurrently, url, "rate:tests.limited", CALLERS, PROCESSES
    )
    assert errors == []
    assert admitted == MAX_CALLS

    store = SQLStorage(url)
    try:
        assert not admit(store, "rate:tests.limited")
        records = store.list_audit_records(limit=None)
        assert [r.seq for r in records] == list(range(1, CALLERS + 1))
        assert sum(r.decision == "allow" for r in records) == MAX_CALLS
        assert len({r.actor for r in records}) == PROCESSES
        assert store.verify_audit_chain() is None
    finally:
        store.clear()
        store.close()
