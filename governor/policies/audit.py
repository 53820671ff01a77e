"""`AuditPolicy`: what the audit record masks and which compliance tags it carries.

Rego package `governor.policies.audit` (both phases; never changes the decision). Entry params:
`{sensitive_fields, compliance_tags, log_inputs, log_outputs}`. Rego answers with
`audit.mask` and `audit.tags` in the decision, which the executor applies to the audit record
(and to snapshots and events). `custom_logger` (0.2.0) is called by the executor with each
finished, masked audit record (`log(record)`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from governor.policies._checks import (
    bool_param,
    callable_param,
    resolve,
    str_list,
    where,
)
from governor.policies.base import Policy, PolicyPhase


class AuditPolicy(Policy):
    """Audit settings: masked fields, compliance tags, whether inputs/outputs are recorded."""

    policy_type = "audit"
    #: The audit Rego package reads only its entries' parameters and `data.governor.config`,
    #: never `input.output` or `input.phase`: its answer after the call equals its answer
    #: before it. So when it applies in both phases (the default) and no other policy applies
    #: after the call, the executor takes its post-phase answer (masks, tags) from the pre
    #: decision instead of running a second engine evaluation. A post-only AuditPolicy is
    #: still evaluated after the call (its entry is not in the pre evaluation).
    reads_output = False

    def __init__(
        self,
        name: str | None = None,
        phase: PolicyPhase | str = PolicyPhase.BOTH,
        log_inputs: bool = True,
        log_outputs: bool = True,
        sensitive_fields: list[str] | None = None,
        compliance_tags: list[str] | None = None,
        custom_logger: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        super().__init__(name=name, phase=phase)
        owner = where("AuditPolicy", name)
        self.log_inputs = bool_param(owner, "log_inputs", log_inputs)
        self.log_outputs = bool_param(owner, "log_outputs", log_outputs)
        self.sensitive_fields = str_list(owner, "sensitive_fields", sensitive_fields)
        self.compliance_tags = str_list(owner, "compliance_tags", compliance_tags)
        self.custom_logger = callable_param(owner, "custom_logger", custom_logger)

    def params(self) -> dict[str, Any]:
        """`{sensitive_fields, compliance_tags, log_inputs, log_outputs}`."""
        return {
            "sensitive_fields": list(self.sensitive_fields),
            "compliance_tags": list(self.compliance_tags),
            "log_inputs": self.log_inputs,
            "log_outputs": self.log_outputs,
        }

    async def log(self, record: dict[str, Any]) -> None:
        """Hand a finished (already masked) audit record to `custom_logger`, sync or async."""
        if self.custom_logger is not None:
            await resolve(self.custom_logger(record))
