"""The `StorageBackend` contract, run on every backend (memory, SQLite file, PostgreSQL if set)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import pytest

from governor.errors import NotJSONSafe, RecordNotFound, StorageError
from governor.storage import (
    AuditRecord,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    SnapshotRecord,
    StorageBackend,
)


class Client:
    """An argument that is not JSON (an SDK client, a `self`)."""


class Kind(str, Enum):  # noqa: UP042 - the 0.2.0 shape on purpose
    """Like 0.2.0's `EventType(str, Enum)`, whose str() is "Kind.STARTED", not the value."""

    STARTED = "execution.started"


def execution(name: str = "transfer", **fields: object) -> ExecutionRecord:
    values: dict[str, object] = {
        "function_module": "payments",
        "function_qualname": f"Agent.{name}",
        "inputs": {"args": [100, "ACC1"], "kwargs": {"memo": "rent"}},
    }
    values.update(fields)
    return ExecutionRecord(function_name=name, **values)  # type: ignore[arg-type]


# -- executions ------------------------------------------------------------------------------


def test_saved_execution_round_trips_every_field(store: StorageBackend) -> None:
    started = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    parent = store.save_execution(execution("plan"))
    record = execution(
        status=ExecutionStatus.COMPLETED,
        outputs={"ok": True, "amount": 100.5, "big": 10**30, "items": [1, "two", None]},
        error=None,
        error_type=None,
        started_at=started,
        completed_at=started + timedelta(milliseconds=12),
        duration_ms=12,
        metadata={"user_id": "u1", "tags": ["a"]},
        decision="allow",
        policy_revision="rev-7",
        parent_id=parent.id,
    )
    saved = store.save_execution(record)
    loaded = store.get_execution(record.id)
    assert loaded == saved
    assert loaded is not None
    assert loaded.outputs == {"ok": True, "amount": 100.5, "big": 10**30, "items": [1, "two", None]}
    assert loaded.inputs == {"args": [100, "ACC1"], "kwargs": {"memo": "rent"}}
    assert loaded.started_at == started
    assert loaded.duration_ms == 12.0 and isinstance(loaded.duration_ms, float)
    assert loaded.status is ExecutionStatus.COMPLETED
    assert loaded.parent_id == parent.id
    assert loaded.created_at is not None and loaded.created_at.tzinfo is not None


def test_missing_execution_is_none(store: StorageBackend) -> None:
    assert store.get_execution("nope") is None


def test_naive_datetimes_are_taken_as_utc(store: StorageBackend) -> None:
    saved = store.save_execution(execution(started_at=datetime(2025, 1, 1, 12, 0, 0)))
    loaded = store.get_execution(saved.id)
    assert loaded is not None
    assert loaded.started_at == datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_tuples_are_stored_as_lists_so_backends_agree(store: StorageBackend) -> None:
    saved = store.save_execution(execution(outputs=(1, (2, 3))))
    loaded = store.get_execution(saved.id)
    assert saved.outputs == [1, [2, 3]]
    assert loaded is not None and loaded.outputs == [1, [2, 3]]


def test_save_is_an_upsert_that_keeps_created_at(store: StorageBackend) -> None:
    first = store.save_execution(execution())
    again = store.save_execution(
        ExecutionRecord(id=first.id, function_name="transfer", status=ExecutionStatus.RUNNING)
    )
    assert again.created_at == first.created_at
    loaded = store.get_execution(first.id)
    assert loaded is not None
    assert loaded.status is ExecutionStatus.RUNNING
    assert loaded.inputs == {}
    assert loaded.created_at == first.created_at
    assert len(store.list_executions()) == 1


def test_records_are_copies_not_live_references(store: StorageBackend) -> None:
    record = execution()
    store.save_execution(record)
    record.inputs["kwargs"]["memo"] = "changed after saving"
    loaded = store.get_execution(record.id)
    assert loaded is not None
    loaded.inputs["kwargs"]["memo"] = "changed after loading"
    again = store.get_execution(record.id)
    assert again is not None and again.inputs["kwargs"]["memo"] == "rent"


def test_update_changes_only_the_given_fields(store: StorageBackend) -> None:
    saved = store.save_execution(execution())
    updated = store.update_execution(
        saved.id, status="failed", error="boom", error_type="ValueError", metadata={"k": 1}
    )
    assert updated.status is ExecutionStatus.FAILED
    assert (updated.error, updated.error_type, updated.metadata) == ("boom", "ValueError", {"k": 1})
    assert updated.inputs == saved.inputs
    assert updated.created_at == saved.created_at
    assert updated.updated_at is not None and saved.updated_at is not None
    assert updated.updated_at >= saved.updated_at
    assert store.get_execution(saved.id) == updated


def test_update_of_a_missing_execution_raises_record_not_found(store: StorageBackend) -> None:
    with pytest.raises(RecordNotFound, match="execution nope"):
        store.update_execution("nope", status="running")


def test_update_rejects_unknown_fields_by_name(store: StorageBackend) -> None:
    saved = store.save_execution(execution())
    with pytest.raises(StorageError, match="unknown field.*colour"):
        store.update_execution(saved.id, colour="red")


def test_unknown_status_is_rejected_with_the_valid_values(store: StorageBackend) -> None:
    with pytest.raises(StorageError, match="'done'.*awaiting_approval"):
        store.save_execution(execution(status="done"))


def test_list_filters_by_status_and_function_newest_first(store: StorageBackend) -> None:
    made = []
    for i in range(6):
        name = "transfer" if i % 2 == 0 else "refund"
        status = ExecutionStatus.COMPLETED if i < 4 else ExecutionStatus.FAILED
        made.append(store.save_execution(execution(name, status=status)))
    ids = [r.id for r in made]

    assert [r.id for r in store.list_executions()] == ids[::-1]
    assert [r.id for r in store.list_executions(function_name="transfer")] == [
        ids[4],
        ids[2],
        ids[0],
    ]
    assert [r.id for r in store.list_executions(status="failed")] == [ids[5], ids[4]]
    assert [
        r.id
        for r in store.list_executions(status=ExecutionStatus.COMPLETED, function_name="refund")
    ] == [ids[3], ids[1]]
    assert [r.id for r in store.list_executions(limit=2, offset=1)] == [ids[4], ids[3]]
    assert store.list_executions(limit=0) == []
    assert len(store.list_executions(limit=None)) == 6


def test_claim_moves_status_once(store: StorageBackend) -> None:
    saved = store.save_execution(execution(status=ExecutionStatus.APPROVED))
    assert store.claim_execution(saved.id, "approved", ExecutionStatus.RUNNING) is True
    assert store.claim_execution(saved.id, "approved", ExecutionStatus.RUNNING) is False
    loaded = store.get_execution(saved.id)
    assert loaded is not None and loaded.status is ExecutionStatus.RUNNING
    assert store.claim_execution("nope", "approved", "running") is False


def test_claim_has_exactly_one_winner_among_20_racing_threads(store: StorageBackend) -> None:
    saved = store.save_execution(execution(status=ExecutionStatus.APPROVED))
    barrier = threading.Barrier(20)
    wins: list[bool] = []
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            barrier.wait()
            wins.append(store.claim_execution(saved.id, "approved", "running"))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=claim) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert wins.count(True) == 1 and wins.count(False) == 19


def test_delete_removes_snapshots_and_events_but_keeps_audit(store: StorageBackend) -> None:
    saved = store.save_execution(execution())
    child = store.save_execution(execution("step", parent_id=saved.id))
    store.save_snapshot(SnapshotRecord(execution_id=saved.id, checkpoint="pre", state={"a": 1}))
    store.save_event(EventRecord(event_type="execution.started", execution_id=saved.id))
    store.append_audit_record(AuditRecord(action="call", decision="allow", execution_id=saved.id))
    kept = store.save_execution(execution("other"))
    store.save_event(EventRecord(event_type="execution.started", execution_id=kept.id))

    assert store.delete_execution(saved.id) is True
    assert store.get_execution(saved.id) is None
    assert store.list_snapshots(saved.id) == []
    assert store.list_events(execution_id=saved.id) == []
    assert len(store.list_events()) == 1
    assert [a.execution_id for a in store.list_audit_records()] == [saved.id]
    orphan = store.get_execution(child.id)
    assert orphan is not None and orphan.parent_id is None
    assert store.delete_execution(saved.id) is False
    assert store.verify_audit_chain() is None


# -- snapshots and events -------------------------------------------------------------------


def test_snapshots_round_trip_oldest_first(store: StorageBackend) -> None:
    saved = store.save_execution(execution())
    t0 = datetime(2025, 5, 1, tzinfo=UTC)
    later = store.save_snapshot(
        SnapshotRecord(
            execution_id=saved.id, checkpoint="post", state={"r": 2}, captured_at=t0 + timedelta(1)
        )
    )
    earlier = store.save_snapshot(
        SnapshotRecord(execution_id=saved.id, checkpoint="pre", state={"r": 1}, captured_at=t0)
    )
    assert store.list_snapshots(saved.id) == [earlier, later]
    assert store.get_snapshot(later.id) == later
    assert store.get_snapshot("nope") is None


def test_snapshot_of_a_missing_execution_raises_record_not_found(store: StorageBackend) -> None:
    with pytest.raises(RecordNotFound, match="execution nope does not exist"):
        store.save_snapshot(SnapshotRecord(execution_id="nope", checkpoint="pre"))


def test_events_are_persisted_and_filtered(store: StorageBackend) -> None:
    a = store.save_execution(execution())
    b = store.save_execution(execution())
    t0 = datetime(2025, 5, 1, tzinfo=UTC)
    e1 = store.save_event(
        EventRecord(event_type=Kind.STARTED, execution_id=a.id, data={"n": 1}, timestamp=t0)
    )
    e2 = store.save_event(
        EventRecord(
            event_type="policy.violated",
            execution_id=a.id,
            data={"policy_name": "limit"},
            timestamp=t0 + timedelta(seconds=1),
        )
    )
    e3 = store.save_event(
        EventRecord(
            event_type="execution.started", execution_id=b.id, timestamp=t0 + timedelta(seconds=2)
        )
    )
    e4 = store.save_event(
        EventRecord(event_type="custom", data={"free": True}, timestamp=t0 + timedelta(seconds=3))
    )
    assert e1.event_type == "execution.started"
    assert store.list_events() == [e1, e2, e3, e4]
    assert store.list_events(execution_id=a.id) == [e1, e2]
    assert store.list_events(event_type="execution.started") == [e1, e3]
    assert store.list_events(execution_id=a.id, event_type="policy.violated") == [e2]
    assert store.list_events(limit=2, offset=1) == [e2, e3]


def test_event_of_a_missing_execution_raises_record_not_found(store: StorageBackend) -> None:
    with pytest.raises(RecordNotFound, match="execution nope does not exist"):
        store.save_event(EventRecord(event_type="custom", execution_id="nope"))


# -- values that are not JSON ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (
            lambda eid: execution(inputs={"args": [1], "kwargs": {"client": Client()}}),
            "execution.inputs.kwargs.client",
        ),
        (lambda eid: execution(outputs=[1, float("nan")]), r"execution.outputs\[1\]"),
        (lambda eid: execution(metadata={"ids": {1: "a"}}), "execution.metadata.ids"),
        (
            lambda eid: SnapshotRecord(
                execution_id=eid, checkpoint="pre", state={"self": Client()}
            ),
            "snapshot.state.self",
        ),
        (
            lambda eid: EventRecord(event_type="custom", execution_id=eid, data={"x": {1, 2}}),
            "event.data.x",
        ),
        (
            lambda eid: AuditRecord(action="a", decision="allow", record={"when": datetime.now()}),
            "audit_record.record.when",
        ),
    ],
)
def test_values_that_are_not_json_are_rejected_naming_the_field(
    store: StorageBackend, make: Callable[[str], object], field: str
) -> None:
    saved = store.save_execution(execution())
    record = make(saved.id)
    save: Callable[[Any], object] = {  # type: ignore[assignment]
        ExecutionRecord: store.save_execution,
        SnapshotRecord: store.save_snapshot,
        EventRecord: store.save_event,
        AuditRecord: store.append_audit_record,
    }[type(record)]
    with pytest.raises(NotJSONSafe, match=field):
        save(record)
    assert len(store.list_executions()) == 1
    assert store.list_audit_records() == []


def test_update_with_a_value_that_is_not_json_names_the_field(store: StorageBackend) -> None:
    saved = store.save_execution(execution())
    with pytest.raises(NotJSONSafe, match=r"execution.outputs.client holds a .*Client object"):
        store.update_execution(saved.id, outputs={"client": Client()})


# -- audit -----------------------------------------------------------------------------------


def test_audit_records_form_a_verifiable_chain(store: StorageBackend) -> None:
    saved = store.save_execution(execution())
    appended = [
        store.append_audit_record(
            AuditRecord(
                action="function:payments.transfer",
                decision=decision,
                execution_id=saved.id,
                actor="alice",
                reasons=[f"rate_limit.exceeded:{i}"] if decision == "deny" else [],
                policy_revision="rev-1",
                duration_ms=1.5,
                record={"args": {"amount": 100, "memo": "***"}, "big": 10**30, "f": 0.1},
            )
        )
        for i, decision in enumerate(["allow", "deny", "allow"])
    ]
    assert [a.seq for a in appended] == [1, 2, 3]
    assert appended[0].prev_hash == "0" * 64
    assert appended[1].prev_hash == appended[0].hash
    assert appended[2].prev_hash == appended[1].hash
    assert store.list_audit_records() == appended
    assert store.verify_audit_chain() is None


def test_empty_audit_chain_verifies(store: StorageBackend) -> None:
    assert store.verify_audit_chain() is None


def test_audit_records_are_filtered_by_execution_actor_and_time(store: StorageBackend) -> None:
    t0 = datetime(2025, 6, 1, tzinfo=UTC)
    rows = [
        store.append_audit_record(
            AuditRecord(
                action="call",
                decision="allow",
                execution_id=eid,
                actor=actor,
                timestamp=t0 + timedelta(minutes=i),
            )
        )
        for i, (eid, actor) in enumerate([("e1", "alice"), ("e2", "bob"), ("e1", "bob")])
    ]
    assert store.list_audit_records(execution_id="e1") == [rows[0], rows[2]]
    assert store.list_audit_records(actor="bob") == [rows[1], rows[2]]
    assert store.list_audit_records(since=t0 + timedelta(minutes=1)) == rows[1:]
    assert store.list_audit_records(until=t0 + timedelta(minutes=1)) == rows[:1]
    assert store.list_audit_records(limit=1, offset=1) == [rows[1]]


def test_redaction_erases_the_body_and_the_chain_still_verifies(store: StorageBackend) -> None:
    for eid in ["e1", "e2", "e1"]:
        store.append_audit_record(
            AuditRecord(
                action="call",
                decision="allow",
                execution_id=eid,
                actor="alice",
                reasons=["ok"],
                record={"ssn": "123-45-6789"},
            )
        )
    assert store.redact_audit_records(execution_id="e1") == 2
    assert store.redact_audit_records(execution_id="e1") == 0
    records = store.list_audit_records()
    assert [r.actor for r in records] == [None, "alice", None]
    assert records[0].record == {"redacted": True} and records[0].reasons == []
    assert records[0].redacted_at is not None and records[1].redacted_at is None
    assert "123-45-6789" not in repr(records[0])
    assert store.verify_audit_chain() is None
    assert store.redact_audit_records(actor="alice") == 1
    assert store.verify_audit_chain() is None


def test_redaction_needs_a_filter(store: StorageBackend) -> None:
    with pytest.raises(StorageError, match="execution_id or actor"):
        store.redact_audit_records()


def test_concurrent_appends_keep_one_linear_chain(store: StorageBackend) -> None:
    barrier = threading.Barrier(16)
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(10):
                store.append_audit_record(
                    AuditRecord(action="call", decision="allow", actor=f"w{worker}-{i}")
                )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    records = store.list_audit_records(limit=None)
    assert [r.seq for r in records] == list(range(1, 161))
    assert store.verify_audit_chain() is None


# -- rate-limit windows ---------------------------------------------------------------------


def test_window_counts_what_was_recorded_and_commits(store: StorageBackend) -> None:
    now = 1_000_000.0
    with store.rate_limit_window(["k"], 60, now) as window:
        assert window.count("k") == 0
        window.record("k")
        window.record("k")
        assert window.count("k") == 2
    with store.rate_limit_window(["k"], 60, now + 1) as window:
        assert window.count("k") == 2


def test_calls_leave_the_window_after_window_seconds(store: StorageBackend) -> None:
    now = 1_000_000.0
    with store.rate_limit_window(["k"], 60, now) as window:
        window.record("k")
    with store.rate_limit_window(["k"], 60, now + 59.5) as window:
        assert window.count("k") == 1
    with store.rate_limit_window(["k"], 60, now + 60) as window:
        assert window.count("k") == 0


def test_an_exception_in_the_block_records_nothing(store: StorageBackend) -> None:
    now = 1_000_000.0
    with (
        pytest.raises(RuntimeError, match="engine down"),
        store.rate_limit_window(["k"], 60, now) as window,
    ):
        window.record("k")
        raise RuntimeError("engine down")
    with store.rate_limit_window(["k"], 60, now) as window:
        assert window.count("k") == 0


def test_keys_are_counted_separately_and_locked_together(store: StorageBackend) -> None:
    now = 1_000_000.0
    with store.rate_limit_window(["user:alice", "global"], 60, now) as window:
        window.record("user:alice")
        window.record("global")
    with store.rate_limit_window(["global", "user:bob"], 60, now) as window:
        window.record("global")
        assert (window.count("global"), window.count("user:bob")) == (2, 0)


def test_window_refuses_keys_it_did_not_lock_and_use_after_exit(store: StorageBackend) -> None:
    with (
        store.rate_limit_window(["a"], 60, 0.0) as window,
        pytest.raises(StorageError, match="'b' is not locked"),
    ):
        window.count("b")
    with pytest.raises(StorageError, match="closed"):
        window.record("a")


@pytest.mark.parametrize(
    ("keys", "window_seconds", "message"),
    [
        ("k", 60, "list of keys"),
        ([], 60, "at least one key"),
        ([""], 60, "non-empty strings"),
        (["k" * 2000], 60, "longer than 1024"),
        (["k"], 0, "positive"),
        (["k"], float("inf"), "positive"),
    ],
)
def test_window_arguments_are_checked(
    store: StorageBackend, keys: object, window_seconds: float, message: str
) -> None:
    with (
        pytest.raises(StorageError, match=message),
        store.rate_limit_window(keys, window_seconds, 0.0),  # type: ignore[arg-type]
    ):
        pass


def test_clear_empties_everything(store: StorageBackend) -> None:
    saved = store.save_execution(execution())
    store.save_event(EventRecord(event_type="custom", execution_id=saved.id))
    store.append_audit_record(AuditRecord(action="call", decision="allow"))
    with store.rate_limit_window(["k"], 60, 0.0) as window:
        window.record("k")
    store.clear()
    assert store.list_executions() == [] and store.list_events() == []
    assert store.list_audit_records() == []
    with store.rate_limit_window(["k"], 60, 0.0) as window:
        assert window.count("k") == 0
    assert store.append_audit_record(AuditRecord(action="call", decision="allow")).seq == 1


def test_a_key_clock_never_runs_backwards(store: StorageBackend) -> None:
    # A caller that read its clock at 150 but got the lock after a caller at 170 acts at 170:
    # the calls the later caller saw leave the window stay gone, and its own call is at 170.
    with store.rate_limit_window(["k"], 60, 100.0) as window:
        window.record("k")
    with store.rate_limit_window(["k"], 60, 170.0) as window:
        assert window.count("k") == 0
    with store.rate_limit_window(["k"], 60, 150.0) as window:
        assert window.count("k") == 0
        window.record("k")
    with store.rate_limit_window(["k"], 60, 229.0) as window:
        assert window.count("k") == 1
    with store.rate_limit_window(["k"], 60, 230.0) as window:
        assert window.count("k") == 0


def test_a_high_limit_counts_every_call_in_the_window(store: StorageBackend) -> None:
    start = 1_000_000.0
    for i in range(300):  # one call every 1/8 s (exact in binary floating point)
        with store.rate_limit_window(["k"], 60, start + i * 0.125) as window:
            window.record("k")
    with store.rate_limit_window(["k"], 60, start + 40) as window:
        assert window.count("k") == 300
    with store.rate_limit_window(["k"], 60, start + 60 + 18.7) as window:
        assert window.count("k") == 150  # the calls at 18.75 s and later
