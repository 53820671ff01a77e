"""`governor.events`: handlers sync or async that never slow or break a call; events stored."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from governor import govern
from governor.events import Event, EventEmitter, EventType, get_default_emitter
from governor.storage import InMemoryStorage, StorageBackend


def test_sync_and_async_handlers_receive_the_events_of_a_governed_call(
    store: StorageBackend, emitter: EventEmitter
) -> None:
    seen: list[str] = []

    def sync_handler(event: Event) -> None:
        seen.append(f"sync:{event.type_value}")

    async def async_handler(event: Event) -> None:
        seen.append(f"async:{event.type_value}")

    emitter.on(EventType.EXECUTION_STARTED, sync_handler)
    emitter.on(EventType.EXECUTION_COMPLETED, async_handler)

    @govern(storage=store, emitter=emitter)
    async def work(x: int) -> int:
        return x + 1

    async def main() -> int:
        result = await work(1)
        await emitter.drain(timeout=5)
        return result

    assert asyncio.run(main()) == 2
    assert seen == ["sync:execution.started", "async:execution.completed"]


def test_slow_async_handlers_do_not_add_their_time_to_the_call(emitter: EventEmitter) -> None:
    async def slow(event: Event) -> None:
        await asyncio.sleep(0.3)

    emitter.on(EventType.EXECUTION_STARTED, slow)
    emitter.on(EventType.EXECUTION_STARTED, slow)

    @govern(storage=InMemoryStorage(), emitter=emitter)
    async def quick() -> str:
        return "ok"

    async def main() -> float:
        started = time.perf_counter()
        await quick()
        elapsed = time.perf_counter() - started
        await emitter.drain(timeout=5)
        return elapsed

    assert asyncio.run(main()) < 0.25


def test_a_handler_that_raises_is_logged_and_the_call_goes_on(
    emitter: EventEmitter, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Event) -> None:
        raise ValueError("handler bug")

    emitter.on_any(broken)

    @govern(storage=InMemoryStorage(), emitter=emitter)
    def work() -> str:
        return "done"

    with caplog.at_level(logging.ERROR, logger="governor.events"):
        assert work() == "done"
    assert "event handler" in caplog.text and "ValueError" in caplog.text
    assert "execution.started" in caplog.text


def test_async_handlers_of_a_sync_function_run_on_the_background_loop(
    emitter: EventEmitter,
) -> None:
    seen: list[str] = []

    async def handler(event: Event) -> None:
        await asyncio.sleep(0.01)
        seen.append(event.type_value)

    emitter.on(EventType.EXECUTION_COMPLETED, handler)

    @govern(storage=InMemoryStorage(), emitter=emitter)
    def work() -> int:
        return 1

    assert work() == 1
    emitter.drain_sync(timeout=5)
    assert seen == ["execution.completed"]


def test_events_are_stored_with_their_envelope(
    store: StorageBackend, emitter: EventEmitter
) -> None:
    @govern(storage=store, emitter=emitter, capture_state=False)
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, b=2) == 3
    records = store.list_events(limit=None)
    assert [r.event_type for r in records] == [
        "execution.started",
        "policy.evaluated",
        "execution.completed",
    ]
    started = Event.from_record(records[0])
    assert started.function_name == "add"
    assert started.data["inputs"] == {"args": [1], "kwargs": {"b": 2}}
    assert Event.from_record(records[2]).data["outputs"] == 3


def test_emit_and_wait_returns_every_result_and_off_removes_handlers() -> None:
    emitter = EventEmitter()

    def one(event: Event) -> int:
        return 1

    async def two(event: Event) -> int:
        return 2

    def boom(event: Event) -> None:
        raise RuntimeError("x")

    emitter.on(EventType.CUSTOM, one)
    emitter.on(EventType.CUSTOM, two)
    emitter.on_any(boom)
    results = asyncio.run(emitter.emit_and_wait(Event.create(EventType.CUSTOM)))
    assert results[:2] == [1, 2] and isinstance(results[2], RuntimeError)
    emitter.off(EventType.CUSTOM, one)
    emitter.off_any(boom)
    assert emitter.handlers_for(EventType.CUSTOM) == [two]
    emitter.clear()
    assert not emitter.has_handlers()
    assert get_default_emitter() is get_default_emitter()
