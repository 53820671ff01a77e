"""`ApprovalPolicy`, `ApprovalStage`, `SequentialApprovalPolicy`: a person approves the call first.

Rego package `governor.policies.approval` (phase "pre"). Entry params, each only when set (an
unset one takes the bundle's `data.governor.config.approval` default, else the default shown):
  `approvers`        approver ids                                  (default_approvers, else [])
  `timeout_seconds`  positive whole number                         (default_timeout_seconds, 3600)
  `on_timeout`       "reject" | "pending"                          (default_on_timeout, "reject")
  `quorum`           approvals needed, at most len(approvers)      (default_quorum, 1)
  `stages`           [{name, approvers, timeout_seconds?, quorum?}], approved in order
  `when`             attribute conditions under which approval is needed (default_when, always)

Facts: `approval[<name>] = {auto_approve, auto_approved_stages?}` from Python, merged by the
executor with the approval state it keeps (`status`, `approver`, `stage`), which wins:
  - `auto_approve_condition(arguments)` (bound arguments by name plus "args"/"kwargs", so a
    positional call is judged like a keyword call): true lets the call through without a person;
    an exception or a non-true value means "not auto-approved".
  - a stage's own `auto_approve_condition`: that stage is left out of this call's `stages`
    (`entries(facts)`); when every stage is left out (and the policy lists no approvers of its
    own) the call is auto-approved. Nothing is kept between calls.
  - `approval_callback(execution_id, function_name, arguments)` (0.2.0): True auto-approves,
    False rejects (`status: "rejected"`, `approver: "approval_callback"`), an exception leaves the
    decision to a person.
`require_reason` (an approve/reject must carry a reason) and `expires_after_seconds` (how long a
request whose caller stopped waiting, `on_timeout="pending"`, stays approvable; default 7 days)
are for the approval manager and the store; Rego does not read them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from governor.errors import ConfigurationError
from governor.policies._checks import (
    bool_param,
    call_arguments,
    callable_param,
    conditions,
    fail,
    optional_int,
    resolve,
    str_list,
    str_param,
    where,
)
from governor.policies.base import CallInfo, Policy, PolicyPhase

ON_TIMEOUT = ("reject", "pending")
_STAGE_KEYS = (
    "name",
    "approvers",
    "timeout_seconds",
    "quorum",
    "on_timeout",
    "require_reason",
    "auto_approve_condition",
    "description",
)

Condition = Callable[[dict[str, Any]], Any]


def _on_timeout(owner: str, param: str, value: Any) -> str | None:
    if value is None:
        return None
    if value in ("approve", "escalate"):
        raise ConfigurationError(
            f"{owner}: {param} {value!r} is not supported: an approval that times out either "
            "refuses the call ('reject') or keeps waiting ('pending'); to let calls through "
            "without a person use auto_approve_condition"
        )
    return str_param(owner, param, value, choices=ON_TIMEOUT)


def _quorum(owner: str, param: str, value: Any, approvers: Sequence[str] | None) -> int | None:
    quorum = optional_int(owner, param, value, minimum=1, hint="approvals needed")
    if quorum is not None and approvers and quorum > len(approvers):
        raise ConfigurationError(
            f"{owner}: {param} is {quorum}, more than the {len(approvers)} approver(s) listed"
        )
    return quorum


class ApprovalStage:
    """One stage of a multi-stage approval (0.2.0 API), approved in order."""

    def __init__(
        self,
        name: str,
        approvers: list[str],
        timeout_seconds: int | None = None,
        on_timeout: str | None = None,
        require_reason: bool = False,
        auto_approve_condition: Condition | None = None,
        description: str | None = None,
        quorum: int = 1,
    ) -> None:
        owner = f"ApprovalStage(name={name!r})"
        self.name = str_param(owner, "name", name)
        self.approvers = str_list(owner, "approvers", approvers)
        if not self.approvers:
            raise ConfigurationError(f"{owner}: approvers must list at least one approver")
        self.timeout_seconds = optional_int(
            owner, "timeout_seconds", timeout_seconds, minimum=1, hint="seconds"
        )
        self.on_timeout = _on_timeout(owner, "on_timeout", on_timeout)
        self.require_reason = bool_param(owner, "require_reason", require_reason)
        self.auto_approve_condition = callable_param(
            owner, "auto_approve_condition", auto_approve_condition
        )
        if description is not None and not isinstance(description, str):
            raise fail(owner, "description", "a string", description)
        self.description = description
        self.quorum = _quorum(owner, "quorum", quorum, self.approvers) or 1

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], owner: str = "ApprovalStage") -> ApprovalStage:
        """A stage from `{name, approvers, timeout_seconds?, quorum?, on_timeout?, ...}`."""
        unknown = sorted(set(data) - set(_STAGE_KEYS))
        if unknown:
            raise ConfigurationError(
                f"{owner}: unknown stage key(s) {', '.join(unknown)}; a stage has "
                + ", ".join(_STAGE_KEYS)
            )
        if "name" not in data or "approvers" not in data:
            raise ConfigurationError(f"{owner}: a stage needs a name and approvers")
        return cls(**dict(data))

    def params(self) -> dict[str, Any]:
        """The stage as Rego reads it: `{name, approvers, timeout_seconds?, quorum}`."""
        out: dict[str, Any] = {"name": self.name, "approvers": list(self.approvers)}
        if self.timeout_seconds is not None:
            out["timeout_seconds"] = self.timeout_seconds
        out["quorum"] = self.quorum
        return out

    def __repr__(self) -> str:
        return f"ApprovalStage(name={self.name!r}, approvers={self.approvers!r})"


class ApprovalPolicy(Policy):
    """Ask a person to approve the call before it runs; the settings travel to Rego."""

    policy_type = "approval"

    def __init__(
        self,
        name: str | None = None,
        approvers: list[str] | None = None,
        timeout_seconds: int | None = None,
        on_timeout: str | None = None,
        approval_callback: Callable[..., Any] | None = None,
        require_reason: bool = False,
        auto_approve_condition: Condition | None = None,
        quorum: int | None = None,
        stages: Sequence[ApprovalStage | Mapping[str, Any]] | None = None,
        when: list[dict[str, Any]] | dict[str, Any] | None = None,
        expires_after_seconds: int | None = None,
    ) -> None:
        super().__init__(name=name, phase=PolicyPhase.PRE_EXECUTION)
        owner = where(type(self).__name__, name)
        self.expires_after_seconds = optional_int(
            owner, "expires_after_seconds", expires_after_seconds, minimum=1, hint="seconds"
        )
        self.approvers = None if approvers is None else str_list(owner, "approvers", approvers)
        self.timeout_seconds = optional_int(
            owner, "timeout_seconds", timeout_seconds, minimum=1, hint="seconds"
        )
        self.approval_callback = callable_param(owner, "approval_callback", approval_callback)
        self.require_reason = bool_param(owner, "require_reason", require_reason)
        self.auto_approve_condition = callable_param(
            owner, "auto_approve_condition", auto_approve_condition
        )
        self.quorum = _quorum(owner, "quorum", quorum, self.approvers)
        self.stages = _stages(owner, stages)
        self.when = None if when is None else conditions(owner, "when", when)
        self.on_timeout = _on_timeout(owner, "on_timeout", on_timeout)
        stage_timeouts = {s.on_timeout for s in self.stages if s.on_timeout is not None}
        if stage_timeouts:
            strictest = "reject" if "reject" in stage_timeouts else "pending"
            if self.on_timeout is not None and self.on_timeout != strictest:
                raise ConfigurationError(
                    f"{owner}: on_timeout is {self.on_timeout!r} but a stage says {strictest!r}; "
                    "the policy has one on_timeout, so they must agree"
                )
            self.on_timeout = strictest

    def params(self) -> dict[str, Any]:
        """The entry params (only those set), with every stage."""
        return self._params(skip=())

    def _params(self, skip: Sequence[str]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.approvers is not None:
            params["approvers"] = list(self.approvers)
        if self.timeout_seconds is not None:
            params["timeout_seconds"] = self.timeout_seconds
        if self.on_timeout is not None:
            params["on_timeout"] = self.on_timeout
        if self.quorum is not None:
            params["quorum"] = self.quorum
        if self.stages:
            params["stages"] = [s.params() for s in self.stages if s.name not in skip]
        if self.when is not None:
            params["when"] = [dict(c) for c in self.when]
        return params

    def entries(self, facts: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The entry, without the stages this call's facts say were auto-approved."""
        skip: list[str] = []
        if isinstance(facts, Mapping):
            mine = (facts.get("approval") or {}).get(self.name)
            if isinstance(mine, Mapping):
                skip = [s for s in mine.get("auto_approved_stages", []) if isinstance(s, str)]
        return [{"type": self.policy_type, "name": self.name, "params": self._params(skip)}]

    async def auto_approves(self, call: CallInfo) -> bool:
        """Whether `auto_approve_condition` holds for the call (False when it raises)."""
        if self.auto_approve_condition is None:
            return False
        return await _holds(self.auto_approve_condition, call_arguments(call))

    async def gather_facts(self, call: CallInfo) -> dict[str, Any]:
        """`{"approval": {name: {auto_approve, auto_approved_stages?, status?, approver?}}}`;
        {} when the policy has no Python condition or callback."""
        conditional = [s for s in self.stages if s.auto_approve_condition is not None]
        if (
            call.phase != "pre"
            or self.auto_approve_condition is None
            and self.approval_callback is None
            and not conditional
        ):
            return {}
        arguments = call_arguments(call)
        fact: dict[str, Any] = {"auto_approve": False}
        if self.auto_approve_condition is not None:
            fact["auto_approve"] = await _holds(self.auto_approve_condition, arguments)
        if conditional:
            skipped = [
                s.name
                for s in conditional
                if s.auto_approve_condition is not None
                and await _holds(s.auto_approve_condition, arguments)
            ]
            fact["auto_approved_stages"] = skipped
            if len(skipped) == len(self.stages) and not self.approvers:
                fact["auto_approve"] = True
        if self.approval_callback is not None and not fact["auto_approve"]:
            try:
                verdict = await resolve(
                    self.approval_callback(call.execution_id, call.function_name, arguments)
                )
            except Exception:
                verdict = None
            if verdict is True:
                fact["auto_approve"] = True
            elif verdict is False:
                fact.update({"status": "rejected", "approver": "approval_callback"})
        return {"approval": {self.name: fact}}


class SequentialApprovalPolicy(ApprovalPolicy):
    """0.2.0's multi-stage approval: `ApprovalPolicy(stages=...)` under its old name.

    `stop_on_reject` must stay True: a rejection at any stage always refuses the call.
    """

    def __init__(
        self,
        stages: Sequence[ApprovalStage | Mapping[str, Any]],
        name: str | None = None,
        stop_on_reject: bool = True,
        approval_callback: Callable[..., Any] | None = None,
    ) -> None:
        owner = where("SequentialApprovalPolicy", name)
        if bool_param(owner, "stop_on_reject", stop_on_reject) is not True:
            raise ConfigurationError(
                f"{owner}: stop_on_reject=False is not supported: a rejection at any stage "
                "refuses the call"
            )
        if not stages:
            raise ConfigurationError(f"{owner}: stages must list at least one ApprovalStage")
        self.stop_on_reject = True
        super().__init__(name=name, stages=stages, approval_callback=approval_callback)


async def _holds(condition: Condition, arguments: dict[str, Any]) -> bool:
    try:
        return (await resolve(condition(arguments))) is True
    except Exception:
        return False


def _stages(owner: str, value: Any) -> list[ApprovalStage]:
    if value is None:
        return []
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        raise fail(owner, "stages", "a list of ApprovalStage or {name, approvers} objects", value)
    out: list[ApprovalStage] = []
    for i, stage in enumerate(value):
        if isinstance(stage, ApprovalStage):
            out.append(stage)
        elif isinstance(stage, Mapping):
            out.append(ApprovalStage.from_dict(stage, owner=f"{owner}: stages[{i}]"))
        else:
            expected = "an ApprovalStage or a {name, approvers} object"
            raise fail(owner, f"stages[{i}]", expected, stage)
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigurationError(f"{owner}: stages has duplicate name(s) {', '.join(dupes)}")
    return out
