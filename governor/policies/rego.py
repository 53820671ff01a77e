"""`RegoPolicy`: a policy written by the user in Rego.

A user package joins the decision the way the standard ones do. `data.governor.decision` reads
the package `governor.policies.<type>` when `input.policies` has an entry of that `<type>`, and
takes its partial sets:

    deny contains {"policy": ..., "type": ..., "code": ..., "message": ...}   (or a string, or
    confirm contains {..., "approval": {approvers, stages, timeout_seconds, quorum}}   `deny if`)
    redact contains {"path", "start", "end", "kind", "replacement"}
    warn contains {...}
    audit_mask contains "field"          audit_tags contains "TAG"

The entry is `{"type": <type>, "name": <name>, "params": <params>}`; the package finds its entries
with `data.governor.lib.policy.entries("<type>")` and reads its own params. `<type>` is the last
segment of `package` (or `type=`). So:

    # acme_payments.rego, loaded with the standard library
    package governor.policies.payments
    import data.governor.lib.policy as lib
    deny contains lib.violation(e, "too_large", "Payments above the cap need a manager.") if {
        some e in lib.entries("payments")
        input.args.amount > e.params.cap
    }

    RegoPolicy(package="governor.policies.payments", params={"cap": 10000})
    RegoPolicy(package="acme.payments", params={"cap": 10000})   # same type, "payments"

A package kept elsewhere (`package acme.payments`) is not under `governor.policies`, so the
decision does not see it by itself: load `adapter()`'s module beside it, a small package
`governor.policies.payments` that forwards `data.acme.payments`'s sets. A type must not be one of
the standard types (validation, authorization, rate_limit, budget, approval, audit, precheck).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from governor.errors import ConfigurationError
from governor.policies._checks import json_value, str_param, where
from governor.policies.base import Policy, PolicyPhase

STANDARD_TYPES = (
    "validation",
    "authorization",
    "rate_limit",
    "budget",
    "approval",
    "audit",
    "precheck",
)
_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RULES = ("deny", "confirm", "warn", "redact", "audit_mask", "audit_tags")


class RegoPolicy(Policy):
    """A user Rego package `governor.policies.<type>` (see the module docstring)."""

    def __init__(
        self,
        package: str,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        phase: PolicyPhase | str = PolicyPhase.PRE_EXECUTION,
        type: str | None = None,
    ) -> None:
        owner = where("RegoPolicy", name)
        self.package = str_param(owner, "package", package).strip()
        segments = self.package.split(".")
        if self.package.startswith("data."):
            segments = segments[1:]
            self.package = ".".join(segments)
        if not all(_SEGMENT.match(s) for s in segments):
            raise ConfigurationError(
                f"{owner}: package must be a dotted Rego package name such as 'acme.payments', "
                f"got {package!r}"
            )
        entry_type = segments[-1] if type is None else str_param(owner, "type", type)
        if not _SEGMENT.match(entry_type):
            raise ConfigurationError(
                f"{owner}: type must be a Rego identifier (letters, digits, _), got {entry_type!r}"
            )
        if entry_type in STANDARD_TYPES:
            raise ConfigurationError(
                f"{owner}: type {entry_type!r} is a standard policy type; its entries would be "
                f"read by governor.policies.{entry_type}. Give the package another name or type="
            )
        if segments[:2] == ["governor", "policies"] and segments != [
            "governor",
            "policies",
            entry_type,
        ]:
            raise ConfigurationError(
                f"{owner}: package {self.package!r} is under governor.policies, so it must be "
                f"exactly governor.policies.{entry_type}"
            )
        self.entry_type = entry_type
        self.policy_type = entry_type  # type: ignore[misc]  # per instance: the user's type
        super().__init__(name=name or entry_type, phase=phase)
        if params is not None and not isinstance(params, Mapping):
            raise ConfigurationError(f"{owner}: params must be an object (a dict), got {params!r}")
        self._params: dict[str, Any] = json_value(owner, "params", dict(params or {}))

    @property
    def decision_package(self) -> str:
        """The package the decision reads: `governor.policies.<type>`."""
        return f"governor.policies.{self.entry_type}"

    def params(self) -> dict[str, Any]:
        """The user's params, as given (JSON)."""
        return dict(self._params)

    def adapter(self) -> str | None:
        """Rego source of a package `governor.policies.<type>` that forwards the sets of
        `package`, for a user package kept outside `governor.policies`; None when `package` is
        already `governor.policies.<type>`. Load it with the user's module."""
        if self.package == self.decision_package:
            return None
        lines = [
            f"# Generated by governor.RegoPolicy: forwards data.{self.package} to the decision.",
            f"package {self.decision_package}",
            "",
        ]
        lines += [
            "# Rules are read by name (object.get), so OPA's type checker accepts a set rule and",
            "# a boolean rule (`deny if {...}`) alike.",
            f"_rule(name) := object.get(data.{self.package}, name, null)",
            "",
        ]
        for rule in _RULES:
            lines += [f'{rule} contains x if some x in _members(_rule("{rule}"))', ""]
            if rule in ("deny", "confirm", "warn"):
                lines += [f'{rule} contains true if _rule("{rule}") == true', ""]
        lines += [
            "_members(v) := v if is_set(v)",
            "",
            "else := v if is_array(v)",
            "",
            "else := set()",
            "",
        ]
        return "\n".join(lines)
