"""Normalising records before they are stored, identically for every backend.

Each `prepare_*` returns a new record: JSON fields deep-copied and checked (`NotJSONSafe` names the
field), datetimes as aware UTC, statuses as `ExecutionStatus`, durations as float. The backends
store exactly what these return, so SQL and memory hand back equal records.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from governor.errors import StorageError
from governor.storage._json import ensure_json
from governor.storage.records import (
    UPDATABLE_EXECUTION_FIELDS,
    AuditRecord,
    EventRecord,
    ExecutionRecord,
    SnapshotRecord,
    as_status,
    as_utc,
    utcnow,
)


def _text(value: Any, field: str, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise StorageError(f"{field} must be a string, got {type(value).__name__} {value!r}")
    return str(value)


def _required_text(value: Any, field: str) -> str:
    text = _text(value, field, optional=False)
    assert text is not None
    if not text:
        raise StorageError(f"{field} must not be empty")
    return text


def _enum_value(value: Any) -> Any:
    """Return an enum member's value (`EventType.X` -> "execution.started"), anything else as is."""
    return value.value if isinstance(value, Enum) else value


def _when(value: Any, field: str) -> datetime | None:
    if value is not None and not isinstance(value, datetime):
        raise StorageError(f"{field} must be a datetime, got {type(value).__name__} {value!r}")
    return as_utc(value)


def _duration(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StorageError(f"{field} must be a finite number of milliseconds, got {value!r}")
    return float(value)


def _json_object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise StorageError(f"{field} must be a JSON object (dict), got {type(value).__name__}")
    copied: dict[str, Any] = ensure_json(dict(value), field)
    return copied


_EXECUTION_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "function_name": _required_text,
    "function_module": lambda v, f: _text(v, f, optional=False),
    "function_qualname": lambda v, f: _text(v, f, optional=False),
    "status": lambda v, f: as_status(v),
    "inputs": ensure_json,
    "outputs": ensure_json,
    "error": _text,
    "error_type": _text,
    "started_at": _when,
    "completed_at": _when,
    "duration_ms": _duration,
    "metadata": _json_object,
    "decision": _text,
    "policy_revision": _text,
    "parent_id": _text,
}
assert set(_EXECUTION_FIELDS) == UPDATABLE_EXECUTION_FIELDS


def prepare_execution(record: ExecutionRecord, now: datetime) -> ExecutionRecord:
    """Return a checked copy of `record` with `created_at` (if unset) and `updated_at` = `now`."""
    if not isinstance(record, ExecutionRecord):
        raise StorageError(f"expected an ExecutionRecord, got {type(record).__name__}")
    values = {
        name: check(getattr(record, name), f"execution.{name}")
        for name, check in _EXECUTION_FIELDS.items()
    }
    return ExecutionRecord(
        id=_required_text(record.id, "execution.id"),
        created_at=_when(record.created_at, "execution.created_at") or now,
        updated_at=now,
        **values,
    )


def prepare_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check the keyword arguments of `update_execution`; unknown fields are an error."""
    unknown = sorted(set(changes) - UPDATABLE_EXECUTION_FIELDS)
    if unknown:
        allowed = ", ".join(sorted(UPDATABLE_EXECUTION_FIELDS))
        raise StorageError(
            f"update_execution got unknown field(s) {', '.join(unknown)}; it can change: {allowed}"
        )
    return {
        name: _EXECUTION_FIELDS[name](value, f"execution.{name}") for name, value in changes.items()
    }


def prepare_snapshot(record: SnapshotRecord, now: datetime) -> SnapshotRecord:
    """Return a checked copy of `record`, `captured_at` defaulting to `now`."""
    if not isinstance(record, SnapshotRecord):
        raise StorageError(f"expected a SnapshotRecord, got {type(record).__name__}")
    return SnapshotRecord(
        id=_required_text(record.id, "snapshot.id"),
        execution_id=_required_text(record.execution_id, "snapshot.execution_id"),
        checkpoint=_required_text(record.checkpoint, "snapshot.checkpoint"),
        state=ensure_json(record.state, "snapshot.state"),
        captured_at=_when(record.captured_at, "snapshot.captured_at") or now,
    )


def prepare_event(record: EventRecord, now: datetime) -> EventRecord:
    """Return a checked copy of `record`, `timestamp` defaulting to `now`."""
    if not isinstance(record, EventRecord):
        raise StorageError(f"expected an EventRecord, got {type(record).__name__}")
    return EventRecord(
        id=_required_text(record.id, "event.id"),
        event_type=_required_text(_enum_value(record.event_type), "event.event_type"),
        execution_id=_text(record.execution_id, "event.execution_id"),
        data=ensure_json(record.data, "event.data"),
        timestamp=_when(record.timestamp, "event.timestamp") or now,
    )


def prepare_audit(record: AuditRecord, now: datetime) -> AuditRecord:
    """Return a checked, unsealed copy of `record`, `timestamp` defaulting to `now`."""
    if not isinstance(record, AuditRecord):
        raise StorageError(f"expected an AuditRecord, got {type(record).__name__}")
    reasons = ensure_json(record.reasons, "audit_record.reasons")
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise StorageError(f"audit_record.reasons must be a list of strings, got {reasons!r}")
    return AuditRecord(
        id=_required_text(record.id, "audit_record.id"),
        action=_required_text(record.action, "audit_record.action"),
        decision=_required_text(record.decision, "audit_record.decision"),
        execution_id=_text(record.execution_id, "audit_record.execution_id"),
        actor=_text(record.actor, "audit_record.actor"),
        reasons=reasons,
        policy_revision=_text(record.policy_revision, "audit_record.policy_revision"),
        duration_ms=_duration(record.duration_ms, "audit_record.duration_ms"),
        record=_json_object(record.record, "audit_record.record"),
        timestamp=_when(record.timestamp, "audit_record.timestamp") or now,
    )


def stamp_in_order(records: Sequence[Any], field: str) -> None:
    """Give the records without a time of their own (`field` None) the time now, each a
    microsecond after the previous at least, so that they list in the order they were written
    (as when each is written by its own statement)."""
    last: datetime | None = None
    for record in records:
        if getattr(record, field) is not None:
            continue
        moment = utcnow()
        if last is not None and moment <= last:
            moment = last + timedelta(microseconds=1)
        setattr(record, field, moment)
        last = moment
