package governor.lib.decision_test

import data.governor.lib.decision

# One user package, acme, stands in for every contributor (named by the input, so it is active).
_in := {"version": 1, "phase": "pre", "policies": [{"type": "acme"}]}

_v(code) := {"policy": "p", "type": "acme", "code": code, "message": "m"}

_r := {"path": "raw_text", "start": 0, "end": 3, "kind": "email", "replacement": "[EMAIL]"}

test_outcome_follows_the_precedence if {
	decision.outcome == "allow" with input as _in
	decision.outcome == "allow" with data.governor.policies.acme as {"warn": {_v("w")}} with input as _in
	decision.outcome == "redact" with data.governor.policies.acme as {"redact": {_r}} with input as _in
	decision.outcome == "confirm" with data.governor.policies.acme as {"redact": {_r}, "confirm": {_v("c")}} with input as _in
	decision.outcome == "deny" with data.governor.policies.acme as {"confirm": {_v("c")}, "deny": {_v("d")}} with input as _in
}

test_approval_is_the_empty_block_unless_the_outcome_is_confirm if {
	decision.approval == decision.no_approval with input as _in
	decision.approval == decision.no_approval with data.governor.policies.acme as {"confirm": {_v("c")}, "deny": {_v("d")}} with input as _in
	decision.approval.required == true with data.governor.policies.acme as {"confirm": {_v("c")}} with input as _in
}

# The document's short cut (nothing denies, confirms, warns or redacts) writes these fields as
# constants: the general rules must give the same values then.
test_the_general_fields_match_the_quiet_short_cut if {
	data.governor.lib.combine.quiet with input as _in
	decision.outcome == "allow" with input as _in
	decision.reasons == [] with input as _in
	decision.violations == [] with input as _in
	decision.approval == decision.no_approval with input as _in
	decision.redactions == [] with input as _in
	decision.audit == {"tags": [], "mask": []} with input as _in
}

test_the_document_is_the_fields if {
	pkgs := {"deny": {_v("d")}, "warn": {_v("w")}, "redact": {_r}, "audit_tags": {"T"}}
	data.governor.decision == {
		"decision": decision.outcome,
		"reasons": decision.reasons,
		"violations": decision.violations,
		"approval": decision.approval,
		"redactions": decision.redactions,
		"audit": decision.audit,
	} with data.governor.policies.acme as pkgs with input as _in
	not data.governor.lib.combine.quiet with data.governor.policies.acme as pkgs with input as _in
}
