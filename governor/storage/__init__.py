"""The state layer of the `@govern` runtime: executions, snapshots, events, audit, rate limits.

`SQLStorage` (SQLite file by default, PostgreSQL by URL, schema by Alembic) and `InMemoryStorage`
implement one contract, `StorageBackend`; `get_default_storage()` is the store a process shares.
"""

from governor.storage.base import RateLimitWindow, StorageBackend
from governor.storage.default import get_default_storage, set_default_storage
from governor.storage.memory import InMemoryStorage
from governor.storage.records import (
    AuditRecord,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    SnapshotRecord,
)
from governor.storage.sql import SQLStorage

__all__ = [
    "AuditRecord",
    "EventRecord",
    "ExecutionRecord",
    "ExecutionStatus",
    "InMemoryStorage",
    "RateLimitWindow",
    "SQLStorage",
    "SnapshotRecord",
    "StorageBackend",
    "get_default_storage",
    "set_default_storage",
]
