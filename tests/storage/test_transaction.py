"""The unit of work for one governed call, on every backend: all of it commits, or none of it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from governor.errors import RecordNotFound, StorageError
from governor.storage import (
    AuditRecord,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    SnapshotRecord,
    StorageBackend,
    Transaction,
    month_period,
)

NOW = 1_773_577_800.0  # 2026-03-15T12:30:00Z
PERIOD = month_period(NOW)
RATE = "rate:payments.transfer"
PER_USER = "rate:payments.transfer:user:7"
BUDGET = "org-1:user-7"


def governed_call(tx: Transaction) -> ExecutionRecord:
    """Everything one governed call writes: rate limit, budget hold, records."""
    tx.record(RATE)
    tx.reserve(BUDGET, 1_000_000, 300)
    saved = tx.save_execution(ExecutionRecord(function_name="transfer", inputs={"amount": 5}))
    tx.save_snapshot(SnapshotRecord(execution_id=saved.id, checkpoint="pre", state={"a": 1}))
    tx.save_event(EventRecord(event_type="execution.started", execution_id=saved.id))
    tx.append_audit_record(AuditRecord(action="call", decision="allow", execution_id=saved.id))
    return saved


def state(store: StorageBackend, now: float = NOW) -> tuple[int, int]:
    """(calls in RATE's window, reserved on BUDGET)."""
    with store.transaction(rate_limit_keys={RATE: 60}, budget_keys=[BUDGET], now=now) as tx:
        return tx.count(RATE), tx.facts(BUDGET, *PERIOD)["reserved"]


def test_a_unit_of_work_commits_everything_together(store: StorageBackend) -> None:
    with store.transaction(rate_limit_keys={RATE: 60}, budget_keys=[BUDGET], now=NOW) as tx:
        assert tx.count(RATE) == 0
        saved = governed_call(tx)
        assert tx.count(RATE) == 1
        assert tx.facts(BUDGET, *PERIOD) == {"spent": 0, "reserved": 1_000_000}
    assert store.get_execution(saved.id) == saved
    assert [s.checkpoint for s in store.list_snapshots(saved.id)] == ["pre"]
    assert [e.event_type for e in store.list_events(execution_id=saved.id)] == ["execution.started"]
    assert [r.execution_id for r in store.list_audit_records()] == [saved.id]
    assert state(store) == (1, 1_000_000)


def test_an_exception_rolls_back_every_part_of_the_unit(store: StorageBackend) -> None:
    with (
        pytest.raises(RuntimeError, match="policy engine crashed"),
        store.transaction(rate_limit_keys={RATE: 60}, budget_keys=[BUDGET], now=NOW) as tx,
    ):
        saved = governed_call(tx)
        raise RuntimeError("policy engine crashed")
    assert store.get_execution(saved.id) is None
    assert store.list_executions() == [] and store.list_events() == []
    assert store.list_snapshots(saved.id) == []
    assert store.list_audit_records() == []
    assert state(store) == (0, 0)
    # The chain did not advance: the next record is the first.
    assert store.append_audit_record(AuditRecord(action="call", decision="allow")).seq == 1


def test_rate_limit_keys_of_different_windows_share_one_transaction(
    store: StorageBackend,
) -> None:
    windows = {RATE: 10, PER_USER: 60}
    with store.transaction(rate_limit_keys=windows, now=NOW) as tx:
        tx.record(RATE)
        tx.record(PER_USER)
    for offset, expected in [(9.5, (1, 1)), (10, (0, 1)), (59.5, (0, 1)), (60, (0, 0))]:
        with store.transaction(rate_limit_keys=windows, now=NOW + offset) as tx:
            assert (tx.count(RATE), tx.count(PER_USER)) == expected, offset


def test_two_policies_decide_on_their_own_keys_in_one_transaction(
    store: StorageBackend,
) -> None:
    # RateLimitPolicy(max_calls=3, window_seconds=10) and one per user of 5 per 60 s.
    limits = {RATE: (3, 10), PER_USER: (5, 60)}
    windows = {key: window for key, (_, window) in limits.items()}
    admitted = []
    for second in range(12):
        with store.transaction(rate_limit_keys=windows, now=NOW + second) as tx:
            allowed = all(tx.count(key) < limit for key, (limit, _) in limits.items())
            if allowed:
                for key in limits:
                    tx.record(key)
            admitted.append(allowed)
    # 3 in the first 10 s, then the per-user limit of 5 per minute stops the rest.
    assert [s for s, ok in enumerate(admitted) if ok] == [0, 1, 2, 10, 11]


def test_the_transaction_clock_is_the_given_now(store: StorageBackend) -> None:
    with store.transaction(now=NOW) as tx:
        assert tx.now == NOW
        assert tx.now_utc == datetime(2026, 3, 15, 12, 30, tzinfo=UTC)
    with store.transaction(now=datetime(2026, 3, 15, 12, 30)) as tx:
        assert tx.now == NOW


def test_audit_records_appended_in_one_transaction_follow_each_other(
    store: StorageBackend,
) -> None:
    store.append_audit_record(AuditRecord(action="before", decision="allow"))
    with store.transaction() as tx:
        second = tx.append_audit_record(AuditRecord(action="a", decision="allow"))
        third = tx.append_audit_record(AuditRecord(action="b", decision="deny"))
    assert (second.seq, third.seq) == (2, 3) and third.prev_hash == second.hash
    assert store.list_audit_records()[1:] == [second, third]
    assert store.verify_audit_chain() is None


def test_a_failed_write_leaves_the_transaction_only_able_to_roll_back(
    store: StorageBackend,
) -> None:
    with (
        pytest.raises(StorageError, match="the whole transaction was rolled back"),
        store.transaction(rate_limit_keys={RATE: 60}, now=NOW) as tx,
    ):
        tx.record(RATE)
        saved = tx.save_execution(ExecutionRecord(function_name="f"))
        with pytest.raises(RecordNotFound, match="execution missing does not exist"):
            tx.save_event(EventRecord(event_type="x", execution_id="missing"))
        with pytest.raises(StorageError, match="failed earlier"):
            tx.append_audit_record(AuditRecord(action="call", decision="allow"))
        # Leaving the block normally after swallowing the error must not commit half of it.
    assert store.get_execution(saved.id) is None
    assert state(store) == (0, 0)


def test_argument_errors_do_not_spoil_the_transaction(store: StorageBackend) -> None:
    with store.transaction(budget_keys=[BUDGET], now=NOW) as tx:
        with pytest.raises(StorageError, match="whole number"):
            tx.reserve(BUDGET, 1.5, 60)  # type: ignore[arg-type]
        tx.reserve(BUDGET, 2, 60)
    assert state(store)[1] == 2


def test_the_stores_write_methods_refuse_to_run_inside_a_transaction(
    store: StorageBackend,
) -> None:
    with store.transaction(now=NOW) as tx:
        with pytest.raises(StorageError, match="inside store.transaction.*Write through"):
            store.save_execution(ExecutionRecord(function_name="f"))
        with pytest.raises(StorageError, match="inside store.transaction"):
            store.append_audit_record(AuditRecord(action="call", decision="allow"))
        with pytest.raises(StorageError, match="inside store.transaction"), store.transaction():
            pass
        with pytest.raises(StorageError, match="inside store.transaction"):
            store.save_records(**_final_records("e-nested"))  # type: ignore[arg-type]
        saved = tx.save_execution(ExecutionRecord(function_name="g"))
    assert [e.id for e in store.list_executions()] == [saved.id]
    store.save_execution(ExecutionRecord(function_name="h"))  # after the block, as usual


def test_windows_are_the_transaction(store: StorageBackend) -> None:
    with store.rate_limit_window([RATE], 60, NOW) as window:
        assert isinstance(window, Transaction)
    with store.budget_window([BUDGET], NOW) as budget:
        assert isinstance(budget, Transaction)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_limit_keys": [RATE]}, r"maps each key to its window in seconds, e\.g\."),
        ({"rate_limit_keys": {RATE: 0}}, f"window_seconds of rate-limit key '{RATE}'.*positive"),
        ({"rate_limit_keys": {RATE: "60"}}, "must be a number"),
        ({"rate_limit_keys": {"": 60}}, "non-empty strings"),
        ({"budget_keys": BUDGET}, "budget_keys takes a list of keys"),
        ({"now": float("nan")}, "now must be a datetime or a finite timestamp"),
        ({"now": "2026-03-15"}, "now must be a datetime or a finite timestamp"),
    ],
)
def test_transaction_arguments_are_checked(
    store: StorageBackend, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(StorageError, match=message), store.transaction(**kwargs):  # type: ignore[arg-type]
        pass


def test_a_key_of_the_other_kind_is_not_locked(store: StorageBackend) -> None:
    with store.transaction(rate_limit_keys={RATE: 60}, budget_keys=[BUDGET], now=NOW) as tx:
        with pytest.raises(StorageError, match=f"rate-limit key '{BUDGET}' is not locked"):
            tx.count(BUDGET)
        with pytest.raises(StorageError, match=f"budget key '{RATE}' is not locked"):
            tx.facts(RATE, *PERIOD)


def test_threads_running_units_of_work_admit_exactly_the_limit(store: StorageBackend) -> None:
    """count -> decide -> record -> save -> audit, 40 threads against a limit of 5."""
    barrier = threading.Barrier(40)
    outcomes: list[bool] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait()
            with store.transaction(rate_limit_keys={RATE: 60}, now=NOW) as tx:
                allowed = tx.count(RATE) < 5
                if allowed:
                    tx.record(RATE)
                saved = tx.save_execution(
                    ExecutionRecord(
                        function_name="f",
                        status=ExecutionStatus.RUNNING if allowed else ExecutionStatus.REJECTED,
                    )
                )
                tx.append_audit_record(
                    AuditRecord(
                        action="call",
                        decision="allow" if allowed else "deny",
                        execution_id=saved.id,
                    )
                )
            outcomes.append(allowed)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(outcomes) == 5
    assert len(store.list_executions(status="running", limit=None)) == 5
    records = store.list_audit_records(limit=None)
    assert [r.seq for r in records] == list(range(1, 41))
    assert sum(r.decision == "allow" for r in records) == 5
    assert store.verify_audit_chain() is None


# -- save_records: a call's final records in one batch -------------------------------------------


def _final_records(execution_id: str) -> dict[str, object]:
    return {
        "execution": ExecutionRecord(id=execution_id, function_name="transfer", inputs={"a": 1}),
        "snapshots": [
            SnapshotRecord(execution_id=execution_id, checkpoint=c, state={"c": c})
            for c in ("pre_execution", "post_execution")
        ],
        "events": [
            EventRecord(event_type=t, execution_id=execution_id, data={"t": t})
            for t in ("execution.started", "policy.evaluated", "execution.completed")
        ],
        "audit": AuditRecord(action="call", decision="allow", execution_id=execution_id),
    }


def test_save_records_stores_what_the_single_writes_store(store: StorageBackend) -> None:
    batch = _final_records("e-batch")
    with store.transaction() as tx:
        sealed = tx.save_records(**batch)  # type: ignore[arg-type]
    single = _final_records("e-single")
    with store.transaction() as tx:
        tx.save_execution(single["execution"])  # type: ignore[arg-type]
        for snapshot in single["snapshots"]:  # type: ignore[attr-defined]
            tx.save_snapshot(snapshot)
        for event in single["events"]:  # type: ignore[attr-defined]
            tx.save_event(event)
        tx.append_audit_record(single["audit"])  # type: ignore[arg-type]
    assert sealed is not None and sealed.seq == 1 and sealed.hash is not None
    for execution_id in ("e-batch", "e-single"):
        execution = store.get_execution(execution_id)
        assert execution is not None and execution.inputs == {"a": 1}
        snapshots = store.list_snapshots(execution_id)
        assert [(s.checkpoint, s.state) for s in snapshots] == [
            ("pre_execution", {"c": "pre_execution"}),
            ("post_execution", {"c": "post_execution"}),
        ]
        events = store.list_events(execution_id=execution_id)
        assert [e.data for e in events] == [
            {"t": t} for t in ("execution.started", "policy.evaluated", "execution.completed")
        ]
    assert [r.execution_id for r in store.list_audit_records()] == ["e-batch", "e-single"]
    assert store.verify_audit_chain() is None


def test_save_records_of_a_missing_execution_roll_the_unit_back(store: StorageBackend) -> None:
    batch = _final_records("e-missing")
    del batch["execution"]
    with pytest.raises(RecordNotFound, match="e-missing"), store.transaction() as tx:
        tx.save_records(**batch)  # type: ignore[arg-type]
    assert store.list_snapshots("e-missing") == []
    assert store.list_audit_records() == []


def test_save_records_returns_the_sealed_audit_record_and_readers_get_copies(
    store: StorageBackend,
) -> None:
    # The batch is handed over (the caller does not touch it again); what readers get back are
    # copies, whatever they do with them.
    batch = _final_records("e-copy")
    with store.transaction() as tx:
        sealed = tx.save_records(**batch)  # type: ignore[arg-type]
    assert sealed is not None and sealed.seq == 1 and sealed.hash is not None
    read = store.list_audit_records()[0]
    assert (read.id, read.hash, read.record) == (sealed.id, sealed.hash, {})
    read.record["changed"] = True
    stored = store.get_execution("e-copy")
    assert stored is not None and stored.inputs == {"a": 1}
    stored.inputs["a"] = 2
    assert store.list_audit_records()[0].record == {}
    again = store.get_execution("e-copy")
    assert again is not None and again.inputs == {"a": 1}
    assert store.verify_audit_chain() is None
    with store.transaction() as tx:
        assert tx.save_records() is None


def test_the_store_saves_a_batch_in_a_unit_of_its_own(store: StorageBackend) -> None:
    sealed = store.save_records(**_final_records("e-own"))  # type: ignore[arg-type]
    assert sealed is not None and sealed.seq == 1
    assert [s.checkpoint for s in store.list_snapshots("e-own")] == [
        "pre_execution",
        "post_execution",
    ]
    assert len(store.list_events(execution_id="e-own")) == 3
    # a batch that cannot be stored whole is not stored at all
    orphan = _final_records("e-orphan")
    del orphan["execution"]
    with pytest.raises(RecordNotFound, match="e-orphan"):
        store.save_records(**orphan)  # type: ignore[arg-type]
    twice = _final_records("e-twice")
    twice["events"] = [twice["events"][0], twice["events"][0]]  # type: ignore[index]
    with pytest.raises(StorageError, match="cannot save event"):
        store.save_records(**twice)  # type: ignore[arg-type]
    assert store.get_execution("e-twice") is None
    assert store.list_snapshots("e-orphan") == [] and len(store.list_audit_records()) == 1
    assert store.verify_audit_chain() is None
