package governor.lib.policy_test

import data.governor.lib.policy

test_entries_keep_only_the_requested_type if {
	ps := [
		{"type": "rate_limit", "name": "a", "params": {"max_calls": 1}},
		{"type": "budget", "name": "b"},
		{"type": "rate_limit", "name": "c"},
	]
	policy.entries("rate_limit") == {
		{"type": "rate_limit", "name": "a", "params": {"max_calls": 1}},
		{"type": "rate_limit", "name": "c", "params": {}},
	} with input as {"policies": ps}
}

test_entries_default_the_name_to_the_type_and_params_to_empty if {
	ps := [{"type": "audit", "name": 7, "params": "x"}]
	policy.entries("audit") == {{"type": "audit", "name": "audit", "params": {}}} with input as {"policies": ps}
}

test_entries_ignore_malformed_policies if {
	policy.entries("audit") == set() with input as {"policies": ["audit", 3, {"name": "x"}]}
	policy.entries("audit") == set() with input as {"policies": {"type": "audit"}}
	policy.entries("audit") == set() with input as "not an object"
	policy.entries("audit") == set() with input as {}
}

_e(params) := {"type": "rate_limit", "name": "r", "params": params}

test_param_falls_back_to_the_default_when_absent_or_null if {
	policy.param(_e({"max_calls": 5}), "max_calls", 100) == 5
	policy.param(_e({}), "max_calls", 100) == 100
	policy.param(_e({"max_calls": null}), "max_calls", 100) == 100
	policy.param(_e({"flag": false}), "flag", true) == false
}

test_setting_prefers_params_then_config_then_default if {
	cfg := {"rate_limit": {"default_max_calls": 7}}
	policy.setting(_e({"max_calls": 5}), "max_calls", "default_max_calls", 100) == 5 with data.governor.config as cfg
	policy.setting(_e({}), "max_calls", "default_max_calls", 100) == 7 with data.governor.config as cfg
	policy.setting(_e({}), "max_calls", "default_max_calls", 100) == 100 with data.governor.config as {}
	policy.setting(_e({}), "max_calls", "default_max_calls", 100) == 100 with data.governor.config as {"rate_limit": {"default_max_calls": null}}
}

test_config_is_empty_unless_an_object if {
	policy.config("budget") == {} with data.governor.config as {"budget": 5}
	policy.config("budget") == {} with data.governor.config as {}
	policy.config("budget") == {"x": 1} with data.governor.config as {"budget": {"x": 1}}
}

test_integer_checks if {
	policy.is_int(0)
	policy.is_int(-3)
	policy.is_int(1000000000000)
	not policy.is_int(1.5)
	not policy.is_int("1")
	not policy.is_int(null)
	policy.is_nonneg_int(0)
	not policy.is_nonneg_int(-1)
	policy.is_pos_int(1)
	not policy.is_pos_int(0)
}

test_string_lists if {
	policy.is_string_list([])
	policy.is_string_list(["a", "b"])
	not policy.is_string_list(["a", 1])
	not policy.is_string_list("a")
	policy.strings(["a", 1, "b"]) == {"a", "b"}
	policy.strings({"a", 2}) == {"a"}
	policy.strings("a") == set()
}

test_violations_carry_policy_type_code_and_message if {
	e := _e({})
	policy.violation(e, "exceeded", "m") == {"policy": "r", "type": "rate_limit", "code": "exceeded", "message": "m"}
	policy.violation_at(e, "x", "d", "m").detail == "d"
	v := policy.invalid_param(e, "max_calls", "a whole number")
	v.code == "invalid_param"
	v.detail == "r.max_calls"
	v.message == "Policy r is misconfigured: parameter max_calls must be a whole number."
}
