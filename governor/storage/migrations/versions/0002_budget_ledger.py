"""Budget ledger: usage records, their daily totals, reservations (holds), in micro-units.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from governor.storage.models import JSONDocument, UTCDateTime

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governor_budget_usage",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=True),
        sa.Column("correlation_id", sa.String(255), nullable=True),
        sa.Column("reservation_id", sa.String(64), nullable=True),
        sa.Column("org_id", sa.String(255), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("provider", sa.String(255), nullable=True),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost_type", sa.String(32), nullable=True),
        sa.Column("metadata", JSONDocument(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_governor_budget_usage"),
        sa.UniqueConstraint("reservation_id", name="uq_governor_budget_usage_reservation_id"),
    )
    op.create_index(
        "ix_governor_budget_usage_key_created",
        "governor_budget_usage",
        ["key", "created_at", "amount"],
    )
    op.create_index(
        "ix_governor_budget_usage_org_created", "governor_budget_usage", ["org_id", "created_at"]
    )
    op.create_index("ix_governor_budget_usage_created_at", "governor_budget_usage", ["created_at"])
    op.create_index(
        "ix_governor_budget_usage_execution_id", "governor_budget_usage", ["execution_id"]
    )
    op.create_index(
        "ix_governor_budget_usage_correlation_id", "governor_budget_usage", ["correlation_id"]
    )

    op.create_table(
        "governor_budget_daily_totals",
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", "day", name="pk_governor_budget_daily_totals"),
    )

    op.create_table(
        "governor_budget_reservations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("usage_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_governor_budget_reservations"),
    )
    op.create_index(
        "ix_governor_budget_reservations_key_expires",
        "governor_budget_reservations",
        ["key", "expires_at"],
    )
    op.create_index(
        "ix_governor_budget_reservations_status_expires",
        "governor_budget_reservations",
        ["status", "expires_at"],
    )
    op.create_index(
        "ix_governor_budget_reservations_execution_id",
        "governor_budget_reservations",
        ["execution_id"],
    )


def downgrade() -> None:
    op.drop_table("governor_budget_reservations")
    op.drop_table("governor_budget_daily_totals")
    op.drop_table("governor_budget_usage")
