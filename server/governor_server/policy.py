"""From a wire request to a decision: build the Rego input, decide once, present the outcome.

Python gathers the facts and Rego decides (ARCHITECTURE §1): `decision_input` builds the input of
`data.governor.decision` (rego/README.md) from the request and the caller's organisation and
budget; `present` turns the `Decision` into the wire response, applying the redactions to
`raw_text` so that `raw_text_out` never carries a redacted value, and reporting findings by kind
and position only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from governor.decision import Decision
from governor.storage import StorageBackend, month_period

__all__ = ["apply_redactions", "budget_key", "decision_input", "present", "reasons_of"]

# Every entry with its params spelled out (the audit entry's at their defaults): the decision's
# short cut (governor.lib.combine.quiet_audit) takes entries as Python builds them, and the Rego
# audit package reads such an audit entry straight instead of resolving each default.
_AUDIT = {
    "type": "audit",
    "name": "audit",
    "params": {
        "sensitive_fields": [],
        "compliance_tags": [],
        "log_inputs": True,
        "log_outputs": True,
    },
}
_PRECHECK = {"type": "precheck", "name": "precheck", "params": {}}
_PRE_POLICIES = [_PRECHECK, {"type": "budget", "name": "monthly_spend", "params": {}}, _AUDIT]
_POST_POLICIES = [_PRECHECK, _AUDIT]


def budget_key(org_id: str, user_id: str) -> str:
    """The budget-ledger key of a user of an organisation."""
    return f"budget:{org_id}:{user_id}"


def action_kind(tool: str) -> str:
    """`model.*` is a model call, `file.*` a file; anything else is a tool (tool rules apply)."""
    family = tool.split(".", 1)[0]
    return {"model": "model", "file": "file"}.get(family, "tool")


def decision_input(
    *,
    phase: str,
    org_id: str,
    user_id: str,
    tool: str,
    scope: str | None,
    raw_text: str,
    tags: Sequence[str] = (),
    payload: Mapping[str, Any] | None = None,
    store: StorageBackend | None = None,
) -> dict[str, Any]:
    """The input document (version 1) for one precheck (`phase="pre"`) or postcheck (`"post"`).

    In the pre phase the user's monthly budget is a fact: what the ledger holds for the user this
    month (limit from the bundle's `budget.default_monthly_limit` until per-user limits exist).
    """
    facts: dict[str, Any] = {"now": time.time_ns()}
    if phase == "pre" and store is not None:
        start, end = month_period()
        totals = store.usage_totals(budget_key(org_id, user_id), start, end)
        facts["budget"] = {
            "limit": None,
            "spent": totals["spent"],
            "reserved": totals["reserved"],
            "estimated_cost": 0,
            "currency": "USD",
        }
    args = (
        dict(payload.get("args", {})) if payload and isinstance(payload.get("args"), dict) else {}
    )
    return {
        "version": 1,
        "phase": phase,
        "action": {"kind": action_kind(tool), "name": tool, "scope": scope, "tags": list(tags)},
        "subject": {"org_id": org_id, "user_id": user_id, "roles": [], "permissions": []},
        "args": args,
        "raw_text": raw_text,
        "payload": dict(payload or {}),
        "policies": _PRE_POLICIES if phase == "pre" else _POST_POLICIES,
        "facts": facts,
    }


def apply_redactions(text: str, redactions: Sequence[Mapping[str, Any]]) -> str:
    """`text` with every `raw_text` redaction's span replaced (code-point offsets, end exclusive).

    Overlapping spans are merged into the first one's replacement, so no part of either survives.
    """
    spans = sorted(
        (int(r["start"]), int(r["end"]), str(r.get("replacement") or f"[REDACTED_{r['kind']}]"))
        for r in redactions
        if r.get("path") == "raw_text"
    )
    out: list[str] = []
    cursor = 0
    for start, end, replacement in spans:
        if end <= cursor:  # inside a span already replaced
            continue
        if start < cursor:  # overlaps the previous one: extend it
            cursor = end
            continue
        out.append(text[cursor:start])
        out.append(replacement)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def reasons_of(decision: Decision) -> list[str]:
    """The policy's reasons plus `pii.redacted:<kind>` per redacted kind (kinds, never values)."""
    kinds = sorted({str(r.get("kind")) for r in decision.redactions})
    return list(decision.reasons) + [f"pii.redacted:{kind}" for kind in kinds]


def present(decision: Decision, raw_text: str, decision_id: str) -> dict[str, Any]:
    """The §4.5 response body (both client families) for `decision` over `raw_text`.

    `raw_text_out`: the input on allow, the redacted text on redact and confirm, `""` on deny.
    A confirm carries `requiresConfirmation: true` and `confirmationUrl: null` here; the caller
    (`routers/checks.py`) creates the confirmation and fills in its URL and
    `metadata.correlationId`.
    """
    if decision.decision == "deny":
        text_out = ""
    elif decision.redactions:
        text_out = apply_redactions(raw_text, decision.redactions)
    else:
        text_out = raw_text
    metadata: dict[str, Any] = {
        "policyId": decision.revision,
        "decisionId": decision_id,
        "engine": decision.engine,
        "redactions": [
            {"kind": r.get("kind"), "start": r.get("start"), "end": r.get("end")}
            for r in decision.redactions
        ],
    }
    if decision.decision == "confirm":
        approval = decision.approval
        metadata["approval"] = {
            "approvers": list(approval.get("approvers", [])),
            "timeoutSeconds": approval.get("timeout_seconds"),
            "quorum": approval.get("quorum"),
        }
    return {
        "decision": decision.decision,
        "reasons": reasons_of(decision),
        "metadata": metadata,
        "requiresConfirmation": decision.decision == "confirm",
        "confirmationUrl": None,
        "raw_text_out": text_out,
        "policy_id": decision.revision,
        "ts": int(time.time()),
    }
