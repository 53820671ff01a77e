"""What only `SQLStorage` does: files, pragmas, tampering in the database, restarts, errors."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text

from governor.errors import ConfigurationError, StorageError
from governor.storage import (
    AuditRecord,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    SnapshotRecord,
    SQLStorage,
    UsageRecord,
)
from governor.storage._window import PRUNE_GRACE_SECONDS, SWEEP_EVERY
from governor.storage.models import BudgetDailyTotalRow, RateLimitCallRow, RateLimitKeyRow
from governor.storage.sql import CALLER_CHECKPOINT_PAGES, _Checkpointer, _checkpointer
from tests.storage.conftest import sqlite_url


def _audit_chain(store: SQLStorage, n: int = 5) -> list[AuditRecord]:
    return [
        store.append_audit_record(
            AuditRecord(
                action="function:payments.transfer",
                decision="allow",
                execution_id=f"e{i}",
                actor="alice",
                reasons=[],
                record={"amount": i},
            )
        )
        for i in range(n)
    ]


def _raw(store: SQLStorage, sql: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


# -- tamper detection ------------------------------------------------------------------------


def test_editing_a_decision_with_raw_sql_is_reported(sql_store: SQLStorage) -> None:
    records = _audit_chain(sql_store)
    _raw(sql_store, "UPDATE governor_audit_records SET decision = 'deny' WHERE seq = 3")
    broken = sql_store.verify_audit_chain()
    assert broken is not None and broken.id == records[2].id and broken.seq == 3


def test_editing_the_body_of_a_record_is_reported(sql_store: SQLStorage) -> None:
    records = _audit_chain(sql_store)
    _raw(
        sql_store,
        "UPDATE governor_audit_records SET record = :r WHERE seq = 2",
        r='{"amount": 1000000}',
    )
    broken = sql_store.verify_audit_chain()
    assert broken is not None and broken.id == records[1].id


def test_rewriting_a_record_and_its_hash_is_reported_at_the_next(sql_store: SQLStorage) -> None:
    records = _audit_chain(sql_store)
    _raw(
        sql_store,
        "UPDATE governor_audit_records SET hash = :h WHERE seq = 2",
        h="f" * 64,
    )
    broken = sql_store.verify_audit_chain()
    assert broken is not None and broken.id == records[1].id
    # Even a forger who recomputes seq 2's hash is caught at seq 3, whose prev_hash differs.


def test_deleting_a_record_from_the_middle_is_reported(sql_store: SQLStorage) -> None:
    records = _audit_chain(sql_store)
    _raw(sql_store, "DELETE FROM governor_audit_records WHERE seq = 3")
    broken = sql_store.verify_audit_chain()
    assert broken is not None and broken.id == records[3].id


def test_putting_data_back_into_a_redacted_record_is_reported(sql_store: SQLStorage) -> None:
    records = _audit_chain(sql_store, 3)
    assert sql_store.redact_audit_records(execution_id="e1") == 1
    assert sql_store.verify_audit_chain() is None
    _raw(sql_store, "UPDATE governor_audit_records SET actor = 'mallory' WHERE seq = 2")
    broken = sql_store.verify_audit_chain()
    assert broken is not None and broken.id == records[1].id


def test_verify_logs_why_the_chain_broke(
    sql_store: SQLStorage, caplog: pytest.LogCaptureFixture
) -> None:
    _audit_chain(sql_store, 2)
    _raw(sql_store, "UPDATE governor_audit_records SET action = 'x' WHERE seq = 1")
    with caplog.at_level("WARNING", logger="governor.storage.audit"):
        assert sql_store.verify_audit_chain() is not None
    assert "seq 1" in caplog.text and "altered" in caplog.text


# -- persistence and files -------------------------------------------------------------------


def test_a_new_store_on_the_same_file_sees_everything(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    first = SQLStorage(url)
    saved = first.save_execution(
        ExecutionRecord(function_name="transfer", status=ExecutionStatus.AWAITING_APPROVAL)
    )
    snapshot = first.save_snapshot(
        SnapshotRecord(execution_id=saved.id, checkpoint="pre_approval", state={"amount": 5})
    )
    event = first.save_event(EventRecord(event_type="approval.requested", execution_id=saved.id))
    audit = _audit_chain(first, 3)
    with first.rate_limit_window(["k"], 3600, 1_000_000.0) as window:
        window.record("k")
    first.close()

    second = SQLStorage(url)
    assert second.get_execution(saved.id) == saved
    assert second.list_snapshots(saved.id) == [snapshot]
    assert second.list_events(execution_id=saved.id) == [event]
    assert second.list_audit_records() == audit
    assert second.verify_audit_chain() is None
    assert second.append_audit_record(AuditRecord(action="call", decision="allow")).seq == 4
    with second.rate_limit_window(["k"], 3600, 1_000_001.0) as window:
        assert window.count("k") == 1
    assert second.claim_execution(saved.id, "awaiting_approval", "approved") is True
    second.close()


def test_default_url_is_a_sqlite_file_under_dot_governor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOVERNOR_DATABASE_URL", raising=False)
    store = SQLStorage()
    store.save_execution(ExecutionRecord(function_name="f"))
    store.close()
    assert (tmp_path / ".governor" / "governor.db").is_file()


def test_governor_database_url_is_used_when_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "elsewhere" / "state.db"
    monkeypatch.setenv("GOVERNOR_DATABASE_URL", f"sqlite:///{target}")
    monkeypatch.chdir(tmp_path)
    store = SQLStorage()
    store.save_execution(ExecutionRecord(function_name="f"))
    store.close()
    assert target.is_file()
    assert not (tmp_path / ".governor").exists()


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    store = SQLStorage(sqlite_url(tmp_path), busy_timeout=7)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 7000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    store.close()


def test_callers_checkpoint_the_wal_only_as_a_safety_net(tmp_path: Path) -> None:
    store = SQLStorage(sqlite_url(tmp_path))
    with store.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert pages == CALLER_CHECKPOINT_PAGES > 1000  # SQLite's default, now the background's job
    store.close()


def _wal_frames(path: Path) -> int:
    """Frames of the WAL not yet copied into the database (a PASSIVE checkpoint reports them)."""
    with sqlite3.connect(path) as probe:
        _, log_frames, checkpointed = probe.execute("PRAGMA wal_checkpoint(NOOP)").fetchone()
    return int(log_frames) - int(checkpointed)


def test_writes_are_checkpointed_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Checkpointer, "IDLE", 0.2)
    store = SQLStorage(sqlite_url(tmp_path))
    started = threading.active_count()
    for i in range(20):
        store.save_execution(ExecutionRecord(function_name="f", inputs={"i": i}))
    deadline = time.monotonic() + 10
    while not any(t.name == "governor-sqlite-checkpoint" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "no checkpoint thread"
        time.sleep(0.01)
    checkpointer = _checkpointer(str((tmp_path / "governor.db").resolve()))
    checkpointer.checkpoint()  # what the thread runs; never raises
    assert _wal_frames(tmp_path / "governor.db") == 0
    # the thread goes away once the writes stop, and comes back with the next one
    while any(t.name == "governor-sqlite-checkpoint" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the idle checkpoint thread did not exit"
        time.sleep(0.05)
    assert threading.active_count() <= started
    store.save_execution(ExecutionRecord(function_name="f"))
    assert any(t.name == "governor-sqlite-checkpoint" for t in threading.enumerate())
    store.close()


def test_a_checkpoint_that_fails_is_logged_and_retried_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = _Checkpointer(str(tmp_path / "no-such-dir" / "governor.db"))
    with caplog.at_level("DEBUG", logger="governor.storage.sql"):
        missing.checkpoint()
    assert "retried later" in caplog.text


def test_in_memory_sqlite_url_works_in_one_process() -> None:
    store = SQLStorage("sqlite://")
    saved = store.save_execution(ExecutionRecord(function_name="f"))
    assert store.get_execution(saved.id) == saved
    store.close()


def test_idle_rate_limit_keys_are_swept_with_their_calls(sql_store: SQLStorage) -> None:
    old = 1_000_000.0
    for i in range(20):
        with sql_store.rate_limit_window([f"user:{i}"], 60, old) as window:
            window.record(f"user:{i}")
    for _ in range(SWEEP_EVERY - 20):
        with sql_store.rate_limit_window(["busy"], 60, old) as window:
            window.count("busy")
    later = old + 60 + PRUNE_GRACE_SECONDS + 1
    with sql_store.rate_limit_window(["fresh"], 60, later) as window:  # the sweeping window
        window.record("fresh")
    with sql_store.engine.connect() as conn:
        assert conn.execute(select(RateLimitCallRow.key)).scalars().all() == ["fresh"]
        assert conn.execute(select(RateLimitKeyRow.key)).scalars().all() == ["fresh"]


def test_calls_that_leave_the_window_are_deleted_as_the_key_is_counted(
    sql_store: SQLStorage,
) -> None:
    for second in range(100):
        with sql_store.rate_limit_window(["k"], 10, 1_000_000.0 + second) as window:
            window.record("k")
    with sql_store.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(RateLimitCallRow)).scalar_one()
        stored = conn.execute(select(RateLimitKeyRow.count)).scalar_one()
    assert rows == stored == 10


# -- errors a person can act on ----------------------------------------------------------------


def test_a_locked_sqlite_file_gives_an_actionable_error(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    store = SQLStorage(url, busy_timeout=0.2)
    blocker = sqlite3.connect(tmp_path / "governor.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageError, match=r"stayed locked.*busy_timeout=0.2s"):
            store.save_execution(ExecutionRecord(function_name="f"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.save_execution(ExecutionRecord(function_name="f"))
    store.close()


def test_missing_tables_say_how_to_create_them(tmp_path: Path) -> None:
    store = SQLStorage(sqlite_url(tmp_path), migrate=False)
    with pytest.raises(StorageError, match="tables are missing.*migrate=True"):
        store.list_executions()
    store.close()


def test_an_unreachable_server_gives_an_actionable_error() -> None:
    with pytest.raises(StorageError, match="cannot use the database postgresql"):
        SQLStorage("postgresql+psycopg://governor:secret@127.0.0.1:9/governor")


def test_unsupported_databases_are_refused_up_front() -> None:
    with pytest.raises(ConfigurationError, match="sqlite and postgresql"):
        SQLStorage("mysql+pymysql://user:secret@localhost/db")


def test_error_messages_hide_the_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        SQLStorage("mysql+pymysql://user:secret@localhost/db")
    assert "secret" not in str(caught.value)


def test_a_duplicate_snapshot_id_is_an_error_not_a_silent_overwrite(sql_store: SQLStorage) -> None:
    saved = sql_store.save_execution(ExecutionRecord(function_name="f"))
    snapshot = sql_store.save_snapshot(SnapshotRecord(execution_id=saved.id, checkpoint="a"))
    with pytest.raises(StorageError, match=f"cannot save snapshot {snapshot.id}"):
        sql_store.save_snapshot(
            SnapshotRecord(id=snapshot.id, execution_id=saved.id, checkpoint="b")
        )
    assert sql_store.list_snapshots(saved.id) == [snapshot]


# -- units of work and the budget ledger -------------------------------------------------------


def test_a_governed_call_is_one_write_transaction(tmp_path: Path) -> None:
    store = SQLStorage(sqlite_url(tmp_path))
    statements: list[str] = []

    @event.listens_for(store.engine, "connect")
    def _trace(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    store.engine.dispose()  # connections opened from now on are traced
    with store.transaction(rate_limit_keys={"rate:f": 60}, now=1_000_000.0) as tx:
        if tx.count("rate:f") < 10:
            tx.record("rate:f")
        saved = tx.save_execution(ExecutionRecord(function_name="f"))
        tx.append_audit_record(AuditRecord(action="call", decision="allow", execution_id=saved.id))
    writes = [s for s in statements if not s.upper().startswith(("PRAGMA", "SELECT"))]
    assert writes[0] == "BEGIN IMMEDIATE" and writes[-1] == "COMMIT"
    assert sum(s.startswith("BEGIN") for s in statements) == 1
    assert sum(s == "COMMIT" for s in statements) == 1
    store.close()


def test_daily_totals_always_agree_with_the_usage_rows(sql_store: SQLStorage) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(40):
        moment = start + timedelta(hours=7 * i)
        with sql_store.budget_window(["k"], moment) as window:
            hold = window.reserve("k", 1000 + i, 60)
        sql_store.settle(hold, 500 + i, now=moment)
        sql_store.record_usage(UsageRecord(key="k", amount=i, created_at=moment))
    with sql_store.engine.connect() as conn:
        by_day = conn.execute(
            select(BudgetDailyTotalRow.day, BudgetDailyTotalRow.amount, BudgetDailyTotalRow.count)
        ).all()
    usage = sql_store.list_usage("k", limit=None)
    expected: dict[object, list[int]] = {}
    for record in usage:
        assert record.created_at is not None
        day = expected.setdefault(record.created_at.date(), [0, 0])
        day[0] += record.amount
        day[1] += 1
    assert {day: [amount, count] for day, amount, count in by_day} == expected
