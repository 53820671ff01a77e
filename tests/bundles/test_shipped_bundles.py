"""The three shipped bundles decide what their data.json promises, identically on both engines.

Each scenario is a realistic input (rego/README.md) evaluated through `decide()` on the bundle as
`governor build` ships it (the bundle's data plus the standard library, without its tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from governor.bundle import load_bundle
from governor.decision import Decision, decide
from governor.engine import OpaLibEngine, RegorusEngine

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"


def _input(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": 1,
        "phase": "pre",
        "action": {"kind": "model", "name": "model.chat", "scope": "net.external", "tags": []},
        "subject": {"org_id": "acme", "user_id": "alice", "roles": ["member"]},
        "raw_text": "",
        "policies": [{"type": "precheck", "name": "precheck"}],
        "facts": {},
    }
    base.update(overrides)
    return base


def _tool(name: str, *tags: str) -> dict[str, Any]:
    return {"kind": "tool", "name": name, "scope": "local", "tags": list(tags)}


@pytest.fixture(scope="module", params=["development", "production", "financial-services"])
def bundle_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def engines(bundle_name: str) -> tuple[RegorusEngine, OpaLibEngine]:
    bundle = load_bundle(BUNDLES / bundle_name, include_stdlib=True)
    assert not any(path.endswith("_test.rego") for path in bundle.modules)
    return RegorusEngine(bundle), OpaLibEngine(bundle)


def _decide(engines: tuple[RegorusEngine, OpaLibEngine], inp: dict[str, Any]) -> Decision:
    regorus, opa = (decide(engine, inp) for engine in engines)
    assert regorus.decision == opa.decision
    assert regorus.reasons == opa.reasons
    assert regorus.redactions == opa.redactions
    assert not any(r.startswith("engine.unavailable") for r in regorus.reasons), regorus.reasons
    return regorus


def test_plain_chat_text_is_allowed(engines: Any) -> None:
    decision = _decide(engines, _input(raw_text="Summarise the meeting notes from Tuesday."))
    assert decision.decision == "allow"


def test_shell_exec_is_denied_everywhere(engines: Any) -> None:
    decision = _decide(engines, _input(action=_tool("shell.exec")))
    assert decision.decision == "deny"
    assert "precheck.tool_denied:shell.exec" in decision.reasons


def test_payment_tools_need_a_human(engines: Any) -> None:
    decision = _decide(engines, _input(action=_tool("payments.transfer", "payments")))
    assert decision.decision == "confirm"
    assert decision.approval["required"] is True
    assert decision.approval["approvers"]


def test_card_numbers_never_reach_the_model_unredacted(engines: Any, bundle_name: str) -> None:
    text = "Charge card 4111 1111 1111 1111 please"
    decision = _decide(engines, _input(raw_text=text))
    assert decision.decision in ("redact", "deny")
    # A reason names the kind of data, never the value itself.
    assert not any("4111" in r for r in decision.reasons)
    if bundle_name == "development":
        assert decision.decision == "redact"
        (span,) = decision.redactions
        assert text[span["start"] : span["end"]] == "4111 1111 1111 1111"


def test_development_redacts_email_and_ssn(bundle_name: str, engines: Any) -> None:
    if bundle_name != "development":
        pytest.skip("development-only promise")
    text = "Mail bob@example.com, SSN 123-45-6789."
    decision = _decide(engines, _input(raw_text=text))
    assert decision.decision == "redact"
    found = {text[r["start"] : r["end"]] for r in decision.redactions}
    assert found == {"bob@example.com", "123-45-6789"}


def test_budget_defaults_come_from_the_bundle(engines: Any) -> None:
    policies = [{"type": "budget", "name": "monthly"}]
    under = {"budget": {"spent": 1_000_000, "reserved": 0, "estimated_cost": 10_000}}
    over = {"budget": {"spent": 999_000_000, "reserved": 0, "estimated_cost": 10_000}}
    assert _decide(engines, _input(policies=policies, facts=under)).decision == "allow"
    denied = _decide(engines, _input(policies=policies, facts=over))
    assert denied.decision == "deny"
    assert "budget.exceeded:monthly" in denied.reasons


def test_audit_masks_secrets_by_default(engines: Any) -> None:
    decision = _decide(engines, _input(raw_text="hello"))
    assert {"password", "api_key", "secret"} <= set(decision.audit["mask"])


def test_governance_yaml_names_only_policy_types_the_library_has(bundle_name: str) -> None:
    known = {p.stem for p in (BUNDLES.parent / "rego/governor/policies").glob("*.rego")}
    doc = yaml.safe_load((BUNDLES / bundle_name / "governance.yaml").read_text())
    assert {entry["type"] for entry in doc["policies"]} <= known
