# The decision: the only entrypoint Python evaluates (`data.governor.decision`).
#
# One rule whose value is the whole contract document (rego/README.md), so that an engine can
# evaluate it as a rule (regorus `eval_rule`) rather than as a package. Nothing else is a rule
# of package `governor`; the fields are computed in governor.lib.decision, from what
# governor.lib.combine collects.
#
# It decides nothing by itself. It combines the partial sets `deny`, `confirm`, `redact`, `warn`,
# `audit_mask` and `audit_tags` of the ACTIVE packages under data.governor.policies, and checks
# the input envelope (version 1, phase "pre"|"post", `policies` a list of {type, name?, params?},
# `facts` and `subject` objects when present). A malformed envelope is a deny with reason
# `input.invalid:<field>`.
#
# A package contributes when input.policies names its type; audit always (its config
# `always_mask` / `always_tags` apply without an audit policy). The seven standard packages
# (validation, authorization, rate_limit, budget, approval, audit, precheck) are read through
# static references; a user package `governor.policies.<name>` joins, generically, only when
# `<name>` is the type of an entry of input.policies. A package whose type no entry names is not
# evaluated at all.
#
# Speed on regorus (see rego/README.md): other packages' rules are referenced by full path, never
# through an import (regorus would evaluate the whole imported package), and the common cases
# come first: the commonest (an input as @govern sends it, with audit and rate_limit entries at
# most, nothing to warn about or deny) is recognised by one function,
# governor.lib.combine.quiet_audit, that calls the packages' own functions; then a precheck
# whose only findings are PII to redact or allow (governor.lib.combine.quiet_redact); then any
# other case where nothing denies, confirms, warns or redacts (governor.lib.combine.quiet).
#
# Elements a package may contribute:
#   deny, confirm, warn: {policy, type, code, message}, plus optionally `detail` (the part of the
#       reason after the colon; default: `policy`) and, for confirm, `approval` {approvers,
#       stages, timeout_seconds, quorum}. A plain string is accepted too (code "denied",
#       "confirm" or "warning", the package's name as policy and type, the string as message),
#       and so is a boolean rule that is true (`deny if { ... }`).
#   redact: {path, start, end, kind, replacement}
#   audit_mask, audit_tags: strings
#
# The document (always defined, whatever the input), and nothing else:
#   decision    "deny" > "confirm" > "redact" > "allow"
#   reasons     sorted, unique "<type>.<code>:<detail>" of every deny, confirm and warn element
#   violations  [{policy, type, code, message}] of the same elements (warnings included),
#               ordered by reason
#   approval    {required, approvers, stages, timeout_seconds, quorum}. When the decision is
#               confirm: the union of the confirm elements' approvers (sorted), their stages
#               concatenated (ordered by reason), the smallest timeout and the largest quorum
#               (at least 1); a timeout of 0 means no element set one. Otherwise
#               {required: false, approvers: [], stages: [], timeout_seconds: 0, quorum: 0}.
#   redactions  [{path, start, end, kind, replacement}] sorted by path, then start
#   audit       {tags, mask}: sorted, unique
#
# Reads no data.governor.config key.
package governor

# The common cases first: when nothing denies, confirms, warns or redacts, only the audit field
# needs computing, by one function in the commonest case (governor.lib.combine.quiet_audit);
# PII that is only redacted or allowed, by another (governor.lib.combine.quiet_redact); else by
# the general rules (which give the same document in those cases).
decision := {
	"decision": "allow",
	"reasons": [],
	"violations": [],
	"approval": {"required": false, "approvers": [], "stages": [], "timeout_seconds": 0, "quorum": 0},
	"redactions": [],
	"audit": audit,
} if {
	audit := data.governor.lib.combine.quiet_audit(input.policies)
} else := document if {
	document := data.governor.lib.combine.quiet_redact(input.policies)
} else := {
	"decision": "allow",
	"reasons": [],
	"violations": [],
	"approval": data.governor.lib.decision.no_approval,
	"redactions": [],
	"audit": data.governor.lib.decision.audit,
} if {
	data.governor.lib.combine.quiet
} else := {
	"decision": data.governor.lib.decision.outcome,
	"reasons": data.governor.lib.decision.reasons,
	"violations": data.governor.lib.decision.violations,
	"approval": data.governor.lib.decision.approval,
	"redactions": data.governor.lib.decision.redactions,
	"audit": data.governor.lib.decision.audit,
}
