"""The decision records: every precheck and postcheck, per organisation, for analytics.

Recording a decision also adds it to the organisation's daily counts per decision, tool and user
(`governor_decision_daily_counts`), in the same transaction, so analytics over long ranges read
those instead of every decision. Decisions must therefore be recorded through `record_decision`.

Every precheck records one, so its two statements are compiled once per dialect and run on the
transaction's DBAPI cursor (`governor.storage._raw`, as the store runs its own units of work):
through `Connection.execute` the bookkeeping around each costs more than the statement. Given the
store (not a bare engine), the record is written in the store's own write transaction, which
takes turns with the store's other writers in this process: concurrent writers on one SQLite file
would otherwise meet SQLite's busy handler, which sleeps whole milliseconds between retries.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Date,
    Dialect,
    Engine,
    Table,
    delete,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite

from governor.storage import SQLStorage
from governor.storage._raw import RawStatement, wrap_dbapi_error
from governor_server.models import DecisionDailyCountRow, DecisionRow
from governor_server.observability import annotate

__all__ = [
    "DecisionEntry",
    "is_tool_call",
    "list_decisions",
    "rebuild_daily_counts",
    "record_decision",
]

_DECISIONS = cast(Table, DecisionRow.__table__)
_DAILY = cast(Table, DecisionDailyCountRow.__table__)
_COMPILED: dict[tuple[str, str], _Statements] = {}  # (dialect, driver) -> its statements


def is_tool_call(tool: str, tags: Sequence[str]) -> bool:
    """A tool call (wire protocol §4.21): tagged `tool_call`, or a tool other than `model.chat`."""
    return tool != "model.chat" or "tool_call" in tags


@dataclass(frozen=True)
class DecisionEntry:
    """One recorded decision (no request text: reasons name kinds of findings, never values)."""

    org_id: str
    user_id: str
    phase: str
    tool: str
    decision: str
    scope: str | None = None
    reasons: Sequence[str] = ()
    tags: Sequence[str] = ()
    corr_id: str | None = None
    policy_revision: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def record_decision(db: SQLStorage | Engine, entry: DecisionEntry) -> DecisionEntry:
    """Commit `entry` and its daily counts (before the caller is answered); returns it.

    `db` is the store (preferred: see the module docstring) or a SQLAlchemy engine.
    """
    tool_call = is_tool_call(entry.tool, entry.tags)
    day = entry.created_at.astimezone(UTC).date()
    row = {
        "id": entry.id,
        "org_id": entry.org_id,
        "user_id": entry.user_id,
        "phase": entry.phase,
        "tool": entry.tool,
        "scope": entry.scope,
        "decision": entry.decision,
        "reasons": list(entry.reasons),
        "tags": list(entry.tags),
        "corr_id": entry.corr_id,
        "policy_revision": entry.policy_revision,
        "created_at": entry.created_at,
        "tool_call": tool_call,
    }
    counts = [
        {
            "org_id": entry.org_id,
            "day": day,
            "tool_call": tool_call,
            "dimension": dimension,
            "value": value,
            "count": 1,
        }
        for dimension, value in (
            ("decision", entry.decision),
            ("tool", entry.tool),
            ("user", entry.user_id),
        )
    ]
    with _write(db) as conn:
        statements = _statements(conn.dialect)
        _run(conn, statements.insert, [row])
        _run(conn, statements.count, counts)
    annotate(org_id=entry.org_id, decision=entry.decision, reasons=list(entry.reasons))
    return entry


def _write(db: SQLStorage | Engine) -> AbstractContextManager[Connection]:
    """A write transaction: the store's (BEGIN IMMEDIATE after its in-process writer lock; the
    store has no public form of it yet), or a plain one on a bare engine."""
    if isinstance(db, SQLStorage):
        return db._write()
    return db.begin()


class _Statements:
    """The record's two statements, compiled for one dialect and driver."""

    def __init__(self, dialect: Dialect) -> None:
        self.insert = RawStatement(insert(_DECISIONS), dialect, [c.key for c in _DECISIONS.c])
        upsert: Any = (sqlite if dialect.name == "sqlite" else postgresql).insert(_DAILY)
        upsert = upsert.on_conflict_do_update(
            index_elements=[
                _DAILY.c.org_id,
                _DAILY.c.day,
                _DAILY.c.tool_call,
                _DAILY.c.dimension,
                _DAILY.c.value,
            ],
            set_={"count": _DAILY.c.count + upsert.excluded["count"]},
        )
        self.count = RawStatement(upsert, dialect, [c.key for c in _DAILY.c])


def _statements(dialect: Dialect) -> _Statements:
    key = (dialect.name, dialect.driver)
    statements = _COMPILED.get(key)
    if statements is None:
        statements = _COMPILED[key] = _Statements(dialect)
    return statements


def _run(conn: Connection, statement: RawStatement, rows: list[dict[str, Any]]) -> None:
    """Run `statement` for `rows` on the DBAPI cursor of `conn`'s transaction; a DBAPI error
    is raised as SQLAlchemy's exception for it (an `IntegrityError` for a duplicate id)."""
    params: list[Any] = [statement.bind(row) for row in rows]
    dbapi_error: type[Exception] = conn.dialect.loaded_dbapi.Error
    cursor = conn.connection.cursor()
    try:
        if len(params) == 1:
            cursor.execute(statement.sql, params[0])
        else:
            cursor.executemany(statement.sql, params)
    except dbapi_error as error:
        raise wrap_dbapi_error(error, statement.sql, params, dbapi_error) from error
    finally:
        cursor.close()


def rebuild_daily_counts(db: Engine, org_id: str) -> None:
    """Recount the organisation's daily counts from its decisions (after inserting them in bulk,
    bypassing `record_decision`): one `INSERT ... SELECT ... GROUP BY` per dimension."""
    with db.begin() as conn:
        if conn.dialect.name == "sqlite":
            day: Any = func.date(_DECISIONS.c.created_at)
        else:
            day = sql_cast(func.timezone("UTC", _DECISIONS.c.created_at), Date)
        conn.execute(delete(_DAILY).where(_DAILY.c.org_id == org_id))
        for dimension, column in (
            ("decision", _DECISIONS.c.decision),
            ("tool", _DECISIONS.c.tool),
            ("user", _DECISIONS.c.user_id),
        ):
            grouped = (
                select(
                    _DECISIONS.c.org_id,
                    day,
                    _DECISIONS.c.tool_call,
                    literal(dimension),
                    column,
                    func.count(),
                )
                .where(_DECISIONS.c.org_id == org_id)
                .group_by(_DECISIONS.c.org_id, day, _DECISIONS.c.tool_call, column)
            )
            conn.execute(
                insert(_DAILY).from_select(
                    ["org_id", "day", "tool_call", "dimension", "value", "count"], grouped
                )
            )


def list_decisions(db: Engine, org_id: str, *, limit: int = 100) -> list[DecisionEntry]:
    """The organisation's decisions, newest first (never another organisation's)."""
    stmt = (
        select(_DECISIONS)
        .where(_DECISIONS.c.org_id == org_id)
        .order_by(_DECISIONS.c.created_at.desc(), _DECISIONS.c.id.desc())
        .limit(limit)
    )
    with db.connect() as conn:
        return [
            DecisionEntry(
                org_id=row.org_id,
                user_id=row.user_id,
                phase=row.phase,
                tool=row.tool,
                decision=row.decision,
                scope=row.scope,
                reasons=tuple(row.reasons),
                tags=tuple(row.tags),
                corr_id=row.corr_id,
                policy_revision=row.policy_revision,
                id=row.id,
                created_at=row.created_at,
            )
            for row in conn.execute(stmt)
        ]
