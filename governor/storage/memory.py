"""`InMemoryStorage`: the same contract in process memory, for tests and quick starts.

Everything lives in this process and is lost when it exits; rate limits and budgets are exact
among the threads of this process only (use `SQLStorage` to share them between processes).

One lock guards everything: a `transaction` holds it for its whole block, and buffers its writes,
which are applied when the block exits without an exception (so an exception leaves nothing).
The store's own one-record writes check and apply the same way (`_accept_*`, `_put_*`), at once.

It is **bounded**: past `max_executions` the oldest executions are evicted with their snapshots
and events; past `max_events` the oldest events go; past `max_audit_records` the oldest audit
records go, and the chain is then verified from the oldest record kept. Pass None for no bound.
The budget ledger is never bounded: forgetting usage would let spending pass its limit.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any, TypeVar, cast

from governor.errors import RecordNotFound, StorageError
from governor.storage._audit import GENESIS_HASH, REDACTED_BODY, find_break, seal_in_place
from governor.storage._budget import (
    RESERVATION_RETENTION_SECONDS,
    check_amount,
    check_period,
    check_settle_fields,
    day_of,
    new_hold,
    prepare_usage,
    reported,
    settled_usage,
    split_period,
)
from governor.storage._json import copy_json
from governor.storage._prepare import (
    prepare_audit,
    prepare_changes,
    prepare_event,
    prepare_execution,
    prepare_snapshot,
    stamp_in_order,
)
from governor.storage._transaction import (
    LockedTransaction,
    TransactionPlan,
    as_moment,
    prepare_transaction,
)
from governor.storage._window import PRUNE_GRACE_SECONDS, SWEEP_EVERY, check_key
from governor.storage.base import StorageBackend, Transaction
from governor.storage.records import (
    ApprovalRecord,
    ApprovalStatus,
    AuditRecord,
    BudgetFacts,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    ReservationRecord,
    ReservationStatus,
    SnapshotRecord,
    UsageRecord,
    UsageTotals,
    as_status,
    as_utc,
    utcnow,
)

_R = TypeVar(
    "_R",
    ExecutionRecord,
    SnapshotRecord,
    EventRecord,
    AuditRecord,
    UsageRecord,
    ReservationRecord,
)
_JSON_FIELDS = ("inputs", "outputs", "metadata", "state", "data", "reasons", "record")


def _copy(record: _R) -> _R:
    """Return a copy whose JSON fields are copied too, so callers never share our objects."""
    # The JSON fields of a stored record were checked by `prepare_*` on the way in: copied
    # without checking again.
    changes = {
        name: copy_json(getattr(record, name)) for name in _JSON_FIELDS if hasattr(record, name)
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
        self._local = _ThreadState()
        self._reset()

    def _reset(self) -> None:
        self._executions: dict[str, ExecutionRecord] = {}
        # The ids of executions with a parent: a deleted execution's children are found here,
        # not by reading every execution (the oldest is deleted at each call once the store is
        # full).
        self._with_parent: dict[str, None] = {}
        self._snapshots: dict[str, SnapshotRecord] = {}
        self._snapshots_by_execution: dict[str, dict[str, None]] = {}
        self._events: dict[str, EventRecord] = {}
        self._events_by_execution: dict[str, dict[str, None]] = {}
        self._audit: deque[AuditRecord] = deque()
        self._calls: dict[str, list[float]] = {}
        self._clocks: dict[str, float] = {}
        self._idle_after: dict[str, float] = {}
        self._windows = 0
        self._usage: dict[str, UsageRecord] = {}
        # Per key and UTC day, the usage records (so a period's sum reads whole days as totals).
        self._usage_days: dict[str, dict[date, _Day]] = {}
        self._usage_by_hold: dict[str, str] = {}
        self._holds: dict[str, ReservationRecord] = {}
        # Per key, the ids of its holds still marked held (live or not yet swept).
        self._held_by_key: dict[str, dict[str, None]] = {}
        self._approvals: dict[str, ApprovalRecord] = {}

    def _check_not_in_transaction(self) -> None:
        if self._local.in_transaction:
            raise _nested_write_error()

    def __repr__(self) -> str:
        return f"InMemoryStorage(executions={len(self._executions)}, events={len(self._events)})"

    # -- executions ---------------------------------------------------------------------------

    def save_execution(self, record: ExecutionRecord) -> ExecutionRecord:
        """Insert or replace an execution; an existing execution keeps its `created_at`."""
        stored = prepare_execution(record, utcnow())
        with self._lock:
            self._check_not_in_transaction()
            _accept_execution(stored, self._executions.get)
            self._put_execution(stored)
        return _copy(stored)

    def _put_execution(self, stored: ExecutionRecord) -> None:
        self._set_execution(stored)
        self._evict_executions()

    def _set_execution(self, record: ExecutionRecord) -> None:
        """Store `record` in place of any execution of its id (a status move keeps its parent)."""
        self._executions[record.id] = record
        if record.parent_id is not None:
            self._with_parent[record.id] = None
        else:
            self._with_parent.pop(record.id, None)

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
            self._check_not_in_transaction()
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
            self._set_execution(updated)
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
            self._check_not_in_transaction()
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
            self._check_not_in_transaction()
            return self._delete(execution_id)

    def _delete(self, execution_id: str) -> bool:
        if self._executions.pop(execution_id, None) is None:
            return False
        self._with_parent.pop(execution_id, None)
        self._approvals.pop(execution_id, None)
        for snapshot_id in self._snapshots_by_execution.pop(execution_id, {}):
            self._snapshots.pop(snapshot_id, None)
        for event_id in self._events_by_execution.pop(execution_id, {}):
            self._events.pop(event_id, None)
        for id_ in list(self._with_parent):
            child = self._executions[id_]
            if child.parent_id == execution_id:
                self._set_execution(dataclasses.replace(child, parent_id=None))
        return True

    # -- snapshots ----------------------------------------------------------------------------

    def save_snapshot(self, record: SnapshotRecord) -> SnapshotRecord:
        """Store a state snapshot of an existing execution."""
        stored = prepare_snapshot(record, utcnow())
        with self._lock:
            self._check_not_in_transaction()
            _accept_snapshot(stored, self._executions.__contains__, self._snapshots.__contains__)
            self._put_snapshot(stored)
        return _copy(stored)

    def _put_snapshot(self, stored: SnapshotRecord) -> None:
        if stored.execution_id not in self._executions:
            return  # evicted by a later execution of the same transaction
        self._snapshots[stored.id] = stored
        self._snapshots_by_execution.setdefault(stored.execution_id, {})[stored.id] = None

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
            self._check_not_in_transaction()
            _accept_event(stored, self._executions.__contains__, self._events.__contains__)
            self._put_event(stored)
        return _copy(stored)

    def _put_event(self, stored: EventRecord) -> None:
        if stored.execution_id is not None and stored.execution_id not in self._executions:
            return  # evicted by a later execution of the same transaction
        self._events[stored.id] = stored
        if stored.execution_id is not None:
            self._events_by_execution.setdefault(stored.execution_id, {})[stored.id] = None
        if self.max_events is not None:
            while len(self._events) > self.max_events:
                oldest = self._events.pop(next(iter(self._events)))
                if oldest.execution_id is not None:
                    self._events_by_execution.get(oldest.execution_id, {}).pop(oldest.id, None)

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
            self._check_not_in_transaction()
            sealed = _seal_next(prepared, stamped, self._audit_head())
            self._put_audit(sealed)
        return _copy(sealed)

    def _audit_head(self) -> tuple[int, str]:
        if not self._audit:
            return 0, GENESIS_HASH
        head = self._audit[-1]
        return cast(int, head.seq), cast(str, head.hash)

    def save_records(
        self,
        *,
        execution: ExecutionRecord | None = None,
        snapshots: Sequence[SnapshotRecord] = (),
        events: Sequence[EventRecord] = (),
        audit: AuditRecord | None = None,
    ) -> AuditRecord | None:
        """`StorageBackend.save_records` without a transaction object: the batch is checked,
        then stored, under the store's lock (nothing else is in its unit of work)."""
        with self._lock:
            self._check_not_in_transaction()
            _adopt_records(
                execution,
                snapshots,
                events,
                self._executions.get,
                self._snapshots.__contains__,
                self._events.__contains__,
            )
            if audit is not None:
                _seal_next(audit, audit.timestamp is not None, self._audit_head())
            self._put_records(execution, snapshots, events, audit)
        return audit

    def _put_records(
        self,
        execution: ExecutionRecord | None,
        snapshots: Sequence[SnapshotRecord],
        events: Sequence[EventRecord],
        audit: AuditRecord | None,
    ) -> None:
        if execution is not None:
            self._put_execution(execution)
        for snapshot in snapshots:
            self._put_snapshot(snapshot)
        for event in events:
            self._put_event(event)
        if audit is not None:
            self._put_audit(audit)

    def _put_audit(self, sealed: AuditRecord) -> None:
        self._audit.append(sealed)
        if self.max_audit_records is not None:
            while len(self._audit) > self.max_audit_records:
                self._audit.popleft()

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
            self._check_not_in_transaction()
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

    # -- units of work ------------------------------------------------------------------------

    @contextmanager
    def transaction(
        self,
        *,
        rate_limit_keys: Mapping[str, float] | None = None,
        budget_keys: Sequence[str] = (),
        now: datetime | float | None = None,
    ) -> Iterator[Transaction]:
        """Take the store's lock, yield the work, apply it when the block exits cleanly."""
        plan = prepare_transaction(rate_limit_keys, budget_keys, now)
        with self._lock:
            self._check_not_in_transaction()
            self._local.in_transaction = True
            try:
                if plan.locks_keys:
                    self._sweep(plan)
                transaction = _MemoryTransaction(self, plan)
                try:
                    yield transaction
                finally:
                    transaction.closed = True
                # Reached only when the block did not raise.
                transaction.check_commit()
                transaction.apply()
            finally:
                self._local.in_transaction = False

    def _sweep(self, plan: TransactionPlan) -> None:
        """In every `SWEEP_EVERY`-th locking transaction, forget idle keys and old holds."""
        self._windows += 1
        if self._windows % SWEEP_EVERY != 1:
            return
        before = plan.now - PRUNE_GRACE_SECONDS
        for key in [k for k, idle_after in self._idle_after.items() if idle_after <= before]:
            self._calls.pop(key, None)
            self._clocks.pop(key, None)
            del self._idle_after[key]
        moment = min(plan.now_utc, utcnow())
        for ids in list(self._held_by_key.values()):
            for hold_id in [i for i in ids if self._holds[i].expires_at <= moment]:
                hold = self._holds[hold_id]
                self._close_hold(hold, ReservationStatus.EXPIRED, hold.expires_at, None)
        retained = moment - timedelta(seconds=RESERVATION_RETENTION_SECONDS)
        for hold_id in [
            i
            for i, hold in self._holds.items()
            if hold.status is not ReservationStatus.HELD and hold.expires_at <= retained
        ]:
            del self._holds[hold_id]

    def _key_clock(self, key: str, now: float) -> float:
        """The moment a transaction at `now` acts at for `key`: its clock never runs backwards."""
        return max(now, self._clocks.get(key, now))

    def _count_calls(self, key: str, cutoff: float) -> int:
        """Count calls of `key` later than `cutoff`."""
        calls = self._calls.get(key)
        return len(calls) - bisect_right(calls, cutoff) if calls else 0

    def _commit_key(self, key: str, clock: float, window_seconds: float, recorded: int) -> None:
        """Drop the key's calls that left the window, add `recorded` calls at `clock`."""
        calls = self._calls.setdefault(key, [])
        del calls[: bisect_right(calls, clock - window_seconds)]
        calls.extend([clock] * recorded)
        self._clocks[key] = clock
        self._idle_after[key] = clock + window_seconds
        if not calls:
            del self._calls[key]

    # -- budgets ------------------------------------------------------------------------------

    def _spent(self, key: str, start: datetime, end: datetime) -> tuple[int, int]:
        """Sum and count of the key's usage in `[start, end)`: whole days, then the edges."""
        days = self._usage_days.get(key)
        if not days:
            return 0, 0
        split = split_period(start, end)
        spent = count = 0
        span = (split.end_day - split.first_day).days
        if span <= len(days):
            whole = (days.get(split.first_day + timedelta(days=i)) for i in range(span))
        else:
            whole = (d for day, d in days.items() if split.first_day <= day < split.end_day)
        for day in whole:
            if day is not None:
                spent += day.amount
                count += len(day.records)
        for edge_start, edge_end in (split.head, split.tail):
            if edge_start >= edge_end:
                continue
            for day_key in {edge_start.date(), (edge_end - timedelta(microseconds=1)).date()}:
                day = days.get(day_key)
                for usage in day.records if day is not None else ():
                    if edge_start <= cast(datetime, usage.created_at) < edge_end:
                        spent += usage.amount
                        count += 1
        return spent, count

    def _reserved(self, key: str, now: datetime) -> int:
        """Sum of the key's holds alive at `now`."""
        holds = (self._holds[i] for i in self._held_by_key.get(key, {}))
        return sum(h.amount for h in holds if h.expires_at > now)

    def _put_hold(self, hold: ReservationRecord) -> None:
        self._holds[hold.id] = hold
        self._held_by_key.setdefault(hold.key, {})[hold.id] = None

    def _put_usage(self, usage: UsageRecord) -> None:
        self._usage[usage.id] = usage
        days = self._usage_days.setdefault(usage.key, {})
        day = days.get(day_of(cast(datetime, usage.created_at)))
        if day is None:
            day = days[day_of(cast(datetime, usage.created_at))] = _Day()
        day.amount += usage.amount
        day.records.append(usage)
        if usage.reservation_id is not None:
            self._usage_by_hold[usage.reservation_id] = usage.id

    def _close_hold(
        self,
        hold: ReservationRecord,
        status: ReservationStatus,
        at: datetime | None,
        usage_id: str | None,
    ) -> None:
        self._holds[hold.id] = dataclasses.replace(
            hold, status=status, closed_at=at, usage_id=usage_id
        )
        held = self._held_by_key.get(hold.key)
        if held is not None:
            held.pop(hold.id, None)
            if not held:
                del self._held_by_key[hold.key]

    def settle(
        self,
        reservation_id: str,
        actual_amount: int,
        *,
        now: datetime | float | None = None,
        **usage_fields: object,
    ) -> UsageRecord:
        """Book a hold: write its usage record and mark it settled, at once."""
        amount = check_amount(actual_amount, "settle actual_amount")
        fields = check_settle_fields(usage_fields)
        _, moment = as_moment(now)
        with self._lock:
            self._check_not_in_transaction()
            hold = self._holds.get(reservation_id)
            if hold is None or hold.status is ReservationStatus.SETTLED:
                usage_id = self._usage_by_hold.get(reservation_id)
                if usage_id is None:
                    raise RecordNotFound(
                        f"cannot settle reservation {reservation_id}: there is no such hold "
                        "(a typo, or another store?); book the cost with record_usage instead"
                    )
                return _copy(self._usage[usage_id])
            if hold.status is ReservationStatus.RELEASED:
                raise StorageError(
                    f"cannot settle reservation {reservation_id}: it was released at "
                    f"{hold.closed_at}; book the cost with record_usage instead"
                )
            usage = settled_usage(hold, amount, fields, moment)
            self._put_usage(usage)
            self._close_hold(hold, ReservationStatus.SETTLED, moment, usage.id)
            return _copy(usage)

    def release(self, reservation_id: str, *, now: datetime | float | None = None) -> bool:
        """Release a hold; True if it was held, False if already settled, released or expired."""
        _, moment = as_moment(now)
        with self._lock:
            self._check_not_in_transaction()
            hold = self._holds.get(reservation_id)
            if hold is None:
                if reservation_id in self._usage_by_hold:
                    return False
                raise RecordNotFound(f"cannot release reservation {reservation_id}: no such hold")
            if hold.status is not ReservationStatus.HELD:
                return False
            self._close_hold(hold, ReservationStatus.RELEASED, moment, None)
            return True

    def get_reservation(
        self, reservation_id: str, *, now: datetime | float | None = None
    ) -> ReservationRecord | None:
        """Return a hold, or None; a hold still held past its expiry (at `now`) reads expired."""
        _, moment = as_moment(now)
        with self._lock:
            hold = self._holds.get(reservation_id)
            return reported(_copy(hold), moment) if hold is not None else None

    def record_usage(self, record: UsageRecord) -> UsageRecord:
        """Book spending that had no hold; returns the stored copy."""
        stored = prepare_usage(record, utcnow())
        if stored.reservation_id is not None:
            raise StorageError(
                f"usage {stored.id} names reservation {stored.reservation_id}: book a hold with "
                "settle(reservation_id, amount), record_usage is for spending without one"
            )
        with self._lock:
            self._check_not_in_transaction()
            if stored.id in self._usage:
                raise StorageError(f"cannot record usage {stored.id}: that id is already stored")
            self._put_usage(stored)
        return _copy(stored)

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
        start, end = as_utc(since), as_utc(until)
        wanted = {
            "org_id": org_id,
            "user_id": user_id,
            "provider": provider,
            "model": model,
        }
        with self._lock:
            candidates: Iterable[UsageRecord]
            if key is not None:
                days = self._usage_days.get(key, {}).values()
                candidates = (usage for day in days for usage in day.records)
            else:
                candidates = self._usage.values()
            found = [
                u
                for u in candidates
                if all(v is None or getattr(u, f) == v for f, v in wanted.items())
                and (start is None or cast(datetime, u.created_at) >= start)
                and (end is None or cast(datetime, u.created_at) < end)
            ]
            found.sort(key=lambda u: (u.created_at, u.id), reverse=True)
            return _page(found, limit, offset)

    def usage_totals(
        self,
        key: str,
        period_start: datetime,
        period_end: datetime,
        *,
        now: datetime | float | None = None,
    ) -> UsageTotals:
        """Return the key's usage in the period (sum, count) and its live holds at `now`."""
        check_key(key, "budget")
        start, end = check_period(period_start, period_end)
        _, moment = as_moment(now)
        with self._lock:
            spent, count = self._spent(key, start, end)
            return {"spent": spent, "count": count, "reserved": self._reserved(key, moment)}

    # -- lifecycle ----------------------------------------------------------------------------

    # -- approvals ----------------------------------------------------------------------------

    def get_approval(self, execution_id: str) -> ApprovalRecord | None:
        """Return the approval request of this execution, or None."""
        with self._lock:
            record = self._approvals.get(execution_id)
            return copy.deepcopy(record) if record is not None else None

    def list_approvals(
        self,
        *,
        status: ApprovalStatus | str | None = None,
        function_name: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[ApprovalRecord]:
        """Return approval requests, oldest first, optionally of one status and/or function."""
        wanted = ApprovalStatus(status) if status is not None else None
        with self._lock:
            found = [
                r
                for r in self._approvals.values()
                if (wanted is None or r.status is wanted)
                and (function_name is None or r.function_name == function_name)
            ]
            found.sort(key=lambda r: (r.requested_at or utcnow(), r.execution_id))
            page = found[offset : None if limit is None else offset + limit]
            return [copy.deepcopy(r) for r in page]

    def clear(self) -> None:
        """Delete every record of every kind."""
        with self._lock:
            self._check_not_in_transaction()
            self._reset()


# -- checks shared by the store's own writes and its transactions ------------------------------
# A refused write raises before anything changes; in a transaction it also marks it failed, as
# the database does on SQL.


def _accept_execution(
    stored: ExecutionRecord, find: Callable[[str], ExecutionRecord | None]
) -> None:
    """Check an execution's parent exists; keep the `created_at` of an execution it replaces."""
    parent = stored.parent_id
    if parent is not None and parent != stored.id and find(parent) is None:
        raise RecordNotFound(
            f"cannot save execution {stored.id}: its parent execution {parent} does not exist"
        )
    existing = find(stored.id)
    if existing is not None:
        stored.created_at = existing.created_at


def _accept_snapshot(
    stored: SnapshotRecord, has_execution: Callable[[str], bool], taken: Callable[[str], bool]
) -> None:
    """Check a snapshot's execution exists and its id is new."""
    if not has_execution(stored.execution_id):
        raise RecordNotFound(
            f"cannot save snapshot {stored.id}: execution {stored.execution_id} does not exist "
            "(save the execution first, or it was deleted)"
        )
    if taken(stored.id):
        raise StorageError(f"cannot save snapshot {stored.id}: that id is already stored")


def _accept_event(
    stored: EventRecord, has_execution: Callable[[str], bool], taken: Callable[[str], bool]
) -> None:
    """Check an event's execution (if any) exists and its id is new."""
    if stored.execution_id is not None and not has_execution(stored.execution_id):
        raise RecordNotFound(
            f"cannot save event {stored.id}: execution {stored.execution_id} does not exist "
            "(save the execution first, or it was deleted)"
        )
    if taken(stored.id):
        raise StorageError(f"cannot save event {stored.id}: that id is already stored")


def _adopt_records(
    execution: ExecutionRecord | None,
    snapshots: Sequence[SnapshotRecord],
    events: Sequence[EventRecord],
    find: Callable[[str], ExecutionRecord | None],
    snapshot_taken: Callable[[str], bool],
    event_taken: Callable[[str], bool],
) -> None:
    """Check a batch handed to `save_records` before any of it is stored, and give it the
    times it lacks. `find` and the `*_taken` tests see what is stored (or in the transaction)."""
    stamp_in_order(snapshots, "captured_at")
    stamp_in_order(events, "timestamp")
    if execution is not None:
        now = utcnow()
        execution.created_at = execution.created_at or now
        execution.updated_at = now
        _accept_execution(execution, find)
    own = execution.id if execution is not None else None

    def has_execution(execution_id: str) -> bool:
        return execution_id == own or find(execution_id) is not None

    snapshot_ids: set[str] = set()
    taken = lambda i: i in snapshot_ids or snapshot_taken(i)  # noqa: E731
    for snapshot in snapshots:
        _accept_snapshot(snapshot, has_execution, taken)
        snapshot_ids.add(snapshot.id)
    event_ids: set[str] = set()
    taken = lambda i: i in event_ids or event_taken(i)  # noqa: E731
    for event in events:
        _accept_event(event, has_execution, taken)
        event_ids.add(event.id)


def _seal_next(prepared: AuditRecord, stamped: bool, head: tuple[int, str]) -> AuditRecord:
    """Seal `prepared` itself after the chain's `head` (seq, hash); unstamped ones get the time."""
    if not stamped:
        prepared.timestamp = utcnow()  # taken under the lock: time follows the chain
    seal_in_place(prepared, head[0] + 1, head[1])
    return prepared


class _Day:
    """A budget key's usage on one UTC day: the records and their sum."""

    __slots__ = ("amount", "records")

    def __init__(self) -> None:
        self.amount = 0
        self.records: list[UsageRecord] = []


class _ThreadState(threading.local):
    """Per thread: whether it is inside one of this store's transactions."""

    in_transaction = False


def _nested_write_error() -> StorageError:
    return StorageError(
        "this thread is inside store.transaction() (or a rate_limit_window/budget_window) and "
        "called one of the store's write methods, which would not be part of the transaction. "
        "Write through the transaction object instead (tx.save_execution, ...), or after the "
        "block"
    )


class _MemoryTransaction(LockedTransaction):
    """A unit of work over `InMemoryStorage`, under the store's lock for its whole block.

    Writes are checked when they are made (so errors surface at the call, as on SQL) and buffered;
    `apply` applies them, in order, when the block succeeded.
    """

    def __init__(self, store: InMemoryStorage, plan: TransactionPlan) -> None:
        super().__init__(plan)
        self._store = store
        self._ops: list[Callable[[], None]] = []
        self._clocks: dict[str, float] = {}
        self._recorded: dict[str, int] = {}
        self._holds: list[ReservationRecord] = []
        self._executions: dict[str, ExecutionRecord] = {}
        self._snapshot_ids: set[str] = set()
        self._event_ids: set[str] = set()
        self._audit_head: tuple[int, str] | None = None

    # -- rate limits --------------------------------------------------------------------------

    def _clock(self, key: str) -> float:
        clock = self._clocks.get(key)
        if clock is None:
            clock = self._clocks[key] = self._store._key_clock(key, self.now)
        return clock

    def count(self, key: str) -> int:
        """Return how many calls are recorded for `key` in its window, including this block's."""
        window = self.window_of(key)
        cutoff = self._clock(key) - window
        return self._store._count_calls(key, cutoff) + self._recorded.get(key, 0)

    def record(self, key: str) -> None:
        """Record one call for `key` at `now` (or at the key's clock, if that is later)."""
        self.window_of(key)
        self._clock(key)
        self._recorded[key] = self._recorded.get(key, 0) + 1

    # -- budgets ------------------------------------------------------------------------------

    def facts(self, key: str, period_start: datetime, period_end: datetime) -> BudgetFacts:
        """Return `{"spent", "reserved"}` of `key`: usage in the period, live holds at `now`."""
        self.check_budget_key(key)
        start, end = check_period(period_start, period_end)
        spent, _ = self._store._spent(key, start, end)
        reserved = self._store._reserved(key, self.now_utc)
        reserved += sum(h.amount for h in self._holds if h.key == key)
        return {"spent": spent, "reserved": reserved}

    def reserve(
        self,
        key: str,
        amount: int,
        ttl_seconds: float,
        execution_id: str | None = None,
        *,
        currency: str = "USD",
    ) -> str:
        """Hold `amount` on `key` until `now + ttl_seconds`; return the hold's id."""
        self.check_budget_key(key)
        hold = new_hold(key, amount, ttl_seconds, execution_id, currency, self.now_utc)
        self._holds.append(hold)
        return hold.id

    # -- records ------------------------------------------------------------------------------

    def _find_execution(self, execution_id: str) -> ExecutionRecord | None:
        found = self._executions.get(execution_id)
        return found if found is not None else self._store._executions.get(execution_id)

    def _has_execution(self, execution_id: str) -> bool:
        return self._find_execution(execution_id) is not None

    def save_execution(self, record: ExecutionRecord) -> ExecutionRecord:
        """Insert or replace an execution; an existing execution keeps its `created_at`."""
        return _copy(self._save_execution(record))

    def save_snapshot(self, record: SnapshotRecord) -> SnapshotRecord:
        """Store a state snapshot of an execution saved before or in this transaction."""
        return _copy(self._save_snapshot(record))

    def save_event(self, record: EventRecord) -> EventRecord:
        """Persist an event; its `execution_id`, when set, must name an existing execution."""
        return _copy(self._save_event(record))

    def append_audit_record(self, record: AuditRecord) -> AuditRecord:
        """Append a record to the hash chain (applied when the block exits)."""
        return _copy(self._append_audit(record))

    def save_records(
        self,
        *,
        execution: ExecutionRecord | None = None,
        snapshots: Sequence[SnapshotRecord] = (),
        events: Sequence[EventRecord] = (),
        audit: AuditRecord | None = None,
    ) -> AuditRecord | None:
        """The batch of `Transaction.save_records`: the records handed over are kept as they are
        (not copied, their JSON not checked again), the audit record sealed in place."""
        self.check_open()
        store = self._store
        try:
            _adopt_records(
                execution,
                snapshots,
                events,
                self._find_execution,
                lambda i: i in self._snapshot_ids or i in store._snapshots,
                lambda i: i in self._event_ids or i in store._events,
            )
        except StorageError as error:
            raise self.fail(error) from None
        if execution is not None:
            self._executions[execution.id] = execution
        self._snapshot_ids.update(s.id for s in snapshots)
        self._event_ids.update(e.id for e in events)
        if audit is not None:
            head = self._audit_head or store._audit_head()
            _seal_next(audit, audit.timestamp is not None, head)
            self._audit_head = (cast(int, audit.seq), cast(str, audit.hash))
        self._ops.append(lambda: store._put_records(execution, snapshots, events, audit))
        return audit

    # The stored records themselves (checked, not yet applied): callers get copies.

    def _save_execution(self, record: ExecutionRecord) -> ExecutionRecord:
        self.check_open()
        stored = prepare_execution(record, utcnow())
        try:
            _accept_execution(stored, self._find_execution)
        except StorageError as error:
            raise self.fail(error) from None
        self._executions[stored.id] = stored
        self._ops.append(lambda: self._store._put_execution(stored))
        return stored

    def _save_snapshot(self, record: SnapshotRecord, now: datetime | None = None) -> SnapshotRecord:
        self.check_open()
        stored = prepare_snapshot(record, now or utcnow())
        taken = self._store._snapshots
        try:
            _accept_snapshot(
                stored, self._has_execution, lambda i: i in self._snapshot_ids or i in taken
            )
        except StorageError as error:
            raise self.fail(error) from None
        self._snapshot_ids.add(stored.id)
        self._ops.append(lambda: self._store._put_snapshot(stored))
        return stored

    def _save_event(self, record: EventRecord, now: datetime | None = None) -> EventRecord:
        self.check_open()
        stored = prepare_event(record, now or utcnow())
        taken = self._store._events
        try:
            _accept_event(stored, self._has_execution, lambda i: i in self._event_ids or i in taken)
        except StorageError as error:
            raise self.fail(error) from None
        self._event_ids.add(stored.id)
        self._ops.append(lambda: self._store._put_event(stored))
        return stored

    def _append_audit(self, record: AuditRecord) -> AuditRecord:
        self.check_open()
        stamped = record.timestamp is not None
        prepared = prepare_audit(record, utcnow())
        sealed = _seal_next(prepared, stamped, self._audit_head or self._store._audit_head())
        self._audit_head = (cast(int, sealed.seq), cast(str, sealed.hash))
        self._ops.append(lambda: self._store._put_audit(sealed))
        return sealed

    # -- approvals ----------------------------------------------------------------------------

    def load_approval(self, execution_id: str) -> ApprovalRecord | None:
        """Read a request (the store's lock is held for the whole block)."""
        self.check_open()
        record = self._store._approvals.get(execution_id)
        return copy.deepcopy(record) if record is not None else None

    def add_approval(self, record: ApprovalRecord) -> ApprovalRecord:
        """Insert a new request; its execution must be saved before or in this transaction."""
        self.check_open()
        if not self._has_execution(record.execution_id):
            raise self.fail(
                RecordNotFound(
                    f"cannot save the approval request of execution {record.execution_id}: "
                    "the execution does not exist"
                )
            )
        if record.execution_id in self._store._approvals:
            raise self.fail(
                StorageError(f"execution {record.execution_id} already has an approval request")
            )
        stored = copy.deepcopy(record)
        if stored.requested_at is None:
            stored.requested_at = utcnow()
        self._ops.append(lambda: self._store._approvals.__setitem__(stored.execution_id, stored))
        return copy.deepcopy(stored)

    def update_approval(self, record: ApprovalRecord) -> ApprovalRecord:
        """Write back a request read with `load_approval`."""
        self.check_open()
        stored = copy.deepcopy(record)
        self._ops.append(lambda: self._store._approvals.__setitem__(stored.execution_id, stored))
        return record

    def move_execution(
        self, execution_id: str, from_status: ExecutionStatus, to_status: ExecutionStatus
    ) -> bool:
        """Compare-and-set an execution's status (applied with the block)."""
        self.check_open()
        record = self._find_execution(execution_id)
        if record is None or record.status != ExecutionStatus(from_status):
            return False
        moved = dataclasses.replace(record, status=ExecutionStatus(to_status), updated_at=utcnow())
        self._executions[execution_id] = moved
        self._ops.append(lambda: self._store._executions.__setitem__(execution_id, moved))
        return True

    # -- commit -------------------------------------------------------------------------------

    def apply(self) -> None:
        """Apply the transaction (called by the store when the block succeeded)."""
        store = self._store
        for op in self._ops:
            op()
        for hold in self._holds:
            store._put_hold(hold)
        for key, clock in self._clocks.items():
            window = self.plan.windows[key]
            store._commit_key(key, clock, window, self._recorded.get(key, 0))
