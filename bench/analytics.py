"""The analytics query at scale: `GET /api/v1/decisions` with stats over 1,000,000 decisions.

Fills a SQLite file (migrated to head, so with the analytics indexes of revision `0006`)
with `--count` decisions of one organisation spread over the last 29 days (plus a few of another
organisation), in batched inserts (then their daily counts, as `record_decision` would have kept
them), and times what `GET /api/v1/decisions?timeRange=30d` runs:
the newest page of 100 and the stats (total, byDecision, byTool, byUser), and the same for one
user and for the tool calls. The database is kept in `--path` when given (reused if it is already
filled to `--count`).

    .venv/bin/python bench/analytics.py [--count 1000000] [--repeat 5] [--path FILE] [--json]

`run(count, repeat)` returns the figures. They depend on the machine and the disk; nothing here
asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "server"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from governor_server.analytics import decision_analytics  # noqa: E402
from governor_server.decisions import rebuild_daily_counts  # noqa: E402
from governor_server.keys import ensure_org  # noqa: E402
from governor_server.models import DecisionRow  # noqa: E402
from sqlalchemy import Table, func, insert, select  # noqa: E402

from governor.storage import SQLStorage  # noqa: E402

BATCH = 20_000
TOOLS = [
    "model.chat",
    "file.upload",
    "payments.transfer",
    "shell.exec",
    *(f"crm.tool_{i}" for i in range(16)),
]
DECISIONS = ["allow"] * 80 + ["redact"] * 12 + ["deny"] * 5 + ["confirm"] * 3
USERS = [f"user-{i}" for i in range(1000)]

_TABLE = cast(Table, DecisionRow.__table__)


def fill(store: SQLStorage, org_id: str, count: int, now: datetime, seed: int = 7) -> float:
    """Insert `count` decisions of `org_id` over the 29 days before `now`; returns seconds."""
    rng = random.Random(seed)
    started = time.perf_counter()
    span = 29 * 24 * 3600  # inside any 30-day range asked within a day
    with store.engine.begin() as conn:
        for first in range(0, count, BATCH):
            rows: list[dict[str, Any]] = []
            for _ in range(min(BATCH, count - first)):
                tool = rng.choice(TOOLS)
                decision = rng.choice(DECISIONS)
                rows.append(
                    {
                        "id": uuid.UUID(int=rng.getrandbits(128)).hex,
                        "org_id": org_id,
                        "user_id": rng.choice(USERS),
                        "phase": "pre",
                        "tool": tool,
                        "scope": "net.external",
                        "decision": decision,
                        "reasons": [] if decision == "allow" else [f"bench.{decision}"],
                        "tags": ["chat", "model"] if tool == "model.chat" else ["tool_call"],
                        "corr_id": None,
                        "policy_revision": "development-1",
                        "created_at": now - timedelta(seconds=rng.uniform(0, span)),
                        "tool_call": tool != "model.chat",
                    }
                )
            conn.execute(insert(_TABLE), rows)
    return time.perf_counter() - started


def _time(call: Callable[[], object], repeat: int) -> dict[str, float]:
    call()  # warm the page cache and the statement cache
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(runs), 1), "max_ms": round(max(runs), 1)}


def run(count: int = 1_000_000, repeat: int = 5, path: str | None = None) -> dict[str, Any]:
    """Fill (unless already filled) and time the decisions queries; returns the figures."""
    directory = None
    if path is None:
        directory = tempfile.TemporaryDirectory(prefix="governor-analytics-")
        path = str(Path(directory.name) / "analytics.db")
    store = SQLStorage(f"sqlite:///{path}")
    try:
        now = datetime.now(UTC)
        org_id, _ = ensure_org(store.engine, "bench")
        other_id, _ = ensure_org(store.engine, "bench-other")
        with store.engine.connect() as conn:
            present = conn.execute(
                select(func.count()).select_from(_TABLE).where(_TABLE.c.org_id == org_id)
            ).scalar_one()
        fill_seconds = count_seconds = None
        if present != count:
            with store.engine.begin() as conn:
                conn.execute(_TABLE.delete())
            fill_seconds = round(fill(store, org_id, count, now), 1)
            fill(store, other_id, 1000, now, seed=8)
            started = time.perf_counter()
            rebuild_daily_counts(store.engine, org_id)
            rebuild_daily_counts(store.engine, other_id)
            count_seconds = round(time.perf_counter() - started, 1)
        since = now - timedelta(days=30)
        db = store.engine
        _, stats = decision_analytics(db, org_id, since)
        assert stats["total"] == count, stats["total"]
        return {
            "decisions": count,
            "fill_seconds": fill_seconds,
            "daily_counts_seconds": count_seconds,
            "decisions_30d_with_stats": _time(
                lambda: decision_analytics(db, org_id, since), repeat
            ),
            "decisions_30d_without_stats": _time(
                lambda: decision_analytics(db, org_id, since, include_stats=False), repeat
            ),
            "decisions_30d_one_user_with_stats": _time(
                lambda: decision_analytics(db, org_id, since, user_id="user-7"), repeat
            ),
            "toolcalls_30d_with_stats": _time(
                lambda: decision_analytics(db, org_id, since, tool_calls=True), repeat
            ),
        }
    finally:
        store.close()
        if directory is not None:
            directory.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--path", help="keep the SQLite file here (reused when already filled)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = run(args.count, args.repeat, args.path)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"analytics over {figures['decisions']:,} decisions (SQLite file)")
    if figures["fill_seconds"] is not None:
        print(
            f"  filled in {figures['fill_seconds']} s, "
            f"daily counts rebuilt in {figures['daily_counts_seconds']} s"
        )
    for name, timing in figures.items():
        if isinstance(timing, dict):
            print(
                f"  {name:36} median {timing['median_ms']:8.1f} ms   max {timing['max_ms']:8.1f} ms"
            )


if __name__ == "__main__":
    main()
