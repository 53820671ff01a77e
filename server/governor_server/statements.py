"""The precheck path's statements, compiled once per dialect and run on the DBAPI cursor.

Every precheck authenticates its key, reads the user's budget limits and records its decision.
Through `Connection.execute` SQLAlchemy's bookkeeping around a statement costs several times the
statement itself (`governor.storage._raw` measures it), so these statements are compiled once per
dialect (`compiled`) and run on the cursor: in the store's transaction (`StoreTransaction`, what
`SQLStorage.transaction()` yields), or, for a read outside one, on a pooled DBAPI connection
(`fetch`). The SQL and the type conversions stay SQLAlchemy's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Dialect, Engine
from sqlalchemy.sql.expression import ClauseElement

from governor.storage._raw import RawStatement, wrap_dbapi_error

__all__ = ["StoreTransaction", "compiled", "fetch"]

# (id of the statement, dialect, driver) -> the statement (kept alive: its id stays its own) and
# its compiled form
_COMPILED: dict[tuple[int, str, str], tuple[ClauseElement, RawStatement]] = {}


class StoreTransaction(Protocol):
    """A store transaction that runs the caller's statements (`SQLStorage.transaction()`)."""

    @property
    def dialect(self) -> Dialect:
        """What a statement is compiled for."""
        ...

    def execute(
        self, statement: RawStatement, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        """Run `statement` once (a mapping) or once per parameter set (a list); its rows."""
        ...


def compiled(
    statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None
) -> RawStatement:
    """`statement` compiled for `dialect`, once per process: keep `statement` a module-level
    constant (it is looked up by identity)."""
    key = (id(statement), dialect.name, dialect.driver)
    found = _COMPILED.get(key)
    if found is None:
        found = _COMPILED[key] = (statement, RawStatement(statement, dialect, column_keys))
    return found[1]


def fetch(db: Engine, statement: ClauseElement, params: Mapping[str, Any]) -> list[Any]:
    """The rows of a read-only `statement` (one statement: one consistent snapshot), run on a
    pooled DBAPI connection; a DBAPI error is raised as SQLAlchemy's exception for it."""
    raw = compiled(statement, db.dialect)
    args = raw.bind(params)
    dbapi_error: type[Exception] = db.dialect.loaded_dbapi.Error
    connection = db.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(raw.sql, args)
            return list(cursor.fetchall())
        except dbapi_error as error:
            raise wrap_dbapi_error(error, raw.sql, args, dbapi_error) from error
        finally:
            cursor.close()
    finally:
        connection.close()  # back to the pool, which ends the read (a rollback on PostgreSQL)
