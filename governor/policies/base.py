"""What every policy is: a configuration of a Rego package, plus the facts Python gathers for it.

A policy never decides. `entry()` becomes one element of `input.policies` (`{type, name, params}`)
and `gather_facts(call)` returns the facts only Python can know (results of user validators,
auto-approve conditions, ...), merged into `input.facts`. The Rego package
`governor.policies.<type>` decides from both. Facts that need the store under a lock (rate-limit
counts, budget spend) are gathered by the executor, which asks the policy for its keys.

The executor's part, per call and phase (only for policies whose `applies(phase)` is true):

1. `facts = await policy.gather_facts(call)`: a partial `input.facts` document;
2. `policy.entries(facts)`: this policy's elements of `input.policies` for this call. Most
   policies have exactly one, the same every call (`entry()`); some depend on what the facts
   say (a custom `Policy.evaluate` result may ask for approval instead of validating) or add a
   second entry (an `AuthorizationPolicy`'s `custom_authorizer`). Always use `entries(facts)`;
3. merge every policy's facts into `input.facts` two levels deep (`facts[kind][policy name]`),
   the executor's own facts (approval status, counts) winning over a policy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from governor.errors import ConfigurationError

if TYPE_CHECKING:
    from governor.policies.custom import PolicyResult


class PolicyPhase(StrEnum):
    """When a policy applies: before the call, after it, or both.

    `PRE` and `POST` are aliases of `PRE_EXECUTION` and `POST_EXECUTION`; the strings "pre",
    "pre_execution", "post", "post_execution" and "both" (any case) convert too.
    """

    PRE_EXECUTION = "pre_execution"
    POST_EXECUTION = "post_execution"
    BOTH = "both"
    PRE = "pre_execution"
    POST = "post_execution"

    @classmethod
    def _missing_(cls, value: object) -> PolicyPhase | None:
        if isinstance(value, str):
            key = value.strip().lower()
            aliases = {"pre": cls.PRE_EXECUTION, "post": cls.POST_EXECUTION}
            if key in aliases:
                return aliases[key]
            for member in cls:
                if member.value == key:
                    return member
        return None


@dataclass
class CallInfo:
    """One governed call as the policies see it (built by the executor).

    `args` holds the bound arguments by parameter name plus the documented `{"args": [...],
    "kwargs": {...}}` shape under `args["args"]`/`args["kwargs"]` only when those names are free;
    everything in `args`, `inputs`, `subject` and `context` is JSON-safe. `raw_args` and
    `raw_kwargs` are the real Python objects, for user callables (validators, conditions), and
    `raw_bound` the real objects by parameter name (defaults applied). When `raw_bound` is empty,
    user callables see the JSON-safe `args` by name.
    """

    execution_id: str
    function_name: str
    phase: str  # "pre" | "post"
    args: dict[str, Any]
    inputs: dict[str, Any]  # {"args": [...], "kwargs": {...}}, JSON-safe
    raw_args: tuple[Any, ...] = ()
    raw_kwargs: dict[str, Any] = field(default_factory=dict)
    subject: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    output: Any = None  # the function's result, post phase only (JSON-safe)
    raw_output: Any = None
    raw_bound: dict[str, Any] = field(default_factory=dict)


class Policy:
    """Base class of every policy. Subclasses set `policy_type` and implement `params()`.

    A user subclass that overrides the 0.2.0-style `evaluate(...)` becomes a Python check whose
    `PolicyResult` enters the decision as a fact (see `governor.policies.custom`): its entry is a
    `validation` entry (`strict` = the result's `should_block`), or an `approval` entry when the
    result asks for approval, so the decision stays in Rego.
    """

    policy_type: ClassVar[str] = ""

    def __init__(
        self, name: str | None = None, phase: PolicyPhase | str = PolicyPhase.PRE_EXECUTION
    ):
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ConfigurationError(
                f"{type(self).__name__}: name must be a non-empty string, got {name!r}"
            )
        self.name = name or type(self).__name__
        try:
            self.phase = PolicyPhase(phase)
        except ValueError:
            raise ConfigurationError(
                f"{type(self).__name__}(name={self.name!r}): phase must be one of pre, post, "
                f"both (or PolicyPhase.PRE_EXECUTION, POST_EXECUTION, BOTH), got {phase!r}"
            ) from None
        if not self.policy_type and not self.is_custom_check():
            raise ConfigurationError(
                f"{type(self).__name__}: a custom Policy must override "
                "`async evaluate(execution_id, function_name, inputs, outputs=None, context=None)`"
            )

    # -- the 0.2.0 API ------------------------------------------------------------------------

    def get_policy_type(self) -> str:
        """The policy's type as 0.2.0 reported it: the class name for a custom policy."""
        return self.policy_type or type(self).__name__

    async def evaluate(
        self,
        execution_id: str,
        function_name: str,
        inputs: dict[str, Any],
        outputs: Any = None,
        context: dict[str, Any] | None = None,
    ) -> PolicyResult:
        """A custom Python check (override it). `inputs` holds the bound arguments by name plus
        `"args"` and `"kwargs"`; `outputs` the result in the post phase. Standard policies decide
        in Rego and do not implement it."""
        raise NotImplementedError(
            f"{type(self).__name__} is decided by the Rego package governor.policies."
            f"{self.policy_type}, not in Python"
        )

    def is_custom_check(self) -> bool:
        """True for a user subclass that implements `evaluate` (a custom Python check)."""
        return type(self).evaluate is not Policy.evaluate

    # -- what the executor uses ---------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """The JSON-safe parameters the Rego package reads (`input.policies[i].params`)."""
        return {}

    def entry(self) -> dict[str, Any]:
        """This policy's element of `input.policies` when it has one that never changes.

        For a policy whose entries depend on the call, or that has several, this is the
        first, fail-closed one: the executor must use `entries(facts)`.
        """
        if self.is_custom_check() and not self.policy_type:
            from governor.policies.custom import custom_entries

            return custom_entries(self, None)[0]
        return {"type": self.policy_type, "name": self.name, "params": self.params()}

    def entries(self, facts: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """This policy's elements of `input.policies` for one call.

        `facts` is what `gather_facts` returned for this call (None: as if it returned nothing).
        The default is `[entry()]`.
        """
        if self.is_custom_check() and not self.policy_type:
            from governor.policies.custom import custom_entries

            return custom_entries(self, facts)
        return [self.entry()]

    def applies(self, phase: str) -> bool:
        """Whether the policy takes part in phase "pre" or "post"."""
        if self.phase is PolicyPhase.BOTH:
            return True
        return (phase == "pre") == (self.phase is PolicyPhase.PRE_EXECUTION)

    async def gather_facts(self, call: CallInfo) -> dict[str, Any]:
        """Facts only Python can know, as a partial `input.facts` document; {} by default."""
        if self.is_custom_check() and not self.policy_type:
            from governor.policies.custom import custom_facts

            return await custom_facts(self, call)
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, phase={self.phase.name})"


__all__ = ["CallInfo", "Policy", "PolicyPhase"]
