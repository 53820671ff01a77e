"""The server's tables: organisations, their API keys, and every recorded decision.

They are declared on the store's own `Base` (`governor.storage.models`), so they share its naming
convention, its column types and its Alembic history: revision `0003` creates them, and
`SQLStorage` brings a database to head on first use, whichever process opens it first. The
Alembic environment imports this module so that autogenerate sees these tables too.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from governor.storage.models import Base, JSONDocument, UTCDateTime

__all__ = [
    "ROLES",
    "ApiKeyRow",
    "ConfirmationRow",
    "DecisionDailyCountRow",
    "DecisionRow",
    "OrgApproverRow",
    "OrgRow",
    "ToolRow",
]

#: The roles an API key can have: `app` asks for decisions, `approver` approves confirmations,
#: `admin` does everything (keys, limits, and what the other two do).
ROLES = ("app", "approver", "admin")


class OrgRow(Base):
    """An organisation: the unit of isolation. Every key and record belongs to exactly one."""

    __tablename__ = "governor_orgs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKeyRow(Base):
    """An `X-Governs-Key` API key, stored as the SHA-256 of the key (never the key itself).

    `prefix` is the key's public start (`gk_` and 8 hex digits), shown in listings and used to
    revoke it. A key with `revoked_at` set is refused. `identity` is who the key acts for (a
    person or a service, e.g. `alice@acme.example`), set at creation and required for approver
    keys (revision `0008`): an approver is allowed by its identity (`OrgApproverRow`).
    """

    __tablename__ = "governor_api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("governor_orgs.id", ondelete="CASCADE"), index=True
    )
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    identity: Mapped[str | None] = mapped_column(String(255))


class OrgApproverRow(Base):
    """One identity on an organisation's approver list (revision `0008`), kept by its admins.

    An approver key may approve or reject the organisation's confirmations only while its
    `identity` is listed here; `added_by` is the admin key's prefix, or `cli`.
    """

    __tablename__ = "governor_org_approvers"

    org_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("governor_orgs.id", ondelete="CASCADE"), primary_key=True
    )
    identity: Mapped[str] = mapped_column(String(255), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    added_by: Mapped[str] = mapped_column(String(64))


class DecisionRow(Base):
    """One decision the server made (a precheck or a postcheck), for analytics.

    `reasons` and `tags` are JSON lists; nothing the policy detected as sensitive is stored (the
    reasons name kinds, never values, and the text itself is not kept).
    """

    __tablename__ = "governor_decisions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(255))
    phase: Mapped[str] = mapped_column(String(8))
    tool: Mapped[str] = mapped_column(String(255))
    scope: Mapped[str | None] = mapped_column(String(255))
    decision: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[Any] = mapped_column(JSONDocument)
    tags: Mapped[Any] = mapped_column(JSONDocument)
    corr_id: Mapped[str | None] = mapped_column(String(255))
    policy_revision: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    #: A tool call (wire protocol §4.21): tagged `tool_call`, or a tool other than `model.chat`.
    tool_call: Mapped[bool] = mapped_column(Boolean, server_default=false())

    __table_args__ = (
        Index("ix_governor_decisions_org_created", "org_id", "created_at"),
        # Analytics filters (revision 0006): one user's, one tool's, the tool calls.
        Index("ix_governor_decisions_org_user_created", "org_id", "user_id", "created_at"),
        Index("ix_governor_decisions_org_tool_created", "org_id", "tool", "created_at"),
        Index("ix_governor_decisions_org_tool_call_created", "org_id", "tool_call", "created_at"),
    )


class DecisionDailyCountRow(Base):
    """How many decisions an organisation had on one UTC day, per value of one dimension.

    `dimension` is `decision`, `tool` or `user`; `value` the decision, tool name or user id;
    `tool_call` splits tool calls from the rest. Kept by `record_decision` in the transaction
    that records the decision, so a month's breakdowns read about 30 rows per value instead of
    every decision (revision `0006`).
    """

    __tablename__ = "governor_decision_daily_counts"

    org_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tool_call: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)

    # SQLite: the primary key is the table (no rowid), so a range of days reads one b-tree.
    __table_args__ = {"sqlite_with_rowid": False}


class ToolRow(Base):
    """A registered tool of an organisation: its definition (free-form JSON, with `name`).

    Names are unique per organisation (`POST /tools` upserts by name) and restricted to
    `[A-Za-z0-9._:-]+`, because the SDK puts them into URL paths unescaped.
    """

    __tablename__ = "governor_tools"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("governor_orgs.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(255))
    definition: Mapped[Any] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_governor_tools_org_name"),)


class ConfirmationRow(Base):
    """A request waiting for a person's approval (wire protocol §4.11-§4.13a); revision `0004`.

    `correlation_id` is unique within its organisation (the client may choose it). `status` is
    stored as `pending`, `approved`, `rejected` or `cancelled`; `expired` is computed on read from
    `expires_at`, so nothing has to sweep the table. Who decided is the API key (`decided_by_key`,
    its prefix, `decided_by_role` and `decided_by_identity`), never a name sent in a body.
    """

    __tablename__ = "governor_confirmations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("governor_orgs.id", ondelete="CASCADE")
    )
    correlation_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    request_type: Mapped[str] = mapped_column(String(64))
    request_desc: Mapped[str] = mapped_column(Text)
    request_payload: Mapped[Any] = mapped_column(JSONDocument)
    reasons: Mapped[Any] = mapped_column(JSONDocument)
    approvers: Mapped[Any] = mapped_column(JSONDocument)
    user_id: Mapped[str] = mapped_column(String(255))
    decision_id: Mapped[str | None] = mapped_column(String(64))
    created_by_key: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_key: Mapped[str | None] = mapped_column(String(32))
    decided_by_role: Mapped[str | None] = mapped_column(String(16))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decided_by_identity: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        UniqueConstraint("org_id", "correlation_id", name="uq_governor_confirmations_org_corr"),
    )
