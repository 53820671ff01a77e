"""The SQL tables of the store (SQLAlchemy 2 declarative, typed `Mapped[...]` columns).

Table names start with `governor_` and Alembic's version table is `governor_alembic_version`, so the
store can share a PostgreSQL database with an application that has its own tables and migrations.
A schema change here needs a new revision in `governor/storage/migrations/versions/`;
`tests/storage/test_migrations.py` fails while the two disagree.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

VERSION_TABLE = "governor_alembic_version"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: `json.dumps(value, ensure_ascii=False, allow_nan=False)`, without building an encoder per call.
_JSON_TEXT = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


class JSONDocument(TypeDecorator[Any]):
    """A JSON column: SQLAlchemy `JSON` (SQL NULL for None); on SQLite, JSON text in a TEXT column.

    SQLite gives a column declared `JSON` NUMERIC affinity: a document that is a bare number
    (`10**30`, `0.1`) would be converted to SQLite's integer or real and could come back changed,
    which would also break the audit chain's hashes. Declared TEXT, the JSON text is kept verbatim.
    Old revisions import this type: never change what it renders, add a new type instead.
    """

    impl = JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(JSON(none_as_null=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and value is not None:
            return _JSON_TEXT.encode(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and value is not None:
            return json.loads(value)
        return value


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ExecutionRow(Base):
    """One governed call (`ExecutionRecord`)."""

    __tablename__ = "governor_executions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    function_name: Mapped[str] = mapped_column(String(255))
    function_module: Mapped[str] = mapped_column(String(255))
    function_qualname: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(32))
    inputs: Mapped[Any] = mapped_column(JSONDocument)
    outputs: Mapped[Any] = mapped_column(JSONDocument, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float | None] = mapped_column(Double)
    # `metadata` is reserved by SQLAlchemy's declarative classes, hence the trailing underscore.
    metadata_: Mapped[Any] = mapped_column("metadata", JSONDocument)
    decision: Mapped[str | None] = mapped_column(String(32))
    policy_revision: Mapped[str | None] = mapped_column(String(255))
    parent_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("governor_executions.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_governor_executions_status_created", "status", "created_at"),
        Index("ix_governor_executions_function_created", "function_name", "created_at"),
    )


class SnapshotRow(Base):
    """A state snapshot of an execution at a checkpoint (`SnapshotRecord`)."""

    __tablename__ = "governor_snapshots"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    execution_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("governor_executions.id", ondelete="CASCADE")
    )
    checkpoint: Mapped[str] = mapped_column(String(255))
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[Any] = mapped_column(JSONDocument, nullable=True)

    __table_args__ = (
        Index("ix_governor_snapshots_execution_captured", "execution_id", "captured_at"),
    )


class EventRow(Base):
    """A persisted lifecycle event (`EventRecord`)."""

    __tablename__ = "governor_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    execution_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("governor_executions.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    data: Mapped[Any] = mapped_column(JSONDocument, nullable=True)

    __table_args__ = (
        Index("ix_governor_events_execution_timestamp", "execution_id", "timestamp"),
        Index("ix_governor_events_type_timestamp", "event_type", "timestamp"),
    )


class AuditRow(Base):
    """One link of the audit hash chain (`AuditRecord`); no foreign key, it outlives executions."""

    __tablename__ = "governor_audit_records"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    execution_id: Mapped[str | None] = mapped_column(String(64), index=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str | None] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(255))
    decision: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[Any] = mapped_column(JSONDocument)
    policy_revision: Mapped[str | None] = mapped_column(String(255))
    duration_ms: Mapped[float | None] = mapped_column(Double)
    record: Mapped[Any] = mapped_column(JSONDocument)
    body_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RateLimitKeyRow(Base):
    """A rate-limit key: how many of its calls are in its window, and its clock.

    `count` is the number of its rows in `governor_rate_limit_calls` (kept in the same transaction
    as they are inserted and expired, under the key's lock), so counting is one primary-key read
    however high the limit. `last_at` is the latest moment recorded: the key's clock never runs
    backwards. `expires_at` (`last_at + window`) lets abandoned keys be swept.
    """

    __tablename__ = "governor_rate_limit_keys"

    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double, index=True)


class RateLimitCallRow(Base):
    """One admitted call under a rate-limit key, at `at` (seconds since the epoch).

    The id is an internal row number, never handed out (every record the API returns has a
    uuid id).
    """

    __tablename__ = "governor_rate_limit_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(1024))
    at: Mapped[float] = mapped_column(Double)

    __table_args__ = (Index("ix_governor_rate_limit_calls_key_at", "key", "at"),)


class BudgetUsageRow(Base):
    """One entry of the budget ledger (`UsageRecord`): micro-units spent under a budget key.

    No foreign keys: the ledger outlives executions, and usage reported by clients has none.
    `(key, created_at, amount)` answers a key's spending in a period from the index alone.
    `reservation_id` is unique, so a hold is booked at most once even by racing settles.
    """

    __tablename__ = "governor_budget_usage"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(1024))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    execution_id: Mapped[str | None] = mapped_column(String(64), index=True)
    correlation_id: Mapped[str | None] = mapped_column(String(255), index=True)
    reservation_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    org_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    provider: Mapped[str | None] = mapped_column(String(255))
    model: Mapped[str | None] = mapped_column(String(255))
    input_tokens: Mapped[int | None] = mapped_column(BigInteger)
    output_tokens: Mapped[int | None] = mapped_column(BigInteger)
    cost_type: Mapped[str | None] = mapped_column(String(32))
    metadata_: Mapped[Any] = mapped_column("metadata", JSONDocument)

    __table_args__ = (
        Index("ix_governor_budget_usage_key_created", "key", "created_at", "amount"),
        Index("ix_governor_budget_usage_org_created", "org_id", "created_at"),
    )


class BudgetDailyTotalRow(Base):
    """A budget key's usage on one UTC day: sum and count of its `governor_budget_usage` rows.

    Kept in the same transaction as every usage insert, so a key's spending in a month is at
    most 31 of these rows plus the usage rows of the partial days at the period's edges (none
    for `month_period`), however many calls the month had.
    """

    __tablename__ = "governor_budget_daily_totals"

    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(BigInteger)


class BudgetReservationRow(Base):
    """A budget hold (`ReservationRecord`): counts while `held` and `expires_at` is ahead.

    `(key, expires_at)` finds a key's live holds (the recent rows only); `(status, expires_at)`
    lets the sweep find holds that expired, and finished ones past their retention.
    """

    __tablename__ = "governor_budget_reservations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(1024))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    execution_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    usage_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_governor_budget_reservations_key_expires", "key", "expires_at"),
        Index("ix_governor_budget_reservations_status_expires", "status", "expires_at"),
    )


class ApprovalRow(Base):
    """A request for people to approve one governed call (`ApprovalRecord`); id = execution id.

    `(status, expires_at)` lists the pending requests and finds the ones to expire.
    """

    __tablename__ = "governor_approvals"

    execution_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("governor_executions.id", ondelete="CASCADE"), primary_key=True
    )
    function_name: Mapped[str] = mapped_column(String(255), index=True)
    function_qualname: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[int] = mapped_column(Integer)
    stages: Mapped[Any] = mapped_column(JSONDocument)
    on_timeout: Mapped[str] = mapped_column(String(16))
    require_reason: Mapped[int] = mapped_column(Integer)
    args_hash: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[Any] = mapped_column(JSONDocument, nullable=True)
    inputs: Mapped[Any] = mapped_column(JSONDocument, nullable=True)
    subject: Mapped[Any] = mapped_column(JSONDocument)
    reasons: Mapped[Any] = mapped_column(JSONDocument)
    decision: Mapped[Any] = mapped_column(JSONDocument)
    votes: Mapped[Any] = mapped_column(JSONDocument)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stage_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_governor_approvals_status_expires", "status", "expires_at"),)
