"""Precheck server: organisations, hashed API keys, recorded decisions.

The models are `governor_server.models` (declared on the store's `Base`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from governor.storage.models import JSONDocument, UTCDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "governor_orgs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_governor_orgs"),
        sa.UniqueConstraint("name", name="uq_governor_orgs_name"),
    )
    op.create_table(
        "governor_api_keys",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["governor_orgs.id"],
            name="fk_governor_api_keys_org_id_governor_orgs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_governor_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_governor_api_keys_prefix"),
        sa.UniqueConstraint("key_hash", name="uq_governor_api_keys_key_hash"),
    )
    op.create_index("ix_governor_api_keys_org_id", "governor_api_keys", ["org_id"])
    op.create_table(
        "governor_decisions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("tool", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(255), nullable=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reasons", JSONDocument(), nullable=False),
        sa.Column("tags", JSONDocument(), nullable=False),
        sa.Column("corr_id", sa.String(255), nullable=True),
        sa.Column("policy_revision", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_governor_decisions"),
    )
    op.create_index(
        "ix_governor_decisions_org_created", "governor_decisions", ["org_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_table("governor_decisions")
    op.drop_table("governor_api_keys")
    op.drop_table("governor_orgs")
