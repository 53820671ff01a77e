"""Budgets and usage of the precheck server: limits, context, status, the usage ledger, holds.

Money is kept in integer micro-units of the currency (1 USD = 1_000_000) everywhere inside; the
wire's float amounts are converted exactly at the edge with `Decimal(str(x))` (so `0.1` is
100_000, never 100_000.000001), rounded half-to-even to a whole micro-unit only when the client
sent a finer fraction. Negative, NaN and infinite amounts are refused with 422 naming the field.

Limits (`PATCH /api/v1/spend/budget-limits/{userId}`, admin keys): a user's own monthly limit,
else the organisation's default (user id `*`), else the bundle's `budget.default_monthly_limit`
(the Rego `budget` package applies that last fallback itself when the fact's limit is null).

Every budget of a user of an organisation is the ledger key `budget:<org id>:<user>` (see
`policy.budget_key`), so nothing of another organisation is ever read, counted or changed.

Reservations: every precheck is decided in one store transaction that holds the key's ledger
lock: lock, read the facts (limits, spent this month + live holds), evaluate
`data.governor.decision`, reserve the estimated cost when there is one
(`budget_context.estimatedCost`, or `payload.estimatedCost`; USD, snake_case spellings
accepted) and the decision is allow or redact, record the decision, commit. So N concurrent
prechecks of one user admit exactly as many as the limit holds. The hold expires after
`HOLD_TTL_SECONDS`, so a client that crashes leaves no phantom spend.

A precheck's `corr_id` is kept on its hold, as the hold's `execution_id` (`precheck:` and a
hash of the correlation id, so any id fits the column), written in the same locked transaction.

Settlement rule (`POST /api/v1/usage`): recorded usage settles one hold on the same ledger key
(same organisation and user), with the reported cost as the actual amount:
1. the held hold of the precheck whose `corr_id` equals the usage body's `correlationId`
   (alias `corrId`, `correlation_id`, `corr_id`; an extension: the 1.0.0 SDK sends none), even if
   it already expired (the cost did happen);
2. else the user's oldest hold that is still live (first in, first out);
3. else no hold: the usage is booked as unreserved spending.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, delete, insert, or_, select

from governor.decision import Decision, decide
from governor.errors import RecordNotFound, StorageError
from governor.storage import SQLStorage, Transaction, UsageRecord, month_period
from governor.storage._budget import MAX_AMOUNT
from governor.storage.models import BudgetReservationRow
from governor_server.budget_models import ORG_DEFAULT, BudgetLimitRow
from governor_server.errors import ApiError
from governor_server.policy import budget_key
from governor_server.state import ServerState
from governor_server.statements import StoreTransaction, compiled

__all__ = [
    "CURRENCY",
    "HOLD_TTL_SECONDS",
    "MICRO",
    "BudgetSnapshot",
    "Limit",
    "NewUsage",
    "PrecheckBudget",
    "budget_context",
    "budget_status",
    "decide_precheck",
    "estimated_cost",
    "from_micro",
    "hold_tag",
    "limit_in",
    "list_usage",
    "record_usage",
    "resolve_limit",
    "set_limit",
    "time_range_start",
    "to_micro",
    "usage_wire",
]

#: Micro-units per unit of currency.
MICRO = 1_000_000
#: The currency of every ledger key of the server (limits in another currency are refused).
CURRENCY = "USD"
#: How long a precheck's hold counts before it expires unless usage settles it (seconds).
HOLD_TTL_SECONDS = 900.0
#: The policy entry a budget decision is made with (the same as a precheck's budget entry).
_BUDGET_POLICY = {"type": "budget", "name": "monthly_spend"}

_LIMITS = cast(Table, BudgetLimitRow.__table__)
_RESERVATIONS = cast(Table, BudgetReservationRow.__table__)
# Built once: every precheck reads the limits (a statement per call costs more than running it).
_LIMITS_OF = select(_LIMITS.c.user_id, _LIMITS.c.monthly_limit).where(
    _LIMITS.c.org_id == bindparam("org_id"),
    or_(_LIMITS.c.user_id == bindparam("user_id"), _LIMITS.c.user_id == ORG_DEFAULT),
)


# -- money --------------------------------------------------------------------------------------


def _invalid(field: str, problem: str) -> ApiError:
    return ApiError(422, "validation_error", f"invalid request: {field}: {problem}")


def to_micro(value: object, field: str) -> int:
    """A wire amount of currency (a JSON number) as whole micro-units, exactly; 422 otherwise.

    `Decimal(str(x))` keeps the decimal the client wrote (`0.1` -> 100_000); a fraction finer
    than a micro-unit is rounded half-to-even.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(field, f"must be a number (an amount of {CURRENCY}), got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _invalid(field, f"must be a finite number, got {value!r}")
    try:
        amount = Decimal(str(value)) * MICRO
    except InvalidOperation:  # pragma: no cover - str() of a finite number always parses
        raise _invalid(field, f"{value!r} is not an amount") from None
    if amount < 0:
        raise _invalid(field, f"must not be negative, got {value!r}")
    micro = int(amount.to_integral_value(rounding=ROUND_HALF_EVEN))
    if micro > MAX_AMOUNT:
        raise _invalid(field, f"{value!r} is more than the largest amount the ledger keeps")
    return micro


def from_micro(micro: int) -> float:
    """Whole micro-units as the wire's float amount (the nearest float to the exact decimal)."""
    return float(Decimal(micro) / MICRO)


def estimated_cost(budget_context: Any, payload: Mapping[str, Any] | None) -> int | None:
    """The estimated cost a precheck carries, in micro-units, or None when it carries none.

    Read from `budget_context.estimatedCost` (or `estimated_cost`), else from
    `payload.estimatedCost` (or `estimated_cost`). An estimate only ever tightens the decision (it
    is added to spending), so reading this client-controlled field cannot relax enforcement.
    """
    for where, source in (("budget_context", budget_context), ("payload", payload)):
        if not isinstance(source, Mapping):
            continue
        for name in ("estimatedCost", "estimated_cost"):
            value = source.get(name)
            if value is not None:
                return to_micro(value, f"{where}.{name}")
    return None


# -- limits -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """The monthly limit in force for a user: micro-units (None: none anywhere) and its source."""

    amount: int | None
    source: str  # "user", "organisation", "bundle" or "none"

    @property
    def explicit(self) -> int | None:
        """The limit to send as the Rego fact: None lets the bundle's default apply."""
        return self.amount if self.source in ("user", "organisation") else None


def _bundle_default(state: ServerState) -> int | None:
    try:
        value = state.engine.evaluate("governor.config.budget.default_monthly_limit", {})
    except Exception:  # undefined, or the engine is unreachable: no default
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def resolve_limit(
    state: ServerState, org_id: str, user_id: str, *, bundle_default: bool = True
) -> Limit:
    """The user's own limit, else the organisation's default, else the bundle's default.

    With `bundle_default=False` the bundle is not asked (source "bundle", amount None): a
    decision sends a null limit and the Rego `budget` package applies the bundle's default.
    """
    params = {"org_id": org_id, "user_id": user_id}
    with state.store.engine.connect() as conn:
        found = {row.user_id: int(row.monthly_limit) for row in conn.execute(_LIMITS_OF, params)}
    limit = _own_limit(found, user_id)
    if limit is not None or not bundle_default:
        return limit or Limit(None, "bundle")
    default = _bundle_default(state)
    return Limit(default, "bundle" if default is not None else "none")


def limit_in(tx: StoreTransaction, org_id: str, user_id: str) -> Limit:
    """`resolve_limit` without the bundle's default, read in the store transaction `tx`."""
    params = {"org_id": org_id, "user_id": user_id}
    rows = tx.execute(compiled(_LIMITS_OF, tx.dialect), params)
    found = {user: int(amount) for user, amount in rows}
    return _own_limit(found, user_id) or Limit(None, "bundle")


def _own_limit(found: Mapping[str, int], user_id: str) -> Limit | None:
    """The user's own limit, else the organisation's default, among the limits `found`."""
    if user_id in found:
        return Limit(found[user_id], "user")
    if ORG_DEFAULT in found:
        return Limit(found[ORG_DEFAULT], "organisation")
    return None


def set_limit(
    db: Engine, org_id: str, user_id: str, monthly_limit: int | None, currency: str
) -> None:
    """Set (or, with None, remove) the monthly limit of `user_id` (`*`: the organisation's)."""
    with db.begin() as conn:
        conn.execute(
            delete(_LIMITS).where(_LIMITS.c.org_id == org_id, _LIMITS.c.user_id == user_id)
        )
        if monthly_limit is not None:
            conn.execute(
                insert(_LIMITS).values(
                    org_id=org_id,
                    user_id=user_id,
                    monthly_limit=monthly_limit,
                    currency=currency,
                    updated_at=datetime.now(UTC),
                )
            )


# -- facts and decisions ------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetSnapshot:
    """A user's budget this month, in micro-units."""

    limit: Limit
    spent: int
    reserved: int
    period_start: datetime
    period_end: datetime

    def fact(self, estimate: int) -> dict[str, Any]:
        """The `facts.budget` of the Rego input."""
        return {
            "limit": self.limit.explicit,
            "spent": self.spent,
            "reserved": self.reserved,
            "estimated_cost": estimate,
            "currency": CURRENCY,
        }


def _snapshot(
    state: ServerState, org_id: str, user_id: str, *, bundle_default: bool = True
) -> BudgetSnapshot:
    """The user's budget now, read without the ledger lock (for reports, and decisions that
    reserve nothing)."""
    limit = resolve_limit(state, org_id, user_id, bundle_default=bundle_default)
    start, end = month_period()
    totals = state.store.usage_totals(budget_key(org_id, user_id), start, end)
    return BudgetSnapshot(limit, totals["spent"], totals["reserved"], start, end)


@dataclass(frozen=True)
class PrecheckBudget:
    """What the budget part of a precheck did: the decision, and the hold it placed if any."""

    decision: Decision
    reservation_id: str | None = None
    estimated_cost: int | None = None
    expires_at: datetime | None = None

    def metadata(self) -> dict[str, Any] | None:
        """The response metadata's `budget` entry (None when the precheck reserved nothing)."""
        if self.estimated_cost is None:
            return None
        return {
            "estimatedCost": from_micro(self.estimated_cost),
            "reservationId": self.reservation_id,
            "reserved": self.reservation_id is not None,
            "expiresAt": self.expires_at.isoformat() if self.expires_at else None,
        }


def decide_precheck(
    state: ServerState,
    tx: Transaction,
    *,
    limit: Limit,
    org_id: str,
    user_id: str,
    document: dict[str, Any],
    estimate: int | None,
    corr_id: str | None,
) -> PrecheckBudget:
    """Decide a precheck (`document`: its Rego input) with the user's budget facts, in `tx`, a
    store transaction that holds the ledger lock of the user's key (`budget_key`).

    The facts are read (spent this month, live holds; `limit` read in `tx` by `limit_in`), the
    decision evaluated and, when there is an estimate and the decision is allow or redact, the
    estimate reserved, all before the lock is released: N concurrent prechecks of one user admit
    exactly as many as the limit holds.
    """
    key = budget_key(org_id, user_id)
    start, end = month_period(tx.now_utc)
    ledger = tx.facts(key, start, end)
    snapshot = BudgetSnapshot(limit, ledger["spent"], ledger["reserved"], start, end)
    document.setdefault("facts", {})["budget"] = snapshot.fact(estimate or 0)
    decision = decide(state.engine, document)
    if not estimate or decision.decision not in ("allow", "redact"):
        return PrecheckBudget(decision, estimated_cost=estimate)
    reservation_id = tx.reserve(
        key, estimate, HOLD_TTL_SECONDS, hold_tag(corr_id), currency=CURRENCY
    )
    return PrecheckBudget(
        decision,
        reservation_id=reservation_id,
        estimated_cost=estimate,
        expires_at=tx.now_utc + timedelta(seconds=HOLD_TTL_SECONDS),
    )


def hold_tag(corr_id: str | None) -> str | None:
    """The `execution_id` of the hold of a precheck with correlation id `corr_id` (None: none)."""
    if corr_id is None:
        return None
    return "precheck:" + hashlib.sha256(corr_id.encode("utf-8")).hexdigest()[:40]


def budget_context(state: ServerState, org_id: str, user_id: str) -> dict[str, Any]:
    """`GET /api/v1/budget/context` (§4.4): limit, spending this month, what remains."""
    snap = _snapshot(state, org_id, user_id)
    limit = snap.limit.amount or 0
    return {
        "userId": user_id,
        "monthlyLimit": from_micro(limit),
        "currentSpend": from_micro(snap.spent),
        "remainingBudget": float((Decimal(limit) - snap.spent) / MICRO),
        "reservedAmount": from_micro(snap.reserved),
        "availableBudget": float((Decimal(limit) - snap.spent - snap.reserved) / MICRO),
        "currency": CURRENCY,
        "periodStart": snap.period_start.isoformat(),
        "periodEnd": snap.period_end.isoformat(),
        "limitSource": snap.limit.source,
    }


def budget_status(state: ServerState, org_id: str, user_id: str, estimate: int) -> dict[str, Any]:
    """`GET /api/v1/budget/status` (§4.7): would a call costing `estimate` be allowed now?

    Decided by the Rego `budget` package over the same facts a precheck uses (live holds
    included), without placing a hold: only a precheck reserves. `remainingBudget` is what is
    left after spending and live holds, so `allowed` is `estimatedCost <= remainingBudget`.
    """
    snap = _snapshot(state, org_id, user_id)
    document = {
        "version": 1,
        "phase": "pre",
        "action": {"kind": "model", "name": "budget.status", "scope": None, "tags": []},
        "subject": {"org_id": org_id, "user_id": user_id, "roles": [], "permissions": []},
        "args": {},
        "raw_text": "",
        "payload": {},
        "policies": [_BUDGET_POLICY],
        "facts": {"budget": snap.fact(estimate)},
    }
    decision = decide(state.engine, document)
    allowed = decision.decision != "deny"
    limit = snap.limit.amount or 0
    return {
        "allowed": allowed,
        "reason": None if allowed and not decision.reasons else ", ".join(decision.reasons),
        "remainingBudget": float((Decimal(limit) - snap.spent - snap.reserved) / MICRO),
        "estimatedCost": from_micro(estimate),
        "monthlyLimit": from_micro(limit),
        "currentSpend": from_micro(snap.spent),
        "reservedAmount": from_micro(snap.reserved),
        "currency": CURRENCY,
        "userId": user_id,
    }


# -- usage --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewUsage:
    """A usage report, checked, amounts in micro-units."""

    org_id: str
    user_id: str
    provider: str
    model: str
    amount: int
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_type: str | None = None
    correlation_id: str | None = None
    reported_at: datetime | None = None


def _candidate_holds(store: SQLStorage, usage: NewUsage, now: datetime) -> list[str]:
    """The holds `usage` may settle, in order (see the module docstring for the rule)."""
    key = budget_key(usage.org_id, usage.user_id)
    held = _RESERVATIONS.c.status == "held"
    found: list[str] = []
    with store.engine.connect() as conn:
        if usage.correlation_id is not None:
            stmt = (
                select(_RESERVATIONS.c.id)
                .where(
                    _RESERVATIONS.c.execution_id == hold_tag(usage.correlation_id),
                    _RESERVATIONS.c.key == key,
                    held,
                )
                .order_by(_RESERVATIONS.c.created_at, _RESERVATIONS.c.id)
            )
            found.extend(conn.execute(stmt).scalars())
        stmt = (
            select(_RESERVATIONS.c.id)
            .where(_RESERVATIONS.c.key == key, held, _RESERVATIONS.c.expires_at > now)
            .order_by(_RESERVATIONS.c.created_at, _RESERVATIONS.c.id)
            .limit(8)
        )
        found.extend(i for i in conn.execute(stmt).scalars() if i not in found)
    return found


def record_usage(store: SQLStorage, usage: NewUsage) -> tuple[UsageRecord, str | None]:
    """Book `usage` on the user's key: settle a hold if one matches, else unreserved.

    Returns the usage record and the id of the hold it settled (None if none). A settle that
    loses a race to another report settling the same hold returns that report's record; it is
    recognised by the request token in the metadata and the next candidate is tried, so no
    report is ever lost or booked twice.
    """
    token = uuid.uuid4().hex
    metadata: dict[str, Any] = {"request": token}
    if usage.reported_at is not None:
        metadata["reportedAt"] = usage.reported_at.isoformat()
    fields: dict[str, Any] = {
        "org_id": usage.org_id,
        "user_id": usage.user_id,
        "provider": usage.provider,
        "model": usage.model,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost_type": usage.cost_type,
        "correlation_id": usage.correlation_id,
        "execution_id": None,
        "metadata": metadata,
    }
    now = datetime.now(UTC)
    for reservation_id in _candidate_holds(store, usage, now):
        try:
            booked = store.settle(reservation_id, usage.amount, now=now, **fields)
        except (RecordNotFound, StorageError):  # released meanwhile, or swept: try the next
            continue
        if booked.metadata.get("request") == token:
            return booked, reservation_id
    record = UsageRecord(
        key=budget_key(usage.org_id, usage.user_id), amount=usage.amount, created_at=now, **fields
    )
    return store.record_usage(record), None


_RANGE = re.compile(r"(\d{1,6})([hdwm])")
_RANGE_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 30 * 86400}


def time_range_start(value: str | None, now: datetime) -> datetime | None:
    """The start of a `timeRange` such as `24h`, `7d`, `30d`, `4w`, `3m`; None for none/`all`."""
    if value is None or value.strip().lower() in ("", "all"):
        return None
    match = _RANGE.fullmatch(value.strip().lower())
    if match is None:
        raise _invalid(
            "timeRange", f"{value!r} is not a time range: use e.g. 24h, 7d, 30d, 4w, 3m or all"
        )
    return now - timedelta(seconds=int(match.group(1)) * _RANGE_UNITS[match.group(2)])


def usage_wire(record: UsageRecord, org_name: str) -> dict[str, Any]:
    """One usage record as `GET /api/v1/usage` lists it (§4.9: every field the SDK requires).

    `orgId` is the organisation's name, the `GOVERNS_ORG_ID` its clients are configured with and
    send in `POST /api/v1/usage` (§4.8); the internal id of the organisation never leaves the
    server.
    """
    created = record.created_at.isoformat() if record.created_at else None
    reported = record.metadata.get("reportedAt")
    return {
        "id": record.id,
        "userId": record.user_id,
        "orgId": org_name,
        "provider": record.provider,
        "model": record.model,
        "inputTokens": record.input_tokens,
        "outputTokens": record.output_tokens,
        "cost": from_micro(record.amount),
        "costType": record.cost_type,
        "currency": record.currency,
        "timestamp": reported if isinstance(reported, str) else created,
        "recordedAt": created,
        "correlationId": record.correlation_id,
        "reservationId": record.reservation_id,
    }


def list_usage(
    store: SQLStorage,
    org_id: str,
    *,
    user_id: str | None,
    provider: str | None,
    model: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> list[UsageRecord]:
    """The organisation's usage records, newest first (never another organisation's)."""
    return store.list_usage(
        budget_key(org_id, user_id) if user_id is not None else None,
        org_id=org_id,
        user_id=user_id,
        provider=provider,
        model=model,
        since=since,
        limit=limit,
        offset=offset,
    )
