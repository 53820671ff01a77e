"""The budget proof: 100 concurrent spenders of 1 USD against a limit of 10 USD admit exactly 10,
from threads of one process and from 4 processes sharing one SQLite file (or one PostgreSQL).

The admission is the runtime's: lock the key, read the facts, decide `spent + reserved + amount
<= limit` (where the Rego rule `governor.policies.budget` slots in), reserve, commit; then, outside
the lock, settle the hold with the actual cost, as the call would after it ran.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from governor.storage import SQLStorage, StorageBackend, month_period
from tests.storage.conftest import make_store, postgres_url, run_in_processes, sqlite_url

LIMIT = 10_000_000  # 10 USD in micro-units
AMOUNT = 1_000_000
SPENDERS = 100
PROCESSES = 4
KEY = "org-1:user-7"


def spend(store: StorageBackend, key: str) -> bool:
    """One spender: decide under the key's lock, reserve, then settle the actual cost."""
    with store.budget_window([key]) as window:
        start, end = month_period(datetime.now(UTC))
        facts = window.facts(key, start, end)
        if facts["spent"] + facts["reserved"] + AMOUNT > LIMIT:
            return False
        hold = window.reserve(key, AMOUNT, ttl_seconds=300)
    store.settle(hold, AMOUNT, provider="openai", model="gpt-4o")
    return True


def spend_concurrently(store: StorageBackend, key: str, spenders: int) -> tuple[int, list[str]]:
    """Run `spenders` threads released together; return how many were admitted, and errors."""
    barrier = threading.Barrier(spenders)
    admitted: list[bool] = []
    errors: list[str] = []

    def spender() -> None:
        try:
            barrier.wait()
            admitted.append(spend(store, key))
        except BaseException as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=spender) for _ in range(spenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(admitted), errors


def check_the_books(store: StorageBackend, key: str) -> None:
    """Exactly the limit was spent, nothing is still held, one usage record per admission."""
    now = datetime.now(UTC)
    totals = store.usage_totals(key, *month_period(now), now=now)
    assert totals == {"spent": LIMIT, "count": LIMIT // AMOUNT, "reserved": 0}
    assert len(store.list_usage(key, limit=None)) == LIMIT // AMOUNT
    assert not spend(store, key)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_100_threads_spending_1_usd_against_10_usd_admit_exactly_10(
    kind: str, tmp_path: Path
) -> None:
    store = make_store(kind, tmp_path)
    try:
        admitted, errors = spend_concurrently(store, KEY, SPENDERS)
        assert errors == []
        assert admitted == LIMIT // AMOUNT
        check_the_books(store, KEY)
    finally:
        store.clear()
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_4_processes_sharing_one_database_admit_exactly_10_spenders(
    kind: str, tmp_path: Path
) -> None:
    if kind == "sqlite":
        url = sqlite_url(tmp_path)  # not created yet: the workers create it
    else:
        url = postgres_url()
        SQLStorage(url).clear()
    admitted, errors = run_in_processes(spend_concurrently, url, KEY, SPENDERS, PROCESSES)
    assert errors == []
    assert admitted == LIMIT // AMOUNT

    store = SQLStorage(url)
    try:
        check_the_books(store, KEY)
    finally:
        store.clear()
        store.close()
