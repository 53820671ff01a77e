"""`WorkerPool`: inline or on a fixed pool of threads, context carried, engines compiled at start;
and a server deciding prechecks on worker threads (the path PostgreSQL and the OPA sidecar take).
"""

from __future__ import annotations

import asyncio
import threading
from contextvars import ContextVar
from pathlib import Path

import httpx
import pytest
from governor_server import Settings
from governor_server.app import build_engine
from governor_server.decisions import list_decisions
from governor_server.keys import bootstrap, ensure_org
from governor_server.workers import WorkerPool

from governor.storage import SQLStorage
from tests.e2e.servers import running

_seen: ContextVar[dict[str, str] | None] = ContextVar("seen", default=None)


def _note_thread() -> str:
    seen = _seen.get()
    assert seen is not None, "the caller's context was not carried"
    seen["thread"] = threading.current_thread().name
    return seen["thread"]


async def _run(pool: WorkerPool) -> tuple[str, dict[str, str]]:
    seen: dict[str, str] = {}
    _seen.set(seen)
    return await pool.run(_note_thread), seen


def test_an_inline_pool_runs_the_work_on_the_calling_thread() -> None:
    pool = WorkerPool(0)
    try:
        assert pool.inline
        name, seen = asyncio.run(_run(pool))
        assert name == threading.current_thread().name == seen["thread"]
    finally:
        pool.close()


def test_a_threaded_pool_runs_the_work_on_its_threads_in_the_callers_context() -> None:
    pool = WorkerPool(2)
    try:
        assert not pool.inline
        name, seen = asyncio.run(_run(pool))
        assert name.startswith("governor-worker") and seen["thread"] == name
    finally:
        pool.close()


def test_warm_starts_every_thread_with_the_embedded_engine_compiled() -> None:
    engine = build_engine(Settings(database_url="sqlite://"))
    pool = WorkerPool(3)
    try:
        pool.warm(engine)
        workers = [t for t in threading.enumerate() if t.name.startswith("governor-worker")]
        assert len(workers) >= 3
        value = asyncio.run(
            pool.run(engine.evaluate, "governor.config.budget.default_monthly_limit", {})
        )
        assert isinstance(value, int)
    finally:
        pool.close()
        engine.close()


def test_a_pool_needs_zero_or_more_threads() -> None:
    with pytest.raises(ValueError, match="0 \\(inline\\) or more"):
        WorkerPool(-1)


def test_a_server_on_worker_threads_decides_and_records_prechecks(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'g.db'}"
    store = SQLStorage(database_url)
    try:
        created = bootstrap(store.engine)
        assert created is not None
        settings = Settings(database_url=database_url, worker_threads=2)
        with running(settings) as url:
            headers = {"X-Governs-Key": created.app_key}
            with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
                body = {"tool": "model.chat", "raw_text": "mail me at alice@example.com"}
                answer = client.post("/api/v1/precheck", json=body)
                refused = client.post(
                    "/api/v1/precheck",
                    json=body,
                    headers={"X-Governs-Key": "gk_00000000_unknown"},
                )
        assert answer.status_code == 200, answer.text
        assert answer.json()["decision"] == "redact"
        assert "alice@example.com" not in answer.json()["raw_text_out"]
        assert refused.status_code == 401
        org_id, _ = ensure_org(store.engine, "default")
        recorded = list_decisions(store.engine, org_id)
        assert [d.decision for d in recorded] == ["redact"]
        assert recorded[0].policy_revision == answer.json()["policy_id"]
    finally:
        store.close()
