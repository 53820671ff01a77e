# Approval: a person must approve the call before it runs (human in the loop).
#
# Applies in phase "pre" only (after the call has run there is nothing left to approve).
# Policy entries: {"type": "approval", "name": ..., "params": {...}}
#   approvers        list of approver ids, default: config `default_approvers`, else []
#   timeout_seconds  positive whole number, default: config `default_timeout_seconds`, else 3600
#   on_timeout       "reject" (an expired request denies) or "pending" (it keeps waiting),
#                    default: config `default_on_timeout`, else "reject"
#   quorum           approvals needed, positive whole number, default: config `default_quorum`,
#                    else 1; at most the number of approvers when approvers are listed
#   stages           list of {name, approvers, timeout_seconds, quorum} approved in order
#                    (stage timeout defaults to the policy's, stage quorum to 1)
#   when             attribute conditions (all must hold) under which approval is needed, e.g.
#                    [{"attribute": "args.amount", "op": "gt", "value": 10000}]; see
#                    governor.lib.conditions. Default: config `default_when`; none = always.
#                    A condition that cannot be evaluated (missing attribute, wrong type) counts
#                    as holding: approval is asked rather than skipped.
# Facts: input.facts.approval[<policy name>] = {status, approver, stage, auto_approve}
#   status: "approved" | "rejected" | "pending" | "expired" (absent = no decision yet)
#   auto_approve: true when Python's auto-approve condition let the call through
# Config read (data.governor.config.approval):
#   default_approvers, default_timeout_seconds, default_on_timeout, default_quorum, default_when
#
# Outcome: rejected -> deny approval.rejected:<name> (even with auto_approve);
#   approved or auto_approve -> nothing; expired -> deny approval.expired:<name>, or confirm when
#   on_timeout is "pending"; otherwise confirm approval.required:<name> with the approval block
#   {approvers: policy and stage approvers, sorted; stages: one list of approver ids per stage
#   (without stages, [approvers] when there are approvers, else []); timeout_seconds: the
#   smallest of the policy's and its stages'; quorum: the largest of the policy's and its
#   stages'} (the contract's block has no per-stage timeout or quorum).
#   approval.invalid_fact:<name> and approval.invalid_param:<name>.<param> deny.
package governor.policies.approval

import data.governor.lib.conditions
import data.governor.lib.policy as lib

# Each entry with its settings resolved once: e.s.<param>.
_entries := {object.union(e, {"s": _settings(e)}) | some e in lib.entries("approval")} if {
	input.phase == "pre"
} else := set()

_settings(e) := {
	"approvers": lib.setting(e, "approvers", "default_approvers", []),
	"timeout_seconds": lib.setting(e, "timeout_seconds", "default_timeout_seconds", 3600),
	"on_timeout": lib.setting(e, "on_timeout", "default_on_timeout", "reject"),
	"quorum": lib.setting(e, "quorum", "default_quorum", 1),
	"stages": lib.param(e, "stages", []),
	"when": lib.setting(e, "when", "default_when", []),
}

# --- parameter checks --------------------------------------------------------------------------

_invalid contains lib.invalid_param(e, "approvers", "a list of approver ids") if {
	some e in _entries
	not lib.is_string_list(e.s.approvers)
}

_invalid contains lib.invalid_param(e, "timeout_seconds", "a positive whole number of seconds") if {
	some e in _entries
	not lib.is_pos_int(e.s.timeout_seconds)
}

_invalid contains lib.invalid_param(e, "on_timeout", "\"reject\" or \"pending\"") if {
	some e in _entries
	not e.s.on_timeout in {"reject", "pending"}
}

_invalid contains lib.invalid_param(e, "quorum", "a positive whole number, at most the approvers") if {
	some e in _entries
	not _quorum_ok(e.s.quorum, e.s.approvers)
}

_invalid contains lib.invalid_param(e, "stages", "a list of {name, approvers, timeout_seconds, quorum}") if {
	some e in _entries
	not _stages_ok(e.s.stages)
}

_invalid contains lib.invalid_param(e, "when", "a list of {attribute, op, value} conditions") if {
	some e in _entries
	not conditions.all_valid(e.s.when)
}

# A quorum can be met: a positive whole number, not above the listed approvers (if any).
_quorum_ok(q, approvers) if {
	lib.is_pos_int(q)
	not _above(q, approvers)
}

_above(q, approvers) if {
	is_array(approvers)
	count(approvers) > 0
	q > count(approvers)
}

_stages_ok(stages) if {
	is_array(stages)
	every s in stages {
		_stage_ok(s)
	}
}

_stage_ok(s) if {
	is_object(s)
	is_string(s.name)
	lib.is_string_list(s.approvers)
	count(s.approvers) > 0
	lib.is_pos_int(object.get(s, "timeout_seconds", 1))
	_quorum_ok(object.get(s, "quorum", 1), s.approvers)
}

deny contains v if some v in _invalid

_invalid_names := {v.policy | some v in _invalid}

# --- the approval state ------------------------------------------------------------------------

_statuses := {"approved", "rejected", "pending", "expired"}

# Valid entries whose `when` does not rule approval out, with their approval state as e.fact.
_needed contains object.union(e, {"fact": _fact(e.name)}) if {
	some e in _entries
	not e.name in _invalid_names
	not conditions.some_false(e.s.when)
}

_fact(name) := f if {
	f := input.facts.approval[name]
	f != null
} else := {}

_fact_ok(f) if {
	is_object(f)
	object.get(f, "status", "pending") in _statuses
	is_boolean(object.get(f, "auto_approve", false))
}

deny contains lib.violation(e, "invalid_fact", sprintf(
	"The approval state of policy %s is malformed; the call is refused.",
	[e.name],
)) if {
	some e in _needed
	not _fact_ok(e.fact)
}

# [entry, status, auto-approved] for the entries with a well-formed state.
_state contains [e, object.get(e.fact, "status", "pending"), object.get(e.fact, "auto_approve", false)] if {
	some e in _needed
	_fact_ok(e.fact)
}

deny contains lib.violation(e, "rejected", sprintf(
	"The call was rejected by an approver of policy %s.",
	[e.name],
)) if {
	some [e, "rejected", _] in _state
}

deny contains lib.violation(e, "expired", sprintf(
	"The approval request of policy %s expired without a decision; the call is refused.",
	[e.name],
)) if {
	some [e, "expired", false] in _state
	e.s.on_timeout == "reject"
}

_waiting contains e if {
	some [e, "pending", false] in _state
}

_waiting contains e if {
	some [e, "expired", false] in _state
	e.s.on_timeout == "pending"
}

confirm contains object.union(
	lib.violation(e, "required", sprintf("Policy %s requires approval before this call runs.", [e.name])),
	{"approval": _block(e.s)},
) if {
	some e in _waiting
}

# The approval block. The contract carries stages as lists of approver ids, so a stage's own
# timeout and quorum fold into the block: the smallest timeout and the largest quorum win.
_block(s) := {
	"approvers": sort({a | some a in s.approvers} | {a | some stage in s.stages; some a in stage.approvers}),
	"stages": _stage_lists(s),
	"timeout_seconds": min({s.timeout_seconds} | {t |
		some stage in s.stages
		t := object.get(stage, "timeout_seconds", s.timeout_seconds)
	}),
	"quorum": max({s.quorum} | {q | some stage in s.stages; q := object.get(stage, "quorum", 1)}),
}

# One list of approvers per stage; without stages, the approvers form the only stage.
_stage_lists(s) := [stage.approvers | some stage in s.stages] if {
	count(s.stages) > 0
} else := [s.approvers] if {
	count(s.approvers) > 0
} else := []
