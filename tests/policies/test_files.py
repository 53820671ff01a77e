"""governor/policies/files.py: policy files, their schema and their error messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from governor.bundle import load_paths, standard_library_path
from governor.engine.regorus import RegorusEngine
from governor.errors import ConfigurationError
from governor.policies import (
    ApprovalPolicy,
    AuditPolicy,
    AuthorizationPolicy,
    BudgetPolicy,
    PolicyPhase,
    PrecheckPolicy,
    RateLimitPolicy,
    RegoPolicy,
    ValidationPolicy,
    load_policies_from_dict,
    load_policies_from_file,
)
from tests.policies._support import decision, make_call

ROOT = Path(__file__).resolve().parents[2]
GOVERNANCE_FILES = sorted((ROOT / "bundles").glob("*/governance.yaml"))

EVERY_TYPE = """
policies:
  - type: validation
    name: shape
    phase: both
    input_schema: {type: object, required: [amount]}
    output_schema: {type: object}
    strict: false
  - type: Authorization
    name: admins
    required_roles: [admin]
    required_permissions: [write]
    conditions: [{attribute: department, op: eq, value: finance}]
    context_key: principal
    require_approval_on_failure: true
    approvers: [boss]
    approval_timeout_seconds: 60
  - type: RATE_LIMIT
    name: api
    max_calls: 10
    window_seconds: 30
    per_user: true
    burst_size: 2
    user_key: session.user
  - type: audit
    name: audit
    phase: post
    log_inputs: false
    log_outputs: true
    sensitive_fields: [ssn]
    compliance_tags: [SOX]
  - type: approval
    name: big
    approvers: [cfo, ceo]
    timeout_seconds: 600
    on_timeout: pending
    quorum: 2
    require_reason: true
    when: [{attribute: args.amount, op: gt, value: 1000}]
    stages:
      - {name: risk, approvers: [risk], timeout_seconds: 300, quorum: 1}
  - type: budget
    name: spend
    limit: 50000000
    estimated_cost: 250000
    per_user: false
    currency: EUR
    warn_ratio_percent: 80
    reservation_ttl_seconds: 60
  - type: rego
    name: payments
    package: acme.payments
    entry_type: pay
    params: {cap: 100}
  - type: precheck
    name: precheck
    tools: {deny: ["shell.*"]}
  - type: rate_limit
    name: disabled
    enabled: false
    max_calls: 1
"""


def write(tmp_path: Path, text: str, name: str = "governance.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_type_loads_with_every_key(tmp_path: Path) -> None:
    policies = load_policies_from_file(write(tmp_path, EVERY_TYPE))
    kinds = [type(p) for p in policies]
    assert kinds == [
        ValidationPolicy,
        AuthorizationPolicy,
        RateLimitPolicy,
        AuditPolicy,
        ApprovalPolicy,
        BudgetPolicy,
        RegoPolicy,
        PrecheckPolicy,
    ]
    by_name = {p.name: p for p in policies}
    assert by_name["shape"].phase is PolicyPhase.BOTH
    assert by_name["shape"].entry()["params"]["strict"] is False
    assert isinstance(by_name["admins"], AuthorizationPolicy)
    assert by_name["admins"].context_key == "principal"
    assert by_name["api"].entry()["params"] == {
        "max_calls": 10,
        "window_seconds": 30,
        "per_user": True,
        "burst_size": 2,
    }
    assert by_name["audit"].phase is PolicyPhase.POST_EXECUTION
    big = by_name["big"]
    assert isinstance(big, ApprovalPolicy) and big.require_reason is True
    assert big.entry()["params"]["stages"] == [
        {"name": "risk", "approvers": ["risk"], "timeout_seconds": 300, "quorum": 1}
    ]
    spend = by_name["spend"]
    assert isinstance(spend, BudgetPolicy) and spend.reservation_ttl_seconds == 60
    assert spend.entry()["params"] == {
        "currency": "EUR",
        "limit": 50000000,
        "warn_ratio_percent": 80,
    }
    assert by_name["payments"].entry() == {
        "type": "pay",
        "name": "payments",
        "params": {"cap": 100},
    }
    assert "disabled" not in by_name


def test_json_files_load_the_same(tmp_path: Path) -> None:
    import yaml

    document = yaml.safe_load(EVERY_TYPE)
    path = write(tmp_path, json.dumps(document), "governance.json")
    from_json = [p.entries() for p in load_policies_from_file(path)]
    from_yaml = [p.entries() for p in load_policies_from_dict(document)]
    assert from_json == from_yaml


@pytest.mark.parametrize("path", GOVERNANCE_FILES, ids=lambda p: p.parent.name)
def test_shipped_governance_files_load_and_rego_accepts_their_params(path: Path) -> None:
    policies = load_policies_from_file(path)
    assert policies
    engine = RegorusEngine(load_paths([standard_library_path(), path.parent]))
    call = make_call(
        lambda amount, account: None,
        5,
        "DE89370400440532013000",
        subject={"user_id": "u1", "roles": ["admin"], "permissions": ["payments.transfer"]},
    )
    facts: dict[str, Any] = {
        "rate_limit": {
            p.name: p.fact(0)["rate_limit"][p.name]
            for p in policies
            if isinstance(p, RateLimitPolicy)
        },
        "budget": {"spent": 0, "reserved": 0, "estimated_cost": 0, "currency": "USD"},
    }
    result = decision(engine, policies, call, facts)
    assert not [r for r in result.reasons if "invalid" in r or "missing" in r], result.reasons
    assert result.decision in ("allow", "confirm", "redact"), result.reasons


def error(tmp_path: Path, text: str, name: str = "gov.yaml") -> str:
    with pytest.raises(ConfigurationError) as info:
        load_policies_from_file(write(tmp_path, text, name))
    return str(info.value)


def test_an_unknown_key_names_file_entry_field_and_suggests(tmp_path: Path) -> None:
    message = error(
        tmp_path,
        "policies:\n  - type: audit\n  - type: rate_limit\n    name: api\n    max_call: 1\n",
    )
    assert message.startswith(f"{tmp_path / 'gov.yaml'}: policies[1] ('api'), type rate_limit:")
    assert "unknown field 'max_call'; did you mean 'max_calls'?" in message


def test_keys_of_another_type_are_unknown(tmp_path: Path) -> None:
    message = error(tmp_path, "policies:\n  - type: audit\n    max_calls: 3\n")
    assert "policies[0], type audit: unknown field 'max_calls'" in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "{type: rate_limit, name: r, max_calls: -1}",
            "policies[0] ('r'), type rate_limit: max_calls must be a whole number >= 0, got -1",
        ),
        (
            "{type: rate_limit, name: r, window_seconds: '60'}",
            "window_seconds must be a whole number >= 1 (seconds), got '60' (str)",
        ),
        ("{type: budget, name: b, limit: 10.5}", "limit must be a whole number of micro-units"),
        ("{type: approval, name: a, on_timeout: approve}", "on_timeout 'approve' is not supported"),
        ("{type: approval, name: a, stages: [{name: s}]}", "a stage needs a name and approvers"),
        (
            "{type: validation, name: v, input_schema: 3}",
            "input_schema must be a pydantic model class",
        ),
        (
            "{type: validation, name: v, input_schema: {properties: {x: {minContains: 1}}}}",
            "minContains",
        ),
        (
            "{type: authorization, name: z, required_roles: admin}",
            "required_roles must be a list of strings",
        ),
        ("{type: rego, name: r}", "policies[0] ('r'), type rego: field package is required"),
        ("{type: precheck, tools: {alow: []}}", "did you mean 'tools.allow'?"),
        (
            "{type: rate_limit, name: r, phase: post}",
            "field phase: rate_limit policies apply before the call only",
        ),
        ("{type: audit, phase: sometimes}", "field phase must be pre, post or both"),
        ("{type: audit, enabled: 'no'}", "field enabled must be true or false"),
        ("{type: audit, name: 3}", "field name must be a non-empty string"),
        ("{type: ratelimit}", "unknown policy type 'ratelimit'; did you mean 'rate_limit'?"),
        ("{name: x}", "policies[0] ('x'): field type is required"),
        ("[audit]", "policies[0]: an entry must be a mapping"),
    ],
)
def test_bad_values_name_the_entry_and_field(tmp_path: Path, entry: str, expected: str) -> None:
    message = error(tmp_path, f"policies:\n  - {entry}\n")
    assert str(tmp_path / "gov.yaml") in message
    assert expected in message


def test_document_level_errors(tmp_path: Path) -> None:
    assert "the document is empty" in error(tmp_path, "")
    assert "unknown top-level key 'policy'; did you mean 'policies'?" in error(
        tmp_path, "policy: []\n"
    )
    assert "'policies' must be a list" in error(tmp_path, "policies: {a: 1}\n")
    assert "the top level must be a mapping" in error(tmp_path, "- a\n")
    assert "not valid YAML" in error(tmp_path, "policies: [\n")
    assert "gov.yaml:4:5: duplicate key 'max_calls'" in error(
        tmp_path, "policies:\n  - type: rate_limit\n    max_calls: 1\n    max_calls: 2\n"
    )
    assert "duplicate key 'type'" in error(
        tmp_path, '{"policies": [{"type": "a", "type": "b"}]}', "g.json"
    )
    assert "not valid JSON" in error(tmp_path, "{", "g.json")
    assert "must be YAML (.yaml, .yml) or JSON (.json)" in error(tmp_path, "", "g.toml")
    assert "no such policy file" in str(
        pytest.raises(ConfigurationError, load_policies_from_file, tmp_path / "none.yaml").value
    )


def test_names_must_be_unique(tmp_path: Path) -> None:
    message = error(
        tmp_path, "policies:\n  - {type: audit, name: a}\n  - {type: rate_limit, name: a}\n"
    )
    assert "policies[1] ('a'): field name: 'a' is already the name of policies[0]" in message


def test_a_dict_is_named_by_its_source() -> None:
    with pytest.raises(ConfigurationError, match=r"^<dict>: policies\[0\], type audit: unknown"):
        load_policies_from_dict({"policies": [{"type": "audit", "tags": []}]})
    assert load_policies_from_dict({"policies": None}) == []
