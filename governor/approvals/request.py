"""What an approval request is made of, and what people and handlers are shown.

`build_request` turns a `confirm` decision into the `ApprovalRecord` the executor commits with the
pending execution. The decision's approval block (Rego's answer: approvers, stages, the shortest
timeout, the largest quorum) says WHO; the `ApprovalPolicy` objects of the call add what the block
does not carry: each stage's own name, timeout and quorum, `on_timeout`, `require_reason` and
how long a request may stay pending (`expires_after_seconds`).

The request is bound to the action: `args_hash` is the SHA-256 of the function's full name and
the canonical JSON of its restorable arguments; a resume recomputes it and refuses any other
arguments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from governor.storage._json import canonical_json
from governor.storage.records import ApprovalRecord, ApprovalStageRecord, utcnow

#: How long a request whose caller stopped waiting (`on_timeout="pending"`) stays approvable.
DEFAULT_EXPIRES_AFTER_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class ApprovalNotice:
    """What a handler tells people: the action, who may decide, until when, and where.

    `inputs` are masked (fields named sensitive never leave the store); `approve_url` and
    `reject_url` are set when the approval manager knows the approval API's base URL.
    """

    execution_id: str
    function_name: str
    function_qualname: str
    approvers: tuple[str, ...]
    stage: str
    stage_index: int
    stage_count: int
    quorum: int
    inputs: Any
    reasons: tuple[str, ...]
    args_hash: str
    requested_at: datetime
    deadline: datetime
    expires_at: datetime
    approve_url: str | None = None
    reject_url: str | None = None
    subject: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The notice as plain JSON (webhook bodies, e-mail and Slack text)."""
        return {
            "execution_id": self.execution_id,
            "function_name": self.function_name,
            "function_qualname": self.function_qualname,
            "approvers": list(self.approvers),
            "stage": self.stage,
            "stage_index": self.stage_index,
            "stage_count": self.stage_count,
            "quorum": self.quorum,
            "inputs": self.inputs,
            "reasons": list(self.reasons),
            "args_hash": self.args_hash,
            "requested_at": self.requested_at.isoformat(),
            "deadline": self.deadline.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "approve_url": self.approve_url,
            "reject_url": self.reject_url,
            "subject": dict(self.subject),
        }

    @classmethod
    def of(cls, record: ApprovalRecord, base_url: str | None = None) -> ApprovalNotice:
        """The notice of a request's current stage."""
        stage = record.current_stage
        approve = reject = None
        if base_url:
            root = base_url.rstrip("/")
            approve = f"{root}/approvals/{record.execution_id}/approve"
            reject = f"{root}/approvals/{record.execution_id}/reject"
        return cls(
            execution_id=record.execution_id,
            function_name=record.function_name,
            function_qualname=record.function_qualname,
            approvers=tuple(stage.approvers),
            stage=stage.name,
            stage_index=record.stage,
            stage_count=len(record.stages),
            quorum=stage.quorum,
            inputs=record.inputs,
            reasons=tuple(record.reasons),
            args_hash=record.args_hash,
            requested_at=record.requested_at or utcnow(),
            deadline=record.stage_deadline,
            expires_at=record.expires_at,
            approve_url=approve,
            reject_url=reject,
            subject=dict(record.subject),
        )


@dataclass(frozen=True)
class ApprovalAnswer:
    """A handler's immediate answer: who decided, which way, and why."""

    approved: bool
    approver: str
    reason: str | None = None


def arguments_hash(function: str, arguments: Any) -> str:
    """SHA-256 binding an approval to one function and its (encoded) arguments."""
    text = canonical_json({"function": function, "arguments": arguments})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stage_settings(policies: Sequence[Any]) -> dict[tuple[str, ...], list[Any]]:
    """ApprovalStage objects of the policies, by their approver list (several may share one)."""
    out: dict[tuple[str, ...], list[Any]] = {}
    for policy in policies:
        for stage in getattr(policy, "stages", None) or ():
            out.setdefault(tuple(stage.approvers), []).append(stage)
    return out


def plan_stages(approval: Mapping[str, Any], policies: Sequence[Any]) -> list[ApprovalStageRecord]:
    """The stages of a request, from the decision's block and the policies' stage settings."""
    timeout = int(approval.get("timeout_seconds") or 3600)
    quorum = int(approval.get("quorum") or 1)
    lists = [list(s) for s in approval.get("stages") or []]
    if not lists:
        # nobody listed: any approver the integration authenticates may decide
        return [
            ApprovalStageRecord(name="approval", approvers=[], quorum=1, timeout_seconds=timeout)
        ]
    settings = _stage_settings(policies)
    stages: list[ApprovalStageRecord] = []
    for index, approvers in enumerate(lists):
        names = [str(a) for a in approvers]
        own = settings.get(tuple(names))
        if own:
            stage = own.pop(0)
            stages.append(
                ApprovalStageRecord(
                    name=stage.name,
                    approvers=names,
                    quorum=min(stage.quorum, len(names)),
                    timeout_seconds=int(stage.timeout_seconds or timeout),
                )
            )
        else:
            stages.append(
                ApprovalStageRecord(
                    name="approval" if len(lists) == 1 else f"stage {index + 1}",
                    approvers=names,
                    quorum=min(quorum, len(names)) if len(lists) == 1 else 1,
                    timeout_seconds=timeout,
                )
            )
    return stages


def build_request(
    *,
    execution_id: str,
    function_name: str,
    function_qualname: str,
    function_path: str,
    approval: Mapping[str, Any],
    policies: Sequence[Any],
    arguments: Any,
    inputs: Any,
    subject: Mapping[str, Any],
    reasons: Sequence[str],
    decision: Mapping[str, Any],
    now: datetime | None = None,
) -> ApprovalRecord:
    """The request to commit with a pending execution (`arguments`: `encode`d, unmasked)."""
    now = now or utcnow()
    approval_policies = [p for p in policies if getattr(p, "policy_type", None) == "approval"]
    stages = plan_stages(approval, approval_policies)
    modes = {getattr(p, "on_timeout", None) or "reject" for p in approval_policies}
    on_timeout = "pending" if modes == {"pending"} else "reject"
    expires_after = max(
        [
            int(getattr(p, "expires_after_seconds", None) or DEFAULT_EXPIRES_AFTER_SECONDS)
            for p in approval_policies
        ]
        or [DEFAULT_EXPIRES_AFTER_SECONDS]
    )
    deadline = now + timedelta(seconds=stages[0].timeout_seconds)
    expires_at = deadline if on_timeout == "reject" else now + timedelta(seconds=expires_after)
    return ApprovalRecord(
        execution_id=execution_id,
        function_name=function_name,
        function_qualname=function_qualname,
        stages=stages,
        on_timeout=on_timeout,
        require_reason=any(bool(getattr(p, "require_reason", False)) for p in approval_policies),
        args_hash=arguments_hash(function_path, arguments),
        arguments=arguments,
        inputs=inputs,
        subject=dict(subject),
        reasons=list(reasons),
        decision=dict(decision),
        requested_at=now,
        stage_deadline=deadline,
        expires_at=max(expires_at, deadline),
    )
