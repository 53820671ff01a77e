"""Precheck server budgets: per-user and organisation-default monthly limits.

The models are `governor_server.budget_models` (declared on the store's `Base`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from governor.storage.models import UTCDateTime

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governor_budget_limits",
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("monthly_limit", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["governor_orgs.id"],
            name="fk_governor_budget_limits_org_id_governor_orgs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "user_id", name="pk_governor_budget_limits"),
    )


def downgrade() -> None:
    op.drop_table("governor_budget_limits")
