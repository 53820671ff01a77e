"""Analytics of an organisation's recorded decisions and usage ledger (wire protocol §4.20-22).

Every figure is aggregated by the database (`COUNT`/`SUM` with `GROUP BY`); Python only merges and
orders grouped rows. The decision breakdowns (by decision, tool, user) of a range read the daily
counts that `record_decision` keeps (`governor_decision_daily_counts`) for the range's whole UTC
days, and group only the decisions of its first, partial day; filtered by user or tool they group
the matching decisions through an index (revision `0006`). So a month of 1,000,000
decisions answers in milliseconds (`bench/analytics.py` times it).

Time ranges are `<n>h`, `<n>d` or `<n>w` back from now (the SDK sends `7d`, `30d`, `90d`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Engine, Table, and_, func, select, true

from governor.storage.models import BudgetUsageRow
from governor_server.models import DecisionDailyCountRow, DecisionRow

__all__ = [
    "MAX_BREAKDOWN",
    "decision_analytics",
    "parse_include_stats",
    "parse_time_range",
    "spend_analytics",
]

#: Most keys a `byTool`/`byUser`/... object carries: the largest groups first.
MAX_BREAKDOWN = 1000
MICRO = 1_000_000
_RANGE = re.compile(r"(\d{1,6})([hdw])")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}
#: Longest range accepted (ten years), so that `now - range` stays a valid datetime.
_MAX_HOURS = 24 * 3660

_DECISIONS = cast(Table, DecisionRow.__table__)
_USAGE = cast(Table, BudgetUsageRow.__table__)
_DAILY = cast(Table, DecisionDailyCountRow.__table__)
_DIMENSIONS = {
    "decision": _DECISIONS.c.decision,
    "tool": _DECISIONS.c.tool,
    "user": _DECISIONS.c.user_id,
}


def parse_time_range(text: str) -> timedelta:
    """`"30d"` -> 30 days; `ValueError` with an actionable message for anything else."""
    match = _RANGE.fullmatch(text.strip().lower())
    hours = int(match.group(1)) * _UNIT_HOURS[match.group(2)] if match else 0
    if not match or not 0 < hours <= _MAX_HOURS:
        raise ValueError(
            f"timeRange {text!r} is not a time range: use <n>h, <n>d or <n>w "
            "(e.g. 24h, 7d, 30d, 12w), at most ten years"
        )
    return timedelta(hours=hours)


def parse_include_stats(text: str | None) -> bool:
    """`true|false|1|0`, any case; absent means true (§2.3). `ValueError` otherwise."""
    if text is None:
        return True
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError(f"includeStats {text!r} must be true, false, 1 or 0")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _decision_record(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "userId": row.user_id,
        "tool": row.tool,
        "scope": row.scope,
        "decision": row.decision,
        "reasons": list(row.reasons),
        "tags": list(row.tags),
        "corrId": row.corr_id,
        "policyId": row.policy_revision,
        "phase": row.phase,
        "timestamp": _iso(row.created_at),
    }


def _top(counts: Mapping[str, int]) -> dict[str, int]:
    """The `MAX_BREAKDOWN` largest counts, largest first (ties by name)."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(ordered[:MAX_BREAKDOWN])


def _raw_counts(conn: Any, column: Any, where: Sequence[ColumnElement[bool]]) -> Counter[str]:
    """`{value: count}` of the decisions matching `where`, grouped by `column` in SQL."""
    # Grouped by an expression, not the bare column: SQLite would otherwise walk a whole
    # `(org_id, column, ...)` index for its order instead of the range `where` selects.
    value = func.coalesce(column, "")
    stmt = select(value, func.count()).where(*where).group_by(value)
    return Counter({str(key): int(n) for key, n in conn.execute(stmt)})


def _daily_counts(
    conn: Any, org_id: str, first_day: date, tool_calls: bool
) -> dict[str, Counter[str]]:
    """`{dimension: {value: count}}` from the daily counts of `first_day` onwards (in SQL)."""
    total = func.sum(_DAILY.c.count).label("n")
    stmt = (
        select(_DAILY.c.dimension, _DAILY.c.value, total)
        .where(_DAILY.c.org_id == org_id, _DAILY.c.day >= first_day)
        .group_by(_DAILY.c.dimension, _DAILY.c.value)
    )
    if tool_calls:
        stmt = stmt.where(_DAILY.c.tool_call == true())
    counts: dict[str, Counter[str]] = {name: Counter() for name in _DIMENSIONS}
    for dimension, value, n in conn.execute(stmt):
        if dimension in counts:
            counts[dimension][str(value)] += int(n)
    return counts


def _counts(
    conn: Any,
    org_id: str,
    since: datetime,
    where: Sequence[ColumnElement[bool]],
    *,
    filtered: bool,
    tool_calls: bool,
) -> dict[str, Counter[str]]:
    """`{dimension: {value: count}}` of the decisions matching `where` (from `since` on).

    Filtered by user or tool: grouped from the decisions themselves (an index per filter).
    Otherwise the whole UTC days of the range come from the daily counts, and only the decisions
    before the range's first midnight are grouped from the decisions.
    """
    if filtered:
        return {name: _raw_counts(conn, column, where) for name, column in _DIMENSIONS.items()}
    midnight = datetime.combine(since.astimezone(UTC).date(), time(), UTC)
    if midnight != since:
        midnight += timedelta(days=1)
    counts = _daily_counts(conn, org_id, midnight.date(), tool_calls)
    if midnight != since:
        edge = [*where, _DECISIONS.c.created_at < midnight]
        for name, column in _DIMENSIONS.items():
            counts[name].update(_raw_counts(conn, column, edge))
    return counts


def decision_analytics(
    db: Engine,
    org_id: str,
    since: datetime,
    *,
    include_stats: bool = True,
    user_id: str | None = None,
    tool: str | None = None,
    tool_calls: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The organisation's decisions since `since`, newest first (a page), and their stats.

    `stats` always has `total` (every matching decision, not the page); with `include_stats` also
    `byDecision`, `byTool`, `byUser`. `tool_calls` keeps the tool calls only (§4.21).
    """
    where: list[ColumnElement[bool]] = [
        _DECISIONS.c.org_id == org_id,
        _DECISIONS.c.created_at >= since,
    ]
    if user_id is not None:
        where.append(_DECISIONS.c.user_id == user_id)
    if tool is not None:
        where.append(_DECISIONS.c.tool == tool)
    if tool_calls:
        where.append(_DECISIONS.c.tool_call == true())
    page = (
        select(_DECISIONS)
        .where(*where)
        .order_by(_DECISIONS.c.created_at.desc(), _DECISIONS.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with db.connect() as conn:
        records = [_decision_record(row) for row in conn.execute(page)]
        counts = _counts(
            conn,
            org_id,
            since,
            where,
            filtered=user_id is not None or tool is not None,
            tool_calls=tool_calls,
        )
    # Every decision has exactly one decision value: the total is the sum of that breakdown.
    total = sum(counts["decision"].values())
    if not include_stats:
        return records, {"total": total}
    stats = {
        "total": total,
        "byDecision": _top(counts["decision"]),
        "byTool": _top(counts["tool"]),
        "byUser": _top(counts["user"]),
    }
    return records, stats


def _cost(micro: Any) -> float:
    return round(int(micro or 0) / MICRO, 6)


def _spend_by(conn: Any, column: Any, where: Sequence[ColumnElement[bool]]) -> dict[str, float]:
    """`{value: cost}` of the usage matching `where`, grouped by `column` (null: `unknown`)."""
    total = func.sum(_USAGE.c.amount).label("total")
    stmt = (
        select(column, total)
        .where(*where)
        .group_by(column)
        .order_by(total.desc(), column)
        .limit(MAX_BREAKDOWN)
    )
    return {
        ("unknown" if value is None else str(value)): _cost(n) for value, n in conn.execute(stmt)
    }


def spend_analytics(
    db: Engine,
    org_id: str,
    since: datetime,
    *,
    user_id: str | None = None,
    provider: str | None = None,
    cost_type: str | None = None,
) -> dict[str, Any]:
    """The organisation's recorded spending since `since` (§4.22), from the usage ledger.

    Costs are in currency units (the ledger keeps integer micro-units); `byProvider`, `byModel`,
    `byUser`, `byCostType` map a name (or `unknown`) to its cost.
    """
    where: list[ColumnElement[bool]] = [_USAGE.c.org_id == org_id, _USAGE.c.created_at >= since]
    for column, value in (
        (_USAGE.c.user_id, user_id),
        (_USAGE.c.provider, provider),
        (_USAGE.c.cost_type, cost_type),
    ):
        if value is not None:
            where.append(column == value)
    totals = select(
        func.count(),
        func.coalesce(func.sum(_USAGE.c.amount), 0),
        func.coalesce(func.sum(_USAGE.c.input_tokens), 0),
        func.coalesce(func.sum(_USAGE.c.output_tokens), 0),
    ).where(and_(*where))
    with db.connect() as conn:
        count, amount, input_tokens, output_tokens = conn.execute(totals).one()
        return {
            "totalCost": _cost(amount),
            "currency": "USD",
            "records": int(count),
            "inputTokens": int(input_tokens),
            "outputTokens": int(output_tokens),
            "byProvider": _spend_by(conn, _USAGE.c.provider, where),
            "byModel": _spend_by(conn, _USAGE.c.model, where),
            "byUser": _spend_by(conn, _USAGE.c.user_id, where),
            "byCostType": _spend_by(conn, _USAGE.c.cost_type, where),
        }
