"""Where the precheck path's work runs: on the event loop itself, or on a fixed pool of threads.

`precheck`, `postcheck` and authentication are async endpoints and dependencies that hand their
work (database reads and writes, one policy evaluation) to `WorkerPool.run`:

- **inline** (`threads=0`, the default with an SQLite store and an in-process engine): the work
  runs right there, on the event-loop thread. With an SQLite file a statement is microseconds of
  in-process work, like the evaluation, and the evaluation holds the GIL wherever it runs. On
  other threads the work gained no parallelism and cost a lot: two thread switches per request,
  a GIL hand-over at every SQLite call, caches gone cold in between. Measured with
  `bench/server.py` on 2 vCPUs: one evaluation took 1.5 ms of CPU on a worker thread and 1.2 ms
  inline, a precheck ~4 ms of server CPU against ~3 ms, and only inline kept up with 300/s.
  What can make the loop wait is a write waiting for the database's write lock: another thread
  of this process inside a store transaction (short), or another process writing the same file
  (every precheck would wait for it anyway).
- **threads** (`threads>0`, the default on PostgreSQL or with the OPA sidecar, where a statement
  or an evaluation is a network round trip): a fixed pool, started at startup with the embedded
  engine compiled in each thread (`warm`: ARCHITECTURE §4 keeps one compiled engine per thread,
  and compiling takes ~5 ms), kept until shutdown. anyio's own pool, which runs sync endpoints,
  starts threads as load rises and ends them after 10 s idle, so a burst would pay for
  compiling on new threads.

`run` carries the caller's context variables into a thread (what `observability.annotate`
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

__all__ = ["DEFAULT_THREADS", "WorkerPool"]

P = ParamSpec("P")
T = TypeVar("T")

#: Threads of a pool when the store is not SQLite (a few: evaluations hold the GIL anyway).
DEFAULT_THREADS = 4
#: Entrypoint evaluated by each thread at startup: any evaluation compiles the thread's engine.
_WARM_ENTRYPOINT = "governor.config.budget.default_monthly_limit"


class WorkerPool:
    """Runs the request path's blocking work inline (`threads=0`) or on `threads` threads."""

    def __init__(self, threads: int) -> None:
        if threads < 0:
            raise ValueError(f"a worker pool has 0 (inline) or more threads, got {threads}")
        self.threads = threads
        self._executor = (
            ThreadPoolExecutor(threads, thread_name_prefix="governor-worker") if threads else None
        )

    @property
    def inline(self) -> bool:
        """True when the work runs on the calling (event-loop) thread."""
        return self._executor is None

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args, **kwargs)` inline, or on a thread in a copy of the current context."""
        if self._executor is None:
            return fn(*args, **kwargs)
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def warm(self, engine: Engine, timeout: float = 60.0) -> None:
        """Start every thread now and compile the embedded engine in each (inline: in the
        calling thread; other engines need nothing).

        Each thread gets exactly one warm-up job: the jobs wait for each other at a barrier, so
        no thread can take two.
        """
        if not isinstance(engine, RegorusEngine):
            return

        def warm_here() -> None:
            # Undefined in some bundle, or failing: the thread's engine is compiled all the same.
            with suppress(Exception):
                engine.evaluate(_WARM_ENTRYPOINT, {})

        if self._executor is None:
            warm_here()
            return
        barrier = threading.Barrier(self.threads)

        def warm_one() -> None:
            barrier.wait(timeout)
            warm_here()

        jobs = [self._executor.submit(warm_one) for _ in range(self.threads)]
        for job in jobs:
            job.result(timeout)

    def close(self) -> None:
        """Finish the jobs already submitted, then end the threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def __repr__(self) -> str:
        return f"WorkerPool(threads={self.threads})"
