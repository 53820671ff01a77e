package governor.policies_test.audit

_audit(name, params) := {"type": "audit", "name": name, "params": params}

_in(policies) := {"version": 1, "phase": "pre", "policies": policies}

_decide(policies) := d if {
	d := data.governor.decision with input as _in(policies) with data.governor.config as {}
}

test_sensitive_fields_are_masked_and_tags_added if {
	d := _decide([_audit("sox", {"sensitive_fields": ["card_number", "args.customer.ssn"], "compliance_tags": ["SOX", "PCI-DSS"]})])
	d.audit == {"tags": ["PCI-DSS", "SOX"], "mask": ["args.customer.ssn", "card_number"]}
	d.decision == "allow"
	d.reasons == []
}

test_inputs_and_outputs_are_logged_by_default if {
	_decide([_audit("a", {})]).audit == {"tags": [], "mask": []}
	_decide([_audit("a", {"log_inputs": true, "log_outputs": true})]).audit.mask == []
}

test_log_inputs_false_masks_the_arguments_and_raw_request if {
	_decide([_audit("a", {"log_inputs": false})]).audit.mask == ["args", "payload", "raw_text"]
}

test_log_outputs_false_masks_the_result if {
	_decide([_audit("a", {"log_outputs": false})]).audit.mask == ["output"]
}

test_always_mask_and_always_tags_apply_without_an_audit_policy if {
	cfg := {"audit": {"always_mask": ["password", "api_key", "token", "secret", "ssn", 7], "always_tags": ["governor"]}}
	d := data.governor.decision with input as _in([]) with data.governor.config as cfg
	d.audit == {"tags": ["governor"], "mask": ["api_key", "password", "secret", "ssn", "token"]}
	d.decision == "allow"
}

test_config_and_params_are_merged_without_duplicates if {
	cfg := {"audit": {"always_mask": ["password", "ssn"]}}
	ps := [_audit("a", {"sensitive_fields": ["ssn", "iban"]}), _audit("b", {"sensitive_fields": ["iban"], "compliance_tags": ["GDPR"]})]
	d := data.governor.decision with input as _in(ps) with data.governor.config as cfg
	d.audit == {"tags": ["GDPR"], "mask": ["iban", "password", "ssn"]}
}

test_audit_never_changes_the_decision_even_when_misconfigured if {
	d := _decide([_audit("a", {"sensitive_fields": "password", "compliance_tags": ["SOX", 5], "log_inputs": "no", "log_outputs": 0})])
	d.decision == "allow"
	d.reasons == [
		"audit.invalid_param:a.compliance_tags",
		"audit.invalid_param:a.log_inputs",
		"audit.invalid_param:a.log_outputs",
		"audit.invalid_param:a.sensitive_fields",
	]
	d.audit == {"tags": ["SOX"], "mask": []}
}

test_audit_applies_after_the_call_too if {
	inp := {"version": 1, "phase": "post", "policies": [_audit("a", {"sensitive_fields": ["token"]})]}
	data.governor.decision.audit.mask == ["token"] with input as inp with data.governor.config as {}
}

test_audit_survives_a_deny_from_another_policy if {
	ps := [_audit("a", {"compliance_tags": ["SOX"]}), {"type": "rate_limit", "name": "r", "params": {}}]
	d := _decide(ps)
	d.decision == "deny"
	d.audit.tags == ["SOX"]
}

test_entries_of_other_types_are_ignored if {
	_decide([{"type": "budget", "name": "a", "params": {"sensitive_fields": ["x"], "limit": 10}}]).audit.mask == []
}

# --- the common case, read straight from the input ----------------------------------------------

# What AuditPolicy sends: the four parameters.
_full(name, fields, tags, log_inputs, log_outputs) := _audit(name, {
	"sensitive_fields": fields,
	"compliance_tags": tags,
	"log_inputs": log_inputs,
	"log_outputs": log_outputs,
})

test_full_entries_are_read_straight_from_the_input if {
	ps := [_full("a", ["card"], ["SOX"], false, true), _full("b", ["card", "iban"], ["GDPR"], true, false)]
	data.governor.policies.audit._plain with input as _in(ps)
	d := _decide(ps)
	d.audit == {"tags": ["GDPR", "SOX"], "mask": ["args", "card", "iban", "output", "payload", "raw_text"]}
	d.reasons == []
}

# The short cut gives what the general rules give, with and without config, and leaves every
# entry it cannot read straight to them.
test_the_short_cut_and_the_general_rules_agree if {
	cfg := {"audit": {"always_mask": ["password", 7], "always_tags": ["SOC2"]}}
	plain := [
		[],
		[_full("a", [], [], true, true)],
		[_full("a", ["card", "args.customer.ssn"], ["SOX"], false, false), _full("b", ["card"], ["GDPR"], true, false)],
		[_full("a", ["x"], [], true, true), {"type": "rate_limit", "name": "r", "params": {}}],
	]
	not_plain := [
		[_full("a", ["x"], [], true, true), "not an entry"],
		[_audit("a", {})],
		[_audit("a", "not params")],
		[_full("a", "card", [], true, true)],
		[_full("a", [1], [], true, true)],
		[_full("a", [], "SOX", true, true)],
		[_full("a", [], ["SOX", 2], true, true)],
		[_full("a", [], [], "no", true)],
		[_full("a", [], [], true, null)],
	]
	every c in [{}, cfg] {
		every ps in plain {
			data.governor.policies.audit._plain with input as _in(ps) with data.governor.config as c
			_agree(ps, c)
		}
		every ps in not_plain {
			not data.governor.policies.audit._plain with input as _in(ps) with data.governor.config as c
			_agree(ps, c)
		}
	}
}

_agree(ps, c) if {
	inp := _in(ps)
	data.governor.policies.audit.audit_mask == data.governor.policies.audit._masks with input as inp with data.governor.config as c
	data.governor.policies.audit.audit_tags == data.governor.policies.audit._tags with input as inp with data.governor.config as c
	data.governor.policies.audit.warn == data.governor.policies.audit._warnings with input as inp with data.governor.config as c
}
