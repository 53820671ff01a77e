"""Precheck server: who may approve confirmations (wire protocol §4.13a).

- `governor_api_keys.identity`: the person or service a key acts for (e.g. `alice@acme.example`,
  `security-oncall`); set when the key is created, required for approver keys.
- `governor_org_approvers`: each organisation's approver list, kept by its admins. An approver
  key may decide a confirmation only when its identity is on the list (and, when the confirmation
  names approvers, among them).
- `governor_confirmations.decided_by_identity`: the identity of the key that decided.

The models are `governor_server.models.ApiKeyRow`, `OrgApproverRow` and `ConfirmationRow`.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from governor.storage.models import UTCDateTime

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("governor_api_keys") as batch:
        batch.add_column(sa.Column("identity", sa.String(255), nullable=True))
    with op.batch_alter_table("governor_confirmations") as batch:
        batch.add_column(sa.Column("decided_by_identity", sa.String(255), nullable=True))
    op.create_table(
        "governor_org_approvers",
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("identity", sa.String(255), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["governor_orgs.id"],
            name="fk_governor_org_approvers_org_id_governor_orgs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", "identity", name="pk_governor_org_approvers"),
    )


def downgrade() -> None:
    op.drop_table("governor_org_approvers")
    with op.batch_alter_table("governor_confirmations") as batch:
        batch.drop_column("decided_by_identity")
    with op.batch_alter_table("governor_api_keys") as batch:
        batch.drop_column("identity")
