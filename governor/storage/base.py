"""The storage contract every backend implements (`SQLStorage`, `InMemoryStorage`).

All methods are synchronous and thread-safe; the async decorator calls them through
`asyncio.to_thread`. Records go in and come out as copies: mutating a record after saving it, or a
record a query returned, never changes what is stored.

Ordering: executions are listed newest first (by `created_at`); snapshots, events and audit records
oldest first (snapshots and events by time, audit records by chain position).

Units of work: `transaction(rate_limit_keys=..., budget_keys=..., now=...)` is one write
transaction for one governed call. It locks its keys once, and everything done through the
`Transaction` it yields (rate-limit counts and calls, budget facts and holds, the execution, its
snapshots and events, the audit record) commits together when the block exits, or not at all if
it raises. `rate_limit_window` and `budget_window` are that same transaction with only one kind of
key, and the store's own `save_*`/`append_audit_record` are one-statement transactions. A thread
inside a transaction must write through it: calling the store's write methods from inside the
block raises `StorageError` (it would wait for the lock the block holds).

Deletion: `delete_execution` removes the execution, its snapshots and its events for real. Audit
records are kept, because the audit trail must stay verifiable; for erasure requests
`redact_audit_records` replaces their personal part (actor, reasons, record) with a marker, and the
hash chain still verifies (see `governor.storage._audit`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from governor.errors import ApprovalNotFound, StorageError
from governor.storage import _approvals
from governor.storage._window import check_key_list
from governor.storage.records import (
    ApprovalRecord,
    ApprovalStatus,
    AuditRecord,
    BudgetFacts,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    ReservationRecord,
    SnapshotRecord,
    UsageRecord,
    UsageTotals,
)


class RateLimitWindow(ABC):
    """The rate-limit part of a `Transaction`: count and record calls of its locked keys.

    Use it from the thread that opened it, and only inside the `with` block.
    """

    @abstractmethod
    def count(self, key: str) -> int:
        """Return how many calls are recorded for `key` in its window, including this block's."""

    @abstractmethod
    def record(self, key: str) -> None:
        """Record one call for `key` at the transaction's `now`; committed when the block exits."""


class BudgetWindow(ABC):
    """The budget part of a `Transaction`: read the facts of its locked keys, place holds.

    The decision is the caller's (the Rego rule `governor.policies.budget`, with the limit and
    the estimate): `spent + reserved + estimate <= limit`, then `reserve(key, estimate, ttl)`.
    Use it from the thread that opened it, and only inside the `with` block.
    """

    @abstractmethod
    def facts(self, key: str, period_start: datetime, period_end: datetime) -> BudgetFacts:
        """Return `{"spent", "reserved"}` of `key` in micro-units, holds of this block included.

        `spent` is the usage recorded in `[period_start, period_end)` (see `month_period`);
        `reserved` the holds still alive at the transaction's `now`.
        """

    @abstractmethod
    def reserve(
        self,
        key: str,
        amount: int,
        ttl_seconds: float,
        execution_id: str | None = None,
        *,
        currency: str = "USD",
    ) -> str:
        """Hold `amount` micro-units on `key` until `now + ttl_seconds`; return the hold's id.

        The hold counts in `reserved` until it is settled, released or expires. Settle it with
        the actual cost (`store.settle`) or release it (`store.release`) after the call.
        """


class Transaction(RateLimitWindow, BudgetWindow):
    """One unit of work under the locks of its keys: what `store.transaction(...)` yields.

    Everything done through it commits when the `with` block exits and is rolled back if the
    block raises. A write that fails inside it (a missing execution, a duplicate id, a database
    error) leaves it able only to roll back: let the exception leave the block. Keep the block
    short: other callers of the same keys (on SQLite: every writer of the file) wait for it.
    On PostgreSQL, `append_audit_record` takes the audit chain's lock until the commit, so append
    the audit record last.
    """

    #: The transaction's clock in seconds since the epoch (rate-limit windows).
    now: float
    #: The same moment as an aware UTC datetime (budget holds and periods).
    now_utc: datetime

    @abstractmethod
    def save_execution(self, record: ExecutionRecord) -> ExecutionRecord:
        """Insert or replace an execution (upsert), as `StorageBackend.save_execution`."""

    @abstractmethod
    def save_snapshot(self, record: SnapshotRecord) -> SnapshotRecord:
        """Store a snapshot of an execution saved before or in this transaction."""

    @abstractmethod
    def save_event(self, record: EventRecord) -> EventRecord:
        """Persist an event, as `StorageBackend.save_event`."""

    @abstractmethod
    def append_audit_record(self, record: AuditRecord) -> AuditRecord:
        """Append a record to the hash chain; returns it sealed (`seq` and hashes set)."""

    def save_records(
        self,
        *,
        execution: ExecutionRecord | None = None,
        snapshots: Sequence[SnapshotRecord] = (),
        events: Sequence[EventRecord] = (),
        audit: AuditRecord | None = None,
    ) -> AuditRecord | None:
        """Write a batch of records, in this order: the execution, the snapshots, the events,
        the audit record (appended to the chain last). Returns the sealed audit record (None
        without one); the other stored records are not handed back.

        What `@govern` writes at the end of a call. The records are handed over: the caller
        built them for the store and does not touch them afterwards, so a backend may keep them
        as they are (the in-memory store does, and returns the audit record it keeps: read, do
        not change). Their JSON fields must already be plain JSON (dicts with string keys,
        lists, strings, finite numbers, booleans, None) and their times aware UTC datetimes.
        Otherwise stored as by `save_execution`, `save_snapshot`, `save_event` and
        `append_audit_record`; a backend may send them in fewer statements. This default makes
        the single calls.
        """
        if execution is not None:
            self.save_execution(execution)
        for snapshot in snapshots:
            self.save_snapshot(snapshot)
        for event in events:
            self.save_event(event)
        return self.append_audit_record(audit) if audit is not None else None

    @abstractmethod
    def load_approval(self, execution_id: str) -> ApprovalRecord | None:
        """Read an approval request, locked until the commit (PostgreSQL: FOR UPDATE)."""

    @abstractmethod
    def add_approval(self, record: ApprovalRecord) -> ApprovalRecord:
        """Insert a new approval request; its execution must be saved (in this transaction)."""

    @abstractmethod
    def update_approval(self, record: ApprovalRecord) -> ApprovalRecord:
        """Write back a request read with `load_approval`."""

    @abstractmethod
    def move_execution(
        self, execution_id: str, from_status: ExecutionStatus, to_status: ExecutionStatus
    ) -> bool:
        """Compare-and-set an execution's status within this transaction."""


class StorageBackend(ABC):
    """Where governor keeps executions, snapshots, events, the audit chain and rate-limit calls."""

    # -- executions ---------------------------------------------------------------------------

    @abstractmethod
    def save_execution(self, record: ExecutionRecord) -> ExecutionRecord:
        """Insert or replace an execution (upsert); returns the stored copy, timestamps set."""

    @abstractmethod
    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        """Return the execution with this id, or None."""

    @abstractmethod
    def update_execution(self, execution_id: str, **changes: Any) -> ExecutionRecord:
        """Change some fields of an execution; raises `RecordNotFound` if there is none."""

    @abstractmethod
    def list_executions(
        self,
        *,
        status: ExecutionStatus | str | None = None,
        function_name: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[ExecutionRecord]:
        """Return executions, newest first, optionally only one status and/or one function."""

    @abstractmethod
    def claim_execution(
        self,
        execution_id: str,
        from_status: ExecutionStatus | str,
        to_status: ExecutionStatus | str,
    ) -> bool:
        """Move an execution from `from_status` to `to_status` atomically (compare-and-set).

        Returns True for exactly one of any number of concurrent claimers; False if the execution
        is not in `from_status` (already claimed, or missing). Use it so a resume runs once.
        """

    @abstractmethod
    def delete_execution(self, execution_id: str) -> bool:
        """Delete an execution, its snapshots and events (audit records stay); False if absent."""

    # -- snapshots ----------------------------------------------------------------------------

    @abstractmethod
    def save_snapshot(self, record: SnapshotRecord) -> SnapshotRecord:
        """Store a snapshot of an existing execution (`RecordNotFound` if there is none)."""

    @abstractmethod
    def get_snapshot(self, snapshot_id: str) -> SnapshotRecord | None:
        """Return the snapshot with this id, or None."""

    @abstractmethod
    def list_snapshots(self, execution_id: str) -> list[SnapshotRecord]:
        """Return an execution's snapshots, oldest first."""

    # -- events -------------------------------------------------------------------------------

    @abstractmethod
    def save_event(self, record: EventRecord) -> EventRecord:
        """Persist an event; its `execution_id`, when set, must name an existing execution."""

    @abstractmethod
    def list_events(
        self,
        *,
        execution_id: str | None = None,
        event_type: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[EventRecord]:
        """Return events, oldest first, optionally of one execution and/or one type."""

    # -- audit --------------------------------------------------------------------------------

    @abstractmethod
    def append_audit_record(self, record: AuditRecord) -> AuditRecord:
        """Append a record to the hash chain; returns it with `seq` and the hashes filled in.

        The chain head is read and the record written under one lock, so concurrent writers in
        any number of threads or processes still produce a single linear chain.
        """

    @abstractmethod
    def list_audit_records(
        self,
        *,
        execution_id: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[AuditRecord]:
        """Return audit records in chain order; `since` is inclusive, `until` exclusive."""

    @abstractmethod
    def verify_audit_chain(self) -> AuditRecord | None:
        """Walk the whole chain; return the first record that was altered, removed or reordered.

        Returns None when the chain is intact. The reason is logged on `governor.storage.audit`.
        """

    @abstractmethod
    def redact_audit_records(
        self, *, execution_id: str | None = None, actor: str | None = None
    ) -> int:
        """Erase the personal part of matching audit records (for erasure requests).

        Returns how many records were redacted. At least one filter is required.
        """

    # -- units of work ------------------------------------------------------------------------

    @abstractmethod
    def transaction(
        self,
        *,
        rate_limit_keys: Mapping[str, float] | None = None,
        budget_keys: Sequence[str] = (),
        now: datetime | float | None = None,
    ) -> AbstractContextManager[Transaction]:
        """Lock the keys and yield one `Transaction` for everything a governed call writes.

        `rate_limit_keys` maps each rate-limit key to its window in seconds, so policies with
        different windows share one transaction: `{"rate:fn": 60, "rate:fn:user:7": 3600}`.
        `budget_keys` lists the budget keys whose facts are read and holds placed. `now` (a
        datetime, seconds since the epoch, or None for the current time) is the moment the
        windows and holds are computed at. The locks (SQLite: the write lock of the file,
        PostgreSQL: advisory locks on the keys, in sorted order) are held for the whole block, in
        every thread and process sharing the store, so read -> decide -> record is exact. With no
        keys it is simply one write transaction. Leaving the block commits; an exception rolls
        everything back.
        """

    def save_records(
        self,
        *,
        execution: ExecutionRecord | None = None,
        snapshots: Sequence[SnapshotRecord] = (),
        events: Sequence[EventRecord] = (),
        audit: AuditRecord | None = None,
    ) -> AuditRecord | None:
        """`Transaction.save_records` in a transaction of its own (read its contract: the
        records are handed over). What `@govern` writes at the end of most calls."""
        with self.transaction() as tx:
            return tx.save_records(
                execution=execution, snapshots=snapshots, events=events, audit=audit
            )

    # -- rate limits --------------------------------------------------------------------------

    @contextmanager
    def rate_limit_window(
        self, keys: Sequence[str], window_seconds: float, now: float
    ) -> Iterator[RateLimitWindow]:
        """Lock `keys`, and yield their window `(now - window_seconds, now]` to count and record.

        A `transaction` with only these rate-limit keys, all of one window. The lock is held for
        the whole `with` block, in every thread and process sharing the store, so count ->
        decide -> record is exact. Leaving the block commits what was recorded; an exception
        rolls it back. A key's clock never runs backwards: a `now` older than the key's latest
        call is taken as that moment. Counting costs the same however many calls the window
        holds. Details in `governor.storage._window`.
        """
        check_key_list(keys, "rate_limit_window")
        if isinstance(now, datetime):
            raise StorageError("rate_limit_window takes now in seconds since the epoch")
        windows = dict.fromkeys(keys, window_seconds)
        with self.transaction(rate_limit_keys=windows, now=now) as transaction:
            yield transaction

    # -- budgets ------------------------------------------------------------------------------

    @contextmanager
    def budget_window(
        self, keys: Sequence[str], now: datetime | float | None = None
    ) -> Iterator[BudgetWindow]:
        """Lock the budget `keys` and yield their facts and holds (a `transaction` of budgets).

        Inside the block: `facts(key, start, end)`, decide, `reserve(key, amount, ttl)`. The
        holds commit when the block exits; an exception rolls them back. Semantics in
        `governor.storage._budget`.
        """
        check_key_list(keys, "budget_window")
        with self.transaction(budget_keys=keys, now=now) as transaction:
            yield transaction

    @abstractmethod
    def settle(
        self,
        reservation_id: str,
        actual_amount: int,
        *,
        now: datetime | float | None = None,
        **usage_fields: object,
    ) -> UsageRecord:
        """Book a hold with its actual cost: one usage record, and the hold settled, atomically.

        The usage record has the hold's key, `actual_amount`, `created_at` = `now` (default: the
        current time), the hold's currency and execution unless `usage_fields` say otherwise
        (`provider=`, `model=`, `correlation_id=`, ... any `SETTLE_USAGE_FIELDS`). Idempotent:
        settling a settled hold returns the same record and writes nothing. An expired hold can
        still be settled; a released one raises `StorageError`, an unknown one `RecordNotFound`.
        """

    @abstractmethod
    def release(self, reservation_id: str, *, now: datetime | float | None = None) -> bool:
        """Release a hold (the call failed or was not made): True if it was held, else False.

        False means it was already settled, released or expired, so releasing twice is safe.
        Raises `RecordNotFound` for an id the store never had.
        """

    @abstractmethod
    def get_reservation(
        self, reservation_id: str, *, now: datetime | float | None = None
    ) -> ReservationRecord | None:
        """Return a hold, or None; a hold still held past its expiry (at `now`) reads expired."""

    @abstractmethod
    def record_usage(self, record: UsageRecord) -> UsageRecord:
        """Book spending that had no hold (e.g. reported by a client); returns the stored copy."""

    @abstractmethod
    def list_usage(
        self,
        key: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        org_id: str | None = None,
        user_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[UsageRecord]:
        """Return usage records, newest first; `since` inclusive, `until` exclusive."""

    @abstractmethod
    def usage_totals(
        self,
        key: str,
        period_start: datetime,
        period_end: datetime,
        *,
        now: datetime | float | None = None,
    ) -> UsageTotals:
        """Return `{"spent", "count"}` of `key`'s usage in the period and its live holds at `now`.

        A read without the key's lock, for reports and status pages; decide under
        `budget_window` or `transaction`.
        """

    # -- approvals ----------------------------------------------------------------------------
    #
    # A request is created by the executor in the transaction that stores its execution as
    # `awaiting_approval`; every later step below is one transaction that reads the request
    # locked, moves it (`governor.storage._approvals`) and moves the execution with it.

    @abstractmethod
    def get_approval(self, execution_id: str) -> ApprovalRecord | None:
        """Return the approval request of this execution, or None."""

    @abstractmethod
    def list_approvals(
        self,
        *,
        status: ApprovalStatus | str | None = None,
        function_name: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[ApprovalRecord]:
        """Return approval requests, oldest first, optionally of one status and/or function."""

    def decide_approval(
        self,
        execution_id: str,
        *,
        approver: str,
        approved: bool,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> ApprovalRecord:
        """Record one approver's answer and return the request as it now stands.

        Raises `ApprovalNotFound`, `ApproverNotAllowed` (not named by the current stage, or
        answered it already), `ApprovalExpired`, `ApprovalClosed`, `ApprovalReasonRequired`;
        nothing changes then, except that a request found past its `expires_at` is expired.
        """
        return self._approval_step(
            execution_id,
            lambda record, at: _approvals.vote(
                record, approver=approver, approved=approved, reason=reason, now=at
            ),
            now,
        )

    def expire_approval(self, execution_id: str, *, now: datetime | None = None) -> ApprovalRecord:
        """Expire the request if its `expires_at` has passed; return it as it stands."""
        return self._approval_step(execution_id, _approvals.lapse, now)

    def close_approval(
        self,
        execution_id: str,
        *,
        status: ApprovalStatus | str = ApprovalStatus.CANCELLED,
        by: str,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> ApprovalRecord:
        """Close a pending request without a vote: `cancelled` (withdrawn; the execution becomes
        `cancelled`) or `rejected` by the application itself. No-op once closed."""
        wanted = ApprovalStatus(status)
        return self._approval_step(
            execution_id,
            lambda record, at: _approvals.close(
                record, status=wanted, by=by, reason=reason, now=at
            ),
            now,
        )

    def cancel_approval(
        self, execution_id: str, *, by: str, reason: str | None = None
    ) -> ApprovalRecord:
        """Withdraw a pending request (`close_approval` with status `cancelled`)."""
        return self.close_approval(execution_id, by=by, reason=reason)

    def hold_approval(self, execution_id: str, until: datetime | None) -> bool:
        """Set the lease of the caller waiting in-process (None lets go); False if no request."""
        with self.transaction() as tx:
            record = tx.load_approval(execution_id)
            if record is None:
                return False
            record.held_until = until
            tx.update_approval(record)
        return True

    def _approval_step(
        self,
        execution_id: str,
        step: Any,
        now: datetime | None,
    ) -> ApprovalRecord:
        with self.transaction(now=now) as tx:
            record = tx.load_approval(execution_id)
            if record is None:
                raise ApprovalNotFound(f"no approval request for execution {execution_id}")
            change: _approvals.Change = step(record, tx.now_utc)
            if change.changed:
                tx.update_approval(change.record)
                if change.closed:
                    tx.move_execution(
                        execution_id,
                        ExecutionStatus.AWAITING_APPROVAL,
                        _approvals.EXECUTION_STATUS[change.record.status],
                    )
                for event in change.events:
                    tx.save_event(event)
                tx.append_audit_record(_approvals.audit_entry(change, tx.now_utc))
        if change.error is not None:
            raise change.error
        return change.record

    # -- lifecycle ----------------------------------------------------------------------------

    @abstractmethod
    def clear(self) -> None:
        """Delete every record of every kind (for tests)."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections or other resources; the store must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
