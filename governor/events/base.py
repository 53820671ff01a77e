"""`EventType` (governor 0.2.0's values, kept verbatim) and `Event`, the record handlers receive."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from governor.storage.records import EventRecord, new_id, utcnow

__all__ = ["Event", "EventType"]


class EventType(StrEnum):
    """What happened. Values are the strings stored in `EventRecord.event_type`."""

    EXECUTION_STARTED = "execution.started"
    EXECUTION_COMPLETED = "execution.completed"
    EXECUTION_FAILED = "execution.failed"
    EXECUTION_CANCELLED = "execution.cancelled"

    STATE_CAPTURED = "state.captured"
    STATE_RESTORED = "state.restored"
    CHECKPOINT_REACHED = "checkpoint.reached"

    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_GRANTED = "approval.granted"
    APPROVAL_REJECTED = "approval.rejected"
    APPROVAL_TIMEOUT = "approval.timeout"

    POLICY_EVALUATED = "policy.evaluated"
    POLICY_PASSED = "policy.passed"
    POLICY_FAILED = "policy.failed"
    POLICY_VIOLATED = "policy.violated"

    PRE_ACTION_STARTED = "pre_action.started"
    PRE_ACTION_COMPLETED = "pre_action.completed"
    PRE_ACTION_FAILED = "pre_action.failed"
    POST_ACTION_STARTED = "post_action.started"
    POST_ACTION_COMPLETED = "post_action.completed"
    POST_ACTION_FAILED = "post_action.failed"

    CUSTOM = "custom"


_VERSION: list[str] = []


def _version() -> str:
    if not _VERSION:
        from governor import __version__

        _VERSION.append(__version__)
    return _VERSION[0]


@dataclass
class Event:
    """One event. `data` is already JSON-safe and masked when the executor emits it.

    Stored as an `EventRecord` whose `data` is the envelope `{"function_name", "data"}` plus
    `metadata` and `tags` when set (`to_record` / `from_record`).
    """

    event_type: EventType | str
    execution_id: str | None = None
    function_name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    event_id: str = field(default_factory=new_id)
    timestamp: datetime = field(default_factory=utcnow)
    source: str = "governor"
    source_version: str = field(default_factory=_version)

    @classmethod
    def create(
        cls,
        event_type: EventType | str,
        execution_id: str | None = None,
        function_name: str | None = None,
        data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Event:
        """Build an event (governor 0.2.0's constructor)."""
        return cls(
            event_type=event_type,
            execution_id=execution_id,
            function_name=function_name,
            data=dict(data or {}),
            **kwargs,
        )

    @property
    def type_value(self) -> str:
        """The event type as its string value."""
        return self.event_type.value if isinstance(self.event_type, EventType) else self.event_type

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-safe dict (timestamp in ISO 8601)."""
        return {
            "event_id": self.event_id,
            "event_type": self.type_value,
            "timestamp": self.timestamp.isoformat(),
            "execution_id": self.execution_id,
            "function_name": self.function_name,
            "data": self.data,
            "metadata": self.metadata,
            "tags": list(self.tags),
            "source": self.source,
            "source_version": self.source_version,
        }

    def to_record(self) -> EventRecord:
        """The record the store keeps for this event (metadata and tags only when set)."""
        # a copy: handlers that add to `event.data` after the record is stored change nothing
        envelope: dict[str, Any] = {"function_name": self.function_name, "data": dict(self.data)}
        if self.metadata:
            envelope["metadata"] = self.metadata
        if self.tags:
            envelope["tags"] = list(self.tags)
        if self.source != "governor":
            envelope["source"] = self.source
        return EventRecord(
            event_type=self.type_value,
            execution_id=self.execution_id,
            id=self.event_id,
            timestamp=self.timestamp,
            data=envelope,
        )

    @classmethod
    def from_record(cls, record: EventRecord) -> Event:
        """Rebuild an event from a stored record (records written by others keep their data)."""
        envelope = record.data if isinstance(record.data, dict) else {}
        wrapped = "data" in envelope and "function_name" in envelope
        try:
            event_type: EventType | str = EventType(record.event_type)
        except ValueError:
            event_type = record.event_type
        if not wrapped:
            return cls(
                event_type=event_type,
                execution_id=record.execution_id,
                data=dict(envelope),
                event_id=record.id,
                timestamp=record.timestamp or utcnow(),
                source_version="",
            )
        return cls(
            event_type=event_type,
            execution_id=record.execution_id,
            function_name=envelope.get("function_name"),
            data=envelope.get("data", {}),
            metadata=envelope.get("metadata", {}),
            tags=list(envelope.get("tags", [])),
            event_id=record.id,
            timestamp=record.timestamp or utcnow(),
            source=envelope.get("source", "governor"),
            source_version="",
        )
