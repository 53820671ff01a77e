"""Running approved executions later, in whatever process is alive then.

`AutoResumeManager` finds executions whose request was approved (status `approved`) and whose
waiting caller is gone (no live lease), and resumes each through its governed function's executor
(`Executor.resume`): claim `approved -> running` in the database (exactly one worker wins, in any
number of processes), check the stored arguments against the approved hash, run the undecorated
function, store the result, the `post_execution` snapshot, the events and the audit record.

    resumer = AutoResumeManager(storage)
    resumer.register_function("transfer", transfer)   # the @govern-decorated function
    await resumer.start()                              # polls, and wakes on resumer.wake()
    ...
    result = await resumer.resume_by_execution_id(execution_id)   # or on demand

`BackgroundJobQueue` (governor 0.2.0's API) runs coroutines on a few worker tasks and keeps their
results; the resume manager can hand resumes to one instead of running them itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from governor.errors import ApprovalClosed, ConfigurationError, GovernanceError
from governor.executor import Executor
from governor.storage import StorageBackend, get_default_storage
from governor.storage.records import ExecutionStatus, new_id, utcnow

__all__ = ["AutoResumeManager", "BackgroundJobQueue", "JobResult"]

logger = logging.getLogger("governor.approvals")


@dataclass
class JobResult:
    """One job of a `BackgroundJobQueue`: `queued`, `running`, `completed` or `failed`."""

    job_id: str
    execution_id: str | None
    status: str = "queued"
    result: Any = None
    error: str | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class BackgroundJobQueue:
    """Runs submitted jobs on `workers` asyncio tasks; keeps the last `keep` results."""

    def __init__(self, workers: int = 2, keep: int = 1000) -> None:
        if workers < 1 or keep < 1:
            raise ConfigurationError("BackgroundJobQueue: workers and keep must be >= 1")
        self.workers = workers
        self.keep = keep
        self._jobs: OrderedDict[str, JobResult] = OrderedDict()
        self._queue: asyncio.Queue[tuple[str, Callable[[], Awaitable[Any]]]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._done: dict[str, asyncio.Event] = {}

    async def start(self) -> None:
        """Start the workers (on the running event loop)."""
        if self._tasks:
            return
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]

    async def stop(self) -> None:
        """Stop the workers; jobs still queued stay `queued`."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def submit_job(
        self,
        execution_id: str | None,
        func: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> str:
        """Queue `func(*args, **kwargs)` (sync functions run in a worker thread); its job id."""
        if self._queue is None:
            raise ConfigurationError("BackgroundJobQueue: call `await queue.start()` first")
        job_id = new_id()
        self._jobs[job_id] = JobResult(job_id, execution_id, submitted_at=utcnow())
        self._done[job_id] = asyncio.Event()
        while len(self._jobs) > self.keep:
            old, _ = self._jobs.popitem(last=False)
            self._done.pop(old, None)
        call_kwargs = dict(kwargs or {})

        async def run() -> Any:
            if inspect.iscoroutinefunction(func):
                return await func(*args, **call_kwargs)
            result = await asyncio.to_thread(func, *args, **call_kwargs)
            return await result if inspect.isawaitable(result) else result

        self._queue.put_nowait((job_id, run))
        return job_id

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            job_id, run = await self._queue.get()
            job = self._jobs.get(job_id)
            if job is not None:
                job.status, job.started_at = "running", utcnow()
            try:
                result = await run()
            except Exception as exc:  # a job's failure is its result, not the worker's
                if job is not None:
                    job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            else:
                if job is not None:
                    job.status, job.result = "completed", result
            finally:
                if job is not None:
                    job.finished_at = utcnow()
                done = self._done.get(job_id)
                if done is not None:
                    done.set()
                self._queue.task_done()

    def get_job_result(self, job_id: str) -> JobResult | None:
        return self._jobs.get(job_id)

    async def wait_for_job(self, job_id: str, timeout: float | None = None) -> JobResult | None:
        """Wait until the job finished (or `timeout` seconds); the job, or None if unknown."""
        done = self._done.get(job_id)
        if done is None:
            return self._jobs.get(job_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout)
        return self._jobs.get(job_id)

    def list_jobs(
        self, status: str | None = None, execution_id: str | None = None
    ) -> list[JobResult]:
        return [
            j
            for j in self._jobs.values()
            if (status is None or j.status == status)
            and (execution_id is None or j.execution_id == execution_id)
        ]


class AutoResumeManager:
    """Resumes approved executions (see the module docstring).

    - `storage`: where approvals are looked for (default: the process's shared store);
    - `job_queue`: hand resumes to this queue instead of running them in the loop itself;
    - `poll_interval`: seconds between looks at the store (`wake()` looks at once);
    - `batch`: at most this many executions per look.
    `emitter` and `approval_manager` are accepted for governor 0.2.0 compatibility: events go
    through each function's own executor, and decisions reach the store by any route.
    """

    def __init__(
        self,
        storage: StorageBackend | None = None,
        job_queue: BackgroundJobQueue | None = None,
        emitter: Any = None,
        approval_manager: Any = None,
        *,
        poll_interval: float = 1.0,
        batch: int = 100,
    ) -> None:
        if poll_interval <= 0 or batch < 1:
            raise ConfigurationError("AutoResumeManager: poll_interval > 0 and batch >= 1")
        self._storage = storage
        self.job_queue = job_queue
        self.poll_interval = poll_interval
        self.batch = batch
        self._functions: dict[str, tuple[Executor, Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._loop_ref: asyncio.AbstractEventLoop | None = None

    @property
    def storage(self) -> StorageBackend:
        return self._storage if self._storage is not None else get_default_storage()

    def register_function(self, function_name: str | None, func: Callable[..., Any]) -> None:
        """Resume executions of `function_name` with `func`: the `@govern`-decorated function
        (its post-phase policies and store apply), or a plain function (run with no policy
        after the call, records in this manager's store). None: the function's own name."""
        executor, spec = self._resolve(func)
        self._functions[function_name or spec.name] = (executor, spec)

    def _resolve(self, func: Callable[..., Any]) -> tuple[Executor, Any]:
        spec = getattr(func, "__governor_spec__", None)
        executor = getattr(func, "__executor__", None)
        if spec is not None and isinstance(executor, Executor):
            return executor, spec
        if not callable(func):
            raise ConfigurationError(f"AutoResumeManager: {func!r} is not a function")
        executor = Executor(storage=self._storage)
        return executor, executor.spec(func)

    async def resume_by_execution_id(
        self, execution_id: str, func: Callable[..., Any] | None = None
    ) -> Any:
        """Resume one approved execution now and return its result (see `Executor.resume`)."""
        if func is not None:
            executor, spec = self._resolve(func)
        else:
            record = self.storage.get_approval(execution_id)
            name = record.function_name if record is not None else None
            found = self._functions.get(name) if name is not None else None
            if found is None:
                raise ConfigurationError(
                    f"AutoResumeManager: no function registered for execution {execution_id} "
                    f"({name or 'unknown'}); register_function({name!r}, governed_function)"
                )
            executor, spec = found
        if inspect.iscoroutinefunction(spec.func):
            return await executor.resume(spec, execution_id)
        return await asyncio.to_thread(executor.resume_sync, spec, execution_id)

    def due(self) -> list[str]:
        """Approved executions nobody is running, whose waiting caller (if any) has gone."""
        store = self.storage
        now = utcnow()
        out = []
        for execution in store.list_executions(status=ExecutionStatus.APPROVED, limit=self.batch):
            if execution.function_name not in self._functions:
                continue
            record = store.get_approval(execution.id)
            if record is None or (record.held_until is not None and record.held_until > now):
                continue
            out.append(execution.id)
        return out

    async def run_once(self) -> dict[str, Any]:
        """Resume every due execution once; `{execution_id: result or the error}`."""
        due = await asyncio.to_thread(self.due)
        results: dict[str, Any] = {}
        for execution_id in due:
            if self.job_queue is not None:
                results[execution_id] = self.job_queue.submit_job(
                    execution_id, self._resume_quietly, (execution_id,)
                )
                continue
            results[execution_id] = await self._resume_quietly(execution_id)
        return results

    async def _resume_quietly(self, execution_id: str) -> Any:
        try:
            return await self.resume_by_execution_id(execution_id)
        except ApprovalClosed as exc:
            logger.debug("governor: %s", exc)  # another worker took it: not an error
            return exc
        except GovernanceError as exc:
            logger.error("governor: could not resume execution %s: %s", execution_id, exc)
            return exc
        except Exception as exc:  # the function's own failure is stored with the execution
            logger.warning(
                "governor: resumed execution %s failed: %s: %s",
                execution_id,
                type(exc).__name__,
                exc,
            )
            return exc

    async def start(self) -> None:
        """Poll in the background until `stop()`; `wake()` polls at once."""
        if self._task is not None:
            return
        self._wakeup = asyncio.Event()
        self._loop_ref = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._loop())

    def wake(self) -> None:
        """Look for approved executions now (e.g. right after an approval); any thread."""
        if self._wakeup is not None and self._loop_ref is not None:
            self._loop_ref.call_soon_threadsafe(self._wakeup.set)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _loop(self) -> None:
        assert self._wakeup is not None
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("governor: the resume loop failed; it tries again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.poll_interval)
            self._wakeup.clear()
