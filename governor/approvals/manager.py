"""The approval manager: waits for people's decisions through the store, never in memory.

When a call's decision is `confirm`, the executor commits the execution (`awaiting_approval`),
its snapshot and its `ApprovalRecord` in one transaction, then asks the manager. The manager:

1. takes a lease on the request (`held_until`) so resume workers leave it to this caller while
   it waits, renewing it as it goes (a caller that dies stops renewing, and a worker takes over
   once the lease lapses);
2. tells every handler (`notify`, or 0.2.0's `handle_approval_request`, or a plain callable) about
   the current stage; a handler may answer at once, and the answer is recorded like any other
   (`store.decide_approval`: the approver must be named by the stage);
3. polls the store until the request closes or the current stage's deadline passes. Decisions
   reach it from anywhere: REST, CLI, dashboard, another process; `decide()` in this process
   also wakes the waiter at once. A new stage notifies the handlers again.
4. answers `approved` (the executor claims `approved -> running` and runs the function once),
   `rejected` (rejected, expired or cancelled), or `pending` when the stage timed out and the
   policy says `on_timeout="pending"`: the request stays approvable until its `expires_at`, the
   caller gets `ApprovalPending`, and a resume runs the function later.
   With `on_timeout="reject"` the timed-out request is expired and the call is rejected.

A caller that is cancelled while waiting lets go of its lease; the request stays pending, so
nothing is lost: it can still be decided and resumed by a worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from governor.approvals.handlers import ApprovalHandler
from governor.approvals.request import ApprovalAnswer, ApprovalNotice
from governor.decision import Decision
from governor.errors import ApprovalError, ConfigurationError
from governor.events.emitter import EventEmitter
from governor.policies.base import Policy
from governor.storage import StorageBackend, get_default_storage
from governor.storage.records import ApprovalRecord, ApprovalStatus, utcnow

__all__ = [
    "ApprovalManager",
    "ApprovalOutcome",
    "ApprovalRequest",
    "get_default_approval_manager",
    "set_default_approval_manager",
]

logger = logging.getLogger("governor.approvals")


@dataclass(frozen=True)
class ApprovalRequest:
    """What the executor asks an approval manager to decide.

    The execution, its `awaiting_approval` snapshot and its `ApprovalRecord` are committed before
    the manager is called. `approval` is the decision's block (`approvers`, `stages`,
    `timeout_seconds`, `quorum`); `inputs` the masked `{"args", "kwargs"}`.
    """

    execution_id: str
    function_name: str
    function_qualname: str
    approval: Mapping[str, Any]
    decision: Decision
    inputs: dict[str, Any]
    arguments: dict[str, Any]
    subject: dict[str, Any]
    storage: StorageBackend
    emitter: EventEmitter
    #: The decorator's `approval_handler`, told about the request like the manager's own.
    handler: Any = None
    #: The call's pre-phase policies.
    policies: tuple[Policy, ...] = ()
    #: The undecorated function.
    function: Callable[..., Any] | None = None

    @property
    def approvers(self) -> list[str]:
        """The approvers the decision names."""
        return [str(a) for a in self.approval.get("approvers", [])]

    @property
    def timeout_seconds(self) -> int:
        """The decision's timeout (0 when no policy set one)."""
        value = self.approval.get("timeout_seconds", 0)
        return int(value) if isinstance(value, int | float) else 0


@dataclass(frozen=True)
class ApprovalOutcome:
    """A manager's answer: run (`approved`), refuse (`rejected`), or not yet (`pending`: the
    caller gets `ApprovalPending` and the execution waits in the store)."""

    status: Literal["approved", "rejected", "pending"]
    approver: str | None = None
    reason: str | None = None

    @classmethod
    def pending(cls) -> ApprovalOutcome:
        """No decision yet."""
        return cls("pending")


class ApprovalManager:
    """Store-backed approvals (see the module docstring).

    - `storage`: the store `decide`/`provide_decision`/`get_pending_approvals` use (default: the
      process's shared store); a governed call always uses its own executor's store.
    - `handlers`: notification channels (`governor.approvals.handlers`), told about every stage.
    - `poll_interval`: how often a waiting caller reads the store (seconds).
    - `lease_seconds`: how long a waiting caller's claim on its request outlives its last renewal
      (a resume worker takes over a dead caller's request after this).
    - `base_url`: where the approval API is mounted (e.g. `https://app/govern`), for the
      approve/reject links in notices.
    """

    def __init__(
        self,
        storage: StorageBackend | None = None,
        handlers: Iterable[Any] = (),
        *,
        poll_interval: float = 0.1,
        lease_seconds: float = 15.0,
        base_url: str | None = None,
    ) -> None:
        if poll_interval <= 0 or lease_seconds <= 0:
            raise ConfigurationError("ApprovalManager: poll_interval and lease_seconds must be > 0")
        self._storage = storage
        self.handlers = list(handlers)
        self.poll_interval = float(poll_interval)
        self.lease_seconds = float(lease_seconds)
        self.base_url = base_url
        self._wakeups: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @property
    def storage(self) -> StorageBackend:
        return self._storage if self._storage is not None else get_default_storage()

    # -- deciding -----------------------------------------------------------------------------

    def decide(
        self,
        execution_id: str,
        *,
        approved: bool,
        approver: str,
        reason: str | None = None,
        storage: StorageBackend | None = None,
    ) -> ApprovalRecord:
        """Record an authenticated approver's answer; raises the `ApprovalError` subclasses."""
        record = (storage or self.storage).decide_approval(
            execution_id, approver=approver, approved=approved, reason=reason
        )
        self._wake(execution_id)
        return record

    def provide_decision(
        self, execution_id: str, approved: bool, approver: str, reason: str | None = None
    ) -> bool:
        """governor 0.2.0's call: True if the answer was recorded, False (logged) otherwise."""
        try:
            self.decide(execution_id, approved=approved, approver=approver, reason=reason)
        except ApprovalError as error:
            logger.warning("governor: approval answer not recorded: %s", error)
            return False
        return True

    def get_pending_approvals(self) -> list[ApprovalRecord]:
        """The requests still waiting for people, oldest first."""
        return self.storage.list_approvals(status=ApprovalStatus.PENDING, limit=None)

    def is_pending(self, execution_id: str) -> bool:
        record = self.storage.get_approval(execution_id)
        return record is not None and record.status is ApprovalStatus.PENDING

    def get_decision(self, execution_id: str) -> ApprovalRecord | None:
        """The request with its votes (who, when, why), pending or closed; None if unknown."""
        return self.storage.get_approval(execution_id)

    def _wake(self, execution_id: str) -> None:
        with self._lock:
            event = self._wakeups.get(execution_id)
        if event is not None:
            event.set()

    # -- waiting ------------------------------------------------------------------------------

    async def request_approval(self, request: ApprovalRequest) -> ApprovalOutcome:
        """Notify, then wait for the decision (async callers)."""
        waiter = _Waiter(self, request)
        try:
            while True:
                for notice in waiter.due_notices():
                    for handler in waiter.handlers:
                        answer = await _ask_async(handler, notice, request)
                        waiter.record_answer(handler, answer)
                outcome = waiter.check()
                if outcome is not None:
                    return outcome
                await asyncio.sleep(waiter.sleep_time())
        finally:
            waiter.close()

    def request_approval_sync(self, request: ApprovalRequest) -> ApprovalOutcome:
        """Notify, then wait for the decision in the caller's thread (sync callers)."""
        waiter = _Waiter(self, request)
        try:
            while True:
                for notice in waiter.due_notices():
                    for handler in waiter.handlers:
                        answer = _ask_in_thread(handler, notice, request)
                        waiter.record_answer(handler, answer)
                outcome = waiter.check()
                if outcome is not None:
                    return outcome
                waiter.event.wait(waiter.sleep_time())
                waiter.event.clear()
        finally:
            waiter.close()


class _Waiter:
    """One caller waiting for one request: lease, notices, polling."""

    def __init__(self, manager: ApprovalManager, request: ApprovalRequest) -> None:
        self.manager = manager
        self.request = request
        self.store = request.storage
        self.id = request.execution_id
        self.handlers = [*manager.handlers]
        if request.handler is not None and request.handler not in self.handlers:
            self.handlers.append(request.handler)
        self.event = threading.Event()
        with manager._lock:
            manager._wakeups[self.id] = self.event
        self.notified_stage = -1
        self.renewed = 0.0
        self.outcome: ApprovalOutcome | None = None
        self.record = self._load()
        self._renew(force=True)

    def _load(self) -> ApprovalRecord:
        record = self.store.get_approval(self.id)
        if record is None:
            raise ApprovalError(f"no approval request stored for execution {self.id}")
        return record

    def _renew(self, *, force: bool = False) -> None:
        lease = self.manager.lease_seconds
        if force or time.monotonic() - self.renewed > lease / 3:
            self.store.hold_approval(self.id, utcnow() + timedelta(seconds=lease))
            self.renewed = time.monotonic()

    def due_notices(self) -> list[ApprovalNotice]:
        """The notice of the current stage, once per stage, while the request is pending."""
        record = self.record
        if record.status is not ApprovalStatus.PENDING or record.stage <= self.notified_stage:
            return []
        self.notified_stage = record.stage
        if not self.handlers:
            return []
        return [ApprovalNotice.of(record, self.manager.base_url)]

    def record_answer(self, handler: Any, answer: Any) -> None:
        if answer is None:
            return
        parsed = _answer(handler, answer)
        if parsed is None:
            return
        try:
            if not parsed.approved and parsed.approver.startswith("handler:"):
                # a refusal needs no approver's identity: it grants nothing
                self.record = self.store.close_approval(
                    self.id,
                    status=ApprovalStatus.REJECTED,
                    by=parsed.approver,
                    reason=parsed.reason,
                )
                return
            self.record = self.store.decide_approval(
                self.id, approver=parsed.approver, approved=parsed.approved, reason=parsed.reason
            )
        except ApprovalError as error:
            logger.error(
                "governor: approval handler %s answered for execution %s but the answer was "
                "refused: %s",
                _name(handler),
                self.id,
                error,
            )

    def check(self) -> ApprovalOutcome | None:
        """The outcome once the request closed or its stage timed out; None to keep waiting."""
        record = self.record = self._load()
        status = record.status
        if status is ApprovalStatus.APPROVED:
            return self._done(ApprovalOutcome("approved", record.decided_by, record.reason))
        if status is not ApprovalStatus.PENDING:
            return self._done(_refusal(record))
        if utcnow() >= record.stage_deadline:
            if record.on_timeout == "reject":
                record = self.record = self.store.expire_approval(self.id)
                if record.status is not ApprovalStatus.PENDING:
                    if record.status is ApprovalStatus.APPROVED:
                        return self._done(
                            ApprovalOutcome("approved", record.decided_by, record.reason)
                        )
                    return self._done(_refusal(record))
            else:
                return self._done(ApprovalOutcome.pending())
        if record.stage > self.notified_stage:
            return None  # a new stage: notify before sleeping
        self._renew()
        return None

    def _done(self, outcome: ApprovalOutcome) -> ApprovalOutcome:
        self.outcome = outcome
        return outcome

    def sleep_time(self) -> float:
        left = (self.record.stage_deadline - utcnow()).total_seconds()
        return max(0.0, min(self.manager.poll_interval, left))

    def close(self) -> None:
        with self.manager._lock:
            if self.manager._wakeups.get(self.id) is self.event:
                del self.manager._wakeups[self.id]
        if self.outcome is None or self.outcome.status == "pending":
            # gave up (timeout with on_timeout="pending", cancelled, crashed): a worker may resume
            try:
                self.store.hold_approval(self.id, None)
            except Exception:
                logger.exception("governor: could not release the lease of execution %s", self.id)


def _refusal(record: ApprovalRecord) -> ApprovalOutcome:
    if record.status is ApprovalStatus.EXPIRED:
        return ApprovalOutcome("rejected", None, "the approval request expired without a decision")
    if record.status is ApprovalStatus.CANCELLED:
        return ApprovalOutcome("rejected", record.decided_by, record.reason or "cancelled")
    return ApprovalOutcome("rejected", record.decided_by, record.reason)


def _name(handler: Any) -> str:
    return getattr(handler, "__qualname__", None) or type(handler).__name__


def _overrides(handler: Any, method: str) -> bool:
    own = getattr(type(handler), method, None)
    return own is not None and own is not getattr(ApprovalHandler, method, None)


async def _ask_async(handler: Any, notice: ApprovalNotice, request: ApprovalRequest) -> Any:
    """Ask one handler. Sync handlers run in a worker thread (a CLI prompt must not block the
    event loop). A handler that raises is logged and answers nothing."""
    legacy = (notice.execution_id, notice.function_name, notice.inputs, list(notice.approvers))
    fn: Any
    args: tuple[Any, ...]
    if isinstance(handler, ApprovalHandler):
        if _overrides(handler, "notify"):
            fn, args = handler.notify, (notice,)
        else:
            fn, args = handler.handle_approval_request, legacy
    elif callable(getattr(handler, "handle_approval_request", None)):
        fn, args = handler.handle_approval_request, legacy
    elif callable(getattr(handler, "notify", None)):
        fn, args = handler.notify, (notice,)
    elif callable(handler):
        fn, args = handler, (notice,)
    else:
        logger.error("governor: approval handler %r is not callable; ignored", handler)
        return None
    try:
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
        )
        answer = fn(*args) if is_async else await asyncio.to_thread(fn, *args)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer
    except Exception:
        logger.exception(
            "governor: approval handler %s raised for execution %s; the request stays pending "
            "and can be decided through the store (REST, CLI, dashboard)",
            _name(handler),
            request.execution_id,
        )
        return None


def _ask_in_thread(handler: Any, notice: ApprovalNotice, request: ApprovalRequest) -> Any:
    """Ask a handler from sync code: on its own event loop in a worker thread, so async
    handlers get a real task (httpx and friends need one) whatever loop the caller is in."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="governor-approval") as pool:
        return pool.submit(asyncio.run, _ask_async(handler, notice, request)).result()


def _answer(handler: Any, answer: Any) -> ApprovalAnswer | None:
    """A handler's answer as an `ApprovalAnswer`. An answer without an approver's identity
    (a bare True/False) is recorded as `handler:<name>`, which only a stage naming nobody
    accepts: an approval must say who approved."""
    if isinstance(answer, ApprovalAnswer):
        return answer
    if isinstance(answer, ApprovalOutcome):
        if answer.status == "pending":
            return None
        return ApprovalAnswer(
            answer.status == "approved",
            answer.approver or f"handler:{_name(handler)}",
            answer.reason,
        )
    if isinstance(answer, bool):
        return ApprovalAnswer(answer, f"handler:{_name(handler)}")
    if isinstance(answer, Sequence) and answer and isinstance(answer[0], bool):
        approver = answer[1] if len(answer) > 1 and answer[1] else f"handler:{_name(handler)}"
        reason = answer[2] if len(answer) > 2 else None
        return ApprovalAnswer(answer[0], str(approver), None if reason is None else str(reason))
    logger.error(
        "governor: approval handler %s answered %r, which is not an answer (ApprovalAnswer, "
        "True/False or (approved, approver, reason)); the request stays pending",
        _name(handler),
        answer,
    )
    return None


_default: ApprovalManager | None = None
_default_lock = threading.Lock()


def get_default_approval_manager() -> ApprovalManager:
    """The process's shared manager (store: the process's shared store)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ApprovalManager()
        return _default


def set_default_approval_manager(manager: ApprovalManager | None) -> None:
    """Replace the shared manager (None: a fresh one on next use)."""
    global _default
    with _default_lock:
        _default = manager
