"""The store's cost per governed call: one unit of work, timed on each backend.

A governed call with `AuditPolicy()` and `RateLimitPolicy(...)` writes, in one
`store.transaction(...)`: count and record its rate-limit key, save its execution, append its audit
record. This times exactly that (and, for comparison, the same work as three separate write
transactions, and a call with a budget: facts + reserve + execution + audit, then settle after
the call; the month's usage grows as it runs), on the in-memory store
and on a SQLite file (and on PostgreSQL when `GOVERNOR_BENCH_POSTGRES_URL` is set).

    .venv/bin/python bench/storage.py [--count 5000] [--warmup 500] [--json]

`run(count, warmup)` returns the figures for `bench/run.py`. Figures depend on the machine and the
disk; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from governor.storage import (  # noqa: E402
    AuditRecord,
    ExecutionRecord,
    ExecutionStatus,
    InMemoryStorage,
    SQLStorage,
    StorageBackend,
    month_period,
)

RATE_KEY = "rate:bench.transfer"
BUDGET_KEY = "org-1:user-1"
LIMIT = 10**9  # never reached: every call records, as an admitted call does


def _execution() -> ExecutionRecord:
    return ExecutionRecord(
        function_name="transfer",
        function_module="bench",
        function_qualname="transfer",
        status=ExecutionStatus.RUNNING,
        inputs={"args": [100, "ACC1"], "kwargs": {"memo": "rent"}},
        metadata={"user_id": "u1"},
        decision="allow",
    )


def _audit(execution_id: str) -> AuditRecord:
    return AuditRecord(
        action="function:bench.transfer",
        decision="allow",
        execution_id=execution_id,
        actor="u1",
        reasons=[],
        policy_revision="bench",
        duration_ms=0.1,
        record={"args": [100, "ACC1"]},
    )


def unit_of_work(store: StorageBackend) -> None:
    """One governed call with AuditPolicy + RateLimitPolicy: one write transaction."""
    with store.transaction(rate_limit_keys={RATE_KEY: 60}, now=time.time()) as tx:
        if tx.count(RATE_KEY) < LIMIT:
            tx.record(RATE_KEY)
        saved = tx.save_execution(_execution())
        tx.append_audit_record(_audit(saved.id))


def separate_transactions(store: StorageBackend) -> None:
    """The same work as three write transactions (what a caller without `transaction` does)."""
    with store.rate_limit_window([RATE_KEY], 60, time.time()) as window:
        if window.count(RATE_KEY) < LIMIT:
            window.record(RATE_KEY)
    saved = store.save_execution(_execution())
    store.append_audit_record(_audit(saved.id))


def budget_unit_of_work(store: StorageBackend) -> None:
    """One governed call with a budget: facts, reserve, execution, audit in one transaction,
    then (after the call ran) `settle` with the actual cost: two write transactions."""
    with store.transaction(budget_keys=[BUDGET_KEY]) as tx:
        start, end = month_period(tx.now_utc)
        facts = tx.facts(BUDGET_KEY, start, end)
        hold = None
        if facts["spent"] + facts["reserved"] + 1_000 <= 10**15:
            hold = tx.reserve(BUDGET_KEY, 1_000, 300)
        saved = tx.save_execution(_execution())
        tx.append_audit_record(_audit(saved.id))
    if hold is not None:
        store.settle(hold, 900, provider="openai", model="gpt-4o")


def _time(work: Callable[[StorageBackend], None], store: StorageBackend, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        work(store)
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "mean_us": round(statistics.fmean(ordered), 1),
    }


def run(count: int = 5000, warmup: int = 500) -> dict[str, dict[str, dict[str, float]]]:
    """Time each kind of work on each backend; returns {backend: {work: {p50_us, p99_us}}}."""
    works: dict[str, Callable[[StorageBackend], None]] = {
        "unit_of_work(count+record+save_execution+append_audit)": unit_of_work,
        "three_separate_transactions": separate_transactions,
        "budget_call(facts+reserve+save_execution+append_audit, then settle)": budget_unit_of_work,
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="governor-bench-") as directory:
        files = iter(range(1_000_000))
        backends: dict[str, Callable[[], StorageBackend]] = {
            "memory": lambda: InMemoryStorage(max_executions=None, max_audit_records=None),
            # A fresh file for each kind of work, so none runs on another's leftovers.
            "sqlite-file": lambda: SQLStorage(f"sqlite:///{directory}/bench-{next(files)}.db"),
        }
        postgres = os.environ.get("GOVERNOR_BENCH_POSTGRES_URL")
        if postgres:
            backends["postgresql"] = lambda: SQLStorage(postgres)
        for name, factory in backends.items():
            results[name] = {}
            for label, work in works.items():
                store = factory()
                store.clear()
                _time(work, store, warmup)
                results[name][label] = _summary(_time(work, store, count))
                store.clear()
                store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results = run(args.count, args.warmup)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"store cost per governed call, {args.count} calls after {args.warmup} warm-up")
    for backend, works in results.items():
        print(f"\n{backend}")
        for label, figures in works.items():
            print(
                f"  {label:<66} p50 {figures['p50_us']:>8.1f} us   p99 {figures['p99_us']:>8.1f} us"
            )


if __name__ == "__main__":
    main()
