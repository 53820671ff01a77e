"""governor/policies/audit.py: entries and the audit part of the decision."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from governor.engine.base import Engine
from governor.errors import ConfigurationError
from governor.policies import AuditPolicy, PolicyPhase
from tests.policies._support import decision, make_call, minimal_input


def register(user: dict[str, Any]) -> None:
    """A governed function."""


def test_entry_params_are_exactly_what_rego_reads() -> None:
    policy = AuditPolicy(
        name="a", sensitive_fields=["ssn"], compliance_tags=["SOX"], log_outputs=False
    )
    assert policy.phase is PolicyPhase.BOTH
    assert policy.entry() == {
        "type": "audit",
        "name": "a",
        "params": {
            "sensitive_fields": ["ssn"],
            "compliance_tags": ["SOX"],
            "log_inputs": True,
            "log_outputs": False,
        },
    }


def test_rego_returns_masks_and_tags_and_allows(regorus: Engine) -> None:
    policy = AuditPolicy(
        name="a", sensitive_fields=["ssn"], compliance_tags=["GDPR"], log_inputs=False
    )
    result = decision(regorus, [policy], make_call(register, {"ssn": "1"}))
    assert result.decision == "allow"
    assert result.audit["tags"] == ["GDPR"]
    assert {"ssn", "args", "raw_text", "payload"} <= set(result.audit["mask"])


def test_minimal_input_malformed_params_only_warn(regorus: Engine) -> None:
    entry = {"type": "audit", "name": "a", "params": {"log_inputs": "no"}}
    document = regorus.evaluate("governor.decision", minimal_input(entry))
    assert document["decision"] == "allow"
    assert document["reasons"] == ["audit.invalid_param:a.log_inputs"]


def test_custom_logger_gets_the_record_sync_or_async() -> None:
    seen: list[dict[str, Any]] = []

    async def alog(record: dict[str, Any]) -> None:
        seen.append(record)

    asyncio.run(AuditPolicy(custom_logger=seen.append).log({"n": 1}))
    asyncio.run(AuditPolicy(custom_logger=alog).log({"n": 2}))
    assert seen == [{"n": 1}, {"n": 2}]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"log_inputs": "no"}, "log_inputs must be true or false"),
        ({"sensitive_fields": "ssn"}, "sensitive_fields must be a list of strings"),
        ({"compliance_tags": [None]}, "compliance_tags must be a list of non-empty strings"),
        ({"custom_logger": 5}, "custom_logger must be a callable"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"AuditPolicy\(name='a'\): " + message):
        AuditPolicy(name="a", **kwargs)
