"""governor/policies/rate_limit.py: entries, keys, and decisions on counts in Rego."""

from __future__ import annotations

from typing import Any

import pytest

from governor.engine.base import Engine
from governor.errors import ConfigurationError
from governor.policies import RateLimitPolicy
from tests.policies._support import decision, make_call, minimal_input


def search(query: str) -> None:
    """A governed function."""


def test_entry_params_are_exactly_what_rego_reads() -> None:
    assert RateLimitPolicy(name="api", max_calls=10, window_seconds=30).entry() == {
        "type": "rate_limit",
        "name": "api",
        "params": {"max_calls": 10, "window_seconds": 30, "per_user": False},
    }
    assert RateLimitPolicy(name="b", per_user=True, burst_size=5).params() == {
        "max_calls": 100,
        "window_seconds": 60,
        "per_user": True,
        "burst_size": 5,
    }


def test_key_is_per_function_and_per_user() -> None:
    call = make_call(search, "q", subject={"user_id": "u7"}, context={"user": {"id": "u7"}})
    assert RateLimitPolicy(name="api").key(call) == "rate_limit:api:search"
    assert RateLimitPolicy(name="api", per_user=True).key(call) == "rate_limit:api:search:user:u7"


def test_user_comes_from_user_key_then_the_subject() -> None:
    policy = RateLimitPolicy(name="api", per_user=True, user_key="session.uid")
    from_context = make_call(search, "q", context={"session": {"uid": 42}})
    assert policy.key(from_context) == "rate_limit:api:search:user:42"
    from_subject = make_call(search, "q", subject={"user_id": "s1"})
    assert policy.user_id(from_subject) == "s1"


def test_per_user_without_a_user_has_no_key_and_rego_denies(regorus: Engine) -> None:
    policy = RateLimitPolicy(name="api", per_user=True)
    call = make_call(search, "q")
    assert policy.key(call) is None
    result = decision(regorus, [policy], call)
    assert result.decision == "deny"
    assert result.reasons == ("rate_limit.no_user:api",)


def test_counts_decide_in_rego(regorus: Engine) -> None:
    policy = RateLimitPolicy(name="api", max_calls=2, window_seconds=60, burst_size=1)
    call = make_call(search, "q")
    assert decision(regorus, [policy], call, facts=policy.fact(2)).allowed
    over = decision(regorus, [policy], call, facts=policy.fact(3))
    assert over.reasons == ("rate_limit.exceeded:api",)
    missing = decision(regorus, [policy], call)
    assert missing.reasons == ("rate_limit.missing_fact:api",)


def test_minimal_input_allow_and_deny(regorus: Engine) -> None:
    policy = RateLimitPolicy(name="r", max_calls=1, per_user=True)
    subject = {"user_id": "u"}
    ok = minimal_input(policy.entry(), subject=subject, facts=policy.fact(0))
    assert regorus.evaluate("governor.decision", ok)["decision"] == "allow"
    full = minimal_input(policy.entry(), subject=subject, facts=policy.fact(1))
    assert regorus.evaluate("governor.decision", full)["reasons"] == ["rate_limit.exceeded:r"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_calls": -1}, "max_calls must be a whole number >= 0, got -1"),
        ({"max_calls": 1.5}, "max_calls must be a whole number >= 0"),
        ({"window_seconds": 0}, "window_seconds must be a whole number >= 1"),
        ({"per_user": "yes"}, "per_user must be true or false"),
        ({"burst_size": -2}, "burst_size must be a whole number >= 0"),
        ({"user_key": 3}, "user_key must be a non-empty string"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"RateLimitPolicy\(name='r'\): " + message):
        RateLimitPolicy(name="r", **kwargs)


def test_unnamed_policies_are_named_by_class_in_messages() -> None:
    with pytest.raises(ConfigurationError, match=r"^RateLimitPolicy: max_calls"):
        RateLimitPolicy(max_calls=-1)
