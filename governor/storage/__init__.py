"""The state layer of the `@govern` runtime and the precheck server: executions, snapshots,
events, audit, approval requests, rate limits, and the budget ledger (usage records and holds).

`SQLStorage` (SQLite file by default, PostgreSQL by URL, schema by Alembic) and `InMemoryStorage`
implement one contract, `StorageBackend`; `get_default_storage()` is the store a process shares.
One governed call is one `store.transaction(...)`: its `Transaction` counts and records rate-limit
calls, reads budget facts and places holds, and saves the execution, snapshots, events and audit
record, all committed together.
"""

from governor.storage._budget import month_period
from governor.storage.base import BudgetWindow, RateLimitWindow, StorageBackend, Transaction
from governor.storage.default import get_default_storage, set_default_storage
from governor.storage.memory import InMemoryStorage
from governor.storage.records import (
    ApprovalRecord,
    ApprovalStageRecord,
    ApprovalStatus,
    ApprovalVote,
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
)
from governor.storage.sql import SQLStorage

__all__ = [
    "ApprovalRecord",
    "ApprovalStageRecord",
    "ApprovalStatus",
    "ApprovalVote",
    "AuditRecord",
    "BudgetFacts",
    "BudgetWindow",
    "EventRecord",
    "ExecutionRecord",
    "ExecutionStatus",
    "InMemoryStorage",
    "RateLimitWindow",
    "ReservationRecord",
    "ReservationStatus",
    "SQLStorage",
    "SnapshotRecord",
    "StorageBackend",
    "Transaction",
    "UsageRecord",
    "UsageTotals",
    "get_default_storage",
    "month_period",
    "set_default_storage",
]
