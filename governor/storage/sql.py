"""`SQLStorage`: the store on SQLAlchemy 2, a SQLite file by default, PostgreSQL by URL.

How exactness is kept:
- **SQLite**: WAL, `busy_timeout`, `foreign_keys=ON` on every connection; pysqlite's own BEGIN is
  switched off (`isolation_level = None`) and the engine emits `BEGIN` for reads and
  `BEGIN IMMEDIATE` for every write transaction (SQLAlchemy's documented recipe), so a transaction
  that reads then writes (the audit chain head, a rate-limit count) holds the database's write lock
  from its first statement, across every process sharing the file. Writers in one process also
  queue on a lock per file first, so threads wait in order instead of polling the busy handler.
- **PostgreSQL** (`postgresql+psycopg://...`): READ COMMITTED, and `pg_advisory_xact_lock` on a
  stable 64-bit hash of each rate-limit key (sorted, so two windows never deadlock) or of the audit
  chain, released at commit.
- `claim_execution` is one `UPDATE ... WHERE id = :id AND status = :from`: exactly one claimer
  sees a row change.

Statements are SQLAlchemy Core on short `with engine.connect() as conn, conn.begin():`
transactions over the tables of `governor.storage.models`: these methods run on the path of every
governed call, and the ORM unit of work would only add overhead to single-statement writes.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
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
from governor.storage._audit import GENESIS_HASH, REDACTED_BODY, find_break, seal
from governor.storage._migrate import upgrade_to_head
from governor.storage._prepare import (
    prepare_audit,
    prepare_changes,
    prepare_event,
    prepare_execution,
    prepare_snapshot,
)
from governor.storage._window import (
    PRUNE_GRACE_SECONDS,
    SWEEP_BATCH,
    SWEEP_EVERY,
    LockedWindow,
    prepare_window,
)
from governor.storage.base import RateLimitWindow, StorageBackend
from governor.storage.models import (
    AuditRow,
    EventRow,
    ExecutionRow,
    RateLimitCallRow,
    RateLimitKeyRow,
    SnapshotRow,
    UTCDateTime,
)
from governor.storage.records import (
    AuditRecord,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    SnapshotRecord,
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


class SQLStorage(StorageBackend):
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
        self._windows = 0
        self._sweep_guard = threading.Lock()
        self._sqlite_file: str | None = None
        # Serialises writers in this process (SQLite); every statement for in-memory SQLite.
        self._write_lock: AbstractContextManager[Any] = nullcontext()
        self._read_lock: AbstractContextManager[Any] = nullcontext()
        options = dict(engine_options or {})
        if self.backend == "sqlite":
            self._engine = self._sqlite_engine(busy_timeout, sqlite_synchronous.upper(), options)
        else:
            options.setdefault("pool_pre_ping", True)
            options.setdefault("isolation_level", "READ COMMITTED")
            self._engine = create_engine(self._url, **options)
        self._write_engine = self._engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._upsert_execution = _upsert_statement(self.backend)
        self._upsert_key = _upsert_key_statement(self.backend)
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
                    cursor.execute("PRAGMA journal_mode = WAL")
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
        with self._write_lock, self._errors(), self._write_engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A read transaction (one consistent snapshot on SQLite)."""
        with self._read_lock, self._errors(), self._engine.connect() as conn, conn.begin():
            yield conn

    def _execution_exists(self, execution_id: str) -> bool:
        with self._read() as conn:
            found = conn.execute(_GET_EXECUTION, {"b_id": execution_id}).first()
        return found is not None

    def _missing_or_duplicate(
        self, error: sa_exc.IntegrityError, kind: str, record_id: str, execution_id: str | None
    ) -> StorageError:
        if execution_id is not None and not self._execution_exists(execution_id):
            return RecordNotFound(
                f"cannot save {kind} {record_id}: execution {execution_id} does not exist "
                "(save the execution first, or it was deleted)"
            )
        return StorageError(f"cannot save {kind} {record_id}: {self._storage_error(error)}")

    # -- executions ---------------------------------------------------------------------------

    def save_execution(self, record: ExecutionRecord) -> ExecutionRecord:
        """Insert or replace an execution; an existing execution keeps its `created_at`."""
        stored = prepare_execution(record, utcnow())
        try:
            with self._write() as conn:
                result = conn.execute(self._upsert_execution, _execution_values(stored))
                stored.created_at = result.scalar_one()
        except StorageError as error:
            cause = error.__cause__
            if isinstance(cause, sa_exc.IntegrityError) and stored.parent_id is not None:
                raise self._missing_or_duplicate(
                    cause, "execution", stored.id, stored.parent_id
                ) from cause
            raise
        return stored

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
        try:
            with self._write() as conn:
                row = conn.execute(stmt, params).first()
        except StorageError as error:
            cause = error.__cause__
            if isinstance(cause, sa_exc.IntegrityError) and values.get("parent_id") is not None:
                raise self._missing_or_duplicate(
                    cause, "execution", execution_id, values["parent_id"]
                ) from cause
            raise
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
        stored = prepare_snapshot(record, utcnow())
        try:
            with self._write() as conn:
                conn.execute(_INSERT_SNAPSHOT, _snapshot_values(stored))
        except StorageError as error:
            if isinstance(error.__cause__, sa_exc.IntegrityError):
                raise self._missing_or_duplicate(
                    error.__cause__, "snapshot", stored.id, stored.execution_id
                ) from error.__cause__
            raise
        return stored

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
        stored = prepare_event(record, utcnow())
        try:
            with self._write() as conn:
                conn.execute(_INSERT_EVENT, _event_values(stored))
        except StorageError as error:
            if isinstance(error.__cause__, sa_exc.IntegrityError):
                raise self._missing_or_duplicate(
                    error.__cause__, "event", stored.id, stored.execution_id
                ) from error.__cause__
            raise
        return stored

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
        stamped = record.timestamp is not None
        prepared = prepare_audit(record, utcnow())
        with self._write() as conn:
            if self.backend == "postgresql":
                conn.execute(_ADVISORY_LOCK, {"b_lock": AUDIT_CHAIN_LOCK_ID})
            head = conn.execute(_AUDIT_HEAD).first()
            if not stamped:
                prepared.timestamp = utcnow()  # taken under the lock: time follows the chain
            seq, prev_hash = (head.seq + 1, head.hash) if head is not None else (1, GENESIS_HASH)
            sealed = seal(prepared, seq, prev_hash)
            conn.execute(_INSERT_AUDIT, _audit_values(sealed))
        return sealed

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

    # -- rate limits --------------------------------------------------------------------------

    @contextmanager
    def rate_limit_window(
        self, keys: Sequence[str], window_seconds: float, now: float
    ) -> Iterator[RateLimitWindow]:
        """Lock `keys` (SQLite: the write lock; PostgreSQL: advisory locks), yield the window."""
        locked = prepare_window(keys, window_seconds, now)
        with self._write() as conn:
            if self.backend == "postgresql":
                for lock_id in sorted({key_lock_id("rate_limit", key) for key in locked}):
                    conn.execute(_ADVISORY_LOCK, {"b_lock": lock_id})
            self._sweep_idle_keys(conn, float(now))
            window = _SQLWindow(conn, locked, float(window_seconds), float(now))
            try:
                yield window
            finally:
                window.closed = True
            # Reached only when the block did not raise: write the keys' counts and clocks.
            window.flush(self._upsert_key)

    def _sweep_idle_keys(self, conn: Connection, now: float) -> None:
        """In every `SWEEP_EVERY`-th window, delete keys idle for their window plus the grace."""
        with self._sweep_guard:
            self._windows += 1
            due = self._windows % SWEEP_EVERY == 1
        if not due:
            return
        idle = conn.execute(_IDLE_KEYS, {"b_before": now - PRUNE_GRACE_SECONDS}).scalars().all()
        for key in idle:
            if self.backend == "postgresql":
                # Only keys no other window holds; our own are swept before we count them.
                lock = {"b_lock": key_lock_id("rate_limit", key)}
                if not conn.execute(_TRY_ADVISORY_LOCK, lock).scalar_one():
                    continue
            conn.execute(_DELETE_KEY_CALLS, {"b_key": key})
            conn.execute(_DELETE_KEY, {"b_key": key})

    # -- lifecycle ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Delete every record of every kind (for tests)."""
        with self._write() as conn:
            for table in (_CALLS, _KEYS, _AUDIT, _EVENTS, _SNAPSHOTS, _EXECUTIONS):
                conn.execute(delete(table))

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()


class _KeyState:
    """What a window knows about one key: its count, its clock, and whether to write them."""

    __slots__ = ("count", "clock", "dirty")

    def __init__(self, count: int, clock: float, dirty: bool) -> None:
        self.count = count
        self.clock = clock
        self.dirty = dirty


class _SQLWindow(LockedWindow):
    """A rate-limit window inside an open, locked write transaction.

    Counting reads the key's row (count and clock) and deletes the calls that left the window;
    recording inserts a call; `flush` writes the key's row back when the block succeeds.
    """

    def __init__(
        self, conn: Connection, keys: tuple[str, ...], window_seconds: float, now: float
    ) -> None:
        super().__init__(keys, window_seconds, now)
        self._conn = conn
        self._states: dict[str, _KeyState] = {}

    def _state(self, key: str) -> _KeyState:
        state = self._states.get(key)
        if state is not None:
            return state
        row = self._conn.execute(_GET_KEY, {"b_key": key}).first()
        if row is None:
            state = _KeyState(0, self.now, dirty=False)
        else:
            stored_count, last_at = row
            clock = max(self.now, last_at)  # the key's clock never runs backwards
            cutoff = clock - self.window_seconds
            expired = self._conn.execute(_EXPIRE_CALLS, {"b_key": key, "b_cutoff": cutoff})
            count = stored_count - expired.rowcount
            if count < 0:  # the row was edited by hand: count the calls instead
                count = self._conn.execute(
                    _COUNT_CALLS, {"b_key": key, "b_cutoff": cutoff}
                ).scalar_one()
            state = _KeyState(count, clock, dirty=expired.rowcount > 0)
        self._states[key] = state
        return state

    def count(self, key: str) -> int:
        """Return how many calls are recorded for `key` in the window, including this block's."""
        self.check(key)
        return self._state(key).count

    def record(self, key: str) -> None:
        """Record one call for `key` at `now` (or at the key's clock, if that is later)."""
        self.check(key)
        state = self._state(key)
        self._conn.execute(_INSERT_CALL, {"key": key, "at": state.clock})
        state.count += 1
        state.dirty = True

    def flush(self, upsert: Any) -> None:
        """Write the count and clock of every key this window changed."""
        rows = [
            {
                "key": key,
                "count": state.count,
                "last_at": state.clock,
                "expires_at": state.clock + self.window_seconds,
            }
            for key, state in self._states.items()
            if state.dirty
        ]
        if rows:
            self._conn.execute(upsert, rows)


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


def _upsert_key_statement(backend: str) -> Any:
    """INSERT a rate-limit key's row, or replace its count, clock and expiry."""
    stmt: Any = (sqlite_dialect if backend == "sqlite" else pg_dialect).insert(_KEYS)
    replace = {name: stmt.excluded[name] for name in ("count", "last_at", "expires_at")}
    return stmt.on_conflict_do_update(index_elements=[_KEYS.c.key], set_=replace)


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
