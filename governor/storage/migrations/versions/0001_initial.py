"""Initial store: executions, snapshots, events, the audit chain, rate-limit keys and calls.

Revision ID: 0001
Revises:
Create Date: 2025-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from governor.storage.models import JSONDocument, UTCDateTime

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governor_executions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("function_name", sa.String(255), nullable=False),
        sa.Column("function_module", sa.String(255), nullable=False),
        sa.Column("function_qualname", sa.String(512), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("inputs", JSONDocument(), nullable=False),
        sa.Column("outputs", JSONDocument(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(255), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.Column("metadata", JSONDocument(), nullable=False),
        sa.Column("decision", sa.String(32), nullable=True),
        sa.Column("policy_revision", sa.String(255), nullable=True),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["governor_executions.id"],
            name="fk_governor_executions_parent_id_governor_executions",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_governor_executions"),
    )
    op.create_index("ix_governor_executions_created_at", "governor_executions", ["created_at"])
    op.create_index("ix_governor_executions_parent_id", "governor_executions", ["parent_id"])
    op.create_index(
        "ix_governor_executions_status_created", "governor_executions", ["status", "created_at"]
    )
    op.create_index(
        "ix_governor_executions_function_created",
        "governor_executions",
        ["function_name", "created_at"],
    )

    op.create_table(
        "governor_snapshots",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("checkpoint", sa.String(255), nullable=False),
        sa.Column("captured_at", UTCDateTime(), nullable=False),
        sa.Column("state", JSONDocument(), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["governor_executions.id"],
            name="fk_governor_snapshots_execution_id_governor_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_governor_snapshots"),
    )
    op.create_index(
        "ix_governor_snapshots_execution_captured",
        "governor_snapshots",
        ["execution_id", "captured_at"],
    )

    op.create_table(
        "governor_events",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("data", JSONDocument(), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["governor_executions.id"],
            name="fk_governor_events_execution_id_governor_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_governor_events"),
    )
    op.create_index("ix_governor_events_timestamp", "governor_events", ["timestamp"])
    op.create_index(
        "ix_governor_events_execution_timestamp", "governor_events", ["execution_id", "timestamp"]
    )
    op.create_index(
        "ix_governor_events_type_timestamp", "governor_events", ["event_type", "timestamp"]
    )

    op.create_table(
        "governor_audit_records",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=True),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("reasons", JSONDocument(), nullable=False),
        sa.Column("policy_revision", sa.String(255), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.Column("record", JSONDocument(), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("redacted_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_governor_audit_records"),
        sa.UniqueConstraint("seq", name="uq_governor_audit_records_seq"),
        sa.UniqueConstraint("hash", name="uq_governor_audit_records_hash"),
    )
    op.create_index(
        "ix_governor_audit_records_execution_id", "governor_audit_records", ["execution_id"]
    )
    op.create_index("ix_governor_audit_records_timestamp", "governor_audit_records", ["timestamp"])
    op.create_index("ix_governor_audit_records_actor", "governor_audit_records", ["actor"])

    op.create_table(
        "governor_rate_limit_keys",
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_governor_rate_limit_keys"),
    )
    op.create_index(
        "ix_governor_rate_limit_keys_expires_at", "governor_rate_limit_keys", ["expires_at"]
    )

    op.create_table(
        "governor_rate_limit_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_governor_rate_limit_calls"),
    )
    op.create_index(
        "ix_governor_rate_limit_calls_key_at", "governor_rate_limit_calls", ["key", "at"]
    )


def downgrade() -> None:
    op.drop_table("governor_rate_limit_calls")
    op.drop_table("governor_rate_limit_keys")
    op.drop_table("governor_audit_records")
    op.drop_table("governor_events")
    op.drop_table("governor_snapshots")
    op.drop_table("governor_executions")
