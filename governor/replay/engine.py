"""`ReplayEngine`: inspect stored executions and run them again from a snapshot.

Snapshots are written by `@govern(capture_state=True)` at the checkpoints `pre_execution` and
`post_execution` (and `awaiting_approval` for a call waiting for a person). Each holds the call's
arguments in the restorable encoding of `governor.serialization`, so a `Decimal` comes back as a
`Decimal`.

`continue_from_checkpoint(execution_id, checkpoint, func)` calls `func(*args, **kwargs)` with the
stored arguments: passing the governed function makes a **new governed call** (new execution,
decided again by the policies: a replay is never a way around them); passing the undecorated
function (`governed.__original__`) runs it directly. Arguments that were masked as sensitive were
never stored, so such a call cannot be replayed from the store (`ReplayError` says which).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from governor.errors import GovernanceError
from governor.events.base import Event, EventType
from governor.serialization import MASK, NotRestorable, decode
from governor.storage import InMemoryStorage, StorageBackend, get_default_storage
from governor.storage.records import ExecutionRecord, ExecutionStatus, SnapshotRecord

__all__ = ["ReplayEngine", "ReplayError"]


class ReplayError(GovernanceError, ValueError):
    """An execution cannot be replayed: it or the checkpoint is not stored, or its arguments were
    masked or cannot be rebuilt. The message says which and what to do."""


class ReplayEngine:
    """Reads executions and snapshots from `storage` (default: the process's shared store)."""

    def __init__(self, storage: StorageBackend | None = None) -> None:
        self.storage = storage if storage is not None else get_default_storage()

    async def _io(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if isinstance(self.storage, InMemoryStorage):
            return fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- reading --------------------------------------------------------------------------------

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        """The stored execution, or None."""
        result: ExecutionRecord | None = await self._io(self.storage.get_execution, execution_id)
        return result

    async def get_snapshots(self, execution_id: str) -> list[SnapshotRecord]:
        """The execution's snapshots, oldest first."""
        result: list[SnapshotRecord] = await self._io(self.storage.list_snapshots, execution_id)
        return result

    async def get_snapshot_at_checkpoint(
        self, execution_id: str, checkpoint: str
    ) -> SnapshotRecord | None:
        """The latest snapshot taken at `checkpoint`, or None."""
        found = [s for s in await self.get_snapshots(execution_id) if s.checkpoint == checkpoint]
        return found[-1] if found else None

    async def get_last_snapshot(self, execution_id: str) -> SnapshotRecord | None:
        """The execution's newest snapshot, or None."""
        snapshots = await self.get_snapshots(execution_id)
        return snapshots[-1] if snapshots else None

    async def replay_for_debugging(
        self, execution_id: str, on_checkpoint: Callable[[SnapshotRecord], Any] | None = None
    ) -> dict[str, Any]:
        """What happened to an execution, checkpoint by checkpoint (nothing is run).

        Returns `{execution_id, function_name, status, decision, checkpoints, snapshot_count,
        snapshots: [{checkpoint, captured_at, has_state, state}], events: [{event_type,
        timestamp, data}]}`. `on_checkpoint(snapshot)` (sync or async) is called for each
        snapshot in order. Raises `ReplayError` for an unknown execution.
        """
        execution = await self._execution(execution_id)
        snapshots = await self.get_snapshots(execution_id)
        records = await self._io(self.storage.list_events, execution_id=execution_id, limit=None)
        for snapshot in snapshots:
            if on_checkpoint is not None:
                result = on_checkpoint(snapshot)
                if inspect.isawaitable(result):
                    await result
        return {
            "execution_id": execution.id,
            "function_name": execution.function_name,
            "status": execution.status.value,
            "decision": execution.decision,
            "checkpoints": list(execution.metadata.get("checkpoints", [])),
            "snapshot_count": len(snapshots),
            "snapshots": [
                {
                    "checkpoint": s.checkpoint,
                    "captured_at": s.captured_at.isoformat() if s.captured_at else None,
                    "has_state": bool(s.state),
                    "state": s.state,
                }
                for s in snapshots
            ],
            "events": [
                {
                    "event_type": r.event_type,
                    "timestamp": r.timestamp.isoformat() if r.timestamp else None,
                    "data": Event.from_record(r).data,
                }
                for r in records
            ],
        }

    # -- running again --------------------------------------------------------------------------

    async def continue_from_checkpoint(
        self, execution_id: str, checkpoint: str, func: Callable[..., Any]
    ) -> Any:
        """Call `func` with the arguments stored at `checkpoint` and return its result.

        Raises `ReplayError` when the execution or checkpoint is missing, or the arguments were
        masked or cannot be rebuilt. An event `state.restored` is stored on the original
        execution first.
        """
        await self._execution(execution_id)
        snapshot = await self.get_snapshot_at_checkpoint(execution_id, checkpoint)
        if snapshot is None:
            available = sorted({s.checkpoint for s in await self.get_snapshots(execution_id)})
            raise ReplayError(
                f"execution {execution_id} has no snapshot at checkpoint {checkpoint!r}; it has "
                f"{', '.join(available) or 'none'} (snapshots need @govern(capture_state=True))"
            )
        return await self._run(snapshot, func)

    async def continue_from_last(self, execution_id: str, func: Callable[..., Any]) -> Any:
        """`continue_from_checkpoint` from the newest snapshot that holds arguments."""
        await self._execution(execution_id)
        snapshots = [
            s
            for s in await self.get_snapshots(execution_id)
            if isinstance(s.state, dict) and "arguments" in s.state
        ]
        if not snapshots:
            raise ReplayError(
                f"execution {execution_id} has no snapshot with arguments "
                "(snapshots need @govern(capture_state=True))"
            )
        return await self._run(snapshots[-1], func)

    async def _run(self, snapshot: SnapshotRecord, func: Callable[..., Any]) -> Any:
        args, kwargs = self.arguments(snapshot)
        event = Event(
            event_type=EventType.STATE_RESTORED,
            execution_id=snapshot.execution_id,
            function_name=getattr(func, "__name__", None),
            data={"checkpoint": snapshot.checkpoint, "snapshot_id": snapshot.id},
        )
        await self._io(self.storage.save_event, event.to_record())
        result = func(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    @staticmethod
    def arguments(snapshot: SnapshotRecord) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The `(args, kwargs)` a snapshot stored, rebuilt; `ReplayError` when they cannot be."""
        state = snapshot.state if isinstance(snapshot.state, dict) else {}
        stored = state.get("arguments")
        if not isinstance(stored, dict):
            raise ReplayError(
                f"snapshot {snapshot.id} ({snapshot.checkpoint}) holds no arguments to replay"
            )
        positional = stored.get("args", [])
        keywords = stored.get("kwargs", {})
        masked = [f"args[{i}]" for i, v in enumerate(positional) if v == MASK]
        masked += [k for k, v in keywords.items() if v == MASK]
        if masked:
            raise ReplayError(
                f"execution {snapshot.execution_id} cannot be replayed from the store: the "
                f"sensitive argument(s) {', '.join(masked)} were masked and never stored; call "
                "the function again with them"
            )
        try:
            args = tuple(decode(v, path=f"args[{i}]") for i, v in enumerate(positional))
            kwargs = {k: decode(v, path=k) for k, v in keywords.items()}
        except NotRestorable as exc:
            raise ReplayError(f"execution {snapshot.execution_id}: {exc}") from None
        return args, kwargs

    # -- listing --------------------------------------------------------------------------------

    async def list_failed_executions(self, limit: int = 100) -> list[ExecutionRecord]:
        """Executions that failed (newest first)."""
        return await self._list(ExecutionStatus.FAILED, limit)

    async def list_awaiting_approval(self, limit: int = 100) -> list[ExecutionRecord]:
        """Executions waiting for a person (newest first)."""
        return await self._list(ExecutionStatus.AWAITING_APPROVAL, limit)

    async def list_rejected_executions(self, limit: int = 100) -> list[ExecutionRecord]:
        """Executions an approver rejected (newest first)."""
        return await self._list(ExecutionStatus.REJECTED, limit)

    async def _list(self, status: ExecutionStatus, limit: int) -> list[ExecutionRecord]:
        result: list[ExecutionRecord] = await self._io(
            self.storage.list_executions, status=status, limit=limit
        )
        return result

    async def _execution(self, execution_id: str) -> ExecutionRecord:
        execution = await self.get_execution(execution_id)
        if execution is None:
            raise ReplayError(f"no execution {execution_id} in {self.storage!r}")
        return execution
