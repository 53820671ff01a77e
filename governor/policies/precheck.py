"""`PrecheckPolicy`: tool lists, scopes and PII in the text an agent sends (the wire's precheck).

Rego package `governor.policies.precheck`. The entry's params are deep-merged over the bundle's
`data.governor.config.precheck` (params win, objects merge key by key, lists are replaced), so
`PrecheckPolicy()` uses the bundle's settings as they are. Settings:

    tools:    {allow, deny, confirm, confirm_tags: [glob], default: "allow"|"confirm"|"deny"}
    scopes:   {allowed, denied: [glob]}
    pii:      {actions: {kind: action}, default_action, scope_actions: {glob: {kind: action}},
               scan_args: bool}          action: "redact"|"deny"|"confirm"|"warn"|"allow"
    approval: {approvers: [id], stages: [[id]], timeout_seconds, quorum}
    audit_tags: [tag]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from governor.policies._checks import fail, is_int, json_value, unknown_key, where
from governor.policies.base import Policy, PolicyPhase

ACTIONS = ("allow", "warn", "redact", "confirm", "deny")
TOOL_DEFAULTS = ("allow", "confirm", "deny")

_LIST = "list"
_SCHEMA: dict[str, Any] = {
    "tools": {
        "allow": _LIST,
        "deny": _LIST,
        "confirm": _LIST,
        "confirm_tags": _LIST,
        "default": TOOL_DEFAULTS,
    },
    "scopes": {"allowed": _LIST, "denied": _LIST},
    "pii": {
        "actions": "actions",
        "default_action": ACTIONS,
        "scope_actions": "scope_actions",
        "scan_args": "bool",
    },
    "approval": {
        "approvers": _LIST,
        "stages": "stages",
        "timeout_seconds": "pos_int",
        "quorum": "pos_int",
    },
    "audit_tags": _LIST,
}

SETTINGS = tuple(_SCHEMA)


class PrecheckPolicy(Policy):
    """The precheck settings for this call (tool lists, scopes, PII), decided in Rego."""

    policy_type = "precheck"

    def __init__(
        self,
        name: str = "precheck",
        phase: PolicyPhase | str = PolicyPhase.PRE_EXECUTION,
        **params: Any,
    ) -> None:
        super().__init__(name=name, phase=phase)
        owner = where("PrecheckPolicy", name)
        self.settings: dict[str, Any] = _check_settings(owner, params)

    def params(self) -> dict[str, Any]:
        """The settings given, to be merged over the bundle's."""
        return json_value("PrecheckPolicy", "params", self.settings)


def _check_settings(owner: str, params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key not in _SCHEMA:
            raise unknown_key(owner, key, _SCHEMA, "setting")
        out[key] = _check(owner, key, _SCHEMA[key], value)
    return out


def _check(owner: str, path: str, spec: Any, value: Any) -> Any:
    if isinstance(spec, dict):
        if not isinstance(value, Mapping):
            raise fail(owner, path, "an object", value)
        out = {}
        for key, item in value.items():
            if key not in spec:
                known = {f"{path}.{k}": v for k, v in spec.items()}
                raise unknown_key(owner, f"{path}.{key}", known, "setting")
            out[key] = _check(owner, f"{path}.{key}", spec[key], item)
        return out
    if spec == _LIST:
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise fail(owner, path, "a list of strings", value)
        if not all(isinstance(v, str) for v in value):
            raise fail(owner, path, "a list of strings", value)
        return list(value)
    if isinstance(spec, tuple):
        if value not in spec:
            raise fail(owner, path, "one of " + ", ".join(spec), value)
        return value
    if spec == "bool":
        if not isinstance(value, bool):
            raise fail(owner, path, "true or false", value)
        return value
    if spec == "pos_int":
        if not is_int(value) or value < 1:
            raise fail(owner, path, "a positive whole number", value)
        return value
    if spec == "actions":
        return _actions(owner, path, value)
    if spec == "scope_actions":
        if not isinstance(value, Mapping):
            raise fail(owner, path, "an object {scope glob: {kind: action}}", value)
        return {k: _actions(owner, f"{path}.{k}", v) for k, v in value.items()}
    if spec == "stages":
        ok = isinstance(value, list | tuple) and all(
            isinstance(s, list | tuple) and all(isinstance(a, str) for a in s) for s in value
        )
        if not ok:
            raise fail(owner, path, "a list of lists of approver ids", value)
        return [list(s) for s in value]
    raise AssertionError(spec)  # pragma: no cover


def _actions(owner: str, path: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise fail(owner, path, "an object {kind: action}", value)
    for kind, action in value.items():
        if action not in ACTIONS:
            raise fail(owner, f"{path}.{kind}", "one of " + ", ".join(ACTIONS), action)
    return dict(value)
