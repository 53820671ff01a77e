"""governor/policies/base.py: phases, the custom-check requirement, entries by default."""

from __future__ import annotations

import pytest

from governor.errors import ConfigurationError
from governor.policies import AuditPolicy, Policy, PolicyPhase, RateLimitPolicy


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pre", PolicyPhase.PRE_EXECUTION),
        ("PRE_EXECUTION", PolicyPhase.PRE_EXECUTION),
        ("post", PolicyPhase.POST_EXECUTION),
        ("Post_Execution", PolicyPhase.POST_EXECUTION),
        ("both", PolicyPhase.BOTH),
        (PolicyPhase.PRE, PolicyPhase.PRE_EXECUTION),
        (PolicyPhase.POST, PolicyPhase.POST_EXECUTION),
    ],
)
def test_phase_accepts_the_0_2_0_names_and_short_strings(value: str, expected: PolicyPhase) -> None:
    assert PolicyPhase(value) is expected


def test_unknown_phase_is_a_configuration_error_naming_phase() -> None:
    with pytest.raises(ConfigurationError, match=r"AuditPolicy\(name='a'\): phase must be"):
        AuditPolicy(name="a", phase="sometimes")


def test_applies_follows_the_phase() -> None:
    audit = AuditPolicy()
    assert audit.applies("pre") and audit.applies("post")
    limit = RateLimitPolicy()
    assert limit.applies("pre") and not limit.applies("post")


def test_default_name_is_the_class_name_and_empty_names_are_refused() -> None:
    assert RateLimitPolicy().name == "RateLimitPolicy"
    with pytest.raises(ConfigurationError, match="name must be a non-empty string"):
        RateLimitPolicy(name="  ")


def test_a_policy_subclass_without_type_or_evaluate_is_refused() -> None:
    class Nothing(Policy):
        pass

    with pytest.raises(ConfigurationError, match="must override"):
        Nothing()


def test_entries_default_to_the_single_entry() -> None:
    policy = RateLimitPolicy(name="api", max_calls=5)
    assert policy.entries() == [policy.entry()]
    assert policy.entries({"anything": 1}) == [policy.entry()]


def test_standard_policies_do_not_evaluate_in_python() -> None:
    import asyncio

    with pytest.raises(NotImplementedError, match="governor.policies.rate_limit"):
        asyncio.run(RateLimitPolicy().evaluate("e", "f", {}))
