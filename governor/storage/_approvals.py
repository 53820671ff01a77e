"""How an approval request moves: one vote, a lapse of time, a lease. Shared by every backend.

The store calls these inside ONE write transaction that read the request locked (SQLite: the
file's write lock; PostgreSQL: `SELECT ... FOR UPDATE`), so two approvers answering at once are
counted one after the other, and the execution's status moves with the request:
`awaiting_approval` -> `approved` (resume may claim it) or -> `rejected`.

Rules:
- only a pending request takes votes; one whose `expires_at` has passed is expired first;
- the voter must be named by the current stage (a stage naming nobody accepts any approver the
  integration authenticated) and may answer a stage once;
- any rejection rejects the request; `quorum` approvals close a stage, and the last stage closes
  the request as approved; a new stage starts its own clock;
- `require_reason`: a vote without a reason is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from governor.errors import (
    ApprovalClosed,
    ApprovalError,
    ApprovalExpired,
    ApprovalReasonRequired,
    ApproverNotAllowed,
)
from governor.storage.records import (
    ApprovalRecord,
    ApprovalStageRecord,
    ApprovalStatus,
    ApprovalVote,
    AuditRecord,
    EventRecord,
    ExecutionStatus,
)

#: What an execution becomes when its request closes.
EXECUTION_STATUS = {
    ApprovalStatus.APPROVED: ExecutionStatus.APPROVED,
    ApprovalStatus.REJECTED: ExecutionStatus.REJECTED,
    ApprovalStatus.EXPIRED: ExecutionStatus.REJECTED,
    ApprovalStatus.CANCELLED: ExecutionStatus.CANCELLED,
}


@dataclass
class Change:
    """What one step did to a request: events to store, and the error to raise after commit."""

    record: ApprovalRecord
    changed: bool = False
    events: list[EventRecord] = field(default_factory=list)
    error: ApprovalError | None = None

    @property
    def closed(self) -> bool:
        return self.changed and self.record.status is not ApprovalStatus.PENDING


def lapse(record: ApprovalRecord, now: datetime) -> Change:
    """Expire a pending request whose `expires_at` has passed."""
    change = Change(record)
    if record.status is ApprovalStatus.PENDING and now >= record.expires_at:
        record.status = ApprovalStatus.EXPIRED
        record.decided_at = now
        record.reason = "no decision before the request expired"
        record.arguments = None  # never to run
        change.changed = True
        change.events.append(
            _event(record, "approval.timeout", now, {"stage": record.current_stage.name})
        )
    return change


def vote(
    record: ApprovalRecord,
    *,
    approver: str,
    approved: bool,
    reason: str | None,
    now: datetime,
) -> Change:
    """Record one approver's answer (see the module rules); `change.error` says why not."""
    change = lapse(record, now)
    if record.status is ApprovalStatus.EXPIRED:
        change.error = ApprovalExpired(
            f"the approval request of execution {record.execution_id} expired at "
            f"{record.expires_at.isoformat()}; it can no longer be approved or rejected"
        )
        return change
    if record.status is not ApprovalStatus.PENDING:
        by = f" by {record.decided_by}" if record.decided_by else ""
        change.error = ApprovalClosed(
            f"the approval request of execution {record.execution_id} is already "
            f"{record.status.value}{by}; nothing changed"
        )
        return change
    stage = record.current_stage
    if stage.approvers and approver not in stage.approvers:
        change.error = ApproverNotAllowed(
            f"{approver!r} may not answer stage {stage.name!r} of execution "
            f"{record.execution_id}: its approvers are {', '.join(stage.approvers)}"
        )
        return change
    if any(v.stage == record.stage and v.approver == approver for v in record.votes):
        change.error = ApproverNotAllowed(
            f"{approver!r} already answered stage {stage.name!r} of execution "
            f"{record.execution_id}; each approver answers a stage once"
        )
        return change
    reason = reason.strip() if isinstance(reason, str) and reason.strip() else None
    if record.require_reason and reason is None:
        change.error = ApprovalReasonRequired(
            f"the policy of execution {record.execution_id} requires a reason with every "
            "approval or rejection; give one"
        )
        return change
    record.votes.append(ApprovalVote(record.stage, approver, approved, reason, now))
    change.changed = True
    data = {"approver": approver, "reason": reason, "stage": stage.name}
    if not approved:
        _close(record, ApprovalStatus.REJECTED, approver, reason, now)
        change.events.append(_event(record, "approval.rejected", now, data))
        return change
    yes = sum(1 for v in record.votes if v.stage == record.stage and v.approved)
    if yes < stage.quorum:
        return change  # the stage waits for more approvals
    if record.stage + 1 < len(record.stages):
        record.stage += 1
        nxt = record.current_stage
        record.stage_deadline = now + timedelta(seconds=nxt.timeout_seconds)
        if record.on_timeout == "reject":
            record.expires_at = record.stage_deadline
        change.events.append(
            _event(record, "approval.requested", now, {**data, "next_stage": nxt.name})
        )
        return change
    _close(record, ApprovalStatus.APPROVED, approver, reason, now)
    change.events.append(_event(record, "approval.granted", now, data))
    return change


def close(
    record: ApprovalRecord,
    *,
    status: ApprovalStatus,
    by: str,
    reason: str | None,
    now: datetime,
) -> Change:
    """Close a pending request without a vote: `cancelled` (the caller or an operator withdrew
    it) or `rejected` by the application itself (a handler that refused without naming an
    approver). Never `approved`: only a vote approves."""
    if status not in (ApprovalStatus.CANCELLED, ApprovalStatus.REJECTED):
        raise ApprovalError(f"a request is closed as cancelled or rejected, not {status.value}")
    change = lapse(record, now)
    if record.status is ApprovalStatus.PENDING:
        _close(record, status, by, reason, now)
        change.changed = True
        kind = "approval.rejected" if status is ApprovalStatus.REJECTED else "execution.cancelled"
        change.events.append(_event(record, kind, now, {"by": by, "reason": reason}))
    return change


def audit_entry(change: Change, now: datetime) -> AuditRecord:
    """The audit trail's entry for one step of a request: who answered (or what closed it),
    which way, and why. Every vote, expiry and cancellation is in the hash chain."""
    record = change.record
    vote_cast = record.votes[-1] if record.votes and record.votes[-1].decided_at == now else None
    actor: str | None
    if vote_cast is not None:
        action = "approval.approve" if vote_cast.approved else "approval.reject"
        actor, reason, stage = vote_cast.approver, vote_cast.reason, vote_cast.stage
    else:
        action = f"approval.{record.status.value}"
        actor, reason, stage = record.decided_by, record.reason, record.stage
    return AuditRecord(
        action=action,
        decision=record.status.value,
        execution_id=record.execution_id,
        actor=actor,
        reasons=list(record.reasons),
        timestamp=now,
        record={
            "function_name": record.function_name,
            "stage": record.stages[min(stage, len(record.stages) - 1)].name,
            "reason": reason,
            "status": record.status.value,
        },
    )


def _close(
    record: ApprovalRecord,
    status: ApprovalStatus,
    by: str | None,
    reason: str | None,
    now: datetime,
) -> None:
    record.status = status
    record.decided_at = now
    record.decided_by = by
    record.reason = reason
    if status is not ApprovalStatus.APPROVED:
        record.arguments = None  # never run: the unmasked arguments have no further use


def _event(record: ApprovalRecord, kind: str, now: datetime, data: dict[str, Any]) -> EventRecord:
    return EventRecord(
        event_type=kind,
        execution_id=record.execution_id,
        timestamp=now,
        data={"function_name": record.function_name, **data},
    )


# -- the record as stored ------------------------------------------------------------------------


def stages_to_json(stages: list[ApprovalStageRecord]) -> list[dict[str, Any]]:
    return [
        {
            "name": s.name,
            "approvers": list(s.approvers),
            "quorum": s.quorum,
            "timeout_seconds": s.timeout_seconds,
        }
        for s in stages
    ]


def stages_from_json(value: Any) -> list[ApprovalStageRecord]:
    return [
        ApprovalStageRecord(
            name=str(s["name"]),
            approvers=[str(a) for a in s.get("approvers", [])],
            quorum=int(s.get("quorum", 1)),
            timeout_seconds=int(s.get("timeout_seconds", 3600)),
        )
        for s in value or []
    ]


def votes_to_json(votes: list[ApprovalVote]) -> list[dict[str, Any]]:
    return [
        {
            "stage": v.stage,
            "approver": v.approver,
            "approved": v.approved,
            "reason": v.reason,
            "decided_at": v.decided_at.isoformat(),
        }
        for v in votes
    ]


def votes_from_json(value: Any) -> list[ApprovalVote]:
    return [
        ApprovalVote(
            stage=int(v["stage"]),
            approver=str(v["approver"]),
            approved=bool(v["approved"]),
            reason=v.get("reason"),
            decided_at=datetime.fromisoformat(v["decided_at"]),
        )
        for v in value or []
    ]


def check_new(record: ApprovalRecord) -> None:
    """Refuse a request no one could ever approve."""
    if not record.stages:
        raise ApprovalError(f"approval of execution {record.execution_id}: no stages")
    for stage in record.stages:
        if stage.quorum < 1 or (stage.approvers and stage.quorum > len(stage.approvers)):
            raise ApprovalError(
                f"approval of execution {record.execution_id}: stage {stage.name!r} needs "
                f"{stage.quorum} approvals from {len(stage.approvers)} approver(s)"
            )
    if record.on_timeout not in ("reject", "pending"):
        raise ApprovalError(f"on_timeout must be 'reject' or 'pending', not {record.on_timeout!r}")
