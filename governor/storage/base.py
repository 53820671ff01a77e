"""The storage contract every backend implements (`SQLStorage`, `InMemoryStorage`).

All methods are synchronous and thread-safe; the async decorator calls them through
`asyncio.to_thread`. Records go in and come out as copies: mutating a record after saving it, or a
record a query returned, never changes what is stored.

Ordering: executions are listed newest first (by `created_at`); snapshots, events and audit records
oldest first (snapshots and events by time, audit records by chain position).

Deletion: `delete_execution` removes the execution, its snapshots and its events for real. Audit
records are kept, because the audit trail must stay verifiable; for erasure requests
`redact_audit_records` replaces their personal part (actor, reasons, record) with a marker, and the
hash chain still verifies (see `governor.storage._audit`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from governor.storage.records import (
    AuditRecord,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    SnapshotRecord,
)


class RateLimitWindow(ABC):
    """The view of a rate-limit window handed out under the lock by `rate_limit_window`.

    Use it from the thread that opened it, and only inside the `with` block.
    """

    @abstractmethod
    def count(self, key: str) -> int:
        """Return how many calls are recorded for `key` in the window, including this block's."""

    @abstractmethod
    def record(self, key: str) -> None:
        """Record one call for `key` at the window's `now`; it is committed when the block exits."""


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

    # -- rate limits --------------------------------------------------------------------------

    @abstractmethod
    def rate_limit_window(
        self, keys: Sequence[str], window_seconds: float, now: float
    ) -> AbstractContextManager[RateLimitWindow]:
        """Lock `keys`, and yield their window `(now - window_seconds, now]` to count and record.

        The lock is held for the whole `with` block, in every thread and process sharing the
        store, so count -> decide -> record is exact. Leaving the block commits what was recorded;
        an exception rolls it back. A key's clock never runs backwards: a `now` older than the
        key's latest call is taken as that moment. Counting costs the same however many calls the
        window holds. Details in `governor.storage._window`.
        """

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
