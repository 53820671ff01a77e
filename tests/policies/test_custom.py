"""governor/policies/custom.py: 0.2.0 custom checks; their results enter as facts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from governor.engine.base import Engine
from governor.policies import Policy, PolicyPhase, PolicyResult
from tests.policies._support import decision, make_call


def deploy(env: str, amount: int = 0) -> str:
    return "ok"


class EnvCheck(Policy):
    """Production deploys need approval, staging warns, dev passes, anything else is refused."""

    async def evaluate(
        self,
        execution_id: str,
        function_name: str,
        inputs: dict[str, Any],
        outputs: Any = None,
        context: dict[str, Any] | None = None,
    ) -> PolicyResult:
        env = inputs["kwargs"]["env"]
        kind = self.get_policy_type()
        if env == "prod":
            return PolicyResult.approval_required(
                self.name, kind, "prod needs a human", details={"approvers": ["sre"]}
            )
        if env == "staging":
            return PolicyResult.failure(self.name, kind, "staging is shared", should_block=False)
        if env == "dev":
            return PolicyResult.success(self.name, kind)
        return PolicyResult.failure(self.name, kind, f"unknown env {env}")


def test_policy_result_constructors_keep_the_0_2_0_api() -> None:
    ok = PolicyResult.success("p", "T", "fine", metadata={"k": 1})
    assert (ok.passed, ok.should_block, ok.message, ok.metadata) == (True, False, "fine", {"k": 1})
    bad = PolicyResult.failure("p", "T", "no")
    assert (bad.passed, bad.should_block) == (False, True)
    soft = PolicyResult.failure("p", "T", "meh", should_block=False, should_warn=True)
    assert (soft.should_block, soft.should_warn) == (False, True)
    ask = PolicyResult.approval_required("p", "T", "ask")
    assert (ask.passed, ask.should_approve, ask.should_block) == (False, True, True)
    assert ask.details == {} and ask.policy_type == "T" and ask.policy_name == "p"


def test_get_policy_type_is_the_class_name() -> None:
    assert EnvCheck().get_policy_type() == "EnvCheck"
    assert EnvCheck().name == "EnvCheck"


@pytest.mark.parametrize("positional", [True, False])
def test_results_decide_in_rego(regorus: Engine, positional: bool) -> None:
    policy = EnvCheck(name="env")

    def call(env: str) -> Any:
        return make_call(deploy, env) if positional else make_call(deploy, env=env)

    assert decision(regorus, [policy], call("dev")).decision == "allow"
    warned = decision(regorus, [policy], call("staging"))
    assert warned.decision == "allow" and warned.reasons == ("validation.check_failed:env",)
    denied = decision(regorus, [policy], call("moon"))
    assert denied.decision == "deny" and denied.reasons == ("validation.check_failed:env",)
    asked = decision(regorus, [policy], call("prod"))
    assert asked.decision == "confirm" and asked.reasons == ("approval.required:env",)
    assert asked.approval["approvers"] == ["sre"]
    approved = decision(
        regorus, [policy], call("prod"), facts={"approval": {"env": {"status": "approved"}}}
    )
    assert approved.allowed


def test_entries_follow_the_facts_and_entry_is_the_fail_closed_one() -> None:
    policy = EnvCheck(name="env")
    assert policy.entry() == {"type": "validation", "name": "env", "params": {"strict": True}}
    facts = asyncio.run(policy.gather_facts(make_call(deploy, "prod")))
    assert facts["approval"] == {"env": {"auto_approve": False}}
    assert policy.entries(facts) == [
        {"type": "approval", "name": "env", "params": {"approvers": ["sre"], "when": []}}
    ]


class Broken(Policy):
    async def evaluate(self, *args: Any, **kwargs: Any) -> PolicyResult:
        raise RuntimeError("database down")


class Sloppy(Policy):
    async def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        return True


@pytest.mark.parametrize(
    "policy", [Broken(name="p"), Sloppy(name="p")], ids=["raises", "not-a-result"]
)
def test_a_failing_evaluate_is_a_blocking_failure(regorus: Engine, policy: Policy) -> None:
    result = decision(regorus, [policy], make_call(deploy, "dev"))
    assert result.decision == "deny"
    facts = asyncio.run(policy.gather_facts(make_call(deploy, "dev")))
    assert facts["checks"]["p"]["ok"] is False
    assert facts["checks"]["p"]["errors"]


def test_post_phase_checks_see_the_output(regorus: Engine) -> None:
    class OutputCheck(Policy):
        async def evaluate(self, *args: Any, **kwargs: Any) -> PolicyResult:
            outputs = args[3] if len(args) > 3 else kwargs.get("outputs")
            if outputs == "ok":
                return PolicyResult.success(self.name, "x")
            return PolicyResult.failure(self.name, "x", "bad output")

    policy = OutputCheck(name="out", phase=PolicyPhase.POST_EXECUTION)
    good = make_call(deploy, "dev", phase="post", output="ok")
    assert decision(regorus, [policy], good).allowed
    bad = make_call(deploy, "dev", phase="post", output="nope")
    assert decision(regorus, [policy], bad).decision == "deny"
