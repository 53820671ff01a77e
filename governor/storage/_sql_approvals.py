"""Approval requests on the SQL store: reads through SQLAlchemy Core, writes inside a unit of work.

`ApprovalTransactionMixin` gives `store.transaction()`'s unit of work its approval statements
(compiled once per dialect, run on the transaction's cursor, see `_raw`); the request is read
`FOR UPDATE` on PostgreSQL (SQLite's `BEGIN IMMEDIATE` already holds the file's write lock).
`ApprovalQueryMixin` gives `SQLStorage` its reads.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, insert, select, update

from governor.storage._approvals import (
    stages_from_json,
    stages_to_json,
    votes_from_json,
    votes_to_json,
)
from governor.storage._raw import RawStatement
from governor.storage.models import ApprovalRow, ExecutionRow, UTCDateTime
from governor.storage.records import (
    ApprovalRecord,
    ApprovalStatus,
    ExecutionStatus,
    as_status,
    utcnow,
)

APPROVALS: Table = ApprovalRow.__table__  # type: ignore[assignment]
_APPROVALS = APPROVALS
_EXECUTIONS: Table = ExecutionRow.__table__  # type: ignore[assignment]
_COLUMNS = [c.key for c in _APPROVALS.c]

_LOCK = threading.Lock()
_COMPILED: dict[tuple[str, str], _Statements] = {}


class _Statements:
    def __init__(self, dialect: Any) -> None:
        self.load = RawStatement(
            select(_APPROVALS)
            .where(_APPROVALS.c.execution_id == bindparam("b_id"))
            .with_for_update(),
            dialect,
        )
        self.insert = RawStatement(insert(_APPROVALS), dialect, _COLUMNS)
        self.update = RawStatement(
            update(_APPROVALS)
            .where(_APPROVALS.c.execution_id == bindparam("b_id"))
            .values({c: bindparam(f"u_{c}", type_=_APPROVALS.c[c].type) for c in _COLUMNS}),
            dialect,
        )
        self.move = RawStatement(
            update(_EXECUTIONS)
            .where(_EXECUTIONS.c.id == bindparam("b_id"))
            .where(_EXECUTIONS.c.status == bindparam("b_from"))
            .values(status=bindparam("b_to"), updated_at=bindparam("b_now", type_=UTCDateTime())),
            dialect,
        )
        self.loaders = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in _APPROVALS.c
        ]


def _statements(dialect: Any) -> _Statements:
    kind = (dialect.name, dialect.driver)
    with _LOCK:
        found = _COMPILED.get(kind)
        if found is None:
            found = _COMPILED[kind] = _Statements(dialect)
        return found


def _values(record: ApprovalRecord) -> dict[str, Any]:
    return {
        "execution_id": record.execution_id,
        "function_name": record.function_name,
        "function_qualname": record.function_qualname,
        "status": record.status.value,
        "stage": record.stage,
        "stages": stages_to_json(record.stages),
        "on_timeout": record.on_timeout,
        "require_reason": 1 if record.require_reason else 0,
        "args_hash": record.args_hash,
        "arguments": record.arguments,
        "inputs": record.inputs,
        "subject": record.subject,
        "reasons": list(record.reasons),
        "decision": record.decision,
        "votes": votes_to_json(record.votes),
        "requested_at": record.requested_at,
        "stage_deadline": record.stage_deadline,
        "expires_at": record.expires_at,
        "held_until": record.held_until,
        "decided_at": record.decided_at,
        "decided_by": record.decided_by,
        "reason": record.reason,
    }


def approval_from_mapping(m: Any) -> ApprovalRecord:
    """An `ApprovalRecord` from a row mapping whose values are already Python values."""
    return ApprovalRecord(
        execution_id=m["execution_id"],
        function_name=m["function_name"],
        function_qualname=m["function_qualname"],
        status=ApprovalStatus(m["status"]),
        stage=int(m["stage"]),
        stages=stages_from_json(m["stages"]),
        on_timeout=m["on_timeout"],
        require_reason=bool(m["require_reason"]),
        args_hash=m["args_hash"],
        arguments=m["arguments"],
        inputs=m["inputs"],
        subject=m["subject"] or {},
        reasons=list(m["reasons"] or []),
        decision=m["decision"] or {},
        votes=votes_from_json(m["votes"]),
        requested_at=m["requested_at"],
        stage_deadline=m["stage_deadline"],
        expires_at=m["expires_at"],
        held_until=m["held_until"],
        decided_at=m["decided_at"],
        decided_by=m["decided_by"],
        reason=m["reason"],
    )


class ApprovalTransactionMixin:
    """The approval writes of `_SQLTransaction` (which provides `_execute` and `_store`)."""

    _store: Any
    if TYPE_CHECKING:  # provided by _SQLTransaction

        def _execute(
            self, statement: RawStatement, values: dict[str, Any] | None = None
        ) -> Any: ...

    def _approval_sql(self) -> _Statements:
        return _statements(self._store._engine.dialect)

    def load_approval(self, execution_id: str) -> ApprovalRecord | None:
        """Read a request, locked until the commit; None if there is none."""
        sql = self._approval_sql()
        row = self._execute(sql.load, {"b_id": execution_id}).fetchone()
        if row is None:
            return None
        values = {
            key: (load(value) if load is not None else value)
            for key, value, load in zip(_COLUMNS, row, sql.loaders, strict=True)
        }
        return approval_from_mapping(values)

    def add_approval(self, record: ApprovalRecord) -> ApprovalRecord:
        """Insert a new request (its execution must be saved first, in this transaction)."""
        if record.requested_at is None:
            record.requested_at = utcnow()
        self._execute(self._approval_sql().insert, _values(record))
        return record

    def update_approval(self, record: ApprovalRecord) -> ApprovalRecord:
        """Write back a request read with `load_approval`."""
        values = {f"u_{k}": v for k, v in _values(record).items()}
        values["b_id"] = record.execution_id
        self._execute(self._approval_sql().update, values)
        return record

    def move_execution(
        self, execution_id: str, from_status: ExecutionStatus, to_status: ExecutionStatus
    ) -> bool:
        """Compare-and-set an execution's status; True if it was in `from_status`."""
        cursor = self._execute(
            self._approval_sql().move,
            {
                "b_id": execution_id,
                "b_from": as_status(from_status).value,
                "b_to": as_status(to_status).value,
                "b_now": utcnow(),
            },
        )
        return bool(cursor.rowcount == 1)


class ApprovalQueryMixin:
    """The approval reads of `SQLStorage` (which provides `_read`)."""

    if TYPE_CHECKING:  # provided by SQLStorage

        def _read(self) -> Any: ...

    def get_approval(self, execution_id: str) -> ApprovalRecord | None:
        """Return the approval request of this execution, or None."""
        with self._read() as conn:
            row = conn.execute(
                select(_APPROVALS).where(_APPROVALS.c.execution_id == execution_id)
            ).first()
        return approval_from_mapping(row._mapping) if row is not None else None

    def list_approvals(
        self,
        *,
        status: ApprovalStatus | str | None = None,
        function_name: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[ApprovalRecord]:
        """Return approval requests, oldest first, optionally of one status and/or function."""
        stmt = select(_APPROVALS).order_by(_APPROVALS.c.requested_at, _APPROVALS.c.execution_id)
        if status is not None:
            stmt = stmt.where(_APPROVALS.c.status == ApprovalStatus(status).value)
        if function_name is not None:
            stmt = stmt.where(_APPROVALS.c.function_name == function_name)
        if limit is not None:
            stmt = stmt.limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return [approval_from_mapping(r._mapping) for r in rows]
