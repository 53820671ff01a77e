"""governor/policies/precheck.py: settings checked in Python, decided in Rego."""

from __future__ import annotations

from typing import Any

import pytest

from governor.engine.base import Engine
from governor.errors import ConfigurationError
from governor.policies import PrecheckPolicy
from tests.policies._support import minimal_input


def test_entry_params_are_the_settings_given() -> None:
    policy = PrecheckPolicy(tools={"deny": ["shell.*"]}, pii={"actions": {"email": "redact"}})
    assert policy.entry() == {
        "type": "precheck",
        "name": "precheck",
        "params": {"tools": {"deny": ["shell.*"]}, "pii": {"actions": {"email": "redact"}}},
    }
    assert PrecheckPolicy().entry() == {"type": "precheck", "name": "precheck", "params": {}}


def test_tool_lists_and_pii_decide_in_rego(regorus: Engine) -> None:
    entry = PrecheckPolicy(
        tools={"deny": ["shell.*"], "confirm": ["payments.*"]},
        pii={"actions": {"email": "redact"}},
    ).entry()
    tool = {"kind": "tool", "name": "shell.exec", "scope": "", "tags": []}
    denied = regorus.evaluate("governor.decision", minimal_input(entry, action=tool))
    assert denied["reasons"] == ["precheck.tool_denied:shell.exec"]
    tool["name"] = "search.web"
    allowed = regorus.evaluate("governor.decision", minimal_input(entry, action=tool))
    assert allowed["decision"] == "allow"
    text = minimal_input(entry, raw_text="write to ann@example.com")
    redacted = regorus.evaluate("governor.decision", text)
    assert redacted["decision"] == "redact"
    assert redacted["redactions"][0]["kind"] == "email"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tool": {}}, r"unknown setting 'tool'; did you mean 'tools'\?"),
        ({"tools": {"alow": []}}, r"unknown setting 'tools.alow'; did you mean 'tools.allow'\?"),
        ({"tools": {"deny": "shell"}}, "tools.deny must be a list of strings"),
        ({"tools": {"default": "maybe"}}, "tools.default must be one of allow, confirm, deny"),
        ({"pii": {"actions": {"email": "hide"}}}, "pii.actions.email must be one of"),
        ({"pii": {"scan_args": 1}}, "pii.scan_args must be true or false"),
        ({"approval": {"quorum": 0}}, "approval.quorum must be a positive whole number"),
        ({"approval": {"stages": ["a"]}}, "approval.stages must be a list of lists"),
        ({"pii": {"scope_actions": {"eu.*": {"email": "nope"}}}}, r"pii.scope_actions.eu.\*.email"),
    ],
)
def test_bad_settings_name_the_setting(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"PrecheckPolicy\(name='precheck'\): " + message):
        PrecheckPolicy(**settings)
