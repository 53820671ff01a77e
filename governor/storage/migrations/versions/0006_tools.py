"""Precheck server: the tool registry, and what the decision analytics read.

- `governor_tools`: each organisation's registered tools (unique by name per organisation).
- `governor_decisions.tool_call` (a tool call, wire protocol §4.21) and indexes for the analytics
  filters: one user's decisions, one tool's, the tool calls, each over a time range.
- `governor_decision_daily_counts`: per organisation, UTC day and tool-call flag, the count of
  decisions per decision, tool and user, kept with every recorded decision; existing decisions
  are counted here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from governor.storage.models import JSONDocument, UTCDateTime

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DECISION_INDEXES = {
    "ix_governor_decisions_org_user_created": ["org_id", "user_id", "created_at"],
    "ix_governor_decisions_org_tool_created": ["org_id", "tool", "created_at"],
    "ix_governor_decisions_org_tool_call_created": ["org_id", "tool_call", "created_at"],
}
_DIMENSIONS = {"decision": "decision", "tool": "tool", "user": "user_id"}


def upgrade() -> None:
    op.create_table(
        "governor_tools",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("definition", JSONDocument(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["governor_orgs.id"],
            name="fk_governor_tools_org_id_governor_orgs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_governor_tools"),
        sa.UniqueConstraint("org_id", "name", name="uq_governor_tools_org_name"),
    )
    with op.batch_alter_table("governor_decisions") as batch:
        batch.add_column(
            sa.Column("tool_call", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute(
        "UPDATE governor_decisions SET tool_call = (tool <> 'model.chat' "
        "OR CAST(tags AS TEXT) LIKE '%\"tool_call\"%')"
    )
    for name, columns in _DECISION_INDEXES.items():
        op.create_index(name, "governor_decisions", columns)
    op.create_table(
        "governor_decision_daily_counts",
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tool_call", sa.Boolean(), nullable=False),
        sa.Column("dimension", sa.String(8), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id",
            "day",
            "tool_call",
            "dimension",
            "value",
            name="pk_governor_decision_daily_counts",
        ),
        sqlite_with_rowid=False,
    )
    day = (
        "date(created_at)"
        if op.get_bind().dialect.name == "sqlite"
        else "CAST(created_at AT TIME ZONE 'UTC' AS DATE)"
    )
    for dimension, column in _DIMENSIONS.items():
        op.execute(
            "INSERT INTO governor_decision_daily_counts "
            "(org_id, day, tool_call, dimension, value, count) "
            f"SELECT org_id, {day}, tool_call, '{dimension}', {column}, COUNT(*) "
            f"FROM governor_decisions GROUP BY org_id, {day}, tool_call, {column}"
        )


def downgrade() -> None:
    op.drop_table("governor_decision_daily_counts")
    for name in _DECISION_INDEXES:
        op.drop_index(name, table_name="governor_decisions")
    with op.batch_alter_table("governor_decisions") as batch:
        batch.drop_column("tool_call")
    op.drop_table("governor_tools")
