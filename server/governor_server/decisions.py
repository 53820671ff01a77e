"""The decision records: every precheck and postcheck, per organisation, for analytics."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Engine, Table, insert, select

from governor_server.models import DecisionRow

__all__ = ["DecisionEntry", "list_decisions", "record_decision"]

_DECISIONS = cast(Table, DecisionRow.__table__)


@dataclass(frozen=True)
class DecisionEntry:
    """One recorded decision (no request text: reasons name kinds of findings, never values)."""

    org_id: str
    user_id: str
    phase: str
    tool: str
    decision: str
    scope: str | None = None
    reasons: Sequence[str] = ()
    tags: Sequence[str] = ()
    corr_id: str | None = None
    policy_revision: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def record_decision(db: Engine, entry: DecisionEntry) -> DecisionEntry:
    """Commit `entry` (before the caller is answered); returns it."""
    with db.begin() as conn:
        conn.execute(
            insert(_DECISIONS).values(
                id=entry.id,
                org_id=entry.org_id,
                user_id=entry.user_id,
                phase=entry.phase,
                tool=entry.tool,
                scope=entry.scope,
                decision=entry.decision,
                reasons=list(entry.reasons),
                tags=list(entry.tags),
                corr_id=entry.corr_id,
                policy_revision=entry.policy_revision,
                created_at=entry.created_at,
            )
        )
    return entry


def list_decisions(db: Engine, org_id: str, *, limit: int = 100) -> list[DecisionEntry]:
    """The organisation's decisions, newest first (never another organisation's)."""
    stmt = (
        select(_DECISIONS)
        .where(_DECISIONS.c.org_id == org_id)
        .order_by(_DECISIONS.c.created_at.desc(), _DECISIONS.c.id.desc())
        .limit(limit)
    )
    with db.connect() as conn:
        return [
            DecisionEntry(
                org_id=row.org_id,
                user_id=row.user_id,
                phase=row.phase,
                tool=row.tool,
                decision=row.decision,
                scope=row.scope,
                reasons=tuple(row.reasons),
                tags=tuple(row.tags),
                corr_id=row.corr_id,
                policy_revision=row.policy_revision,
                id=row.id,
                created_at=row.created_at,
            )
            for row in conn.execute(stmt)
        ]
