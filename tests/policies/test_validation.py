"""governor/policies/validation.py: entries, validator facts, and decisions through the engine."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from governor.engine.base import Engine
from governor.errors import ConfigurationError
from governor.policies import PolicyPhase, ValidationPolicy
from tests.policies._support import decision, make_call, minimal_input


class PaymentInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: int
    account: str


class Receipt(BaseModel):
    status: str


def pay(amount: Any, account: str) -> dict[str, Any]:
    return {"status": "ok"}


def test_entry_carries_schemas_and_strict_exactly() -> None:
    policy = ValidationPolicy(name="v", input_schema={"type": "object"}, strict=False)
    assert policy.entry() == {
        "type": "validation",
        "name": "v",
        "params": {"input_schema": {"type": "object"}, "strict": False},
    }
    bare = ValidationPolicy(name="w")
    assert bare.entry() == {"type": "validation", "name": "w", "params": {"strict": True}}


def test_a_pydantic_model_becomes_a_json_schema_that_tolerates_the_0_2_0_shape() -> None:
    schema = ValidationPolicy(input_schema=PaymentInput).params()["input_schema"]
    assert schema["required"] == ["amount", "account"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["args"] == {} and schema["properties"]["kwargs"] == {}


@pytest.mark.parametrize("positional", [True, False])
def test_input_schema_decides_in_rego_for_positional_and_keyword_calls(
    regorus: Engine, positional: bool
) -> None:
    policy = ValidationPolicy(name="shape", input_schema=PaymentInput)

    def call(amount: Any, account: str) -> Any:
        return (
            make_call(pay, amount, account)
            if positional
            else make_call(pay, amount=amount, account=account)
        )

    assert decision(regorus, [policy], call(100, "ACC1")).decision == "allow"
    denied = decision(regorus, [policy], call("lots", "ACC1"))
    assert denied.decision == "deny"
    assert denied.reasons == ("validation.input_invalid:shape",)


@pytest.mark.parametrize(
    "validator",
    [
        lambda x: x.get("amount", 0) > 0,
        lambda x: x["kwargs"]["amount"] > 0,
    ],
    ids=["by-name", "kwargs-0.2.0"],
)
@pytest.mark.parametrize("positional", [True, False])
def test_both_readme_validator_styles_work_for_both_call_styles(
    regorus: Engine, validator: Any, positional: bool
) -> None:
    policy = ValidationPolicy(name="positive", validator=validator)

    def call(amount: int) -> Any:
        if positional:
            return make_call(pay, amount, "A")
        return make_call(pay, amount=amount, account="A")

    assert decision(regorus, [policy], call(10)).decision == "allow"
    denied = decision(regorus, [policy], call(-10))
    assert denied.decision == "deny"
    assert denied.reasons == ("validation.check_failed:positive",)


def test_input_validator_and_validator_are_the_same_thing() -> None:
    def check(x: Any) -> bool:
        return True

    assert ValidationPolicy(validator=check).input_validator is check
    assert ValidationPolicy(input_validator=check).validator is check
    with pytest.raises(ConfigurationError, match="not both"):
        ValidationPolicy(validator=check, input_validator=check)


def facts_of(policy: ValidationPolicy, call: Any) -> dict[str, Any]:
    return asyncio.run(policy.gather_facts(call))


def test_a_validator_that_raises_fails_with_its_message_and_never_crashes() -> None:
    def explode(x: Any) -> bool:
        raise ValueError("amount must be positive")

    facts = facts_of(ValidationPolicy(name="v", validator=explode), make_call(pay, 1, "A"))
    assert facts == {
        "checks": {"v": {"ok": False, "errors": ["ValueError: amount must be positive"]}}
    }


@pytest.mark.parametrize(
    ("returned", "ok", "errors"),
    [
        (True, True, []),
        (None, True, []),
        (False, False, ["the validator returned False"]),
        ((False, ["too big"]), False, ["too big"]),
        ((True, []), True, []),
        ("yes", False, ["the validator returned str; expected True/False, None or (ok, errors)"]),
    ],
)
def test_validator_results(returned: Any, ok: bool, errors: list[str]) -> None:
    facts = facts_of(
        ValidationPolicy(name="v", validator=lambda x: returned), make_call(pay, 1, "A")
    )
    assert facts["checks"]["v"] == {"ok": ok, "errors": errors}


def test_async_validators_are_awaited() -> None:
    async def check(x: Any) -> bool:
        return bool(x["amount"] == 1)

    facts = facts_of(ValidationPolicy(name="v", validator=check), make_call(pay, 1, "A"))
    assert facts["checks"]["v"]["ok"] is True


def test_no_validator_no_fact() -> None:
    assert facts_of(ValidationPolicy(input_schema=PaymentInput), make_call(pay, 1, "A")) == {}


def test_output_checks_run_after_the_call(regorus: Engine) -> None:
    policy = ValidationPolicy(
        name="out", output_schema=Receipt, output_validator=lambda r: r["status"] == "ok"
    )
    assert policy.phase is PolicyPhase.POST_EXECUTION
    good = make_call(pay, 1, "A", phase="post", output={"status": "ok"})
    assert decision(regorus, [policy], good).decision == "allow"
    bad = make_call(pay, 1, "A", phase="post", output={"status": 3})
    result = decision(regorus, [policy], bad)
    assert result.reasons == ("validation.check_failed:out", "validation.output_invalid:out")


def test_input_and_output_checks_make_a_both_phase_policy() -> None:
    policy = ValidationPolicy(input_schema=PaymentInput, output_schema=Receipt)
    assert policy.phase is PolicyPhase.BOTH


def test_not_strict_only_warns(regorus: Engine) -> None:
    policy = ValidationPolicy(name="soft", validator=lambda x: False, strict=False)
    result = decision(regorus, [policy], make_call(pay, 1, "A"))
    assert result.decision == "allow"
    assert result.reasons == ("validation.check_failed:soft",)


def test_minimal_input_allow_and_deny(regorus: Engine) -> None:
    entry = ValidationPolicy(name="v", input_schema={"type": "object", "required": ["a"]}).entry()
    ok = regorus.evaluate("governor.decision", minimal_input(entry, args={"a": 1}))
    assert ok["decision"] == "allow"
    bad = regorus.evaluate("governor.decision", minimal_input(entry, args={}))
    assert bad["reasons"] == ["validation.input_invalid:v"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strict": "yes"}, r"strict must be true or false"),
        ({"validator": 3}, r"validator must be a callable"),
        ({"input_validator": 3}, r"input_validator must be a callable"),
        ({"input_schema": 3}, r"input_schema must be a pydantic model class"),
        ({"phase": "pre", "output_schema": {}}, r".*but phase is PRE"),
        ({"phase": "post", "input_schema": {}}, r".*but phase is POST"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"ValidationPolicy\(name='v'\): " + message):
        ValidationPolicy(name="v", **kwargs)
