"""`AuthorizationPolicy`: roles, permissions and attribute conditions on the caller.

Rego package `governor.policies.authorization` (phase "pre"). Entry params:
  `required_roles`               any one suffices
  `required_permissions`         all are needed (own permissions plus those the roles grant)
  `conditions`                   attribute conditions, all must hold (when given)
  `require_approval_on_failure`  a failure asks for approval instead of denying
  `approvers`, `approval_timeout_seconds`   for that approval (when given; else the bundle's)
The caller is `input.subject`: the executor builds it from the principal found at
`context_key` in the call's context (`principal(call)`).

`custom_authorizer` (0.2.0) is a Python callable; its verdict enters as a fact of a second entry
named `<name>.custom_authorizer`:
  - `{"type": "validation", "params": {"strict": true}}` with `checks[...] = {ok, errors}`
    (a refusal denies: `validation.check_failed:<name>.custom_authorizer`), or, with
    `require_approval_on_failure`,
  - `{"type": "approval", "params": {approvers?, timeout_seconds?, when: []}}` with
    `approval[...] = {auto_approve: <verdict>}` (a refusal asks for approval).
It receives `{"principal", "inputs", "context", "execution_id", "function_name"}` (`inputs`: the
bound arguments by name plus "args"/"kwargs") and returns a bool (or an awaitable of one); an
exception or a non-bool counts as a refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from governor.errors import GovernanceError
from governor.policies._checks import (
    bool_param,
    call_arguments,
    callable_param,
    conditions,
    describe_exception,
    dotted_get,
    optional_int,
    resolve,
    str_list,
    str_param,
    where,
)
from governor.policies.base import CallInfo, Policy, PolicyPhase


class AuthorizationPolicy(Policy):
    """Who may make the call: roles (any), permissions (all), conditions (all), decided in Rego."""

    policy_type = "authorization"

    def __init__(
        self,
        name: str | None = None,
        required_roles: list[str] | None = None,
        required_permissions: list[str] | None = None,
        custom_authorizer: Callable[[dict[str, Any]], Any] | None = None,
        context_key: str = "user",
        require_approval_on_failure: bool = False,
        conditions: list[dict[str, Any]] | dict[str, Any] | None = None,
        approvers: list[str] | None = None,
        approval_timeout_seconds: int | None = None,
    ) -> None:
        super().__init__(name=name, phase=PolicyPhase.PRE_EXECUTION)
        owner = where("AuthorizationPolicy", name)
        self.required_roles = str_list(owner, "required_roles", required_roles)
        self.required_permissions = str_list(owner, "required_permissions", required_permissions)
        self.custom_authorizer = callable_param(owner, "custom_authorizer", custom_authorizer)
        self.context_key = str_param(owner, "context_key", context_key)
        self.require_approval_on_failure = bool_param(
            owner, "require_approval_on_failure", require_approval_on_failure
        )
        self.conditions = _conditions(owner, conditions)
        self.approvers = None if approvers is None else str_list(owner, "approvers", approvers)
        self.approval_timeout_seconds = optional_int(
            owner, "approval_timeout_seconds", approval_timeout_seconds, minimum=1, hint="seconds"
        )

    @property
    def authorizer_entry_name(self) -> str:
        """The name of the entry that carries `custom_authorizer`'s verdict."""
        return f"{self.name}.custom_authorizer"

    def principal(self, call: CallInfo) -> Any:
        """The principal at `context_key` (a dotted path) in the call's context, or None."""
        return dotted_get(call.context, self.context_key)

    def params(self) -> dict[str, Any]:
        """`{required_roles, required_permissions, require_approval_on_failure, conditions?,
        approvers?, approval_timeout_seconds?}`."""
        params: dict[str, Any] = {
            "required_roles": list(self.required_roles),
            "required_permissions": list(self.required_permissions),
            "require_approval_on_failure": self.require_approval_on_failure,
        }
        if self.conditions:
            params["conditions"] = [dict(c) for c in self.conditions]
        if self.approvers is not None:
            params["approvers"] = list(self.approvers)
        if self.approval_timeout_seconds is not None:
            params["approval_timeout_seconds"] = self.approval_timeout_seconds
        return params

    def entry(self) -> dict[str, Any]:
        """The authorization entry. With a `custom_authorizer` the policy has two entries, so
        this raises `GovernanceError`: use `entries(facts)`."""
        if self.custom_authorizer is not None:
            raise GovernanceError(
                f"AuthorizationPolicy {self.name!r} has a custom_authorizer and so two entries; "
                "use entries(facts)"
            )
        return self._entry()

    def _entry(self) -> dict[str, Any]:
        return {"type": self.policy_type, "name": self.name, "params": self.params()}

    def entries(self, facts: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """The authorization entry, plus the custom authorizer's entry when there is one."""
        out = [self._entry()]
        if self.custom_authorizer is None:
            return out
        name = self.authorizer_entry_name
        if self.require_approval_on_failure:
            params: dict[str, Any] = {"when": []}
            if self.approvers is not None:
                params["approvers"] = list(self.approvers)
            if self.approval_timeout_seconds is not None:
                params["timeout_seconds"] = self.approval_timeout_seconds
            out.append({"type": "approval", "name": name, "params": params})
        else:
            out.append({"type": "validation", "name": name, "params": {"strict": True}})
        return out

    async def gather_facts(self, call: CallInfo) -> dict[str, Any]:
        """The custom authorizer's verdict (pre phase), as `checks` or `approval` facts."""
        if self.custom_authorizer is None or call.phase != "pre":
            return {}
        request = {
            "principal": self.principal(call),
            "inputs": call_arguments(call),
            "context": dict(call.context),
            "execution_id": call.execution_id,
            "function_name": call.function_name,
        }
        errors: list[str] = []
        try:
            verdict = await resolve(self.custom_authorizer(request))
        except Exception as exc:
            verdict, errors = False, [describe_exception(exc)]
        if not isinstance(verdict, bool):
            errors = errors or [f"custom_authorizer returned {type(verdict).__name__}, not a bool"]
            verdict = False
        if verdict is False and not errors:
            errors = ["custom_authorizer refused the call"]
        name = self.authorizer_entry_name
        if self.require_approval_on_failure:
            return {"approval": {name: {"auto_approve": verdict}}}
        return {"checks": {name: {"ok": verdict, "errors": errors}}}


def _conditions(owner: str, value: Any) -> list[dict[str, Any]]:
    return conditions(owner, "conditions", value)
