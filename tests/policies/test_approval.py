"""governor/policies/approval.py: entries, auto-approval facts, stages, decisions in Rego."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from governor.engine.base import Engine
from governor.errors import ConfigurationError
from governor.policies import ApprovalPolicy, ApprovalStage, SequentialApprovalPolicy
from tests.policies._support import decision, make_call, minimal_input


def process_payment(amount: int, account: str) -> dict[str, Any]:
    return {"status": "success", "amount": amount}


def test_entry_params_are_exactly_what_rego_reads() -> None:
    policy = ApprovalPolicy(
        name="big",
        approvers=["cfo", "ceo"],
        timeout_seconds=60,
        on_timeout="pending",
        quorum=2,
        when=[{"attribute": "args.amount", "op": "gt", "value": 1000}],
    )
    assert policy.entry() == {
        "type": "approval",
        "name": "big",
        "params": {
            "approvers": ["cfo", "ceo"],
            "timeout_seconds": 60,
            "on_timeout": "pending",
            "quorum": 2,
            "when": [{"attribute": "args.amount", "op": "gt", "value": 1000}],
        },
    }


def test_unset_settings_are_left_to_the_bundle() -> None:
    assert ApprovalPolicy(name="a").entry() == {"type": "approval", "name": "a", "params": {}}


def test_rego_asks_for_approval_with_the_policys_settings(regorus: Engine) -> None:
    policy = ApprovalPolicy(name="big", approvers=["cfo@x.com"], timeout_seconds=10)
    result = decision(regorus, [policy], make_call(process_payment, 5000, "ACC456"))
    assert result.decision == "confirm"
    assert result.reasons == ("approval.required:big",)
    assert result.approval["approvers"] == ["cfo@x.com"]
    assert result.approval["timeout_seconds"] == 10


def test_approval_state_from_the_executor_decides(regorus: Engine) -> None:
    policy = ApprovalPolicy(name="big", approvers=["cfo"])
    call = make_call(process_payment, 5000, "A")
    approved = decision(
        regorus, [policy], call, facts={"approval": {"big": {"status": "approved"}}}
    )
    assert approved.allowed
    rejected = decision(
        regorus, [policy], call, facts={"approval": {"big": {"status": "rejected"}}}
    )
    assert rejected.reasons == ("approval.rejected:big",)


# The README's condition reads inputs["kwargs"]; in 0.2.0 a positional call skipped approval.
def readme_condition(inputs: dict[str, Any]) -> bool:
    return bool(inputs["kwargs"].get("amount", 0) < 1000)


@pytest.mark.parametrize("positional", [True, False])
def test_auto_approve_is_no_bypass_for_positional_calls(regorus: Engine, positional: bool) -> None:
    policy = ApprovalPolicy(name="big", approvers=["cfo"], auto_approve_condition=readme_condition)

    def call(amount: int) -> Any:
        if positional:
            return make_call(process_payment, amount, "ACC456")
        return make_call(process_payment, amount=amount, account="ACC456")

    assert decision(regorus, [policy], call(500)).allowed
    assert decision(regorus, [policy], call(5000)).decision == "confirm"


def facts_of(policy: ApprovalPolicy, *args: Any) -> dict[str, Any]:
    return asyncio.run(policy.gather_facts(make_call(process_payment, *args)))


def test_a_condition_that_raises_is_not_an_auto_approval() -> None:
    policy = ApprovalPolicy(name="a", auto_approve_condition=lambda x: x["missing"] < 5)
    assert facts_of(policy, 1, "A") == {"approval": {"a": {"auto_approve": False}}}


def test_only_true_auto_approves() -> None:
    policy = ApprovalPolicy(name="a", auto_approve_condition=lambda x: "yes")
    assert facts_of(policy, 1, "A")["approval"]["a"]["auto_approve"] is False


def test_no_python_condition_no_fact() -> None:
    assert facts_of(ApprovalPolicy(name="a"), 1, "A") == {}


def test_approval_callback_approves_or_rejects(regorus: Engine) -> None:
    async def callback(execution_id: str, function_name: str, inputs: dict[str, Any]) -> bool:
        return bool(inputs["amount"] < 100)

    policy = ApprovalPolicy(name="cb", approvers=["x"], approval_callback=callback)
    assert decision(regorus, [policy], make_call(process_payment, 5, "A")).allowed
    rejected = decision(regorus, [policy], make_call(process_payment, 500, "A"))
    assert rejected.reasons == ("approval.rejected:cb",)


def stages() -> list[ApprovalStage]:
    return [
        ApprovalStage(
            "Safety", ["safety-lead"], auto_approve_condition=lambda x: x["amount"] < 100
        ),
        ApprovalStage("CFO", ["cfo"], timeout_seconds=600),
    ]


def test_sequential_stages_map_to_stages_and_skip_auto_approved_ones_per_call(
    regorus: Engine,
) -> None:
    policy = SequentialApprovalPolicy(stages(), name="pipeline")
    assert policy.entry()["params"] == {
        "stages": [
            {"name": "Safety", "approvers": ["safety-lead"], "quorum": 1},
            {"name": "CFO", "approvers": ["cfo"], "timeout_seconds": 600, "quorum": 1},
        ]
    }
    small = decision(regorus, [policy], make_call(process_payment, 50, "A"))
    assert small.decision == "confirm"
    assert small.approval["stages"] == [["cfo"]]
    large = decision(regorus, [policy], make_call(process_payment, 5000, "A"))
    assert large.approval["stages"] == [["safety-lead"], ["cfo"]]
    again = decision(regorus, [policy], make_call(process_payment, 50, "A"))
    assert again.approval["stages"] == [["cfo"]]  # nothing is kept between calls


def test_every_stage_auto_approved_means_auto_approved(regorus: Engine) -> None:
    policy = ApprovalPolicy(
        name="p",
        stages=[{"name": "S", "approvers": ["s"], "auto_approve_condition": lambda x: True}],
    )
    assert decision(regorus, [policy], make_call(process_payment, 1, "A")).allowed


def test_minimal_input_allow_and_deny(regorus: Engine) -> None:
    entry = ApprovalPolicy(name="a", approvers=["boss"]).entry()
    waiting = regorus.evaluate("governor.decision", minimal_input(entry))
    assert waiting["decision"] == "confirm"
    auto = minimal_input(entry, facts={"approval": {"a": {"auto_approve": True}}})
    assert regorus.evaluate("governor.decision", auto)["decision"] == "allow"
    expired = minimal_input(entry, facts={"approval": {"a": {"status": "expired"}}})
    assert regorus.evaluate("governor.decision", expired)["reasons"] == ["approval.expired:a"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"approvers": "cfo"}, "approvers must be a list of strings"),
        ({"timeout_seconds": 0}, "timeout_seconds must be a whole number >= 1"),
        ({"on_timeout": "approve"}, "on_timeout 'approve' is not supported"),
        ({"on_timeout": "later"}, "on_timeout must be one of 'reject', 'pending'"),
        ({"approvers": ["a"], "quorum": 2}, "quorum is 2, more than the 1 approver"),
        ({"require_reason": "yes"}, "require_reason must be true or false"),
        ({"auto_approve_condition": 1}, "auto_approve_condition must be a callable"),
        (
            {"when": [{"attribute": "args.x", "op": "gt", "value": True}]},
            r"when\[0\].value must be",
        ),
        ({"stages": [{"name": "S"}]}, "a stage needs a name and approvers"),
        ({"stages": [{"name": "S", "approvers": ["a"], "approver": 1}]}, "unknown stage key"),
        (
            {"stages": [{"name": "S", "approvers": ["a"]}, {"name": "S", "approvers": ["b"]}]},
            "duplicate name",
        ),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"ApprovalPolicy\(name='a'\).*" + message):
        ApprovalPolicy(name="a", **kwargs)


def test_sequential_refuses_stop_on_reject_false_and_no_stages() -> None:
    with pytest.raises(ConfigurationError, match="stop_on_reject=False is not supported"):
        SequentialApprovalPolicy(stages(), stop_on_reject=False)
    with pytest.raises(ConfigurationError, match="at least one"):
        SequentialApprovalPolicy([])


def test_stage_on_timeout_must_agree_with_the_policy() -> None:
    pending = ApprovalStage("S", ["a"], on_timeout="pending")
    assert ApprovalPolicy(stages=[pending]).on_timeout == "pending"
    with pytest.raises(ConfigurationError, match="must agree"):
        ApprovalPolicy(stages=[pending], on_timeout="reject")
