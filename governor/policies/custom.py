"""Custom Python checks with the 0.2.0 API: subclass `Policy`, override `evaluate`, return a
`PolicyResult`.

The result never decides by itself; it becomes facts and an entry, and Rego decides:

- passed: entry `validation {strict: true}`, fact `checks[name] = {ok: true, errors: []}`;
- failed and `should_block` (the default): `validation {strict: true}` and
  `checks[name] = {ok: false, errors: [message]}`, so Rego denies
  (`validation.check_failed:<name>`);
- failed and not blocking, or passed with `should_warn`: `validation {strict: false}`, the same
  failed check, so Rego only warns;
- `should_approve` (`approval_required`): entry `approval {approvers?, timeout_seconds?,
  when: []}` and fact `approval[name] = {auto_approve: false}`, so Rego asks for approval
  (`approval.required:<name>`) until the executor's approval state says otherwise.

`approvers` and `timeout_seconds` come from the result's `details` (or `metadata`) when they are a
list of strings and a positive whole number. An `evaluate` that raises, or returns something
other than a `PolicyResult`, is a blocking failure (fail closed) carrying the exception message.

```python
class NoWeekendDeploys(Policy):
    async def evaluate(self, execution_id, function_name, inputs, outputs=None, context=None):
        if datetime.now().weekday() >= 5:
            return PolicyResult.failure(self.name, self.get_policy_type(), "no deploys on weekends")
        return PolicyResult.success(self.name, self.get_policy_type())
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from governor.policies._checks import call_arguments, describe_exception

if TYPE_CHECKING:
    from governor.policies.base import CallInfo, Policy


@dataclass
class PolicyResult:
    """The outcome of a custom check (0.2.0 API). Build it with `success`, `failure` or
    `approval_required`."""

    policy_name: str
    policy_type: str
    passed: bool
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    should_block: bool = False
    should_approve: bool = False
    should_warn: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def success(
        cls, policy_name: str, policy_type: str, message: str | None = None, **kwargs: Any
    ) -> PolicyResult:
        """The check passed."""
        return cls(policy_name, policy_type, True, message, **kwargs)

    @classmethod
    def failure(
        cls,
        policy_name: str,
        policy_type: str,
        message: str,
        should_block: bool = True,
        **kwargs: Any,
    ) -> PolicyResult:
        """The check failed: a deny, or only a warning with `should_block=False`."""
        return cls(policy_name, policy_type, False, message, should_block=should_block, **kwargs)

    @classmethod
    def approval_required(
        cls, policy_name: str, policy_type: str, message: str, **kwargs: Any
    ) -> PolicyResult:
        """The call needs a person's approval (passed=False, should_approve and should_block)."""
        kwargs.setdefault("should_block", True)
        return cls(policy_name, policy_type, False, message, should_approve=True, **kwargs)


async def custom_facts(policy: Policy, call: CallInfo) -> dict[str, Any]:
    """Run the policy's `evaluate` for the call and turn its result into facts."""
    try:
        result = await policy.evaluate(
            call.execution_id,
            call.function_name,
            call_arguments(call),
            call.raw_output if call.phase == "post" else None,
            dict(call.context),
        )
    except Exception as exc:
        return _check(policy.name, ok=False, errors=[describe_exception(exc)], blocking=True)
    if not isinstance(result, PolicyResult):
        error = f"evaluate returned {type(result).__name__}, expected a PolicyResult"
        return _check(policy.name, ok=False, errors=[error], blocking=True)
    errors = [result.message] if result.message else []
    if result.should_approve and not result.passed:
        facts = _check(policy.name, ok=False, errors=errors, blocking=True)
        approval: dict[str, Any] = {"auto_approve": False}
        facts["approval"] = {policy.name: approval}
        settings = _approval_settings(result)
        if settings:
            facts["checks"][policy.name]["approval"] = settings
        return facts
    if result.passed and not result.should_warn:
        return _check(policy.name, ok=True, errors=[], blocking=True)
    blocking = (not result.passed) and result.should_block
    return _check(policy.name, ok=False, errors=errors, blocking=blocking)


def custom_entries(policy: Policy, facts: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The entry of a custom check, chosen from its facts (see the module docstring)."""
    check = _get(facts, "checks", policy.name)
    if _get(facts, "approval", policy.name) is not None:
        settings = check.get("approval", {}) if isinstance(check, Mapping) else {}
        return [{"type": "approval", "name": policy.name, "params": {**settings, "when": []}}]
    strict = True
    if isinstance(check, Mapping) and check.get("blocking") is False:
        strict = False
    return [{"type": "validation", "name": policy.name, "params": {"strict": strict}}]


def _check(name: str, *, ok: bool, errors: list[str], blocking: bool) -> dict[str, Any]:
    return {"checks": {name: {"ok": ok, "errors": errors, "blocking": blocking}}}


def _get(facts: Mapping[str, Any] | None, kind: str, name: str) -> Any:
    if not isinstance(facts, Mapping):
        return None
    group = facts.get(kind)
    return group.get(name) if isinstance(group, Mapping) else None


def _approval_settings(result: PolicyResult) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for source in (result.metadata, result.details):
        if not isinstance(source, Mapping):
            continue
        approvers = source.get("approvers")
        if (
            "approvers" not in settings
            and isinstance(approvers, list | tuple)
            and approvers
            and all(isinstance(a, str) and a for a in approvers)
        ):
            settings["approvers"] = list(approvers)
        timeout = source.get("timeout_seconds")
        if (
            "timeout_seconds" not in settings
            and isinstance(timeout, int)
            and not isinstance(timeout, bool)
            and timeout > 0
        ):
            settings["timeout_seconds"] = timeout
    return settings
