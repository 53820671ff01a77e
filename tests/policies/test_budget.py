"""governor/policies/budget.py: entries, keys, integer amounts, decisions in Rego."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from governor.engine.base import Engine
from governor.errors import ConfigurationError
from governor.policies import BudgetPolicy, usd
from tests.policies._support import decision, make_call, minimal_input


def chat(prompt: str, max_tokens: int = 100) -> str:
    return "ok"


def test_entry_params_are_exactly_what_rego_reads() -> None:
    assert BudgetPolicy(name="m", limit=usd("50"), warn_ratio_percent=80).entry() == {
        "type": "budget",
        "name": "m",
        "params": {"currency": "USD", "limit": 50_000_000, "warn_ratio_percent": 80},
    }
    assert BudgetPolicy(name="n").params() == {"currency": "USD"}


@pytest.mark.parametrize(
    ("text", "micro"),
    [("0.25", 250_000), ("1", 1_000_000), ("0.000001", 1), ("12.5", 12_500_000), (3, 3_000_000)],
)
def test_usd_is_exact(text: Any, micro: int) -> None:
    assert usd(text) == micro
    assert usd(Decimal("0.1")) == 100_000


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.25, "not a float"),
        ("0.0000001", "more than six decimal places"),
        ("-1", "negative"),
        ("abc", "not a decimal amount"),
        (True, "must be a decimal string"),
    ],
)
def test_usd_refuses_inexact_amounts(value: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        usd(value)


def test_floats_are_refused_naming_the_field() -> None:
    with pytest.raises(ConfigurationError, match=r"BudgetPolicy\(name='b'\): limit .*float 10.5"):
        BudgetPolicy(name="b", limit=10.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"estimated_cost .*usd\('0.25'\) = 250000"):
        BudgetPolicy(name="b", estimated_cost=0.25)  # type: ignore[arg-type]
    policy = BudgetPolicy(name="b", estimated_cost=lambda args: 0.5, actual_cost=lambda r: 1.5)
    call = make_call(chat, "hi")
    with pytest.raises(ConfigurationError, match="estimated_cost returned the float 0.5"):
        policy.estimate(call)
    with pytest.raises(ConfigurationError, match="actual_cost returned the float 1.5"):
        policy.actual(call, "ok")


def test_estimate_and_actual_from_callables() -> None:
    policy = BudgetPolicy(
        name="b",
        estimated_cost=lambda args: args["max_tokens"] * 10,
        actual_cost=lambda result: len(result),
    )
    positional = make_call(chat, "hi", 300)
    keyword = make_call(chat, prompt="hi", max_tokens=300)
    assert policy.estimate(positional) == policy.estimate(keyword) == 3000
    assert policy.actual(positional, "abcd") == 4
    assert BudgetPolicy(estimated_cost=7).estimate(positional) == 7
    assert BudgetPolicy().actual(positional, "x") is None


def test_key_is_per_budget_and_user() -> None:
    call = make_call(chat, "hi", subject={"user_id": "u1"})
    assert BudgetPolicy(name="m").key(call) == "budget:m:user:u1"
    assert BudgetPolicy(name="m", per_user=False).key(call) == "budget:m"
    assert BudgetPolicy(name="m").key(make_call(chat, "hi")) is None


def test_spending_decides_in_rego(regorus: Engine) -> None:
    policy = BudgetPolicy(
        name="m", limit=usd("1"), estimated_cost=usd("0.25"), warn_ratio_percent=80
    )
    call = make_call(chat, "hi", subject={"user_id": "u1"})

    def fact(spent: str) -> dict[str, Any]:
        return {
            "budget": {
                "spent": usd(spent),
                "reserved": 0,
                "estimated_cost": policy.estimate(call),
                "currency": "USD",
            }
        }

    assert decision(regorus, [policy], call, facts=fact("0.25")).reasons == ()
    near = decision(regorus, [policy], call, facts=fact("0.60"))
    assert near.allowed and near.reasons == ("budget.near_limit:m",)
    over = decision(regorus, [policy], call, facts=fact("0.80"))
    assert over.reasons == ("budget.exceeded:m",)
    assert decision(regorus, [policy], call).reasons == ("budget.missing_fact:m",)


def test_minimal_input_allow_and_deny(regorus: Engine) -> None:
    entry = BudgetPolicy(name="b", limit=100).entry()
    ok = minimal_input(entry, facts={"budget": {"spent": 50, "estimated_cost": 50}})
    assert regorus.evaluate("governor.decision", ok)["decision"] == "allow"
    euros = minimal_input(
        entry, facts={"budget": {"spent": 0, "estimated_cost": 1, "currency": "EUR"}}
    )
    assert regorus.evaluate("governor.decision", euros)["reasons"] == ["budget.currency_mismatch:b"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": -1}, "limit must be a whole number >= 0"),
        ({"estimated_cost": "5"}, "estimated_cost must be a whole number >= 0"),
        ({"actual_cost": 5}, "actual_cost must be a callable"),
        ({"per_user": None}, "per_user must be true or false"),
        ({"currency": ""}, "currency must be a non-empty string"),
        ({"warn_ratio_percent": 101}, "warn_ratio_percent must be a whole number from 1 to 100"),
        ({"warn_ratio_percent": 0}, "warn_ratio_percent must be a whole number >= 1"),
        ({"reservation_ttl_seconds": 0}, "reservation_ttl_seconds must be a whole number >= 1"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"BudgetPolicy\(name='b'\): " + message):
        BudgetPolicy(name="b", **kwargs)
