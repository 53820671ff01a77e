"""What only `InMemoryStorage` does: its bounds and their effect on the chain and the windows."""

from __future__ import annotations

import pytest

from governor.errors import StorageError
from governor.storage import (
    AuditRecord,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    InMemoryStorage,
    SnapshotRecord,
)
from governor.storage._window import PRUNE_GRACE_SECONDS, SWEEP_EVERY


def test_oldest_executions_are_evicted_with_their_snapshots_and_events() -> None:
    store = InMemoryStorage(max_executions=3)
    ids = []
    for i in range(5):
        saved = store.save_execution(ExecutionRecord(function_name=f"f{i}"))
        store.save_snapshot(SnapshotRecord(execution_id=saved.id, checkpoint="pre"))
        store.save_event(EventRecord(event_type="execution.started", execution_id=saved.id))
        ids.append(saved.id)
    assert [r.id for r in store.list_executions()] == ids[:1:-1]
    assert store.get_execution(ids[0]) is None
    assert store.list_snapshots(ids[0]) == [] and store.list_events(execution_id=ids[0]) == []
    assert len(store.list_events()) == 3


def test_an_evicted_parent_leaves_its_children_without_a_parent() -> None:
    store = InMemoryStorage(max_executions=3)
    parent = store.save_execution(ExecutionRecord(function_name="plan"))
    child = store.save_execution(ExecutionRecord(function_name="step", parent_id=parent.id))
    moved = store.save_execution(ExecutionRecord(function_name="other", parent_id=parent.id))
    store.update_execution(moved.id, parent_id=None)
    store.save_execution(ExecutionRecord(function_name="next"))  # evicts the parent
    assert store.get_execution(parent.id) is None
    orphan = store.get_execution(child.id)
    assert orphan is not None and orphan.parent_id is None
    store.save_execution(ExecutionRecord(function_name="last"))  # evicts the child
    assert store.get_execution(child.id) is None
    assert [e.parent_id for e in store.list_executions()] == [None, None, None]


def test_updating_an_execution_does_not_reset_its_age() -> None:
    store = InMemoryStorage(max_executions=2)
    first = store.save_execution(ExecutionRecord(function_name="first"))
    second = store.save_execution(ExecutionRecord(function_name="second"))
    store.save_execution(
        ExecutionRecord(id=first.id, function_name="first", status=ExecutionStatus.RUNNING)
    )
    store.save_execution(ExecutionRecord(function_name="third"))
    assert store.get_execution(first.id) is None
    assert store.get_execution(second.id) is not None


def test_oldest_events_are_dropped_past_max_events() -> None:
    store = InMemoryStorage(max_events=2)
    events = [store.save_event(EventRecord(event_type=f"custom.{i}")) for i in range(4)]
    assert store.list_events() == events[2:]


def test_the_chain_verifies_from_the_oldest_record_kept() -> None:
    store = InMemoryStorage(max_audit_records=3)
    for i in range(5):
        store.append_audit_record(AuditRecord(action="call", decision="allow", actor=f"u{i}"))
    records = store.list_audit_records()
    assert [r.seq for r in records] == [3, 4, 5]
    assert store.verify_audit_chain() is None


def test_unbounded_when_asked() -> None:
    store = InMemoryStorage(max_executions=None, max_events=None, max_audit_records=None)
    for _ in range(50):
        store.save_execution(ExecutionRecord(function_name="f"))
    assert len(store.list_executions(limit=None)) == 50


def test_bounds_must_be_positive() -> None:
    with pytest.raises(StorageError, match="max_executions must be a positive number"):
        InMemoryStorage(max_executions=0)


def test_idle_rate_limit_keys_are_forgotten() -> None:
    store = InMemoryStorage()
    old = 1_000_000.0
    for i in range(20):
        with store.rate_limit_window([f"user:{i}"], 60, old) as window:
            window.record(f"user:{i}")
    for _ in range(SWEEP_EVERY - 20):
        with store.rate_limit_window(["busy"], 60, old) as window:
            window.count("busy")
    with store.rate_limit_window(["fresh"], 60, old + 60 + PRUNE_GRACE_SECONDS + 1) as window:
        window.record("fresh")
    assert list(store._calls) == ["fresh"] and list(store._clocks) == ["fresh"]
