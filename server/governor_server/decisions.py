"""The decision records: every precheck and postcheck, per organisation, for analytics.

Recording a decision also adds it to the organisation's daily counts per decision, tool and user
(`governor_decision_daily_counts`), in the same transaction, so analytics over long ranges read
those instead of every decision. Decisions must therefore be recorded through `record_decision`.

Every precheck and postcheck records one, in the store transaction that decided it
(`record_decision(tx, ...)`: with the budget hold the precheck placed, one commit), its two
statements compiled once per dialect and run on the transaction's cursor
(`governor_server.statements`). Decisions of OPA sidecars (`governor_server.opa`) are recorded
in a transaction of their own (`record_decision(engine, ...)`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Date, Engine, Table, delete, func, insert, literal, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite

from governor_server.models import DecisionDailyCountRow, DecisionRow
from governor_server.observability import annotate
from governor_server.statements import StoreTransaction, compiled

__all__ = [
    "DecisionEntry",
    "is_tool_call",
    "list_decisions",
    "rebuild_daily_counts",
    "record_decision",
]

_DECISIONS = cast(Table, DecisionRow.__table__)
_DAILY = cast(Table, DecisionDailyCountRow.__table__)
_INSERT = insert(_DECISIONS)
_DECISION_COLUMNS = [c.key for c in _DECISIONS.c]
_COUNT_COLUMNS = [c.key for c in _DAILY.c]


def _count_statement(dialect_module: Any) -> Any:
    """Add to a day's count (`INSERT ... ON CONFLICT DO UPDATE`, in the dialect's own form)."""
    upsert: Any = dialect_module.insert(_DAILY)
    return upsert.on_conflict_do_update(
        index_elements=[
            _DAILY.c.org_id,
            _DAILY.c.day,
            _DAILY.c.tool_call,
            _DAILY.c.dimension,
            _DAILY.c.value,
        ],
        set_={"count": _DAILY.c.count + upsert.excluded["count"]},
    )


_COUNT = {"sqlite": _count_statement(sqlite), "postgresql": _count_statement(postgresql)}


def is_tool_call(tool: str, tags: Sequence[str]) -> bool:
    """A tool call (wire protocol §4.21): tagged `tool_call`, or a tool other than `model.chat`."""
    return tool != "model.chat" or "tool_call" in tags


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


def record_decision(db: StoreTransaction | Engine, entry: DecisionEntry) -> DecisionEntry:
    """Write `entry` and its daily counts in `db`, a store transaction (committed with it,
    before the caller is answered), or commit them in a transaction of their own on an engine;
    returns `entry`."""
    tool_call = is_tool_call(entry.tool, entry.tags)
    day = entry.created_at.astimezone(UTC).date()
    row = {
        "id": entry.id,
        "org_id": entry.org_id,
        "user_id": entry.user_id,
        "phase": entry.phase,
        "tool": entry.tool,
        "scope": entry.scope,
        "decision": entry.decision,
        "reasons": list(entry.reasons),
        "tags": list(entry.tags),
        "corr_id": entry.corr_id,
        "policy_revision": entry.policy_revision,
        "created_at": entry.created_at,
        "tool_call": tool_call,
    }
    counts = [
        {
            "org_id": entry.org_id,
            "day": day,
            "tool_call": tool_call,
            "dimension": dimension,
            "value": value,
            "count": 1,
        }
        for dimension, value in (
            ("decision", entry.decision),
            ("tool", entry.tool),
            ("user", entry.user_id),
        )
    ]
    if isinstance(db, Engine):
        with db.begin() as conn:
            conn.execute(_INSERT, [row])
            conn.execute(_COUNT[conn.dialect.name], counts)
    else:
        db.execute(compiled(_INSERT, db.dialect, _DECISION_COLUMNS), row)
        db.execute(compiled(_COUNT[db.dialect.name], db.dialect, _COUNT_COLUMNS), counts)
    annotate(org_id=entry.org_id, decision=entry.decision, reasons=list(entry.reasons))
    return entry


def rebuild_daily_counts(db: Engine, org_id: str) -> None:
    """Recount the organisation's daily counts from its decisions (after inserting them in bulk,
    bypassing `record_decision`): one `INSERT ... SELECT ... GROUP BY` per dimension."""
    with db.begin() as conn:
        if conn.dialect.name == "sqlite":
            day: Any = func.date(_DECISIONS.c.created_at)
        else:
            day = sql_cast(func.timezone("UTC", _DECISIONS.c.created_at), Date)
        conn.execute(delete(_DAILY).where(_DAILY.c.org_id == org_id))
        for dimension, column in (
            ("decision", _DECISIONS.c.decision),
            ("tool", _DECISIONS.c.tool),
            ("user", _DECISIONS.c.user_id),
        ):
            grouped = (
                select(
                    _DECISIONS.c.org_id,
                    day,
                    _DECISIONS.c.tool_call,
                    literal(dimension),
                    column,
                    func.count(),
                )
                .where(_DECISIONS.c.org_id == org_id)
                .group_by(_DECISIONS.c.org_id, day, _DECISIONS.c.tool_call, column)
            )
            conn.execute(
                insert(_DAILY).from_select(
                    ["org_id", "day", "tool_call", "dimension", "value", "count"], grouped
                )
            )


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
