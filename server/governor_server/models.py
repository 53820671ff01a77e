"""The server's tables: organisations, their API keys, and every recorded decision.

They are declared on the store's own `Base` (`governor.storage.models`), so they share its naming
convention, its column types and its Alembic history: revision `0003` creates them, and
`SQLStorage` brings a database to head on first use, whichever process opens it first. The
Alembic environment imports this module so that autogenerate sees these tables too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from governor.storage.models import Base, JSONDocument, UTCDateTime

__all__ = ["ROLES", "ApiKeyRow", "DecisionRow", "OrgRow"]

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
    revoke it. A key with `revoked_at` set is refused.
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

    __table_args__ = (Index("ix_governor_decisions_org_created", "org_id", "created_at"),)
