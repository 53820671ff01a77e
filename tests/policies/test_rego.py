"""governor/policies/rego.py: a user package joins the decision through the real engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from governor.bundle import load_paths, standard_library_path
from governor.engine import opa_lib
from governor.engine.base import Engine
from governor.engine.opa_lib import OpaLibEngine
from governor.engine.regorus import RegorusEngine
from governor.errors import ConfigurationError
from governor.policies import PolicyPhase, RegoPolicy, ValidationPolicy
from tests.policies._support import decision, make_call

PAYMENTS = """package governor.policies.payments

import data.governor.lib.policy as lib

deny contains lib.violation(e, "too_large", "Payments above the cap are refused.") if {
	some e in lib.entries("payments")
	input.args.amount > e.params.cap
}

warn contains "Payment to a new account." if {
	input.args.account == "NEW"
}

audit_tags contains "payments"
"""

ACME = """package acme.payments

deny contains sprintf("account %s is blocked", [input.args.account]) if {
	input.args.account in {"BLOCKED"}
}

confirm contains {
	"policy": "acme", "type": "acme", "code": "review", "message": "Large payment.",
	"approval": {"approvers": ["risk"], "stages": [["risk"]], "timeout_seconds": 60, "quorum": 1},
} if input.args.amount > 1000
"""


def transfer(amount: int, account: str) -> None:
    """A governed function."""


def engines(tmp_path: Path, files: dict[str, str]) -> list[Engine]:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    bundle = load_paths([standard_library_path(), tmp_path])
    built: list[Engine] = [RegorusEngine(bundle)]
    if opa_lib.available():
        built.append(OpaLibEngine(bundle))
    return built


def test_entry_type_is_the_last_segment_and_params_pass_through() -> None:
    policy = RegoPolicy(package="acme.payments", params={"cap": 100})
    assert policy.entry() == {"type": "payments", "name": "payments", "params": {"cap": 100}}
    assert policy.decision_package == "governor.policies.payments"
    explicit = RegoPolicy(package="acme.v2", name="p", type="payments2", phase="both")
    assert explicit.entry() == {"type": "payments2", "name": "p", "params": {}}
    assert explicit.phase is PolicyPhase.BOTH


def test_a_user_package_under_governor_policies_denies_and_allows(tmp_path: Path) -> None:
    policy = RegoPolicy(package="governor.policies.payments", params={"cap": 100})
    assert policy.adapter() is None
    for engine in engines(tmp_path, {"payments.rego": PAYMENTS}):
        ok = decision(engine, [policy], make_call(transfer, 50, "A"))
        assert ok.decision == "allow", engine
        assert "payments" in ok.audit["tags"]
        denied = decision(engine, [policy], make_call(transfer, 500, "A"))
        assert denied.decision == "deny"
        assert denied.reasons == ("payments.too_large:payments",)
        warned = decision(engine, [policy], make_call(transfer, 5, "NEW"))
        assert warned.decision == "allow" and warned.reasons == ("payments.warning:payments",)


def test_an_inactive_user_package_does_not_contribute(tmp_path: Path) -> None:
    for engine in engines(tmp_path, {"payments.rego": PAYMENTS}):
        other = ValidationPolicy(name="v")
        assert decision(engine, [other], make_call(transfer, 500, "A")).allowed


def test_a_package_elsewhere_joins_through_its_adapter(tmp_path: Path) -> None:
    policy = RegoPolicy(package="acme.payments", name="acme")
    adapter = policy.adapter()
    assert adapter is not None and adapter.splitlines()[1] == "package governor.policies.payments"
    files = {"acme.rego": ACME, "adapter.rego": adapter}
    for engine in engines(tmp_path, files):
        assert decision(engine, [policy], make_call(transfer, 5, "A")).allowed
        blocked = decision(engine, [policy], make_call(transfer, 5, "BLOCKED"))
        assert blocked.decision == "deny"
        assert blocked.reasons == ("payments.denied:payments",)
        review = decision(engine, [policy], make_call(transfer, 5000, "A"))
        assert review.decision == "confirm"
        assert review.approval["approvers"] == ["risk"]


def test_without_the_adapter_a_package_elsewhere_is_not_seen(tmp_path: Path) -> None:
    policy = RegoPolicy(package="acme.payments")
    for engine in engines(tmp_path, {"acme.rego": ACME}):
        assert decision(engine, [policy], make_call(transfer, 5, "BLOCKED")).allowed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"package": "acme.validation"}, "type 'validation' is a standard policy type"),
        ({"package": "acme.pay-ments"}, "package must be a dotted Rego package name"),
        (
            {"package": "governor.policies.a.b"},
            "package .governor.policies.a.b. is under governor.policies, so it must be exactly",
        ),
        ({"package": "acme.x", "type": "bad type"}, "type must be a Rego identifier"),
        ({"package": "acme.x", "params": [1]}, "params must be an object"),
        ({"package": "acme.x", "params": {"when": object()}}, r"params.when must be JSON"),
        ({"package": ""}, "package must be a non-empty string"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"RegoPolicy\(name='r'\): " + message):
        RegoPolicy(name="r", **kwargs)


def test_the_adapter_forwards_a_boolean_deny_rule(tmp_path: Path) -> None:
    source = "package acme.limits\n\ndeny if input.args.amount > 5\n"
    policy = RegoPolicy(package="acme.limits")
    adapter = policy.adapter()
    assert adapter is not None
    for engine in engines(tmp_path, {"limits.rego": source, "adapter.rego": adapter}):
        assert decision(engine, [policy], make_call(transfer, 5, "A")).allowed
        denied = decision(engine, [policy], make_call(transfer, 6, "A"))
        assert denied.reasons == ("limits.denied:limits",)
