package governor.lib.combine_test

import data.governor.lib.combine

test_input_errors_name_each_malformed_field if {
	combine.input_errors == {"input"} with input as "text"
	combine.input_errors == {"version", "phase"} with input as {}
	combine.input_errors == set() with input as {"version": 1, "phase": "post"}
	combine.input_errors == {"policies", "facts", "subject"} with input as {"version": 1, "phase": "pre", "policies": {}, "facts": 1, "subject": "x"}
}

test_findings_of_a_package_get_its_name_as_defaults if {
	pkgs := {"acme": {"deny": {{"message": "no"}}}}
	inp := {"version": 1, "phase": "pre", "policies": [{"type": "acme"}]}
	combine.denies == {{"policy": "acme", "type": "acme", "code": "violation", "detail": "acme", "message": "no", "approval": {}}} with data.governor.policies as pkgs with input as inp
}

test_reason_joins_type_code_and_detail if {
	combine.reason({"type": "rate_limit", "code": "exceeded", "detail": "api"}) == "rate_limit.exceeded:api"
}

test_ordered_sorts_by_reason_then_policy_then_message if {
	a := {"type": "t", "code": "c", "detail": "d", "policy": "p2", "message": "m"}
	b := {"type": "t", "code": "c", "detail": "d", "policy": "p1", "message": "z"}
	c := {"type": "a", "code": "c", "detail": "d", "policy": "p9", "message": "m"}
	combine.ordered({a, b, c}) == [c, b, a]
}
