"""The worker threads of the precheck path: a fixed pool, each thread with its engine compiled.

Blocking work (the database, the policy engine) must leave the event loop. A sync FastAPI endpoint
runs in anyio's thread pool, which starts threads as load rises and ends them after 10 s idle,
and the embedded engine keeps one compiled engine per thread (ARCHITECTURE §4): every new thread
compiles the bundle on its first evaluation (~5 ms) while a request waits. `precheck`,
`postcheck` and authentication run here instead: `threads` threads, started at startup, each
compiling its engine then (`warm`), kept until shutdown.

A few threads are enough: the engine holds the GIL while it evaluates, so more threads only
overlap database waits, and each keeps an engine of its own that goes cold in the CPU's caches.

`run` carries the caller's context variables into the thread (what `observability.annotate`
writes there is seen by the request's middleware).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import ParamSpec, TypeVar

from governor.engine import Engine
from governor.engine.regorus import RegorusEngine

__all__ = ["WorkerPool"]

P = ParamSpec("P")
T = TypeVar("T")

#: Entrypoint evaluated by each thread at startup: any evaluation compiles the thread's engine.
_WARM_ENTRYPOINT = "governor.config.budget.default_monthly_limit"


class WorkerPool:
    """A fixed number of worker threads for blocking work of the request path."""

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"a worker pool needs at least one thread, got {threads}")
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="governor-worker")

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args, **kwargs)` on a worker thread, in a copy of the current context."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def warm(self, engine: Engine, timeout: float = 60.0) -> None:
        """Start every thread now and compile the embedded engine in each (others need none).

        Each thread gets exactly one warm-up job: the jobs wait for each other at a barrier, so
        no thread can take two.
        """
        if not isinstance(engine, RegorusEngine):
            return
        barrier = threading.Barrier(self.threads)

        def warm_one() -> None:
            barrier.wait(timeout)
            # Undefined in some bundle, or failing: the thread's engine is compiled all the same.
            with suppress(Exception):
                engine.evaluate(_WARM_ENTRYPOINT, {})

        jobs = [self._executor.submit(warm_one) for _ in range(self.threads)]
        for job in jobs:
            job.result(timeout)

    def close(self) -> None:
        """Finish the jobs already submitted, then end the threads."""
        self._executor.shutdown(wait=True)

    def __repr__(self) -> str:
        return f"WorkerPool(threads={self.threads})"
