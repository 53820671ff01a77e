"""`ReplayEngine`: snapshots read back, debugging view, and continuing from a checkpoint with the
original argument types (the README's state capture and replay example)."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from governor import AuditPolicy, ReplayEngine, govern
from governor.replay import ReplayError
from governor.replay.engine import ReplayEngine as ReplayEngineFromOldPath
from governor.storage import StorageBackend


def test_the_readme_replay_example_and_continue_with_the_original_types(
    store: StorageBackend,
) -> None:
    received: list[tuple[Any, ...]] = []

    @govern(capture_state=True, storage=store)
    async def multi_step_process(
        data: dict[str, Any], amount: Decimal, day: dt.date
    ) -> dict[str, str]:
        received.append((data, amount, day))
        return {"status": "success"}

    result = asyncio.run(
        multi_step_process({"input": "data"}, Decimal("10.50"), day=dt.date(2026, 1, 2))
    )
    assert result == {"status": "success"}
    replay = ReplayEngine(storage=store)
    assert ReplayEngineFromOldPath is ReplayEngine
    executions = store.list_executions()
    info = asyncio.run(replay.replay_for_debugging(executions[0].id))
    assert info["function_name"] == "multi_step_process" and info["status"] == "completed"
    assert [s["checkpoint"] for s in info["snapshots"]] == ["pre_execution", "post_execution"]
    assert info["snapshot_count"] == 2 and info["events"][0]["event_type"] == "execution.started"
    assert "pre_execution" in info["checkpoints"]

    original = multi_step_process.__original__  # type: ignore[attr-defined]
    again = asyncio.run(
        replay.continue_from_checkpoint(executions[0].id, "pre_execution", original)
    )
    assert again == {"status": "success"}
    assert received[1] == ({"input": "data"}, Decimal("10.50"), dt.date(2026, 1, 2))
    assert len(store.list_executions()) == 1  # the undecorated function is not governed
    assert store.list_events(event_type="state.restored")

    asyncio.run(replay.continue_from_last(executions[0].id, multi_step_process))
    assert len(store.list_executions()) == 2  # the governed function is a new governed call


def test_replay_refuses_masked_arguments_and_missing_checkpoints(store: StorageBackend) -> None:
    @govern(policies=[AuditPolicy(sensitive_fields=["password"])], storage=store)
    def login(user: str, password: str) -> bool:
        return True

    @govern(capture_state=False, storage=store)
    def quiet() -> int:
        return 1

    assert login("ann", "hunter2") and quiet() == 1
    by_name = {e.function_name: e.id for e in store.list_executions()}
    replay = ReplayEngine(store)
    with pytest.raises(ReplayError, match=r"args\[1\] were masked"):
        asyncio.run(replay.continue_from_checkpoint(by_name["login"], "pre_execution", login))
    with pytest.raises(ReplayError, match="no snapshot at checkpoint 'pre_execution'"):
        asyncio.run(replay.continue_from_checkpoint(by_name["quiet"], "pre_execution", quiet))
    with pytest.raises(ReplayError, match="no execution"):
        asyncio.run(replay.replay_for_debugging("nope"))
    snapshots = asyncio.run(replay.get_snapshots(by_name["login"]))
    assert [s.checkpoint for s in snapshots] == ["pre_execution", "post_execution"]
    assert asyncio.run(replay.list_failed_executions()) == []
