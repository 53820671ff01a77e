"""Approval requests of governed calls (`governor.storage.models.ApprovalRow`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from governor.storage.models import JSONDocument, UTCDateTime

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governor_approvals",
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("function_name", sa.String(255), nullable=False),
        sa.Column("function_qualname", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("stages", JSONDocument(), nullable=False),
        sa.Column("on_timeout", sa.String(16), nullable=False),
        sa.Column("require_reason", sa.Integer(), nullable=False),
        sa.Column("args_hash", sa.String(64), nullable=False),
        sa.Column("arguments", JSONDocument(), nullable=True),
        sa.Column("inputs", JSONDocument(), nullable=True),
        sa.Column("subject", JSONDocument(), nullable=False),
        sa.Column("reasons", JSONDocument(), nullable=False),
        sa.Column("decision", JSONDocument(), nullable=False),
        sa.Column("votes", JSONDocument(), nullable=False),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("stage_deadline", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("held_until", UTCDateTime(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["governor_executions.id"],
            name="fk_governor_approvals_execution_id_governor_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", name="pk_governor_approvals"),
    )
    op.create_index("ix_governor_approvals_function_name", "governor_approvals", ["function_name"])
    op.create_index(
        "ix_governor_approvals_status_expires", "governor_approvals", ["status", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_governor_approvals_status_expires", table_name="governor_approvals")
    op.drop_index("ix_governor_approvals_function_name", table_name="governor_approvals")
    op.drop_table("governor_approvals")
