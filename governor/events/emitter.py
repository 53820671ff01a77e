"""`EventEmitter`: handlers for lifecycle events, sync or async, that never slow or break a call.

- A **sync** handler (`def h(event)`) is called inline, when the event is emitted: keep it quick.
- An **async** handler (`async def h(event)`) is started as a task and not awaited by the governed
  call, so two slow handlers do not add their time to it. From a sync governed function it runs on
  the caller's event loop if one is running in that thread, else on governor's background loop.
  `await emitter.drain()` (or `drain_sync()`) waits for the handlers started so far.
- A handler that raises is logged on the `governor.events` logger, with its name and the event
  type; the call goes on.

`emit_and_wait(event)` is governor 0.2.0's: it awaits every handler and returns their results.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from governor.events.base import Event, EventType
from governor.runtime import submit_background

__all__ = ["EventEmitter", "EventHandler", "get_default_emitter", "set_default_emitter"]

logger = logging.getLogger("governor.events")

#: A handler: `def h(event) -> Any` or `async def h(event) -> Any`.
EventHandler = Callable[[Event], Any]


def _key(event_type: EventType | str) -> str:
    return event_type.value if isinstance(event_type, EventType) else str(event_type)


def _describe(handler: Any) -> str:
    return str(getattr(handler, "__qualname__", None) or repr(handler))


class EventEmitter:
    """Dispatches events to the handlers registered for their type and to catch-all handlers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[str, list[EventHandler]] = {}
        self._any: list[EventHandler] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._futures: set[concurrent.futures.Future[Any]] = set()

    # -- registration ---------------------------------------------------------------------------

    def on(self, event_type: EventType | str, handler: EventHandler) -> EventHandler:
        """Call `handler` for every event of `event_type`; returns the handler."""
        if not callable(handler):
            raise TypeError(f"an event handler must be callable, got {handler!r}")
        with self._lock:
            handlers = list(self._handlers.get(_key(event_type), []))
            handlers.append(handler)
            self._handlers[_key(event_type)] = handlers
        return handler

    def on_any(self, handler: EventHandler) -> EventHandler:
        """Call `handler` for every event; returns the handler."""
        if not callable(handler):
            raise TypeError(f"an event handler must be callable, got {handler!r}")
        with self._lock:
            self._any = [*self._any, handler]
        return handler

    def off(self, event_type: EventType | str, handler: EventHandler) -> None:
        """Stop calling `handler` for `event_type` (no error if it was not registered)."""
        with self._lock:
            key = _key(event_type)
            self._handlers[key] = [h for h in self._handlers.get(key, []) if h is not handler]

    def off_any(self, handler: EventHandler) -> None:
        """Remove a catch-all handler."""
        with self._lock:
            self._any = [h for h in self._any if h is not handler]

    def clear(self) -> None:
        """Remove every handler."""
        with self._lock:
            self._handlers = {}
            self._any = []

    def handlers_for(self, event_type: EventType | str) -> list[EventHandler]:
        """The handlers an event of `event_type` goes to (type-specific first, then catch-all)."""
        return [*self._handlers.get(_key(event_type), ()), *self._any]

    def has_handlers(self) -> bool:
        """Whether any handler is registered (the executor skips building events for none)."""
        return bool(self._any) or any(self._handlers.values())

    # -- dispatch -------------------------------------------------------------------------------

    async def emit(self, event: Event) -> None:
        """Hand `event` to its handlers: sync ones now, async ones as tasks on this loop."""
        loop = asyncio.get_running_loop()
        for handler in self.handlers_for(event.event_type):
            result = self._call(handler, event)
            if inspect.isawaitable(result):
                self._track_task(loop.create_task(self._guard(handler, event, result)))

    def emit_sync(self, event: Event) -> None:
        """`emit` for sync code: async handlers go to this thread's running loop, if any, else to
        governor's background loop."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for handler in self.handlers_for(event.event_type):
            result = self._call(handler, event)
            if not inspect.isawaitable(result):
                continue
            guarded = self._guard(handler, event, result)
            if loop is not None:
                self._track_task(loop.create_task(guarded))
            else:
                future = submit_background(guarded)
                with self._lock:
                    self._futures.add(future)
                future.add_done_callback(self._forget_future)

    async def emit_and_wait(self, event: Event) -> list[Any]:
        """Call every handler and wait for all of them; return their results in order.

        A handler that raised contributes its exception (it is logged too).
        """
        results: list[Any] = []
        for handler in self.handlers_for(event.event_type):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                self._log(handler, event, exc)
                result = exc
            results.append(result)
        return results

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until the async handlers started so far have finished (or `timeout` passes)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            tasks = [t for t in self._tasks if t.get_loop() is loop and not t.done()]
            futures = [f for f in self._futures if not f.done()]
        waiting = [*tasks, *(asyncio.wrap_future(f) for f in futures)]
        if waiting:
            await asyncio.wait(waiting, timeout=timeout)

    def drain_sync(self, timeout: float | None = None) -> None:
        """Wait for async handlers running on governor's background loop (sync code)."""
        with self._lock:
            futures = [f for f in self._futures if not f.done()]
        if futures:
            concurrent.futures.wait(futures, timeout=timeout)

    # -- internals ------------------------------------------------------------------------------

    def _call(self, handler: EventHandler, event: Event) -> Any:
        try:
            return handler(event)
        except Exception as exc:
            self._log(handler, event, exc)
            return None

    async def _guard(self, handler: EventHandler, event: Event, awaitable: Awaitable[Any]) -> None:
        try:
            await awaitable
        except Exception as exc:
            self._log(handler, event, exc)

    def _track_task(self, task: asyncio.Task[Any]) -> None:
        with self._lock:
            self._tasks.add(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        with self._lock:
            self._tasks.discard(task)

    def _forget_future(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)

    @staticmethod
    def _log(handler: EventHandler, event: Event, exc: BaseException) -> None:
        logger.error(
            "governor: event handler %s raised %s on %s (execution %s); the governed call is not "
            "affected. Fix the handler.",
            _describe(handler),
            type(exc).__name__,
            event.type_value,
            event.execution_id,
            exc_info=exc,
        )


_default_lock = threading.Lock()
_default: EventEmitter | None = None


def get_default_emitter() -> EventEmitter:
    """The process-wide emitter every `@govern` without `emitter=` uses."""
    global _default
    emitter = _default
    if emitter is not None:
        return emitter
    with _default_lock:
        if _default is None:
            _default = EventEmitter()
        return _default


def set_default_emitter(emitter: EventEmitter | None) -> None:
    """Replace the process-wide emitter (None: a fresh one is created on next use)."""
    global _default
    with _default_lock:
        _default = emitter
