"""What both backends share about the budget ledger: amounts, periods, usage records, sweeping.

Semantics (identical in every backend):
- Amounts are Python ints of micro-units (1 USD = 1_000_000), 0 to 2**63 - 1. A float, a bool or
  a Decimal is refused with `InvalidAmount` naming the field: rounding money silently is a bug.
- `facts(key, start, end)` inside a transaction that locked `key`: `spent` is the usage recorded
  under the key with `start <= created_at < end`; `reserved` is the sum of the key's holds still
  `held` with `expires_at > now` (the transaction's `now`). Expired holds never count, whether or
  not the sweep has marked them yet.
- `settle` books a hold: it writes one usage record (`reservation_id` set) and marks the hold
  settled in one transaction. Settling again returns that same record and changes nothing, even
  with another amount. A hold that expired can still be settled (the cost did happen: a late
  settle books it); a released one cannot.
- Holds that expired are marked `expired`, and finished holds older than
  `RESERVATION_RETENTION_SECONDS` are deleted, by the periodic sweep (see `_window.SWEEP_EVERY`);
  the usage records they produced stay, and settling a deleted hold still returns its record.
- A budget key keeps one currency; sums do not convert. Keep one key per currency if needed.
- Spending in a period is read from per-key daily totals (kept with every usage insert) for the
  whole UTC days inside it, plus the usage rows of the partial days at its edges
  (`split_period`), so a check costs the same on the first and the millionth call of a month.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from governor.errors import InvalidAmount, StorageError
from governor.storage._json import ensure_json
from governor.storage._transaction import as_moment
from governor.storage._window import check_key
from governor.storage.records import (
    SETTLE_USAGE_FIELDS,
    ReservationRecord,
    ReservationStatus,
    UsageRecord,
    as_utc,
)

#: The largest amount the store keeps (a signed 64-bit column).
MAX_AMOUNT = 2**63 - 1
#: Longest currency code accepted.
MAX_CURRENCY_LENGTH = 16
#: Finished holds (settled, released, expired) are deleted this long after they expired.
RESERVATION_RETENTION_SECONDS = 7 * 24 * 3600.0


def check_amount(value: object, field: str) -> int:
    """Return `value` if it is a whole, non-negative number of micro-units, else raise."""
    if type(value) is not int:
        if isinstance(value, bool):
            shown = f"the bool {value!r}"
        elif isinstance(value, int):
            return check_amount(int(value), field)  # an int subclass (IntEnum): its value
        else:
            shown = f"{type(value).__name__} {value!r}"
        raise InvalidAmount(
            f"{field} must be a whole number of micro-units (an int; 1 USD = 1_000_000), got "
            f"{shown}; convert money with round(Decimal(amount) * 1_000_000) before the store"
        )
    if value < 0:
        raise InvalidAmount(f"{field} must not be negative, got {value}")
    if value > MAX_AMOUNT:
        raise InvalidAmount(f"{field} is {value}, more than the largest amount {MAX_AMOUNT}")
    return value


def check_count(value: object, field: str) -> int | None:
    """Return a token count (a non-negative int) or None, else raise naming the field."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StorageError(f"{field} must be a non-negative whole number or None, got {value!r}")
    return int(value)


def check_ttl(value: object) -> float:
    """Return a hold's time to live in seconds, a positive finite number, else raise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise StorageError(f"reserve ttl_seconds must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise StorageError(f"reserve ttl_seconds must be a positive number, got {value!r}")
    return float(value)


def check_currency(value: object, field: str) -> str:
    """Return a currency code (a short non-empty string), else raise naming the field."""
    if not isinstance(value, str) or not value or len(value) > MAX_CURRENCY_LENGTH:
        raise StorageError(
            f"{field} must be a currency code such as 'USD' (1 to {MAX_CURRENCY_LENGTH} "
            f"characters), got {value!r}"
        )
    return str(value)


def _text(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise StorageError(f"{field} must be a string or None, got {type(value).__name__}")
    return str(value)


def _when(value: object, field: str) -> datetime | None:
    if value is not None and not isinstance(value, datetime):
        raise StorageError(f"{field} must be a datetime, got {type(value).__name__} {value!r}")
    return as_utc(value)


def check_period(period_start: object, period_end: object) -> tuple[datetime, datetime]:
    """Return a period `[start, end)` as aware UTC datetimes, or raise if it is not one."""
    start = _when(period_start, "period_start")
    end = _when(period_end, "period_end")
    if start is None or end is None:
        raise StorageError("a budget period needs both period_start and period_end (datetimes)")
    if end <= start:
        raise StorageError(f"period_end {end.isoformat()} is not after period_start {start}")
    return start, end


@dataclass(frozen=True, slots=True)
class PeriodSplit:
    """A period `[start, end)` as whole UTC days `[first_day, end_day)` and two partial edges.

    Every moment of the period is in exactly one part; empty parts are empty ranges
    (`first_day == end_day`, or an edge whose start equals its end).
    """

    first_day: date
    end_day: date
    head: tuple[datetime, datetime]
    tail: tuple[datetime, datetime]


def _midnight(day: date, like: datetime) -> datetime:
    return datetime.combine(day, time(), tzinfo=like.tzinfo)


def split_period(start: datetime, end: datetime) -> PeriodSplit:
    """Split a checked period into whole UTC days and the partial days at its edges."""
    first_day = start.date()
    if start != _midnight(first_day, start):
        first_day = first_day + timedelta(days=1)
    end_day = end.date()
    if first_day >= end_day:  # no whole day inside: the period is all edge
        return PeriodSplit(first_day, first_day, (start, end), (end, end))
    return PeriodSplit(
        first_day,
        end_day,
        (start, _midnight(first_day, start)),
        (_midnight(end_day, end), end),
    )


def day_of(moment: datetime) -> date:
    """The UTC day whose daily total a usage record at `moment` counts in."""
    return moment.date()


def month_period(now: datetime | float | None = None) -> tuple[datetime, datetime]:
    """Return the calendar month (UTC) holding `now`: `(first day 00:00, next month's first day)`.

    `now` is a datetime (naive is UTC), seconds since the epoch, or None for the current time. The
    period is half-open: usage at exactly the end counts in the next month.
    """
    _, moment = as_moment(now)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        end = start.replace(year=start.year + 1, month=1)
    else:
        end = start.replace(month=start.month + 1)
    return start, end


def prepare_usage(record: UsageRecord, now: datetime) -> UsageRecord:
    """Return a checked copy of `record`, `created_at` defaulting to `now`."""
    if not isinstance(record, UsageRecord):
        raise StorageError(f"expected a UsageRecord, got {type(record).__name__}")
    if not isinstance(record.id, str) or not record.id:
        raise StorageError(f"usage.id must be a non-empty string, got {record.id!r}")
    metadata = record.metadata
    if not isinstance(metadata, Mapping):
        raise StorageError(f"usage.metadata must be a JSON object (dict), got {metadata!r}")
    return UsageRecord(
        id=record.id,
        key=check_key(record.key, "budget"),
        amount=check_amount(record.amount, "usage.amount"),
        currency=check_currency(record.currency, "usage.currency"),
        created_at=_when(record.created_at, "usage.created_at") or now,
        execution_id=_text(record.execution_id, "usage.execution_id"),
        correlation_id=_text(record.correlation_id, "usage.correlation_id"),
        reservation_id=_text(record.reservation_id, "usage.reservation_id"),
        org_id=_text(record.org_id, "usage.org_id"),
        user_id=_text(record.user_id, "usage.user_id"),
        provider=_text(record.provider, "usage.provider"),
        model=_text(record.model, "usage.model"),
        input_tokens=check_count(record.input_tokens, "usage.input_tokens"),
        output_tokens=check_count(record.output_tokens, "usage.output_tokens"),
        cost_type=_text(record.cost_type, "usage.cost_type"),
        metadata=ensure_json(dict(metadata), "usage.metadata"),
    )


def check_settle_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check the `**usage_fields` of `settle`; unknown names are an error listing the known."""
    unknown = sorted(set(fields) - SETTLE_USAGE_FIELDS)
    if unknown:
        allowed = ", ".join(sorted(SETTLE_USAGE_FIELDS))
        raise StorageError(
            f"settle got unknown usage field(s) {', '.join(unknown)}; it takes: {allowed}"
        )
    return dict(fields)


def settled_usage(
    hold: ReservationRecord, amount: int, fields: Mapping[str, Any], now: datetime
) -> UsageRecord:
    """Return the checked usage record that settles `hold` with `amount` at `now`."""
    values = dict(fields)
    values.setdefault("currency", hold.currency)
    values.setdefault("execution_id", hold.execution_id)
    return prepare_usage(
        UsageRecord(key=hold.key, amount=amount, reservation_id=hold.id, created_at=now, **values),
        now,
    )


def new_hold(
    key: str,
    amount: object,
    ttl_seconds: object,
    execution_id: object,
    currency: object,
    now: datetime,
) -> ReservationRecord:
    """Return a checked hold of `amount` on `key` from `now` for `ttl_seconds`."""
    ttl = check_ttl(ttl_seconds)
    try:
        expires_at = now + timedelta(seconds=ttl)
    except OverflowError:
        raise StorageError(f"reserve ttl_seconds={ttl_seconds!r} is too long") from None
    return ReservationRecord(
        key=key,
        amount=check_amount(amount, "reserve amount"),
        currency=check_currency(currency, "reserve currency"),
        execution_id=_text(execution_id, "reserve execution_id"),
        created_at=now,
        expires_at=expires_at,
    )


def reported(hold: ReservationRecord, now: datetime) -> ReservationRecord:
    """Return `hold` as `get_reservation` reports it: a held hold past its expiry is expired."""
    if hold.status is ReservationStatus.HELD and hold.expires_at <= now:
        hold.status = ReservationStatus.EXPIRED
        hold.closed_at = hold.expires_at
    return hold
