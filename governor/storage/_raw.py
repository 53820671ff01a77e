"""SQLAlchemy Core statements compiled once and run straight on the DBAPI cursor.

A governed call's unit of work is about eight short statements. Through `Connection.execute`
each costs ~25 µs of SQLAlchemy bookkeeping (execution context, events, result wrapping) around a
~2 µs SQLite statement, and `connect()` + `begin()` + commit another ~55 µs: several times the
work itself. So `store.transaction()` compiles its statements once per dialect with SQLAlchemy
(the SQL, the order and names of the parameters, each parameter's bind processor: UTC datetimes,
JSON text, psycopg's JSON wrapper) and runs them on a pooled DBAPI connection with
`cursor.execute(sql, params)`. The schema, the SQL text and the type conversions stay
SQLAlchemy's; only the per-call machinery is skipped. DBAPI errors are wrapped into SQLAlchemy's
exception classes, so the store reports them as it does everywhere else.

Limits, checked when a statement is compiled: no expanding (`IN` list) parameters, and results
come back as plain DBAPI rows (the caller converts the few typed columns it reads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Dialect
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement


class RawStatement:
    """One statement compiled for one dialect; `bind(values)` makes its DBAPI parameters."""

    __slots__ = ("sql", "_names", "_processors", "_defaults", "_positional")

    def __init__(
        self,
        statement: ClauseElement,
        dialect: Dialect,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        compiled = cast(
            SQLCompiler,
            statement.compile(
                dialect=dialect, column_keys=list(column_keys) if column_keys is not None else None
            ),
        )
        self.sql = compiled.string
        self._positional = bool(compiled.positional)
        processors: dict[str, Callable[[Any], Any]] = {}
        defaults: dict[str, Any] = {}
        for bind, name in compiled.bind_names.items():
            if bind.expanding:
                raise ValueError(f"expanding parameter {name!r} in {self.sql!r}: not supported")
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
            if not bind.required:
                defaults[name] = bind.effective_value
        if self._positional:
            self._names: tuple[str, ...] = tuple(compiled.positiontup or ())
        else:
            self._names = tuple(dict.fromkeys(compiled.bind_names.values()))
        self._processors = processors
        self._defaults = defaults

    def bind(self, values: Mapping[str, Any] | None) -> Sequence[Any] | dict[str, Any]:
        """Return the DBAPI parameters for `values` (by bind name), with defaults and processors."""
        processors = self._processors
        given = values if values is not None else {}
        out = []
        for name in self._names:
            # A KeyError here is a required parameter that was not given: a bug of the caller.
            value = given[name] if name in given else self._defaults[name]
            processor = processors.get(name)
            out.append(processor(value) if processor is not None else value)
        if self._positional:
            return tuple(out)
        return dict(zip(self._names, out, strict=True))


def wrap_dbapi_error(
    error: Exception, statement: str, params: Any, dbapi_error: type[Exception]
) -> sa_exc.SQLAlchemyError:
    """Return SQLAlchemy's exception for a DBAPI error (IntegrityError, OperationalError, ...)."""
    wrapped = sa_exc.DBAPIError.instance(
        statement, params, error, dbapi_error, ismulti=False, hide_parameters=True
    )
    return wrapped
