"""Precheck server: confirmations (wire protocol §4.11-§4.13a).

The model is `governor_server.models.ConfirmationRow`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from governor.storage.models import JSONDocument, UTCDateTime

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governor_confirmations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("correlation_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("request_type", sa.String(64), nullable=False),
        sa.Column("request_desc", sa.Text(), nullable=False),
        sa.Column("request_payload", JSONDocument(), nullable=False),
        sa.Column("reasons", JSONDocument(), nullable=False),
        sa.Column("approvers", JSONDocument(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("decision_id", sa.String(64), nullable=True),
        sa.Column("created_by_key", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by_key", sa.String(32), nullable=True),
        sa.Column("decided_by_role", sa.String(16), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["governor_orgs.id"],
            name="fk_governor_confirmations_org_id_governor_orgs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_governor_confirmations"),
        sa.UniqueConstraint("org_id", "correlation_id", name="uq_governor_confirmations_org_corr"),
    )


def downgrade() -> None:
    op.drop_table("governor_confirmations")
