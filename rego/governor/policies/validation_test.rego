package governor.policies_test.validation

_val(name, params) := {"type": "validation", "name": name, "params": params}

_order_schema := {
	"type": "object",
	"required": ["order_id", "quantity"],
	"properties": {
		"order_id": {"type": "string", "pattern": "^o-[0-9]+$"},
		"quantity": {"type": "integer", "minimum": 1},
	},
}

_result_schema := {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["ok", "failed"]}}}

_int_result := {"type": "object", "properties": {"value": {"type": "integer"}}}

_pre(policies, args) := {"version": 1, "phase": "pre", "policies": policies, "args": args}

_post(policies, output) := {"version": 1, "phase": "post", "policies": policies, "args": {}, "output": output}

_with_checks(inp, checks) := object.union(inp, {"facts": {"checks": checks}})

test_arguments_matching_the_input_schema_are_allowed if {
	inp := _pre([_val("order", {"input_schema": _order_schema})], {"order_id": "o-17", "quantity": 2})
	data.governor.decision.decision == "allow" with input as inp
}

test_arguments_violating_the_input_schema_are_denied if {
	every args in [{"order_id": "o-17"}, {"order_id": "17", "quantity": 2}, {"order_id": "o-1", "quantity": 0}] {
		d := data.governor.decision with input as _pre([_val("order", {"input_schema": _order_schema})], args)
		d.decision == "deny"
		d.reasons == ["validation.input_invalid:order"]
	}
}

test_messages_never_echo_the_rejected_values if {
	d := data.governor.decision with input as _pre([_val("order", {"input_schema": _order_schema})], {"order_id": "4111-1111-1111-1111", "quantity": 1})
	d.decision == "deny"
	every v in d.violations {
		not contains(v.message, "4111")
	}
}

test_not_strict_turns_the_failure_into_a_warning if {
	d := data.governor.decision with input as _pre([_val("order", {"input_schema": _order_schema, "strict": false})], {})
	d.decision == "allow"
	d.reasons == ["validation.input_invalid:order"]
}

test_strict_default_comes_from_config if {
	inp := _pre([_val("order", {"input_schema": _order_schema})], {})
	data.governor.decision.decision == "allow" with input as inp with data.governor.config as {"validation": {"strict": false}}
	data.governor.decision.decision == "deny" with input as inp with data.governor.config as {}
}

test_missing_arguments_are_checked_as_an_empty_object if {
	inp := {"version": 1, "phase": "pre", "policies": [_val("order", {"input_schema": _order_schema})]}
	data.governor.decision.reasons == ["validation.input_invalid:order"] with input as inp
	inp2 := {"version": 1, "phase": "pre", "policies": [_val("any", {"input_schema": {"type": "object"}})]}
	data.governor.decision.decision == "allow" with input as inp2
}

test_non_object_arguments_are_wrapped_as_value if {
	schema := {"type": "object", "properties": {"value": {"type": "array"}}}
	data.governor.decision.decision == "allow" with input as _pre([_val("v", {"input_schema": schema})], [1, 2])
	data.governor.decision.decision == "deny" with input as _pre([_val("v", {"input_schema": schema})], "text")
}

test_input_schema_is_not_applied_after_the_call if {
	inp := object.union(_post([_val("order", {"input_schema": _order_schema})], {"status": "ok"}), {"args": {}})
	data.governor.decision.decision == "allow" with input as inp
}

test_output_schema_checks_the_result_after_the_call if {
	ps := [_val("result", {"output_schema": _result_schema})]
	data.governor.decision.decision == "allow" with input as _post(ps, {"status": "ok"})
	d := data.governor.decision with input as _post(ps, {"status": "weird"})
	d.decision == "deny"
	d.reasons == ["validation.output_invalid:result"]
}

test_output_schema_is_not_applied_before_the_call if {
	data.governor.decision.decision == "allow" with input as _pre([_val("result", {"output_schema": _result_schema})], {})
}

test_non_object_results_are_wrapped_as_value if {
	ps := [_val("count", {"output_schema": _int_result})]
	data.governor.decision.decision == "allow" with input as _post(ps, 3)
	data.governor.decision.reasons == ["validation.output_invalid:count"] with input as _post(ps, "three")
	data.governor.decision.reasons == ["validation.output_invalid:count"] with input as _post(ps, 2.5)
	data.governor.decision.reasons == ["validation.output_invalid:count"] with input as _post(ps, [3])
}

test_a_missing_result_is_checked_as_null if {
	ps := [_val("count", {"output_schema": {"type": "object", "required": ["value"], "properties": {"value": {"type": "integer"}}}})]
	inp := {"version": 1, "phase": "post", "policies": ps}
	data.governor.decision.reasons == ["validation.output_invalid:count"] with input as inp
	data.governor.decision.decision == "allow" with input as _post([_val("n", {"output_schema": {"type": "object", "properties": {"value": {"type": "null"}}}})], null)
}

test_a_failed_python_validator_denies if {
	inp := _with_checks(_pre([_val("business_rules", {})], {}), {"business_rules": {"ok": false, "errors": ["quantity above stock", {"field": "x"}]}})
	d := data.governor.decision with input as inp
	d.decision == "deny"
	d.reasons == ["validation.check_failed:business_rules"]
	d.violations[0].message == "The validator of policy business_rules rejected this call (2 error(s)); see the validation report."
}

test_validator_errors_are_never_copied_into_messages if {
	inp := _with_checks(_pre([_val("v", {})], {}), {"v": {"ok": false, "errors": ["ssn 123-45-6789 is invalid"]}})
	d := data.governor.decision with input as inp
	every v in d.violations {
		not contains(v.message, "123-45-6789")
	}
}

test_a_passing_python_validator_allows if {
	inp := _with_checks(_pre([_val("v", {})], {}), {"v": {"ok": true, "errors": []}})
	data.governor.decision.decision == "allow" with input as inp
}

test_a_failed_validator_only_warns_when_not_strict if {
	inp := _with_checks(_pre([_val("v", {"strict": false})], {}), {"v": {"ok": false}})
	d := data.governor.decision with input as inp
	d.decision == "allow"
	d.reasons == ["validation.check_failed:v"]
	d.violations[0].message == "The validator of policy v rejected this call (0 error(s)); see the validation report."
}

test_validator_results_apply_after_the_call_too if {
	inp := _with_checks(_post([_val("v", {})], {}), {"v": {"ok": false, "errors": []}})
	data.governor.decision.reasons == ["validation.check_failed:v"] with input as inp
}

test_a_malformed_validator_result_fails_closed_even_when_not_strict if {
	every check in [{"errors": []}, {"ok": "false"}, "failed", null] {
		inp := _with_checks(_pre([_val("v", {"strict": false})], {}), {"v": check})
		d := data.governor.decision with input as inp
		d.decision == "deny"
		d.reasons == ["validation.invalid_fact:v"]
	}
}

test_validator_results_of_other_policies_are_ignored if {
	inp := _with_checks(_pre([_val("v", {})], {}), {"someone_else": {"ok": false}})
	data.governor.decision.decision == "allow" with input as inp
}

test_malformed_params_fail_closed if {
	every case in [
		[{"input_schema": "{\"type\": \"object\"}"}, "input_schema"],
		[{"output_schema": ["object"]}, "output_schema"],
		[{"strict": "no"}, "strict"],
	] {
		d := data.governor.decision with input as _pre([_val("v", case[0])], {})
		d.decision == "deny"
		d.reasons == [sprintf("validation.invalid_param:v.%s", [case[1]])]
	}
}

test_several_validation_policies_are_checked_independently if {
	ps := [
		_val("order", {"input_schema": _order_schema}),
		_val("loose", {"input_schema": {"type": "object", "required": ["note"]}, "strict": false}),
		_val("shape", {"input_schema": {"type": "object"}}),
	]
	d := data.governor.decision with input as _pre(ps, {"order_id": "o-1", "quantity": 1})
	d.decision == "allow"
	d.reasons == ["validation.input_invalid:loose"]
	d2 := data.governor.decision with input as _pre(ps, {"order_id": "o-1"})
	d2.decision == "deny"
	d2.reasons == ["validation.input_invalid:loose", "validation.input_invalid:order"]
}

test_entries_of_other_types_are_ignored if {
	ps := [{"type": "audit", "name": "order", "params": {"input_schema": _order_schema}}]
	data.governor.decision.decision == "allow" with input as _pre(ps, {})
}
