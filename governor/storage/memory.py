"""`InMemoryStorage`: the same contract in process memory, for tests and quick starts.

Everything lives in this process and is lost when it exits; rate limits are exact among the
threads of this process only (use `SQLStorage` to share limits between processes).

It is **bounded**: past `max_executions` the oldest executions are evicted with their snapshots
and events; past `max_events` the oldest events go; past `max_audit_records` the oldest audit
records go, and the chain is then verified from the oldest record kept. Pass None for no bound.
"""

from __future__ import annotations

import dataclasses
import threading
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Any, TypeVar, cast

from governor.errors import RecordNotFound, StorageError
from governor.storage._audit import GENESIS_HASH, REDACTED_BODY, find_break, seal
from governor.storage._json import ensure_json
from governor.storage._prepare import (
    prepare_audit,
    prepare_changes,
    prepare_event,
    prepare_execution,
    prepare_snapshot,
)
from governor.storage._window import (
    PRUNE_GRACE_SECONDS,
    SWEEP_EVERY,
    LockedWindow,
    prepare_window,
)
from governor.storage.base import RateLimitWindow, StorageBackend
from governor.storage.records import (
    AuditRecord,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    SnapshotRecord,
    as_status,
    as_utc,
    utcnow,
)

_R = TypeVar("_R", ExecutionRecord, SnapshotRecord, EventRecord, AuditRecord)
_JSON_FIELDS = ("inputs", "outputs", "metadata", "state", "data", "reasons", "record")
_KEY_LOCK_STRIPES = 64


def _copy(record: _R) -> _R:
    """Return a copy whose JSON fields are copied too, so callers never share our objects."""
    changes = {
        name: ensure_json(getattr(record, name), name)
        for name in _JSON_FIELDS
        if hasattr(record, name)
    }
    return dataclasses.replace(record, **changes)


def _page(records: list[_R], limit: int | None, offset: int) -> list[_R]:
    if limit is not None and limit < 0:
        raise StorageError(f"limit must be >= 0 or None, got {limit}")
    if offset < 0:
        raise StorageError(f"offset must be >= 0, got {offset}")
    end = None if limit is None else offset + limit
    return [_copy(record) for record in records[offset:end]]


class InMemoryStorage(StorageBackend):
    """A thread-safe store in process memory, bounded by default (see the module docstring)."""

    def __init__(
        self,
        *,
        max_executions: int | None = 10_000,
        max_events: int | None = 100_000,
        max_audit_records: int | None = 100_000,
    ) -> None:
        for name, bound in (
            ("max_executions", max_executions),
            ("max_events", max_events),
            ("max_audit_records", max_audit_records),
        ):
            if bound is not None and bound < 1:
                raise StorageError(f"{name} must be a positive number or None, got {bound}")
        self.max_executions = max_executions
        self.max_events = max_events
        self.max_audit_records = max_audit_records
        self._lock = threading.RLock()
        # Rate-limit keys hash onto a fixed set of locks, so unrelated keys rarely wait for
        # each other and the number of locks never grows with the number of keys.
        self._key_locks = tuple(threading.Lock() for _ in range(_KEY_LOCK_STRIPES))
        self._reset()

    def _reset(self) -> None:
        self._executions: dict[str, ExecutionRecord] = {}
        self._snapshots: dict[str, SnapshotRecord] = {}
        self._snapshots_by_execution: dict[str, dict[str, None]] = {}
        self._events: dict[str, EventRecord] = {}
        self._events_by_execution: dict[str, dict[str, None]] = {}
        self._audit: deque[AuditRecord] = deque()
        self._calls: dict[str, list[float]] = {}
        self._clocks: dict[str, float] = {}
        self._idle_after: dict[str, float] = {}
        self._windows = 0

    def __repr__(self) -> str:
        return f"InMemoryStorage(executions={len(self._executions)}, events={len(self._events)})"

    # -- executions ---------------------------------------------------------------------------

    def save_execution(self, record: ExecutionRecord) -> ExecutionRecord:
        """Insert or replace an execution; an existing execution keeps its `created_at`."""
        stored = prepare_execution(record, utcnow())
        with self._lock:
            parent = stored.parent_id
            if parent is not None and parent != stored.id and parent not in self._executions:
                raise RecordNotFound(
                    f"cannot save execution {stored.id}: its parent execution {parent} "
                    "does not exist"
                )
            existing = self._executions.get(stored.id)
            if existing is not None:
                stored.created_at = existing.created_at
            self._executions[stored.id] = stored
            self._evict_executions()
        return _copy(stored)

    def _evict_executions(self) -> None:
        if self.max_executions is None:
            return
        while len(self._executions) > self.max_executions:
            self._delete(next(iter(self._executions)))

    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        """Return the execution with this id, or None."""
        with self._lock:
            record = self._executions.get(execution_id)
            return _copy(record) if record is not None else None

    def update_execution(self, execution_id: str, **changes: Any) -> ExecutionRecord:
        """Change some fields of an execution; raises `RecordNotFound` if there is none."""
        values = prepare_changes(changes)
        with self._lock:
            record = self._executions.get(execution_id)
            if record is None:
                raise RecordNotFound(f"cannot update execution {execution_id}: it does not exist")
            parent = values.get("parent_id")
            if parent is not None and parent not in self._executions:
                raise RecordNotFound(
                    f"cannot update execution {execution_id}: its parent execution {parent} "
                    "does not exist"
                )
            updated = dataclasses.replace(record, updated_at=utcnow(), **values)
            self._executions[execution_id] = updated
            return _copy(updated)

    def list_executions(
        self,
        *,
        status: ExecutionStatus | str | None = None,
        function_name: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[ExecutionRecord]:
        """Return executions, newest first, optionally only one status and/or one function."""
        wanted = as_status(status) if status is not None else None
        with self._lock:
            found = [
                r
                for r in self._executions.values()
                if (wanted is None or r.status == wanted)
                and (function_name is None or r.function_name == function_name)
            ]
            found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
            return _page(found, limit, offset)

    def claim_execution(
        self,
        execution_id: str,
        from_status: ExecutionStatus | str,
        to_status: ExecutionStatus | str,
    ) -> bool:
        """Move an execution from `from_status` to `to_status` atomically; True for one claimer."""
        source, target = as_status(from_status), as_status(to_status)
        with self._lock:
            record = self._executions.get(execution_id)
            if record is None or record.status != source:
                return False
            self._executions[execution_id] = dataclasses.replace(
                record, status=target, updated_at=utcnow()
            )
            return True

    def delete_execution(self, execution_id: str) -> bool:
        """Delete an execution with its snapshots and events; audit records stay."""
        with self._lock:
            return self._delete(execution_id)

    def _delete(self, execution_id: str) -> bool:
        if self._executions.pop(execution_id, None) is None:
            return False
        for snapshot_id in self._snapshots_by_execution.pop(execution_id, {}):
            self._snapshots.pop(snapshot_id, None)
        for event_id in self._events_by_execution.pop(execution_id, {}):
            self._events.pop(event_id, None)
        for id_, child in self._executions.items():
            if child.parent_id == execution_id:
                self._executions[id_] = dataclasses.replace(child, parent_id=None)
        return True

    # -- snapshots ----------------------------------------------------------------------------

    def save_snapshot(self, record: SnapshotRecord) -> SnapshotRecord:
        """Store a state snapshot of an existing execution."""
        stored = prepare_snapshot(record, utcnow())
        with self._lock:
            if stored.execution_id not in self._executions:
                raise RecordNotFound(
                    f"cannot save snapshot {stored.id}: execution {stored.execution_id} does not "
                    "exist (save the execution first, or it was deleted)"
                )
            if stored.id in self._snapshots:
                raise StorageError(f"cannot save snapshot {stored.id}: that id is already stored")
            self._snapshots[stored.id] = stored
            self._snapshots_by_execution.setdefault(stored.execution_id, {})[stored.id] = None
        return _copy(stored)

    def get_snapshot(self, snapshot_id: str) -> SnapshotRecord | None:
        """Return the snapshot with this id, or None."""
        with self._lock:
            record = self._snapshots.get(snapshot_id)
            return _copy(record) if record is not None else None

    def list_snapshots(self, execution_id: str) -> list[SnapshotRecord]:
        """Return an execution's snapshots, oldest first."""
        with self._lock:
            ids = self._snapshots_by_execution.get(execution_id, {})
            found = sorted((self._snapshots[i] for i in ids), key=lambda r: (r.captured_at, r.id))
            return _page(found, None, 0)

    # -- events -------------------------------------------------------------------------------

    def save_event(self, record: EventRecord) -> EventRecord:
        """Persist an event; its `execution_id`, when set, must name an existing execution."""
        stored = prepare_event(record, utcnow())
        with self._lock:
            if stored.execution_id is not None and stored.execution_id not in self._executions:
                raise RecordNotFound(
                    f"cannot save event {stored.id}: execution {stored.execution_id} does not "
                    "exist (save the execution first, or it was deleted)"
                )
            if stored.id in self._events:
                raise StorageError(f"cannot save event {stored.id}: that id is already stored")
            self._events[stored.id] = stored
            if stored.execution_id is not None:
                self._events_by_execution.setdefault(stored.execution_id, {})[stored.id] = None
            if self.max_events is not None:
                while len(self._events) > self.max_events:
                    oldest = self._events.pop(next(iter(self._events)))
                    if oldest.execution_id is not None:
                        self._events_by_execution.get(oldest.execution_id, {}).pop(oldest.id, None)
        return _copy(stored)

    def list_events(
        self,
        *,
        execution_id: str | None = None,
        event_type: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[EventRecord]:
        """Return events, oldest first, optionally of one execution and/or one type."""
        wanted_type = getattr(event_type, "value", event_type)
        with self._lock:
            candidates: Iterable[EventRecord]
            if execution_id is not None:
                ids = self._events_by_execution.get(execution_id, {})
                candidates = (self._events[i] for i in ids)
            else:
                candidates = self._events.values()
            found = [e for e in candidates if wanted_type is None or e.event_type == wanted_type]
            found.sort(key=lambda r: (r.timestamp, r.id))
            return _page(found, limit, offset)

    # -- audit --------------------------------------------------------------------------------

    def append_audit_record(self, record: AuditRecord) -> AuditRecord:
        """Append a record to the hash chain, reading the head under the store's lock."""
        stamped = record.timestamp is not None
        prepared = prepare_audit(record, utcnow())
        with self._lock:
            if not stamped:
                prepared.timestamp = utcnow()
            if self._audit:
                head = self._audit[-1]
                sealed = seal(prepared, cast(int, head.seq) + 1, cast(str, head.hash))
            else:
                sealed = seal(prepared, 1, GENESIS_HASH)
            self._audit.append(sealed)
            if self.max_audit_records is not None:
                while len(self._audit) > self.max_audit_records:
                    self._audit.popleft()
        return _copy(sealed)

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
        start, end = as_utc(since), as_utc(until)
        with self._lock:
            found = [
                r
                for r in self._audit
                if (execution_id is None or r.execution_id == execution_id)
                and (actor is None or r.actor == actor)
                and (start is None or cast(datetime, r.timestamp) >= start)
                and (end is None or cast(datetime, r.timestamp) < end)
            ]
            return _page(found, limit, offset)

    def verify_audit_chain(self) -> AuditRecord | None:
        """Walk the chain (from the oldest record kept); return the first broken record or None."""
        with self._lock:
            records = list(self._audit)
        anchored = not records or records[0].seq == 1
        broken = find_break(records, anchored_at_genesis=anchored)
        return _copy(broken) if broken is not None else None

    def redact_audit_records(
        self, *, execution_id: str | None = None, actor: str | None = None
    ) -> int:
        """Erase actor, reasons and record of matching audit records; returns how many."""
        if execution_id is None and actor is None:
            raise StorageError("redact_audit_records needs execution_id or actor (or both)")
        now = utcnow()
        redacted = 0
        with self._lock:
            for index, record in enumerate(self._audit):
                if record.redacted_at is not None:
                    continue
                if execution_id is not None and record.execution_id != execution_id:
                    continue
                if actor is not None and record.actor != actor:
                    continue
                self._audit[index] = dataclasses.replace(
                    record,
                    actor=REDACTED_BODY["actor"],
                    reasons=list(REDACTED_BODY["reasons"]),
                    record=dict(REDACTED_BODY["record"]),
                    redacted_at=now,
                )
                redacted += 1
        return redacted

    # -- rate limits --------------------------------------------------------------------------

    @contextmanager
    def rate_limit_window(
        self, keys: Sequence[str], window_seconds: float, now: float
    ) -> Iterator[RateLimitWindow]:
        """Lock `keys` (striped locks, taken in order), yield the window, commit on success."""
        locked = prepare_window(keys, window_seconds, now)
        stripes = sorted({hash(key) % _KEY_LOCK_STRIPES for key in locked})
        with ExitStack() as stack:
            for stripe in stripes:
                stack.enter_context(self._key_locks[stripe])
            self._sweep_idle_keys(float(now))
            window = _MemoryWindow(self, locked, float(window_seconds), float(now))
            try:
                yield window
            finally:
                window.closed = True
            # Reached only when the block did not raise: apply what the window changed.
            window.commit()

    def _key_clock(self, key: str, now: float) -> float:
        """The moment a window at `now` acts at for `key`: its clock never runs backwards."""
        with self._lock:
            return max(now, self._clocks.get(key, now))

    def _count_calls(self, key: str, cutoff: float) -> int:
        """Count calls of `key` later than `cutoff` (the caller holds the key's lock)."""
        with self._lock:
            calls = self._calls.get(key)
            return len(calls) - bisect_right(calls, cutoff) if calls else 0

    def _commit_key(self, key: str, clock: float, window_seconds: float, recorded: int) -> None:
        """Drop the key's calls that left the window, add `recorded` calls at `clock`."""
        with self._lock:
            calls = self._calls.setdefault(key, [])
            del calls[: bisect_right(calls, clock - window_seconds)]
            calls.extend([clock] * recorded)
            self._clocks[key] = clock
            self._idle_after[key] = clock + window_seconds
            if not calls:
                del self._calls[key]

    def _sweep_idle_keys(self, now: float) -> None:
        """In every `SWEEP_EVERY`-th window, forget keys idle for their window plus the grace."""
        with self._lock:
            self._windows += 1
            if self._windows % SWEEP_EVERY != 1:
                return
            before = now - PRUNE_GRACE_SECONDS
            for key in [k for k, idle_after in self._idle_after.items() if idle_after <= before]:
                self._calls.pop(key, None)
                self._clocks.pop(key, None)
                del self._idle_after[key]

    # -- lifecycle ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Delete every record of every kind."""
        with self._lock:
            self._reset()


class _MemoryWindow(LockedWindow):
    """A rate-limit window over `InMemoryStorage`; changes apply only when the block succeeds."""

    def __init__(
        self, store: InMemoryStorage, keys: tuple[str, ...], window_seconds: float, now: float
    ) -> None:
        super().__init__(keys, window_seconds, now)
        self._store = store
        self._clocks: dict[str, float] = {}
        self._recorded: dict[str, int] = {}

    def _clock(self, key: str) -> float:
        clock = self._clocks.get(key)
        if clock is None:
            clock = self._clocks[key] = self._store._key_clock(key, self.now)
        return clock

    def count(self, key: str) -> int:
        """Return how many calls are recorded for `key` in the window, including this block's."""
        self.check(key)
        cutoff = self._clock(key) - self.window_seconds
        return self._store._count_calls(key, cutoff) + self._recorded.get(key, 0)

    def record(self, key: str) -> None:
        """Record one call for `key` at `now` (or at the key's clock, if that is later)."""
        self.check(key)
        self._clock(key)
        self._recorded[key] = self._recorded.get(key, 0) + 1

    def commit(self) -> None:
        """Apply the window (called by the store when the block succeeded)."""
        for key, clock in self._clocks.items():
            self._store._commit_key(key, clock, self.window_seconds, self._recorded.get(key, 0))
