"""What every backend's unit of work shares: its plan (keys, windows, clock) and its checks.

A `store.transaction(...)` is planned before any lock is taken: the arguments are checked, the
keys sorted and de-duplicated (locks are always taken in one order, so two transactions never
deadlock), and `now` is read once, as seconds (rate-limit clocks) and as a UTC datetime (budget
holds and periods).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from governor.errors import StorageError
from governor.storage._window import check_key, check_window_seconds
from governor.storage.base import Transaction
from governor.storage.records import (
    as_utc,
)


def as_moment(now: datetime | float | None) -> tuple[float, datetime]:
    """Return `now` as (seconds since the epoch, aware UTC datetime); None is the current time."""
    if now is None:
        seconds = time.time()
        return seconds, datetime.fromtimestamp(seconds, UTC)
    if isinstance(now, datetime):
        moment = as_utc(now)
        assert moment is not None
        return moment.timestamp(), moment
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise StorageError(f"now must be a datetime or a finite timestamp in seconds, got {now!r}")
    try:
        return float(now), datetime.fromtimestamp(now, UTC)
    except (OverflowError, OSError, ValueError):
        raise StorageError(f"now={now!r} is not a representable moment") from None


@dataclass(frozen=True, slots=True)
class TransactionPlan:
    """The checked arguments of one `transaction(...)`."""

    #: Rate-limit key -> its window in seconds, keys sorted.
    windows: dict[str, float]
    #: Budget keys, sorted and de-duplicated.
    budget_keys: tuple[str, ...]
    now: float
    now_utc: datetime

    @property
    def locks_keys(self) -> bool:
        """Whether the transaction locks any key (and so takes part in the periodic sweep)."""
        return bool(self.windows or self.budget_keys)


def prepare_transaction(
    rate_limit_keys: Mapping[str, float] | None,
    budget_keys: Sequence[str],
    now: datetime | float | None,
) -> TransactionPlan:
    """Check `transaction`'s arguments and return its plan."""
    if rate_limit_keys is None:
        windows: dict[str, float] = {}
    elif isinstance(rate_limit_keys, Mapping):
        windows = {
            check_key(key, "rate-limit"): check_window_seconds(seconds, key)
            for key, seconds in sorted(rate_limit_keys.items(), key=lambda item: str(item[0]))
        }
    else:
        raise StorageError(
            "rate_limit_keys maps each key to its window in seconds, e.g. "
            f"{{'rate:payments.transfer': 60}}; got {type(rate_limit_keys).__name__} "
            f"{rate_limit_keys!r}"
        )
    if isinstance(budget_keys, str):
        raise StorageError("budget_keys takes a list of keys, not one string: pass [key]")
    budgets = tuple(sorted({check_key(key, "budget") for key in budget_keys}))
    seconds, moment = as_moment(now)
    return TransactionPlan(windows, budgets, seconds, moment)


class LockedTransaction(Transaction):
    """Base of the backends' transactions: only the locked keys, only inside the `with` block.

    A backend sets `failed` when a write inside the transaction failed (a missing execution, a
    duplicate id, a database error): the transaction can then only be rolled back, and any further
    use, or leaving the block without the exception, raises.
    """

    def __init__(self, plan: TransactionPlan) -> None:
        self.plan = plan
        self.now = plan.now
        self.now_utc = plan.now_utc
        self.closed = False
        self.failed: BaseException | None = None

    def check_open(self) -> None:
        """Raise unless the transaction may be used now."""
        if self.closed:
            raise StorageError("this transaction is closed: use it inside its `with` block")
        if self.failed is not None:
            raise StorageError(
                f"this transaction failed earlier ({self.failed}) and can only be rolled back: "
                "let that exception leave the `with` block"
            )

    def window_of(self, key: str) -> float:
        """Return the window of a locked rate-limit key; raise if the key is not locked."""
        self.check_open()
        window = self.plan.windows.get(key)
        if window is None:
            raise StorageError(
                f"rate-limit key {key!r} is not locked by this transaction; pass it in "
                f"rate_limit_keys (locked: {sorted(self.plan.windows)})"
            )
        return window

    def check_budget_key(self, key: str) -> None:
        """Raise unless `key` is a budget key this transaction locked."""
        self.check_open()
        if key not in self.plan.budget_keys:
            raise StorageError(
                f"budget key {key!r} is not locked by this transaction; pass it in "
                f"budget_keys (locked: {list(self.plan.budget_keys)})"
            )

    def fail(self, error: BaseException) -> BaseException:
        """Mark the transaction failed because of `error`; return it, for `raise`."""
        self.failed = error
        return error

    def check_commit(self) -> None:
        """Raise (so the block rolls back) if a write failed and the block swallowed the error."""
        if self.failed is not None:
            raise StorageError(
                f"a write in this transaction failed ({self.failed}) and the error was caught "
                "inside the `with` block; the whole transaction was rolled back"
            ) from self.failed
