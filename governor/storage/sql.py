"""`SQLStorage`: the store on SQLAlchemy 2, a SQLite file by default, PostgreSQL by URL.

How exactness is kept:
- **SQLite**: WAL, `busy_timeout`, `foreign_keys=ON` on every connection; pysqlite's own BEGIN is
  switched off (`isolation_level = None`) and the engine emits `BEGIN` for reads and
  `BEGIN IMMEDIATE` for every write transaction (SQLAlchemy's documented recipe), so a transaction
  that reads then writes (the audit chain head, a rate-limit count, a budget's facts) holds the
  database's write lock from its first statement, across every process sharing the file. Writers
  in one process also queue on a lock per file first, so threads wait in order instead of polling
  the busy handler.
- **PostgreSQL** (`postgresql+psycopg://...`): READ COMMITTED, and `pg_advisory_xact_lock` on a
  stable 64-bit hash of each rate-limit and budget key (sorted, so two transactions never
  deadlock) and, from its first append, of the audit chain; all released at commit. A budget's
  facts are one statement (one snapshot), so a `settle` committing meanwhile, which swaps a hold
  for a usage record without the key's lock, is seen entirely or not at all.
- `claim_execution` is one `UPDATE ... WHERE id = :id AND status = :from`: exactly one claimer
  sees a row change; `settle` locks the hold's row (`FOR UPDATE`) and the usage table's unique
  `reservation_id` backs it up, so a hold is booked once.

Every write is one `transaction()` (`_SQLTransaction`): the store's own `save_*` and
`append_audit_record` are one-call transactions, so there is one implementation of each write.
Statements are SQLAlchemy Core, built once, on short `with engine.connect() as conn,
conn.begin():` transactions over the tables of `governor.storage.models`: these methods run on the
path of every governed call, and the ORM unit of work would only add overhead. A call's final
records go in one batch (`save_records`: the snapshots and the events each one `executemany`).

SQLite durability: WAL with `synchronous=NORMAL` by default. A commit survives a crash of the
process (the WAL is written before COMMIT returns); a power loss may lose the last commits that
no checkpoint synced yet. `sqlite_synchronous="FULL"` adds an fsync per commit (~0.2 ms to
several ms per governed call on a cloud disk) for power-loss durability too. "Nothing lost" in
the architecture means no record is skipped or written after the caller is told: that holds in
both modes. Checkpoints (the fsyncs of NORMAL) run in a background thread (`_Checkpointer`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Dialect,
    Engine,
    Row,
    Select,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from governor.errors import ConfigurationError, RecordNotFound, StorageError
from governor.storage._audit import GENESIS_HASH, REDACTED_BODY, find_break, seal_in_place
from governor.storage._budget import (
    RESERVATION_RETENTION_SECONDS,
    check_amount,
    check_period,
    check_settle_fields,
    day_of,
    new_hold,
    prepare_usage,
    reported,
    settled_usage,
    split_period,
)
from governor.storage._migrate import upgrade_to_head
from governor.storage._prepare import (
    prepare_audit,
    prepare_changes,
    prepare_event,
    prepare_execution,
    prepare_snapshot,
    stamp_in_order,
)
from governor.storage._raw import RawStatement, wrap_dbapi_error
from governor.storage._sql_approvals import (
    APPROVALS as _APPROVALS,
)
from governor.storage._sql_approvals import (
    ApprovalQueryMixin,
    ApprovalTransactionMixin,
)
from governor.storage._transaction import (
    LockedTransaction,
    TransactionPlan,
    as_moment,
    prepare_transaction,
)
from governor.storage._window import PRUNE_GRACE_SECONDS, SWEEP_BATCH, SWEEP_EVERY, check_key
from governor.storage.base import StorageBackend
from governor.storage.models import (
    AuditRow,
    BudgetDailyTotalRow,
    BudgetReservationRow,
    BudgetUsageRow,
    EventRow,
    ExecutionRow,
    RateLimitCallRow,
    RateLimitKeyRow,
    SnapshotRow,
    UTCDateTime,
)
from governor.storage.records import (
    AuditRecord,
    BudgetFacts,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    ReservationRecord,
    ReservationStatus,
    SnapshotRecord,
    UsageRecord,
    UsageTotals,
    as_status,
    as_utc,
    utcnow,
)

ENV_URL = "GOVERNOR_DATABASE_URL"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")

_BEGIN_OPTION = "governor_sqlite_begin"
#: PostgreSQL advisory lock serialising appends to the audit chain.
AUDIT_CHAIN_LOCK_ID = 0x676F765F61756474  # "gov_audt"

_EXECUTIONS = cast(Table, ExecutionRow.__table__)
_SNAPSHOTS = cast(Table, SnapshotRow.__table__)
_EVENTS = cast(Table, EventRow.__table__)
_AUDIT = cast(Table, AuditRow.__table__)
_CALLS = cast(Table, RateLimitCallRow.__table__)
_KEYS = cast(Table, RateLimitKeyRow.__table__)
_USAGE = cast(Table, BudgetUsageRow.__table__)
_HOLDS = cast(Table, BudgetReservationRow.__table__)
_DAILY = cast(Table, BudgetDailyTotalRow.__table__)

# Statements on the path of every governed call are built once: building a statement and its
# cache key costs more than running it on SQLite. Bind names start with `b_`, because SQLAlchemy
# reserves bare column names in SET clauses.
_GET_EXECUTION = select(_EXECUTIONS).where(_EXECUTIONS.c.id == bindparam("b_id"))
_CLAIM_EXECUTION = (
    update(_EXECUTIONS)
    .where(_EXECUTIONS.c.id == bindparam("b_id"))
    .where(_EXECUTIONS.c.status == bindparam("b_from"))
    .values(status=bindparam("b_to"), updated_at=bindparam("b_now", type_=UTCDateTime()))
)
_INSERT_SNAPSHOT = insert(_SNAPSHOTS)
_INSERT_EVENT = insert(_EVENTS)
_INSERT_AUDIT = insert(_AUDIT)
_AUDIT_HEAD = select(_AUDIT.c.seq, _AUDIT.c.hash).order_by(_AUDIT.c.seq.desc()).limit(1)
_GET_KEY = select(_KEYS.c.count, _KEYS.c.last_at).where(_KEYS.c.key == bindparam("b_key"))
_EXPIRE_CALLS = delete(_CALLS).where(
    _CALLS.c.key == bindparam("b_key"), _CALLS.c.at <= bindparam("b_cutoff")
)
_COUNT_CALLS = (
    select(func.count())
    .select_from(_CALLS)
    .where(_CALLS.c.key == bindparam("b_key"), _CALLS.c.at > bindparam("b_cutoff"))
)
_INSERT_CALL = insert(_CALLS)
_IDLE_KEYS = (
    select(_KEYS.c.key)
    .where(_KEYS.c.expires_at <= bindparam("b_before"))
    .order_by(_KEYS.c.expires_at)
    .limit(SWEEP_BATCH)
)
_DELETE_KEY_CALLS = delete(_CALLS).where(_CALLS.c.key == bindparam("b_key"))
_DELETE_KEY = delete(_KEYS).where(_KEYS.c.key == bindparam("b_key"))
_ADVISORY_LOCK = select(func.pg_advisory_xact_lock(sql_cast(bindparam("b_lock"), BigInteger)))
_TRY_ADVISORY_LOCK = select(
    func.pg_try_advisory_xact_lock(sql_cast(bindparam("b_lock"), BigInteger))
)

_HELD = ReservationStatus.HELD.value
_FINISHED = [s.value for s in ReservationStatus if s is not ReservationStatus.HELD]
# A key's spending in a period (whole days from the daily totals, the partial days at the edges
# from the usage rows: see `_budget.split_period`) and its live holds, in one statement: one
# snapshot on PostgreSQL.


def _edge(column: Any, edge: str) -> Any:
    return (
        select(column)
        .where(
            _USAGE.c.key == bindparam("b_key"),
            _USAGE.c.created_at >= bindparam(f"b_{edge}_start", type_=UTCDateTime()),
            _USAGE.c.created_at < bindparam(f"b_{edge}_end", type_=UTCDateTime()),
        )
        .scalar_subquery()
    )


def _whole_days(column: Any) -> Any:
    return (
        select(func.coalesce(func.sum(column), 0))
        .where(
            _DAILY.c.key == bindparam("b_key"),
            _DAILY.c.day >= bindparam("b_first_day"),
            _DAILY.c.day < bindparam("b_end_day"),
        )
        .scalar_subquery()
    )


_SPENT = (
    _whole_days(_DAILY.c.amount)
    + _edge(func.coalesce(func.sum(_USAGE.c.amount), 0), "head")
    + _edge(func.coalesce(func.sum(_USAGE.c.amount), 0), "tail")
)
_USAGE_COUNT = (
    _whole_days(_DAILY.c.count)
    + _edge(func.count(_USAGE.c.id), "head")
    + _edge(func.count(_USAGE.c.id), "tail")
)
_LIVE_HOLDS = (
    select(func.coalesce(func.sum(_HOLDS.c.amount), 0))
    .where(
        _HOLDS.c.key == bindparam("b_key"),
        _HOLDS.c.expires_at > bindparam("b_now", type_=UTCDateTime()),
        _HOLDS.c.status == _HELD,
    )
    .scalar_subquery()
)
_FACTS = select(_SPENT, _LIVE_HOLDS)
_TOTALS = select(_SPENT, _USAGE_COUNT, _LIVE_HOLDS)


def _period_params(key: str, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    split = split_period(start, end)
    return {
        "b_key": key,
        "b_first_day": split.first_day,
        "b_end_day": split.end_day,
        "b_head_start": split.head[0],
        "b_head_end": split.head[1],
        "b_tail_start": split.tail[0],
        "b_tail_end": split.tail[1],
        "b_now": now,
    }


_INSERT_HOLD = insert(_HOLDS)
_INSERT_USAGE = insert(_USAGE)
_GET_HOLD = select(_HOLDS).where(_HOLDS.c.id == bindparam("b_id"))
_USAGE_OF_HOLD = select(_USAGE).where(_USAGE.c.reservation_id == bindparam("b_id"))
_CLOSE_HOLD = (
    update(_HOLDS)
    .where(_HOLDS.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        closed_at=bindparam("b_at", type_=UTCDateTime()),
        usage_id=bindparam("b_usage"),
    )
)
_RELEASE_HOLD = (
    update(_HOLDS)
    .where(_HOLDS.c.id == bindparam("b_id"), _HOLDS.c.status == _HELD)
    .values(
        status=ReservationStatus.RELEASED.value,
        closed_at=bindparam("b_at", type_=UTCDateTime()),
    )
)


def default_url() -> str:
    """Return `GOVERNOR_DATABASE_URL`, else a SQLite file `./.governor/governor.db`."""
    url = os.environ.get(ENV_URL)
    if url:
        return url
    path = Path.cwd() / ".governor" / "governor.db"
    return URL.create("sqlite", database=str(path)).render_as_string()


def key_lock_id(namespace: str, key: str) -> int:
    """Return a stable signed 64-bit id for `key`, for `pg_advisory_xact_lock`."""
    digest = hashlib.sha256(f"governor:{namespace}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# One lock per SQLite file per process: writers of every SQLStorage on that file queue on it.
_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(path: str) -> threading.Lock:
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(path, threading.Lock())


def _reset_file_locks_after_fork() -> None:
    global _FILE_LOCKS_GUARD
    _FILE_LOCKS_GUARD = threading.Lock()
    _FILE_LOCKS.clear()


os.register_at_fork(after_in_child=_reset_file_locks_after_fork)

log = logging.getLogger("governor.storage.sql")

#: The WAL size (pages) at which a committing caller checkpoints by itself: only reached when the
#: background checkpointer falls behind (SQLite's own default is 1000).
CALLER_CHECKPOINT_PAGES = 10_000


class _Checkpointer:
    """Checkpoints one SQLite file's write-ahead log in a background thread, off the callers' path.

    In WAL mode SQLite copies the log back into the database once it passes `wal_autocheckpoint`
    pages, in whichever commit crosses that line, with an fsync of both files: a governed call
    writes ~50 pages, so one call in ~20 paid 5-15 ms (the p99). Instead every write transaction
    of this process pokes this thread, which runs `PRAGMA wal_checkpoint(PASSIVE)` (it neither
    waits for nor blocks readers and writers; the sqlite3 module releases the GIL meanwhile) at
    most every `INTERVAL` seconds, on a connection opened for the run. The callers' connections
    keep `wal_autocheckpoint` as a safety net at `CALLER_CHECKPOINT_PAGES`. The thread exits
    after `IDLE` seconds without a poke and is started again by the next one. Durability is
    SQLite's, unchanged: what `synchronous` promises for a commit does not depend on who runs
    the checkpoints.
    """

    INTERVAL = 0.1
    IDLE = 5.0

    def __init__(self, path: str) -> None:
        self._path = path
        self._wake = threading.Event()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """A write transaction committed: checkpoint soon."""
        if self._wake.is_set():
            return
        self._wake.set()
        if self._thread is None:
            with self._guard:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="governor-sqlite-checkpoint", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            if not self._wake.wait(self.IDLE):
                with self._guard:
                    if not self._wake.is_set():
                        self._thread = None
                        return
            self._wake.clear()
            self.checkpoint()
            time.sleep(self.INTERVAL)

    def checkpoint(self) -> None:
        """Checkpoint what the log holds now (never raises: a failed run is retried next time)."""
        try:
            connection = sqlite3.connect(self._path, timeout=0, isolation_level=None)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()
        except sqlite3.Error as error:
            log.debug("background checkpoint of %s failed (%s); retried later", self._path, error)


_CHECKPOINTERS: dict[str, _Checkpointer] = {}


def _checkpointer(path: str) -> _Checkpointer:
    with _FILE_LOCKS_GUARD:
        return _CHECKPOINTERS.setdefault(path, _Checkpointer(path))


def _reset_checkpointers_after_fork() -> None:
    _CHECKPOINTERS.clear()  # their threads did not survive the fork


os.register_at_fork(after_in_child=_reset_checkpointers_after_fork)


def _use_wal(cursor: Any, timeout: float) -> None:
    """Put the file in WAL mode. SQLite answers "database is locked" at once, without waiting
    for busy_timeout, when connections race to switch a fresh file, so the wait is here."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


class _TimedLock:
    """A process-local lock whose `with` gives up after `timeout` seconds with a StorageError."""

    def __init__(self, lock: Any, timeout: float, what: str) -> None:
        self._lock = lock
        self._timeout = timeout
        self._what = what

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=self._timeout):
            raise StorageError(
                f"waited more than busy_timeout={self._timeout}s for the writer lock of "
                f"{self._what} in this process: a thread holds a long write transaction "
                "(a rate-limit window kept open?); raise busy_timeout or shorten the block"
            )

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class SQLStorage(ApprovalQueryMixin, StorageBackend):
    """The SQL store: a SQLite file by default, PostgreSQL for several processes or machines.

    `url` defaults to `GOVERNOR_DATABASE_URL`, else `sqlite:///./.governor/governor.db` (the
    directory is created). The schema is brought to the newest Alembic revision on construction
    unless `migrate=False`. `busy_timeout` is how long a SQLite writer waits for the file's lock
    before failing; `sqlite_synchronous` is SQLite's `synchronous` pragma: `NORMAL` (the default)
    keeps every commit across a crash of the process, `FULL` also across power loss, at the price
    of an fsync per commit. `sqlite://` (in memory) works, serialised, for one process only.
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        migrate: bool = True,
        busy_timeout: float = 30.0,
        sqlite_synchronous: str = "NORMAL",
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        self._url = make_url(url if url is not None else default_url())
        self.backend = self._url.get_backend_name()
        if self.backend not in SUPPORTED_BACKENDS:
            raise ConfigurationError(
                f"SQLStorage supports {' and '.join(SUPPORTED_BACKENDS)} URLs, got "
                f"{self._url.render_as_string(hide_password=True)!r}: exact rate limits need "
                "their locking (BEGIN IMMEDIATE or advisory locks)"
            )
        if sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigurationError(
                f"sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA, got {sqlite_synchronous!r}"
            )
        self._busy_timeout = busy_timeout
        self._local = _ThreadState()
        self._windows = 0
        self._sweep_guard = threading.Lock()
        self._sqlite_file: str | None = None
        # Serialises writers in this process (SQLite); every statement for in-memory SQLite.
        self._write_lock: AbstractContextManager[Any] = nullcontext()
        self._read_lock: AbstractContextManager[Any] = nullcontext()
        self._checkpointer: _Checkpointer | None = None
        options = dict(engine_options or {})
        if self.backend == "sqlite":
            self._engine = self._sqlite_engine(busy_timeout, sqlite_synchronous.upper(), options)
        else:
            options.setdefault("pool_pre_ping", True)
            options.setdefault("isolation_level", "READ COMMITTED")
            self._engine = create_engine(self._url, **options)
        self._write_engine = self._engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._compiled = _compiled_for(self._engine.dialect)
        self._dbapi_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        self._update_statements: dict[frozenset[str], Any] = {}
        self._register_fork_handler()
        if migrate:
            with self._errors():
                upgrade_to_head(self._engine, self._write_engine)

    # -- engine setup -------------------------------------------------------------------------

    def _sqlite_engine(
        self, busy_timeout: float, synchronous: str, options: dict[str, Any]
    ) -> Engine:
        database = self._url.database or ""
        in_memory = database in ("", ":memory:") or "mode=memory" in str(self._url.query)
        connect_args = options.setdefault("connect_args", {})
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", busy_timeout)
        if in_memory:
            options.setdefault("poolclass", StaticPool)
        else:
            path = Path(database).expanduser().resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._sqlite_file = str(path)
        self._make_locks()
        engine = create_engine(self._url, **options)
        busy_ms = int(busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # SQLAlchemy's recipe: stop pysqlite from emitting BEGIN, emit our own in "begin".
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                if not in_memory:
                    _use_wal(cursor, busy_timeout)
                    cursor.execute(f"PRAGMA wal_autocheckpoint = {CALLER_CHECKPOINT_PAGES}")
                cursor.execute(f"PRAGMA synchronous = {synchronous}")
                cursor.execute("PRAGMA foreign_keys = ON")
            finally:
                cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get(_BEGIN_OPTION) == "IMMEDIATE":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine

    def _make_locks(self) -> None:
        if self.backend != "sqlite":
            return
        if self._sqlite_file is not None:
            lock = _file_lock(self._sqlite_file)
            self._write_lock = _TimedLock(lock, self._busy_timeout, self._sqlite_file)
            self._checkpointer = _checkpointer(self._sqlite_file)
        else:
            # One shared connection (StaticPool): every statement, reads too, takes turns.
            shared = threading.RLock()
            self._write_lock = self._read_lock = _TimedLock(shared, self._busy_timeout, self.url)

    def _register_fork_handler(self) -> None:
        ref = weakref.ref(self)

        def _after_fork_in_child() -> None:
            store = ref()
            if store is None:
                return
            # Connections inherited from the parent belong to it; open new ones in the child.
            store._engine.dispose(close=False)
            store._make_locks()

        os.register_at_fork(after_in_child=_after_fork_in_child)

    @property
    def sqlite_file(self) -> str | None:
        """The SQLite database file (absolute path); None for PostgreSQL and in-memory SQLite."""
        return self._sqlite_file

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests; the store's methods are the API)."""
        return self._engine

    def __repr__(self) -> str:
        return f"SQLStorage({self.url!r})"

    # -- transactions and errors --------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sa_exc.SQLAlchemyError as error:
            raise self._storage_error(error) from error

    def _storage_error(self, error: sa_exc.SQLAlchemyError) -> StorageError:
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        lowered = detail.lower()
        if "database is locked" in lowered or "database table is locked" in lowered:
            return StorageError(
                f"SQLite database {self._sqlite_file or self.url} stayed locked for more than "
                f"busy_timeout={self._busy_timeout}s: another process holds a long write "
                "transaction on it. Find that process (`fuser <file>`), or raise busy_timeout"
            )
        if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
            return StorageError(
                f"the governor tables are missing in {self.url} ({detail}). Create them: "
                "SQLStorage(url) with migrate=True (the default) runs the Alembic migrations"
            )
        if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
            return StorageError(f"cannot use the database {self.url}: {detail}")
        return StorageError(f"database error on {self.url}: {detail}")

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction: SQLite `BEGIN IMMEDIATE` after this process's writer lock."""
        if self._local.in_transaction:
            raise _nested_write_error()
        with self._write_lock, self._errors(), self._write_engine.connect() as conn, conn.begin():
            yield conn
        if self._checkpointer is not None:
            self._checkpointer.poke()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read transaction (one consistent snapshot on SQLite)."""
        with self._read_lock, self._errors(), self._engine.connect() as conn, conn.begin():
            yield conn

    def _integrity_error(
        self, error: sa_exc.IntegrityError, action: str, missing: str | None
    ) -> StorageError:
        """Turn a constraint failure of `action` into a missing record (foreign key) or else."""
        detail = str(getattr(error, "orig", None) or error).lower()
        if missing is not None and "foreign key" in detail:
            return RecordNotFound(f"cannot {action}: {missing}")
        return StorageError(f"cannot {action}: {self._storage_error(error)}")

    # -- executions ---------------------------------------------------------------------------

    def save_execution(self, record: ExecutionRecord) -> ExecutionRecord:
        """Insert or replace an execution; an existing execution keeps its `created_at`."""
        with self.transaction() as transaction:
            return transaction.save_execution(record)

    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        """Return the execution with this id, or None."""
        with self._read() as conn:
            row = conn.execute(_GET_EXECUTION, {"b_id": execution_id}).first()
        return _execution_record(row) if row is not None else None

    def update_execution(self, execution_id: str, **changes: Any) -> ExecutionRecord:
        """Change some fields of an execution; raises `RecordNotFound` if there is none."""
        values = prepare_changes(changes)
        if "status" in values:
            values["status"] = values["status"].value
        values["updated_at"] = utcnow()
        columns = frozenset(values)
        stmt = self._update_statements.get(columns)
        if stmt is None:
            stmt = self._update_statements.setdefault(columns, _update_statement(columns))
        params = {f"b_{name}": value for name, value in values.items()}
        params["b_id"] = execution_id
        parent = values.get("parent_id")
        missing = f"its parent execution {parent} does not exist" if parent is not None else None
        with self._write() as conn:
            try:
                row = conn.execute(stmt, params).first()
            except sa_exc.IntegrityError as error:
                action = f"update execution {execution_id}"
                raise self._integrity_error(error, action, missing) from error
        if row is None:
            raise RecordNotFound(f"cannot update execution {execution_id}: it does not exist")
        return _execution_record(row)

    def list_executions(
        self,
        *,
        status: ExecutionStatus | str | None = None,
        function_name: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[ExecutionRecord]:
        """Return executions, newest first, optionally only one status and/or one function."""
        stmt = select(_EXECUTIONS).order_by(
            _EXECUTIONS.c.created_at.desc(), _EXECUTIONS.c.id.desc()
        )
        if status is not None:
            stmt = stmt.where(_EXECUTIONS.c.status == as_status(status).value)
        if function_name is not None:
            stmt = stmt.where(_EXECUTIONS.c.function_name == function_name)
        with self._read() as conn:
            rows = conn.execute(_page(stmt, limit, offset)).all()
        return [_execution_record(row) for row in rows]

    def claim_execution(
        self,
        execution_id: str,
        from_status: ExecutionStatus | str,
        to_status: ExecutionStatus | str,
    ) -> bool:
        """Move an execution from `from_status` to `to_status` atomically; True for one claimer."""
        params = {
            "b_id": execution_id,
            "b_from": as_status(from_status).value,
            "b_to": as_status(to_status).value,
            "b_now": utcnow(),
        }
        with self._write() as conn:
            return conn.execute(_CLAIM_EXECUTION, params).rowcount == 1

    def delete_execution(self, execution_id: str) -> bool:
        """Delete an execution with its snapshots and events; audit records stay."""
        with self._write() as conn:
            # The foreign keys cascade; deleting explicitly too keeps this true on databases
            # created by hand without them.
            conn.execute(delete(_SNAPSHOTS).where(_SNAPSHOTS.c.execution_id == execution_id))
            conn.execute(delete(_EVENTS).where(_EVENTS.c.execution_id == execution_id))
            deleted = conn.execute(delete(_EXECUTIONS).where(_EXECUTIONS.c.id == execution_id))
            return deleted.rowcount == 1

    # -- snapshots ----------------------------------------------------------------------------

    def save_snapshot(self, record: SnapshotRecord) -> SnapshotRecord:
        """Store a state snapshot of an existing execution."""
        with self.transaction() as transaction:
            return transaction.save_snapshot(record)

    def get_snapshot(self, snapshot_id: str) -> SnapshotRecord | None:
        """Return the snapshot with this id, or None."""
        with self._read() as conn:
            row = conn.execute(select(_SNAPSHOTS).where(_SNAPSHOTS.c.id == snapshot_id)).first()
        return _snapshot_record(row) if row is not None else None

    def list_snapshots(self, execution_id: str) -> list[SnapshotRecord]:
        """Return an execution's snapshots, oldest first."""
        stmt = (
            select(_SNAPSHOTS)
            .where(_SNAPSHOTS.c.execution_id == execution_id)
            .order_by(_SNAPSHOTS.c.captured_at, _SNAPSHOTS.c.id)
        )
        with self._read() as conn:
            return [_snapshot_record(row) for row in conn.execute(stmt)]

    # -- events -------------------------------------------------------------------------------

    def save_event(self, record: EventRecord) -> EventRecord:
        """Persist an event; its `execution_id`, when set, must name an existing execution."""
        with self.transaction() as transaction:
            return transaction.save_event(record)

    def list_events(
        self,
        *,
        execution_id: str | None = None,
        event_type: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[EventRecord]:
        """Return events, oldest first, optionally of one execution and/or one type."""
        stmt = select(_EVENTS).order_by(_EVENTS.c.timestamp, _EVENTS.c.id)
        if execution_id is not None:
            stmt = stmt.where(_EVENTS.c.execution_id == execution_id)
        if event_type is not None:
            stmt = stmt.where(_EVENTS.c.event_type == getattr(event_type, "value", event_type))
        with self._read() as conn:
            return [_event_record(row) for row in conn.execute(_page(stmt, limit, offset))]

    # -- audit --------------------------------------------------------------------------------

    def append_audit_record(self, record: AuditRecord) -> AuditRecord:
        """Append a record to the hash chain, reading the head under the chain's lock."""
        with self.transaction() as transaction:
            return transaction.append_audit_record(record)

    def list_audit_records(
        self,
        *,
        execution_id: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[AuditRecord]:
        """Return audit records in chain order; `since` is inclusive, `until` exclusive."""
        stmt = select(_AUDIT).order_by(_AUDIT.c.seq)
        for condition in _audit_filters(execution_id, actor, since, until):
            stmt = stmt.where(condition)
        with self._read() as conn:
            return [_audit_record(row) for row in conn.execute(_page(stmt, limit, offset))]

    def verify_audit_chain(self) -> AuditRecord | None:
        """Walk the whole chain in one read transaction; return the first broken record or None."""
        stmt = select(_AUDIT).order_by(_AUDIT.c.seq).execution_options(yield_per=1000)
        with self._read() as conn:
            return find_break(_audit_record(row) for row in conn.execute(stmt))

    def redact_audit_records(
        self, *, execution_id: str | None = None, actor: str | None = None
    ) -> int:
        """Erase actor, reasons and record of matching audit records; returns how many."""
        if execution_id is None and actor is None:
            raise StorageError("redact_audit_records needs execution_id or actor (or both)")
        stmt = (
            update(_AUDIT)
            .where(_AUDIT.c.redacted_at.is_(None))
            .values(
                actor=REDACTED_BODY["actor"],
                reasons=REDACTED_BODY["reasons"],
                record=REDACTED_BODY["record"],
                redacted_at=utcnow(),
            )
        )
        for condition in _audit_filters(execution_id, actor, None, None):
            stmt = stmt.where(condition)
        with self._write() as conn:
            return conn.execute(stmt).rowcount

    # -- units of work ------------------------------------------------------------------------

    @contextmanager
    def transaction(
        self,
        *,
        rate_limit_keys: Mapping[str, float] | None = None,
        budget_keys: Sequence[str] = (),
        now: datetime | float | None = None,
    ) -> Iterator[_SQLTransaction]:
        """Lock the keys (SQLite: the write lock; PostgreSQL: advisory locks), yield the work."""
        plan = prepare_transaction(rate_limit_keys, budget_keys, now)
        if self._local.in_transaction:
            raise _nested_write_error()
        with self._write_lock:
            with self._errors():
                connection = self._engine.raw_connection()
            self._local.in_transaction = True
            transaction = _SQLTransaction(self, connection, plan)
            try:
                transaction.begin()
                if plan.locks_keys:
                    transaction.lock_keys()
                    if self._sweep_due():
                        transaction.sweep()
                try:
                    yield transaction
                finally:
                    transaction.closed = True
                # Reached only when the block did not raise.
                transaction.check_commit()
                transaction.flush()
                transaction.commit()
                if self._checkpointer is not None:
                    self._checkpointer.poke()
            except BaseException:
                transaction.rollback()
                raise
            finally:
                self._local.in_transaction = False
                connection.close()

    def _sweep_due(self) -> bool:
        """True for the first locking transaction of the store and every `SWEEP_EVERY`-th."""
        with self._sweep_guard:
            self._windows += 1
            return self._windows % SWEEP_EVERY == 1

    # -- budgets ------------------------------------------------------------------------------

    def settle(
        self,
        reservation_id: str,
        actual_amount: int,
        *,
        now: datetime | float | None = None,
        **usage_fields: object,
    ) -> UsageRecord:
        """Book a hold: write its usage record and mark it settled in one transaction."""
        amount = check_amount(actual_amount, "settle actual_amount")
        fields = check_settle_fields(usage_fields)
        _, moment = as_moment(now)
        with self.transaction(now=moment) as transaction:
            usage = cast(_SQLTransaction, transaction).settle_hold(reservation_id, amount, fields)
        if usage is not None:
            return usage
        # Settled before (its hold may since have been swept): return that booking.
        with self._read() as conn:
            booked = conn.execute(_USAGE_OF_HOLD, {"b_id": reservation_id}).one()
        return _usage_record(booked)

    def release(self, reservation_id: str, *, now: datetime | float | None = None) -> bool:
        """Release a hold; True if it was held, False if already settled, released or expired."""
        _, moment = as_moment(now)
        with self.transaction(now=moment) as transaction:
            return cast(_SQLTransaction, transaction).release_hold(reservation_id)

    def get_reservation(
        self, reservation_id: str, *, now: datetime | float | None = None
    ) -> ReservationRecord | None:
        """Return a hold, or None; a hold still held past its expiry (at `now`) reads expired."""
        _, moment = as_moment(now)
        with self._read() as conn:
            row = conn.execute(_GET_HOLD, {"b_id": reservation_id}).first()
        return reported(_hold_record(row), moment) if row is not None else None

    def record_usage(self, record: UsageRecord) -> UsageRecord:
        """Book spending that had no hold; returns the stored copy."""
        stored = prepare_usage(record, utcnow())
        if stored.reservation_id is not None:
            raise StorageError(
                f"usage {stored.id} names reservation {stored.reservation_id}: book a hold with "
                "settle(reservation_id, amount), record_usage is for spending without one"
            )
        with self.transaction() as transaction:
            cast(_SQLTransaction, transaction).insert_usage(stored)
        return stored

    def list_usage(
        self,
        key: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        org_id: str | None = None,
        user_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[UsageRecord]:
        """Return usage records, newest first; `since` inclusive, `until` exclusive."""
        stmt = select(_USAGE).order_by(_USAGE.c.created_at.desc(), _USAGE.c.id.desc())
        for column, value in (
            (_USAGE.c.key, key),
            (_USAGE.c.org_id, org_id),
            (_USAGE.c.user_id, user_id),
            (_USAGE.c.provider, provider),
            (_USAGE.c.model, model),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if since is not None:
            stmt = stmt.where(_USAGE.c.created_at >= as_utc(since))
        if until is not None:
            stmt = stmt.where(_USAGE.c.created_at < as_utc(until))
        with self._read() as conn:
            return [_usage_record(row) for row in conn.execute(_page(stmt, limit, offset))]

    def usage_totals(
        self,
        key: str,
        period_start: datetime,
        period_end: datetime,
        *,
        now: datetime | float | None = None,
    ) -> UsageTotals:
        """Return the key's usage in the period (sum, count) and its live holds at `now`."""
        check_key(key, "budget")
        start, end = check_period(period_start, period_end)
        _, moment = as_moment(now)
        params = _period_params(key, start, end, moment)
        with self._read() as conn:
            spent, count, reserved = conn.execute(_TOTALS, params).one()
        return {"spent": int(spent), "count": int(count), "reserved": int(reserved)}

    # -- lifecycle ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Delete every record of every kind (for tests)."""
        with self._write() as conn:
            tables = (
                _USAGE,
                _DAILY,
                _HOLDS,
                _CALLS,
                _KEYS,
                _AUDIT,
                _EVENTS,
                _SNAPSHOTS,
                _APPROVALS,
                _EXECUTIONS,
            )
            for table in tables:
                conn.execute(delete(table))

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()


class _ThreadState(threading.local):
    """Per thread: whether it is inside one of this store's transactions."""

    in_transaction = False


def _nested_write_error() -> StorageError:
    return StorageError(
        "this thread is inside store.transaction() (or a rate_limit_window/budget_window) and "
        "called one of the store's write methods: that would wait for the lock the block "
        "holds. Write through the transaction object instead (tx.save_execution, ...), or "
        "after the block"
    )


def _key_lock_ids(plan: TransactionPlan) -> list[int]:
    """The advisory locks of a transaction's keys, sorted: every transaction takes them in order."""
    ids = {key_lock_id("rate_limit", key) for key in plan.windows}
    ids.update(key_lock_id("budget", key) for key in plan.budget_keys)
    return sorted(ids)


class _KeyState:
    """What a transaction knows about one rate-limit key: count, clock, whether to write them."""

    __slots__ = ("count", "clock", "dirty")

    def __init__(self, count: int, clock: float, dirty: bool) -> None:
        self.count = count
        self.clock = clock
        self.dirty = dirty


class _SQLTransaction(ApprovalTransactionMixin, LockedTransaction):
    """A unit of work on one pooled DBAPI connection, inside one locked write transaction.

    Statements run at once, straight on the cursor (`governor.storage._raw`). Rate limits:
    counting reads the key's row (count and clock) and deletes the calls that left the window;
    recording inserts a call; `flush` writes the keys' rows back when the block succeeds.
    """

    def __init__(self, store: SQLStorage, connection: Any, plan: TransactionPlan) -> None:
        super().__init__(plan)
        self._store = store
        self._sql = store._compiled
        self._connection = connection
        self._cursor = connection.cursor()
        self._sqlite = store.backend == "sqlite"
        self._states: dict[str, _KeyState] = {}
        self._audit_head: tuple[int, str] | None = None

    def _execute(
        self,
        statement: RawStatement,
        values: dict[str, Any] | None = None,
        *,
        saving: tuple[str, str | None] | None = None,
    ) -> Any:
        """Run one statement; a failure marks the transaction failed (PostgreSQL aborts it).

        `saving` is `(action, what is missing if a foreign key fails)`, for the error message.
        """
        params = statement.bind(values)
        try:
            self._cursor.execute(statement.sql, params)
        except self._store._dbapi_error as error:
            wrapped = wrap_dbapi_error(error, statement.sql, params, self._store._dbapi_error)
            if saving is not None and isinstance(wrapped, sa_exc.IntegrityError):
                raise self.fail(self._store._integrity_error(wrapped, *saving)) from error
            raise self.fail(self._store._storage_error(wrapped)) from error
        return self._cursor

    def _execute_many(
        self,
        statement: RawStatement,
        rows: Sequence[dict[str, Any]],
        *,
        saving: tuple[str, str | None],
    ) -> None:
        """Run one statement over several rows (`executemany`: one call into the driver, one
        round trip with psycopg's pipeline); a failure fails the transaction as `_execute`."""
        if len(rows) == 1:
            self._execute(statement, rows[0], saving=saving)
            return
        params = [statement.bind(row) for row in rows]
        try:
            self._cursor.executemany(statement.sql, params)
        except self._store._dbapi_error as error:
            wrapped = wrap_dbapi_error(error, statement.sql, params, self._store._dbapi_error)
            if isinstance(wrapped, sa_exc.IntegrityError):
                raise self.fail(self._store._integrity_error(wrapped, *saving)) from error
            raise self.fail(self._store._storage_error(wrapped)) from error

    def _control(self, sql: str) -> None:
        try:
            self._cursor.execute(sql)
        except self._store._dbapi_error as error:
            wrapped = wrap_dbapi_error(error, sql, (), self._store._dbapi_error)
            raise self._store._storage_error(wrapped) from error

    # -- the caller's own statements ----------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        """The store's SQLAlchemy dialect: what a statement for `execute` is compiled for."""
        return self._store.engine.dialect

    def execute(
        self, statement: RawStatement, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        """Run a statement on the caller's own tables in this transaction; return its rows.

        For an application that keeps tables next to the store's and writes them in the same
        unit of work (the precheck server: a decision record with the budget hold it placed).
        `statement` is compiled once for `dialect` (`governor.storage._raw.RawStatement`) and
        runs on the transaction's cursor; a list of parameter sets runs it once per set
        (`executemany`, no rows). A failure fails the transaction, as the store's own writes do.
        """
        self.check_open()
        saving = ("run the statement", None)
        if isinstance(params, Mapping):
            cursor = self._execute(statement, dict(params), saving=saving)
            return cursor.fetchall() if cursor.description is not None else []
        self._execute_many(statement, [dict(p) for p in params], saving=saving)
        return []

    # -- transaction control ------------------------------------------------------------------

    def begin(self) -> None:
        """SQLite: `BEGIN IMMEDIATE` (the file's write lock); PostgreSQL begins implicitly."""
        if self._sqlite:
            self._control("BEGIN IMMEDIATE")

    def lock_keys(self) -> None:
        """PostgreSQL: take the advisory locks of the keys, in sorted order."""
        if not self._sqlite:
            for lock_id in _key_lock_ids(self.plan):
                self._execute(self._sql.advisory_lock, {"b_lock": lock_id})

    def commit(self) -> None:
        """Commit; a failure rolls back and raises `StorageError`."""
        if self._sqlite:
            self._control("COMMIT")
            return
        try:
            self._connection.commit()
        except self._store._dbapi_error as error:
            wrapped = wrap_dbapi_error(error, "COMMIT", (), self._store._dbapi_error)
            raise self._store._storage_error(wrapped) from error

    def rollback(self) -> None:
        """Roll back whatever was done; never raises (the caller is already failing)."""
        try:
            if self._sqlite:
                if self._connection.driver_connection.in_transaction:
                    self._cursor.execute("ROLLBACK")
            else:
                self._connection.rollback()
        except Exception:  # noqa: BLE001 - the pool discards a connection it cannot reset
            self._connection.invalidate()

    def sweep(self) -> None:
        """Delete idle rate-limit keys, mark expired holds, delete finished holds past retention."""
        sql = self._sql
        idle = self._execute(sql.idle_keys, {"b_before": self.now - PRUNE_GRACE_SECONDS})
        for (key,) in idle.fetchall():
            if not self._sqlite:
                # Only keys no other transaction holds; our own are swept before we count them.
                lock = {"b_lock": key_lock_id("rate_limit", key)}
                if not self._execute(sql.try_advisory_lock, lock).fetchone()[0]:
                    continue
            self._execute(sql.delete_key_calls, {"b_key": key})
            self._execute(sql.delete_key, {"b_key": key})
        # Expire holds by the earlier of the two clocks: a caller's `now` ahead of this host's
        # must not end holds that other callers still count.
        moment = min(self.now_utc, utcnow())
        self._execute(sql.expire_holds, {"b_now": moment})
        before = moment - timedelta(seconds=RESERVATION_RETENTION_SECONDS)
        for status in _FINISHED:
            self._execute(sql.purge_holds, {"b_status": status, "b_before": before})

    # -- rate limits --------------------------------------------------------------------------

    def _state(self, key: str) -> _KeyState:
        window = self.window_of(key)
        state = self._states.get(key)
        if state is not None:
            return state
        row = self._execute(self._sql.get_key, {"b_key": key}).fetchone()
        if row is None:
            state = _KeyState(0, self.now, dirty=False)
        else:
            stored_count, last_at = row
            clock = max(self.now, last_at)  # the key's clock never runs backwards
            cutoff = clock - window
            params = {"b_key": key, "b_cutoff": cutoff}
            expired = self._execute(self._sql.expire_calls, params).rowcount
            count = stored_count - expired
            if count < 0:  # the row was edited by hand: count the calls instead
                count = self._execute(self._sql.count_calls, params).fetchone()[0]
            state = _KeyState(count, clock, dirty=expired > 0)
        self._states[key] = state
        return state

    def count(self, key: str) -> int:
        """Return how many calls are recorded for `key` in its window, including this block's."""
        return self._state(key).count

    def record(self, key: str) -> None:
        """Record one call for `key` at `now` (or at the key's clock, if that is later)."""
        state = self._state(key)
        self._execute(self._sql.insert_call, {"key": key, "at": state.clock})
        state.count += 1
        state.dirty = True

    def flush(self) -> None:
        """Write the count and clock of every key this transaction changed."""
        for key, state in self._states.items():
            if state.dirty:
                row = {
                    "key": key,
                    "count": state.count,
                    "last_at": state.clock,
                    "expires_at": state.clock + self.plan.windows[key],
                }
                self._execute(self._sql.upsert_key, row)

    # -- budgets ------------------------------------------------------------------------------

    def facts(self, key: str, period_start: datetime, period_end: datetime) -> BudgetFacts:
        """Return `{"spent", "reserved"}` of `key`: usage in the period, live holds at `now`."""
        self.check_budget_key(key)
        start, end = check_period(period_start, period_end)
        params = _period_params(key, start, end, self.now_utc)
        spent, reserved = self._execute(self._sql.facts, params).fetchone()
        return {"spent": int(spent), "reserved": int(reserved)}

    def reserve(
        self,
        key: str,
        amount: int,
        ttl_seconds: float,
        execution_id: str | None = None,
        *,
        currency: str = "USD",
    ) -> str:
        """Hold `amount` on `key` until `now + ttl_seconds`; return the hold's id."""
        self.check_budget_key(key)
        hold = new_hold(key, amount, ttl_seconds, execution_id, currency, self.now_utc)
        self._execute(self._sql.insert_hold, _hold_values(hold))
        return hold.id

    def settle_hold(
        self, reservation_id: str, amount: int, fields: Mapping[str, Any]
    ) -> UsageRecord | None:
        """Book a hold at `now`; None if it was booked before (the caller reads that record)."""
        self.check_open()
        row = self._execute(self._sql.lock_hold, {"b_id": reservation_id}).fetchone()
        if row is None or row[3] == ReservationStatus.SETTLED.value:
            booked = self._execute(self._sql.usage_of_hold, {"b_id": reservation_id}).fetchone()
            if booked is None:
                raise RecordNotFound(
                    f"cannot settle reservation {reservation_id}: there is no such hold "
                    "(a typo, or another store?); book the cost with record_usage instead"
                )
            return None
        key, held, currency, status, execution_id = row
        if status == ReservationStatus.RELEASED.value:
            raise StorageError(
                f"cannot settle reservation {reservation_id}: it was released (the call failed "
                "or was not made); book the cost with record_usage instead"
            )
        hold = ReservationRecord(
            id=reservation_id,
            key=key,
            amount=int(held),
            currency=currency,
            execution_id=execution_id,
            expires_at=self.now_utc,
        )
        usage = settled_usage(hold, amount, fields, self.now_utc)
        self.insert_usage(usage)
        params = {
            "b_id": reservation_id,
            "b_status": ReservationStatus.SETTLED.value,
            "b_at": self.now_utc,
            "b_usage": usage.id,
        }
        self._execute(self._sql.close_hold, params)
        return usage

    def release_hold(self, reservation_id: str) -> bool:
        """Release a hold at `now`; True if it was held."""
        self.check_open()
        params = {"b_id": reservation_id, "b_at": self.now_utc}
        if self._execute(self._sql.release_hold, params).rowcount:
            return True
        known = self._execute(self._sql.hold_exists, {"b_id": reservation_id}).fetchone()
        if known is None:
            known = self._execute(self._sql.usage_of_hold, {"b_id": reservation_id}).fetchone()
        if known is None:
            raise RecordNotFound(f"cannot release reservation {reservation_id}: no such hold")
        return False

    def insert_usage(self, usage: UsageRecord) -> None:
        """Insert a checked usage record."""
        self.check_open()
        saving = (f"record usage {usage.id}", None)
        self._execute(self._sql.insert_usage, _usage_values(usage), saving=saving)
        total = {
            "key": usage.key,
            "day": day_of(cast(datetime, usage.created_at)),
            "amount": usage.amount,
            "count": 1,
        }
        self._execute(self._sql.add_to_daily_total, total)

    # -- records ------------------------------------------------------------------------------

    def save_execution(self, record: ExecutionRecord) -> ExecutionRecord:
        """Insert or replace an execution; an existing execution keeps its `created_at`."""
        self.check_open()
        return self._write_execution(prepare_execution(record, utcnow()))

    def _write_execution(self, stored: ExecutionRecord) -> ExecutionRecord:
        parent = stored.parent_id
        saving = (
            f"save execution {stored.id}",
            f"its parent execution {parent} does not exist" if parent is not None else None,
        )
        values = _execution_values(stored)
        row = self._execute(self._sql.upsert_execution, values, saving=saving).fetchone()
        stored.created_at = self._sql.load_datetime(row[0])
        return stored

    def save_snapshot(self, record: SnapshotRecord) -> SnapshotRecord:
        """Store a state snapshot of an execution saved before or in this transaction."""
        self.check_open()
        stored = prepare_snapshot(record, utcnow())
        saving = (f"save snapshot {stored.id}", _missing_execution(stored.execution_id))
        self._execute(self._sql.insert_snapshot, _snapshot_values(stored), saving=saving)
        return stored

    def save_event(self, record: EventRecord) -> EventRecord:
        """Persist an event; its `execution_id`, when set, must name an existing execution."""
        self.check_open()
        stored = prepare_event(record, utcnow())
        missing = _missing_execution(stored.execution_id) if stored.execution_id else None
        saving = (f"save event {stored.id}", missing)
        self._execute(self._sql.insert_event, _event_values(stored), saving=saving)
        return stored

    def save_records(
        self,
        *,
        execution: ExecutionRecord | None = None,
        snapshots: Sequence[SnapshotRecord] = (),
        events: Sequence[EventRecord] = (),
        audit: AuditRecord | None = None,
    ) -> AuditRecord | None:
        """The batch of `LockedTransaction.save_records`: the snapshots in one statement
        (`executemany`), the events in another. The records handed over are written as they
        are (their JSON not copied or checked again: it becomes JSON text)."""
        self.check_open()
        now = utcnow()
        if execution is not None:
            execution.created_at = execution.created_at or now
            execution.updated_at = now
            self._write_execution(execution)
        if snapshots:
            stamp_in_order(snapshots, "captured_at")
            self._execute_many(
                self._sql.insert_snapshot,
                [_snapshot_values(snapshot) for snapshot in snapshots],
                saving=(
                    f"save snapshot {', '.join(s.id for s in snapshots)}",
                    _missing_execution(snapshots[0].execution_id),
                ),
            )
        if events:
            stamp_in_order(events, "timestamp")
            owners = sorted({e.execution_id for e in events if e.execution_id})
            self._execute_many(
                self._sql.insert_event,
                [_event_values(event) for event in events],
                saving=(
                    f"save event {', '.join(e.id for e in events)}",
                    _missing_execution(", ".join(owners)) if owners else None,
                ),
            )
        return self._append_sealed(audit, audit.timestamp is not None) if audit else None

    def append_audit_record(self, record: AuditRecord) -> AuditRecord:
        """Append a record to the hash chain, reading the head under the chain's lock."""
        self.check_open()
        stamped = record.timestamp is not None
        return self._append_sealed(prepare_audit(record, utcnow()), stamped)

    def _append_sealed(self, prepared: AuditRecord, stamped: bool) -> AuditRecord:
        """Seal `prepared` itself after the chain's head and insert it."""
        if self._audit_head is None:
            if not self._sqlite:
                self._execute(self._sql.advisory_lock, {"b_lock": AUDIT_CHAIN_LOCK_ID})
            head = self._execute(self._sql.audit_head).fetchone()
            self._audit_head = (head[0], head[1]) if head is not None else (0, GENESIS_HASH)
        if not stamped:
            prepared.timestamp = utcnow()  # taken under the lock: time follows the chain
        seq, prev_hash = self._audit_head
        seal_in_place(prepared, seq + 1, prev_hash)
        saving = (f"append audit record {prepared.id}", None)
        self._execute(self._sql.insert_audit, _audit_values(prepared), saving=saving)
        self._audit_head = (seq + 1, cast(str, prepared.hash))
        return prepared


def _missing_execution(execution_id: str) -> str:
    return f"execution {execution_id} does not exist (save the execution first, or it was deleted)"


# -- statements and row <-> record --------------------------------------------------------------


def _upsert_statement(backend: str) -> Any:
    """INSERT ... ON CONFLICT (id) DO UPDATE every column but created_at, RETURNING created_at."""
    stmt: Any = (sqlite_dialect if backend == "sqlite" else pg_dialect).insert(_EXECUTIONS)
    replace = {
        column.name: stmt.excluded[column.name]
        for column in _EXECUTIONS.c
        if column.name not in ("id", "created_at")
    }
    stmt = stmt.on_conflict_do_update(index_elements=[_EXECUTIONS.c.id], set_=replace)
    return stmt.returning(_EXECUTIONS.c.created_at)


def _add_to_daily_total_statement(backend: str) -> Any:
    """INSERT a key's daily total, or add the new usage to it."""
    stmt: Any = (sqlite_dialect if backend == "sqlite" else pg_dialect).insert(_DAILY)
    return stmt.on_conflict_do_update(
        index_elements=[_DAILY.c.key, _DAILY.c.day],
        set_={
            "amount": _DAILY.c.amount + stmt.excluded.amount,
            "count": _DAILY.c.count + stmt.excluded.count,
        },
    )


def _upsert_key_statement(backend: str) -> Any:
    """INSERT a rate-limit key's row, or replace its count, clock and expiry."""
    stmt: Any = (sqlite_dialect if backend == "sqlite" else pg_dialect).insert(_KEYS)
    replace = {name: stmt.excluded[name] for name in ("count", "last_at", "expires_at")}
    return stmt.on_conflict_do_update(index_elements=[_KEYS.c.key], set_=replace)


def _sweep_hold_statements(backend: str) -> tuple[Any, Any]:
    """Mark up to `SWEEP_BATCH` expired holds; delete up to as many finished holds of a status.

    On PostgreSQL rows another transaction has locked (a hold being settled) are skipped.
    """
    expired = (
        select(_HOLDS.c.id)
        .where(_HOLDS.c.status == _HELD, _HOLDS.c.expires_at <= bindparam("b_now"))
        .order_by(_HOLDS.c.expires_at)
        .limit(SWEEP_BATCH)
    )
    finished = (
        select(_HOLDS.c.id)
        .where(
            _HOLDS.c.status == bindparam("b_status"),
            _HOLDS.c.expires_at <= bindparam("b_before", type_=UTCDateTime()),
        )
        .limit(SWEEP_BATCH)
    )
    if backend == "postgresql":
        expired = expired.with_for_update(skip_locked=True)
        finished = finished.with_for_update(skip_locked=True)
    expire = (
        update(_HOLDS)
        .where(_HOLDS.c.id.in_(expired.scalar_subquery()))
        .values(status=ReservationStatus.EXPIRED.value, closed_at=_HOLDS.c.expires_at)
    )
    purge = delete(_HOLDS).where(_HOLDS.c.id.in_(finished.scalar_subquery()))
    return expire, purge


_COMPILED: dict[tuple[str, str], _Compiled] = {}
_COMPILED_LOCK = threading.Lock()


def _compiled_for(dialect: Any) -> _Compiled:
    """The statements compiled for this kind of dialect, once per process (~20 ms).

    Under a lock: stores created at once in several threads compile the shared statements once.
    """
    kind = (dialect.name, dialect.driver)
    with _COMPILED_LOCK:
        compiled = _COMPILED.get(kind)
        if compiled is None:
            compiled = _COMPILED[kind] = _Compiled(dialect, dialect.name)
        return compiled


class _Compiled:
    """The statements of a unit of work, compiled once for the store's dialect (see `_raw`)."""

    def __init__(self, dialect: Any, backend: str) -> None:
        def raw(statement: Any, table: Table | None = None) -> RawStatement:
            keys = [column.key for column in table.c] if table is not None else None
            return RawStatement(statement, dialect, keys)

        calls = [column.key for column in _CALLS.c if column.key != "id"]
        self.get_key = raw(_GET_KEY)
        self.expire_calls = raw(_EXPIRE_CALLS)
        self.count_calls = raw(_COUNT_CALLS)
        self.insert_call = RawStatement(_INSERT_CALL, dialect, calls)
        self.upsert_key = raw(_upsert_key_statement(backend), _KEYS)
        self.idle_keys = raw(_IDLE_KEYS)
        self.delete_key_calls = raw(_DELETE_KEY_CALLS)
        self.delete_key = raw(_DELETE_KEY)
        self.advisory_lock = raw(_ADVISORY_LOCK)
        self.try_advisory_lock = raw(_TRY_ADVISORY_LOCK)
        self.upsert_execution = raw(_upsert_statement(backend), _EXECUTIONS)
        self.insert_snapshot = raw(_INSERT_SNAPSHOT, _SNAPSHOTS)
        self.insert_event = raw(_INSERT_EVENT, _EVENTS)
        self.audit_head = raw(_AUDIT_HEAD)
        self.insert_audit = raw(_INSERT_AUDIT, _AUDIT)
        self.facts = raw(_FACTS)
        self.insert_hold = raw(_INSERT_HOLD, _HOLDS)
        self.insert_usage = raw(_INSERT_USAGE, _USAGE)
        self.add_to_daily_total = raw(_add_to_daily_total_statement(backend), _DAILY)
        self.lock_hold = raw(
            select(_HOLDS.c.key, _HOLDS.c.amount, _HOLDS.c.currency, _HOLDS.c.status)
            .add_columns(_HOLDS.c.execution_id)
            .where(_HOLDS.c.id == bindparam("b_id"))
            .with_for_update()
        )
        self.hold_exists = raw(select(_HOLDS.c.id).where(_HOLDS.c.id == bindparam("b_id")))
        self.usage_of_hold = raw(
            select(_USAGE.c.id).where(_USAGE.c.reservation_id == bindparam("b_id"))
        )
        self.close_hold = raw(_CLOSE_HOLD)
        self.release_hold = raw(_RELEASE_HOLD)
        expire_holds, purge_holds = _sweep_hold_statements(backend)
        self.expire_holds = raw(expire_holds)
        self.purge_holds = raw(purge_holds)
        load = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
        self.load_datetime: Any = load if load is not None else (lambda value: value)


def _update_statement(columns: frozenset[str]) -> Any:
    """UPDATE of the given columns of one execution, RETURNING the whole row."""
    assignments = {
        name: bindparam(f"b_{name}", type_=_EXECUTIONS.c[name].type) for name in sorted(columns)
    }
    return (
        update(_EXECUTIONS)
        .where(_EXECUTIONS.c.id == bindparam("b_id"))
        .values(assignments)
        .returning(*_EXECUTIONS.c)
    )


def _page(stmt: Select[Any], limit: int | None, offset: int) -> Select[Any]:
    if limit is not None:
        if limit < 0:
            raise StorageError(f"limit must be >= 0 or None, got {limit}")
        stmt = stmt.limit(limit)
    if offset:
        if offset < 0:
            raise StorageError(f"offset must be >= 0, got {offset}")
        stmt = stmt.offset(offset)
    return stmt


def _audit_filters(
    execution_id: str | None, actor: str | None, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if execution_id is not None:
        conditions.append(_AUDIT.c.execution_id == execution_id)
    if actor is not None:
        conditions.append(_AUDIT.c.actor == actor)
    if since is not None:
        conditions.append(_AUDIT.c.timestamp >= as_utc(since))
    if until is not None:
        conditions.append(_AUDIT.c.timestamp < as_utc(until))
    return conditions


def _execution_values(record: ExecutionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "function_name": record.function_name,
        "function_module": record.function_module,
        "function_qualname": record.function_qualname,
        "status": record.status.value,
        "inputs": record.inputs,
        "outputs": record.outputs,
        "error": record.error,
        "error_type": record.error_type,
        "started_at": record.started_at,
        "completed_at": record.completed_at,
        "duration_ms": record.duration_ms,
        "metadata": record.metadata,
        "decision": record.decision,
        "policy_revision": record.policy_revision,
        "parent_id": record.parent_id,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def _execution_record(row: Row[Any]) -> ExecutionRecord:
    m = row._mapping
    return ExecutionRecord(
        id=m["id"],
        function_name=m["function_name"],
        function_module=m["function_module"],
        function_qualname=m["function_qualname"],
        status=ExecutionStatus(m["status"]),
        inputs=m["inputs"],
        outputs=m["outputs"],
        error=m["error"],
        error_type=m["error_type"],
        started_at=m["started_at"],
        completed_at=m["completed_at"],
        duration_ms=m["duration_ms"],
        metadata=m["metadata"] if m["metadata"] is not None else {},
        decision=m["decision"],
        policy_revision=m["policy_revision"],
        parent_id=m["parent_id"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _snapshot_values(record: SnapshotRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "execution_id": record.execution_id,
        "checkpoint": record.checkpoint,
        "captured_at": record.captured_at,
        "state": record.state,
    }


def _snapshot_record(row: Row[Any]) -> SnapshotRecord:
    m = row._mapping
    return SnapshotRecord(
        id=m["id"],
        execution_id=m["execution_id"],
        checkpoint=m["checkpoint"],
        captured_at=m["captured_at"],
        state=m["state"],
    )


def _event_values(record: EventRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "execution_id": record.execution_id,
        "event_type": record.event_type,
        "timestamp": record.timestamp,
        "data": record.data,
    }


def _event_record(row: Row[Any]) -> EventRecord:
    m = row._mapping
    return EventRecord(
        id=m["id"],
        execution_id=m["execution_id"],
        event_type=m["event_type"],
        timestamp=m["timestamp"],
        data=m["data"],
    )


def _audit_values(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "seq": record.seq,
        "execution_id": record.execution_id,
        "timestamp": record.timestamp,
        "actor": record.actor,
        "action": record.action,
        "decision": record.decision,
        "reasons": record.reasons,
        "policy_revision": record.policy_revision,
        "duration_ms": record.duration_ms,
        "record": record.record,
        "body_hash": record.body_hash,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
        "redacted_at": record.redacted_at,
    }


def _audit_record(row: Row[Any]) -> AuditRecord:
    m = row._mapping
    return AuditRecord(
        id=m["id"],
        seq=m["seq"],
        execution_id=m["execution_id"],
        timestamp=m["timestamp"],
        actor=m["actor"],
        action=m["action"],
        decision=m["decision"],
        reasons=m["reasons"],
        policy_revision=m["policy_revision"],
        duration_ms=m["duration_ms"],
        record=m["record"],
        body_hash=m["body_hash"],
        prev_hash=m["prev_hash"],
        hash=m["hash"],
        redacted_at=m["redacted_at"],
    )


def _usage_values(record: UsageRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "key": record.key,
        "amount": record.amount,
        "currency": record.currency,
        "created_at": record.created_at,
        "execution_id": record.execution_id,
        "correlation_id": record.correlation_id,
        "reservation_id": record.reservation_id,
        "org_id": record.org_id,
        "user_id": record.user_id,
        "provider": record.provider,
        "model": record.model,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cost_type": record.cost_type,
        "metadata": record.metadata,
    }


def _usage_record(row: Row[Any]) -> UsageRecord:
    m = row._mapping
    return UsageRecord(
        id=m["id"],
        key=m["key"],
        amount=int(m["amount"]),
        currency=m["currency"],
        created_at=m["created_at"],
        execution_id=m["execution_id"],
        correlation_id=m["correlation_id"],
        reservation_id=m["reservation_id"],
        org_id=m["org_id"],
        user_id=m["user_id"],
        provider=m["provider"],
        model=m["model"],
        input_tokens=m["input_tokens"],
        output_tokens=m["output_tokens"],
        cost_type=m["cost_type"],
        metadata=m["metadata"] if m["metadata"] is not None else {},
    )


def _hold_values(record: ReservationRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "key": record.key,
        "amount": record.amount,
        "currency": record.currency,
        "status": record.status.value,
        "execution_id": record.execution_id,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "closed_at": record.closed_at,
        "usage_id": record.usage_id,
    }


def _hold_record(row: Row[Any]) -> ReservationRecord:
    m = row._mapping
    return ReservationRecord(
        id=m["id"],
        key=m["key"],
        amount=int(m["amount"]),
        currency=m["currency"],
        status=ReservationStatus(m["status"]),
        execution_id=m["execution_id"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        closed_at=m["closed_at"],
        usage_id=m["usage_id"],
    )
