"""The `@govern` decorator's overhead per call against an undecorated function, p50 and p99.

Variants (each a trivial `async def f(x): return x`, awaited COUNT times one after the other):

- `undecorated`
- `govern()` on `InMemoryStorage` (capture_state=True, the default), and with capture_state=False
- `govern(policies=[AuditPolicy(), RateLimitPolicy(max_calls=10**9, window_seconds=60)])` on a
  SQLite file in a temporary directory, with and without capture_state
- `engine only`: one `decide()` of the input `govern()` sends, to show the engine's share
- `govern()` and the Audit+RateLimit variant on a sync function (no worker-thread hops)

    .venv/bin/python bench/decorator.py [--count 2000] [--warmup 200] [--repeat 3] [--json]
                                        [--profile VARIANT] [--profile-lines 25]

Overhead = the variant's percentile minus the undecorated function's. Each variant is measured
`--repeat` times (interleaved with the others) and the run with the lowest p50 is kept: on a
shared machine the other runs measure the neighbours. Figures depend on the machine and vary
between runs; nothing here asserts a timing. `--profile` runs cProfile over one
variant and prints where the time goes.

Last measured (2-vCPU dev VM, the best p50 of 4 runs of 2000 calls, µs; "before" is before the
overhead work of issue 3, when one decision cost ~120 µs, "then" after its first round):

    variant                                         before p50/p99   then p50/p99    now p50/p99
    engine only (decide, no policies)                  117 / 173        36 / 69         38 / 105
    govern() memory                                    363 / 969       230 / 660        76 / 163
    govern(capture_state=False) memory                 286 / 877       180 / 411        56 / 118
    govern() memory, sync function                     359 / 1007      229 / 683        75 / 170
    govern(Audit+RateLimit) sqlite                    1496 / 8570      966 / 4163      605 / 1763
    govern(Audit+RateLimit) sqlite, sync function     1053 / 7680      800 / 2588      621 / 1861
    govern(Audit+RateLimit, capture_state=False)      1276 / 6931      822 / 3018      521 / 1832

What `govern()` on memory does in its ~76 µs (each part measured by taking it away): no engine
evaluation (the decision is constant: `DecisionMemo`); building the records ~18 (the execution,
the post_execution snapshot, the audit body); the store's write ~31, of which the audit hash
chain (two canonical JSON encodings and two SHA-256) ~13; five events ~14; the rest (binding,
context, the pre_execution snapshot, coroutines) ~15. A store at capacity (10,000 executions
kept) adds a few µs for evicting the oldest execution.
On SQLite the call also decides (audit + rate_limit: ~95 µs of Rego on this VM, slower amid the
SQLite work) and makes two transactions: the count, decided under the key's lock and committed
before the function runs, then the final records. Each COMMIT writes the pages the call touched
to the WAL, ~33 pages of 4 KB a call (four tables and their indexes), ~130 µs each on this VM.
Async callers run the store work on the event loop (SQLite works in process), as sync ones do.
The p99 is Python's garbage collector (memory) and the disk (SQLite), not the lifecycle.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("RUST_BACKTRACE", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from governor import (  # noqa: E402
    AuditPolicy,
    InMemoryStorage,
    RateLimitPolicy,
    SQLStorage,
    govern,
    runtime,
)
from governor.decision import decide  # noqa: E402
from governor.events import EventEmitter  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of sorted-on-demand values, nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def time_async(func: Callable[[int], Awaitable[Any]], count: int, warmup: int) -> list[float]:
    """Microseconds per awaited call."""
    for i in range(warmup):
        await func(i)
    samples: list[float] = []
    clock = time.perf_counter_ns
    for i in range(count):
        started = clock()
        await func(i)
        samples.append((clock() - started) / 1000.0)
    return samples


def time_sync(func: Callable[[int], Any], count: int, warmup: int) -> list[float]:
    """Microseconds per call."""
    for i in range(warmup):
        func(i)
    samples: list[float] = []
    clock = time.perf_counter_ns
    for i in range(count):
        started = clock()
        func(i)
        samples.append((clock() - started) / 1000.0)
    return samples


def build_variants(directory: Path) -> dict[str, tuple[Callable[[int], Any], bool]]:
    """name -> (function, is_async). Each governed variant has its own store and emitter."""
    emitter = EventEmitter()  # no handlers: what a service without listeners pays

    async def plain(x: int) -> int:
        return x

    def plain_sync(x: int) -> int:
        return x

    def sqlite(name: str) -> SQLStorage:
        return SQLStorage(f"sqlite:///{directory / name}.db")

    limits = [AuditPolicy(), RateLimitPolicy(max_calls=10**9, window_seconds=60)]
    engine = runtime.get_engine()
    document = {
        "version": 1,
        "phase": "pre",
        "action": {"kind": "function", "name": "plain", "scope": None, "tags": []},
        "subject": {},
        "args": {"x": 1, "args": [1], "kwargs": {"x": 1}},
        "policies": [],
        "facts": {"now": time.time_ns()},
    }

    async def engine_only(x: int) -> Any:
        return decide(engine, document)

    return {
        "undecorated": (plain, True),
        "engine only (decide, no policies)": (engine_only, True),
        "govern() memory": (govern(storage=InMemoryStorage(), emitter=emitter)(plain), True),
        "govern(capture_state=False) memory": (
            govern(storage=InMemoryStorage(), emitter=emitter, capture_state=False)(plain),
            True,
        ),
        "govern() memory, sync function": (
            govern(storage=InMemoryStorage(), emitter=emitter)(plain_sync),
            False,
        ),
        "govern(Audit+RateLimit) sqlite": (
            govern(policies=limits, storage=sqlite("audit_rl"), emitter=emitter)(plain),
            True,
        ),
        "govern(Audit+RateLimit) sqlite, sync function": (
            govern(policies=limits, storage=sqlite("audit_rl_sync"), emitter=emitter)(plain_sync),
            False,
        ),
        "govern(Audit+RateLimit, capture_state=False) sqlite": (
            govern(
                policies=limits,
                storage=sqlite("audit_rl_nostate"),
                emitter=emitter,
                capture_state=False,
            )(plain),
            True,
        ),
    }


def measure(
    variants: dict[str, tuple[Callable[[int], Any], bool]], count: int, warmup: int, repeat: int
) -> dict[str, list[float]]:
    """Samples per variant: of `repeat` interleaved runs, the one with the lowest p50."""
    results: dict[str, list[float]] = {}
    for _ in range(max(1, repeat)):
        for name, (func, is_async) in variants.items():
            if is_async:
                samples = asyncio.run(time_async(func, count, warmup))
            else:
                samples = time_sync(func, count, warmup)
            best = results.get(name)
            if best is None or percentile(samples, 0.5) < percentile(best, 0.5):
                results[name] = samples
    return results


def profile(func: Callable[[int], Any], is_async: bool, count: int, lines: int) -> str:
    """cProfile of `count` calls, sorted by internal time, then by cumulative time."""
    profiler = cProfile.Profile()
    if is_async:

        async def run() -> None:
            for i in range(count):
                await func(i)

        profiler.enable()
        asyncio.run(run())
        profiler.disable()
    else:
        profiler.enable()
        for i in range(count):
            func(i)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(lines)
    stats.sort_stats("cumulative").print_stats(lines)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; best kept")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--profile", metavar="VARIANT", help="cProfile one variant (a prefix)")
    parser.add_argument("--profile-lines", type=int, default=25)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="governor-bench-") as tmp:
        variants = build_variants(Path(tmp))
        if args.profile:
            matches = [n for n in variants if n.startswith(args.profile)]
            if not matches:
                parser.error(f"no variant starts with {args.profile!r}; have: {list(variants)}")
            func, is_async = variants[matches[0]]
            print(f"profile of {matches[0]!r}, {args.count} calls")
            print(profile(func, is_async, args.count, args.profile_lines))
            return 0
        samples = measure(variants, args.count, args.warmup, args.repeat)
    base = samples["undecorated"]
    base50, base99 = percentile(base, 0.5), percentile(base, 0.99)
    rows = []
    for name, values in samples.items():
        p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
        rows.append(
            {
                "variant": name,
                "p50_us": round(p50, 1),
                "p99_us": round(p99, 1),
                "mean_us": round(statistics.fmean(values), 1),
                "overhead_p50_us": round(p50 - base50, 1),
                "overhead_p99_us": round(p99 - base99, 1),
            }
        )
    if args.json:
        print(json.dumps({"count": args.count, "rows": rows}, indent=2))
        return 0
    print(
        f"{args.count} calls per variant after {args.warmup} warm-up calls, best of "
        f"{args.repeat} runs (microseconds)"
    )
    header = f"{'variant':<52} {'p50':>8} {'p99':>8} {'overhead p50':>13} {'overhead p99':>13}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['variant']:<52} {row['p50_us']:>8} {row['p99_us']:>8} "
            f"{row['overhead_p50_us']:>13} {row['overhead_p99_us']:>13}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
