"""The budget ledger contract, on every backend: facts, holds, settle, release, expiry, usage.

Amounts are integer micro-units (1 USD = 1_000_000). Every test passes an explicit `now`, so
expiry and periods do not depend on the clock of the machine running the tests.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from governor.errors import InvalidAmount, RecordNotFound, StorageError
from governor.storage import (
    BudgetFacts,
    ReservationStatus,
    StorageBackend,
    UsageRecord,
    month_period,
)

NOW = datetime(2026, 3, 15, 12, 30, tzinfo=UTC)
MARCH = month_period(NOW)
KEY = "org-1:user-7"
USD = 1_000_000


def reserve(store: StorageBackend, amount: int, *, now: datetime = NOW, ttl: float = 60) -> str:
    with store.budget_window([KEY], now) as window:
        return window.reserve(KEY, amount, ttl)


def facts(store: StorageBackend, now: datetime = NOW) -> BudgetFacts:
    with store.budget_window([KEY], now) as window:
        return window.facts(KEY, *month_period(now))


# -- periods -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (NOW, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
        (
            datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2025, 12, 1, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
        (datetime(2026, 2, 1), datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        (
            datetime(2026, 7, 1, 1, 0, tzinfo=timezone(timedelta(hours=3))),
            datetime(2026, 6, 1, tzinfo=UTC),
            datetime(2026, 7, 1, tzinfo=UTC),
        ),
    ],
    ids=["mid-month", "december-rolls-over", "naive-is-utc", "other-zone-converted"],
)
def test_month_period_is_the_utc_calendar_month(
    now: datetime, start: datetime, end: datetime
) -> None:
    assert month_period(now) == (start, end)


def test_month_period_takes_seconds_since_the_epoch() -> None:
    assert month_period(NOW.timestamp()) == MARCH


# -- facts and holds ---------------------------------------------------------------------------


def test_a_new_key_has_nothing_spent_or_reserved(store: StorageBackend) -> None:
    assert facts(store) == {"spent": 0, "reserved": 0}


def test_a_hold_counts_in_its_own_block_and_after_the_commit(store: StorageBackend) -> None:
    with store.budget_window([KEY], NOW) as window:
        window.reserve(KEY, 2 * USD, 60)
        window.reserve(KEY, 3 * USD, 60)
        assert window.facts(KEY, *MARCH) == {"spent": 0, "reserved": 5 * USD}
    assert facts(store) == {"spent": 0, "reserved": 5 * USD}


def test_an_exception_in_the_block_places_no_hold(store: StorageBackend) -> None:
    with pytest.raises(RuntimeError, match="engine down"), store.budget_window([KEY], NOW) as w:
        w.reserve(KEY, USD, 60)
        raise RuntimeError("engine down")
    assert facts(store) == {"spent": 0, "reserved": 0}


def test_the_hold_is_recorded_with_its_details(store: StorageBackend) -> None:
    with store.budget_window([KEY], NOW) as window:
        hold_id = window.reserve(KEY, USD, 90, "exec-1", currency="EUR")
    hold = store.get_reservation(hold_id, now=NOW)
    assert hold is not None
    assert (hold.key, hold.amount, hold.currency, hold.execution_id) == (KEY, USD, "EUR", "exec-1")
    assert hold.status is ReservationStatus.HELD
    assert hold.created_at == NOW and hold.expires_at == NOW + timedelta(seconds=90)
    assert store.get_reservation("nope") is None


# -- settle ------------------------------------------------------------------------------------


def test_settle_books_the_actual_cost_and_frees_the_hold(store: StorageBackend) -> None:
    hold_id = reserve(store, 2 * USD)
    usage = store.settle(
        hold_id,
        1_250_000,
        now=NOW,
        provider="openai",
        model="gpt-4o",
        input_tokens=1200,
        output_tokens=300,
        correlation_id="corr-9",
        metadata={"tool": "chat"},
    )
    assert usage.amount == 1_250_000 and usage.reservation_id == hold_id
    assert (usage.key, usage.currency, usage.created_at) == (KEY, "USD", NOW)
    assert facts(store) == {"spent": 1_250_000, "reserved": 0}
    hold = store.get_reservation(hold_id, now=NOW)
    assert hold is not None and hold.status is ReservationStatus.SETTLED
    assert hold.usage_id == usage.id
    assert store.list_usage(KEY) == [usage]
    assert usage.provider == "openai" and usage.input_tokens == 1200
    assert usage.metadata == {"tool": "chat"} and usage.correlation_id == "corr-9"


def test_settle_takes_the_holds_execution_and_currency_unless_told(
    store: StorageBackend,
) -> None:
    with store.budget_window([KEY], NOW) as window:
        first = window.reserve(KEY, USD, 60, "exec-1", currency="EUR")
        second = window.reserve(KEY, USD, 60, "exec-2", currency="EUR")
    assert store.settle(first, 1, now=NOW).execution_id == "exec-1"
    assert store.settle(first, 1, now=NOW).currency == "EUR"
    overridden = store.settle(second, 1, now=NOW, execution_id="exec-3", currency="USD")
    assert (overridden.execution_id, overridden.currency) == ("exec-3", "USD")


def test_settling_twice_is_a_no_op_returning_the_same_usage(store: StorageBackend) -> None:
    hold_id = reserve(store, 2 * USD)
    first = store.settle(hold_id, USD, now=NOW)
    again = store.settle(hold_id, 5 * USD, now=NOW + timedelta(seconds=5), provider="x")
    assert again == first
    assert len(store.list_usage(KEY)) == 1
    assert facts(store) == {"spent": USD, "reserved": 0}


def test_settle_refuses_unknown_fields_and_bad_amounts(store: StorageBackend) -> None:
    hold_id = reserve(store, USD)
    with pytest.raises(StorageError, match="unknown usage field.*colour.*it takes:"):
        store.settle(hold_id, USD, colour="red")
    with pytest.raises(InvalidAmount, match="settle actual_amount must be a whole number"):
        store.settle(hold_id, 0.5)  # type: ignore[arg-type]
    assert facts(store) == {"spent": 0, "reserved": USD}


def test_racing_settles_of_one_hold_book_it_once(store: StorageBackend) -> None:
    hold_id = reserve(store, 2 * USD)
    barrier = threading.Barrier(12)
    booked: list[UsageRecord] = []
    errors: list[BaseException] = []

    def settle(amount: int) -> None:
        try:
            barrier.wait()
            booked.append(store.settle(hold_id, amount, now=NOW))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=settle, args=(USD + i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({u.id for u in booked}) == 1 and len(booked) == 12
    assert len(store.list_usage(KEY)) == 1
    assert facts(store) == {"spent": booked[0].amount, "reserved": 0}


def test_an_expired_hold_can_still_be_settled(store: StorageBackend) -> None:
    hold_id = reserve(store, USD, ttl=60)
    late = NOW + timedelta(minutes=10)
    assert store.settle(hold_id, 700_000, now=late).created_at == late
    assert facts(store, late) == {"spent": 700_000, "reserved": 0}


def test_settling_an_unknown_hold_raises_record_not_found(store: StorageBackend) -> None:
    with pytest.raises(RecordNotFound, match="cannot settle reservation nope.*record_usage"):
        store.settle("nope", USD)


# -- release and expiry ------------------------------------------------------------------------


def test_release_frees_the_hold_once(store: StorageBackend) -> None:
    hold_id = reserve(store, 4 * USD)
    assert facts(store)["reserved"] == 4 * USD
    assert store.release(hold_id, now=NOW) is True
    assert facts(store) == {"spent": 0, "reserved": 0}
    assert store.release(hold_id, now=NOW) is False
    hold = store.get_reservation(hold_id, now=NOW)
    assert hold is not None and hold.status is ReservationStatus.RELEASED
    assert hold.closed_at == NOW


def test_a_released_hold_cannot_be_settled(store: StorageBackend) -> None:
    hold_id = reserve(store, USD)
    store.release(hold_id)
    with pytest.raises(StorageError, match=f"cannot settle reservation {hold_id}: it was released"):
        store.settle(hold_id, USD)
    assert store.list_usage(KEY) == []


def test_release_of_a_settled_hold_is_false_and_changes_nothing(store: StorageBackend) -> None:
    hold_id = reserve(store, USD)
    store.settle(hold_id, USD, now=NOW)
    assert store.release(hold_id) is False
    assert facts(store) == {"spent": USD, "reserved": 0}


def test_releasing_an_unknown_hold_raises_record_not_found(store: StorageBackend) -> None:
    with pytest.raises(RecordNotFound, match="cannot release reservation nope"):
        store.release("nope")


def test_expired_holds_stop_counting(store: StorageBackend) -> None:
    reserve(store, USD, ttl=60)
    reserve(store, 2 * USD, ttl=120)
    assert facts(store, NOW + timedelta(seconds=59))["reserved"] == 3 * USD
    assert facts(store, NOW + timedelta(seconds=60))["reserved"] == 2 * USD  # expires_at > now
    assert facts(store, NOW + timedelta(seconds=120))["reserved"] == 0


def test_an_expired_hold_reads_as_expired(store: StorageBackend) -> None:
    hold_id = reserve(store, USD, ttl=60)
    held = store.get_reservation(hold_id, now=NOW + timedelta(seconds=59))
    expired = store.get_reservation(hold_id, now=NOW + timedelta(seconds=61))
    assert held is not None and held.status is ReservationStatus.HELD
    assert expired is not None and expired.status is ReservationStatus.EXPIRED
    assert expired.closed_at == NOW + timedelta(seconds=60)


# -- usage -------------------------------------------------------------------------------------


def usage(amount: int, at: datetime, key: str = KEY, **fields: object) -> UsageRecord:
    return UsageRecord(key=key, amount=amount, created_at=at, **fields)  # type: ignore[arg-type]


def test_usage_totals_count_the_usage_of_their_period_only(store: StorageBackend) -> None:
    feb, mar, apr = month_period(datetime(2026, 2, 10)), MARCH, month_period(datetime(2026, 4, 2))
    store.record_usage(usage(1, datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC)))
    store.record_usage(usage(10, mar[0]))  # the first moment of March counts in March
    store.record_usage(usage(100, datetime(2026, 3, 15, 8, tzinfo=UTC)))
    store.record_usage(usage(1000, apr[0]))  # the end of March is April's
    store.record_usage(usage(10_000, datetime(2026, 3, 20, tzinfo=UTC), key="org-1:other"))
    assert store.usage_totals(KEY, *feb, now=NOW) == {"spent": 1, "count": 1, "reserved": 0}
    assert store.usage_totals(KEY, *mar, now=NOW) == {"spent": 110, "count": 2, "reserved": 0}
    assert store.usage_totals(KEY, *apr, now=NOW) == {"spent": 1000, "count": 1, "reserved": 0}
    reserve(store, 7)
    assert store.usage_totals(KEY, *mar, now=NOW)["reserved"] == 7
    with store.budget_window([KEY], NOW) as window:
        assert window.facts(KEY, *mar) == {"spent": 110, "reserved": 7}


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2026, 3, 1, 6), datetime(2026, 3, 3, 18)),  # partial days at both edges
        (datetime(2026, 3, 2, 0), datetime(2026, 3, 2, 23, 59)),  # inside one day
        (datetime(2026, 3, 1, 23), datetime(2026, 3, 2, 1)),  # across midnight, no whole day
        (datetime(2026, 3, 2), datetime(2026, 3, 4)),  # whole days only
        (datetime(2026, 2, 27, 12), datetime(2026, 4, 1)),  # a month and a half day
    ],
)
def test_any_period_sums_exactly_what_lies_in_it(
    store: StorageBackend, start: datetime, end: datetime
) -> None:
    moments = [datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=h) for h in range(-60, 80, 5)]
    for i, moment in enumerate(moments):
        store.record_usage(usage(2**i, moment))
    lo, hi = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    expected = [2**i for i, moment in enumerate(moments) if lo <= moment < hi]
    totals = store.usage_totals(KEY, start, end, now=NOW)
    assert (totals["spent"], totals["count"]) == (sum(expected), len(expected))
    with store.budget_window([KEY], NOW) as window:
        assert window.facts(KEY, start, end)["spent"] == sum(expected)


def test_usage_is_listed_newest_first_and_filtered(store: StorageBackend) -> None:
    a = store.record_usage(usage(1, NOW, provider="openai", model="gpt-4o", user_id="u7"))
    b = store.record_usage(usage(2, NOW + timedelta(seconds=1), provider="anthropic"))
    c = store.record_usage(usage(3, NOW + timedelta(seconds=2), key="org-2:u", org_id="org-2"))
    assert store.list_usage() == [c, b, a]
    assert store.list_usage(KEY) == [b, a]
    assert store.list_usage(provider="openai") == [a]
    assert store.list_usage(model="gpt-4o", user_id="u7") == [a]
    assert store.list_usage(org_id="org-2") == [c]
    assert store.list_usage(since=NOW + timedelta(seconds=1)) == [c, b]
    assert store.list_usage(until=NOW + timedelta(seconds=1)) == [a]
    assert store.list_usage(limit=1, offset=1) == [b]


def test_recorded_usage_round_trips_every_field(store: StorageBackend) -> None:
    record = usage(
        123,
        NOW,
        currency="EUR",
        execution_id="e1",
        correlation_id="c1",
        org_id="org-1",
        user_id="user-7",
        provider="openai",
        model="gpt-4o",
        input_tokens=10,
        output_tokens=20,
        cost_type="external",
        metadata={"tool": "search.web", "decision": "allow"},
    )
    stored = store.record_usage(record)
    assert stored == record
    assert store.list_usage(KEY) == [record]


def test_record_usage_refuses_a_reservation_and_a_duplicate_id(store: StorageBackend) -> None:
    with pytest.raises(StorageError, match="record_usage is for spending without one"):
        store.record_usage(usage(1, NOW, reservation_id="r1"))
    first = store.record_usage(usage(1, NOW))
    with pytest.raises(StorageError, match=f"cannot record usage {first.id}"):
        store.record_usage(UsageRecord(id=first.id, key=KEY, amount=2, created_at=NOW))
    assert [u.amount for u in store.list_usage(KEY)] == [1]


# -- amounts and arguments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (1.5, r"reserve amount must be a whole number of micro-units.*float 1\.5"),
        (1.0, r"reserve amount must be a whole number.*float 1\.0"),
        (True, r"reserve amount must be a whole number.*the bool True"),
        (Decimal("1"), r"reserve amount must be a whole number.*Decimal"),
        ("100", r"reserve amount must be a whole number.*str '100'"),
        (-1, "reserve amount must not be negative"),
        (2**63, "more than the largest amount"),
    ],
)
def test_amounts_must_be_whole_micro_units(
    store: StorageBackend, amount: object, message: str
) -> None:
    with (
        pytest.raises(InvalidAmount, match=message),
        store.budget_window([KEY], NOW) as window,
    ):
        window.reserve(KEY, amount, 60)  # type: ignore[arg-type]
    assert facts(store)["reserved"] == 0


def test_usage_amounts_are_checked_naming_the_field(store: StorageBackend) -> None:
    with pytest.raises(InvalidAmount, match=r"usage\.amount must be a whole number.*float 0\.25"):
        store.record_usage(UsageRecord(key=KEY, amount=0.25))  # type: ignore[arg-type]
    with pytest.raises(StorageError, match=r"usage\.input_tokens must be a non-negative"):
        store.record_usage(UsageRecord(key=KEY, amount=1, input_tokens=-3))
    with pytest.raises(StorageError, match=r"usage\.currency must be a currency code"):
        store.record_usage(UsageRecord(key=KEY, amount=1, currency=""))


def test_invalid_amount_is_a_storage_error_and_a_value_error() -> None:
    assert issubclass(InvalidAmount, StorageError) and issubclass(InvalidAmount, ValueError)


@pytest.mark.parametrize(
    ("ttl", "message"), [(0, "positive"), (-5, "positive"), (float("nan"), "positive")]
)
def test_a_hold_needs_a_positive_ttl(store: StorageBackend, ttl: float, message: str) -> None:
    with pytest.raises(StorageError, match=message), store.budget_window([KEY], NOW) as window:
        window.reserve(KEY, 1, ttl)


def test_budget_window_uses_only_its_keys_and_only_inside_the_block(
    store: StorageBackend,
) -> None:
    with store.budget_window([KEY], NOW) as window:
        with pytest.raises(StorageError, match="budget key 'org-2:x' is not locked"):
            window.facts("org-2:x", *MARCH)
        with pytest.raises(StorageError, match="budget key 'org-2:x' is not locked"):
            window.reserve("org-2:x", 1, 60)
    with pytest.raises(StorageError, match="closed"):
        window.reserve(KEY, 1, 60)


@pytest.mark.parametrize(
    ("keys", "message"),
    [(KEY, "list of keys"), ([], "at least one key"), ([""], "non-empty"), (["k" * 2000], "1024")],
)
def test_budget_window_arguments_are_checked(
    store: StorageBackend, keys: object, message: str
) -> None:
    with pytest.raises(StorageError, match=message), store.budget_window(keys, NOW):  # type: ignore[arg-type]
        pass


def test_a_period_must_be_two_datetimes_in_order(store: StorageBackend) -> None:
    with store.budget_window([KEY], NOW) as window:
        with pytest.raises(StorageError, match="is not after period_start"):
            window.facts(KEY, MARCH[1], MARCH[0])
        with pytest.raises(StorageError, match="period_start must be a datetime"):
            window.facts(KEY, "2026-03-01", MARCH[1])  # type: ignore[arg-type]


# -- sweeping ----------------------------------------------------------------------------------


def test_the_sweep_marks_expired_holds_and_deletes_old_finished_ones(
    store: StorageBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import governor.storage.memory
    import governor.storage.sql

    # The sweep runs on the machine's clock (never ahead of it), so these are relative to it.
    now = datetime.now(UTC)
    weeks_ago = now - timedelta(days=15)
    settled = reserve(store, USD, now=weeks_ago)
    booked = store.settle(settled, USD, now=weeks_ago)
    expired = reserve(store, 2 * USD, now=now - timedelta(hours=2), ttl=60)
    fresh = reserve(store, 3 * USD, now=now, ttl=3600)
    monkeypatch.setattr(governor.storage.sql, "SWEEP_EVERY", 2)
    monkeypatch.setattr(governor.storage.memory, "SWEEP_EVERY", 2)
    for _ in range(2):  # one of the next two locking transactions sweeps
        with store.budget_window([KEY]):
            pass

    assert store.get_reservation(settled) is None  # finished more than a week ago: deleted
    assert store.settle(settled, 5 * USD) == booked  # and settling it again still answers
    with pytest.raises(RecordNotFound):
        store.release("never-existed")
    assert store.release(settled) is False
    marked = store.get_reservation(expired, now=now - timedelta(hours=2))  # marked, not computed
    assert marked is not None and marked.status is ReservationStatus.EXPIRED
    live = store.get_reservation(fresh, now=now)
    assert live is not None and live.status is ReservationStatus.HELD
