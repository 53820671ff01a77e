package governor.policies_test.budget

# Amounts are micro-units: 1 USD = 1000000.

_b(name, params) := {"type": "budget", "name": name, "params": params}

_fact(spent, reserved, estimate) := {
	"limit": 100000000,
	"spent": spent,
	"reserved": reserved,
	"estimated_cost": estimate,
	"currency": "USD",
}

_in(policies, budget) := {"version": 1, "phase": "pre", "policies": policies, "facts": {"budget": budget}}

_decide(policies, budget) := d if {
	d := data.governor.decision with input as _in(policies, budget)
}

test_within_the_limit_is_allowed if {
	d := _decide([_b("monthly", {})], _fact(50000000, 10000000, 1000000))
	d.decision == "allow"
	d.reasons == []
}

test_reaching_the_limit_exactly_is_allowed if {
	_decide([_b("monthly", {})], _fact(60000000, 30000000, 10000000)).decision == "allow"
}

test_one_micro_unit_over_the_limit_is_denied if {
	d := _decide([_b("monthly", {})], _fact(60000000, 30000000, 10000001))
	d.decision == "deny"
	d.reasons == ["budget.exceeded:monthly"]
	d.violations[0].message == "Budget monthly would be exceeded: with this call spending would reach 100000001 of a limit of 100000000 micro-units."
}

test_reservations_count_against_the_limit if {
	_decide([_b("monthly", {})], _fact(0, 99000000, 2000000)).reasons == ["budget.exceeded:monthly"]
}

test_large_integer_amounts_are_exact if {
	# 9 billion USD in micro-units, above 2^32 and well below 2^53
	big := {"limit": 9000000000000000, "spent": 8999999999999999, "estimated_cost": 1}
	_decide([_b("b", {})], big).decision == "allow"
	over := {"limit": 9000000000000000, "spent": 8999999999999999, "estimated_cost": 2}
	_decide([_b("b", {})], over).reasons == ["budget.exceeded:b"]
}

test_params_limit_overrides_the_fact if {
	_decide([_b("tight", {"limit": 5000000})], _fact(4000000, 0, 1000001)).reasons == ["budget.exceeded:tight"]
	_decide([_b("loose", {"limit": 500000000})], _fact(100000000, 0, 1)).decision == "allow"
}

test_config_default_limit_applies_without_params_or_fact_limit if {
	fact := {"spent": 900, "estimated_cost": 200}
	cfg := {"budget": {"default_monthly_limit": 1000}}
	data.governor.decision.reasons == ["budget.exceeded:monthly"] with input as _in([_b("monthly", {})], fact) with data.governor.config as cfg
	data.governor.decision.decision == "allow" with input as _in([_b("monthly", {"limit": 2000})], fact) with data.governor.config as cfg
}

test_no_limit_anywhere_fails_closed if {
	_decide([_b("monthly", {})], {"spent": 1, "estimated_cost": 1}).reasons == ["budget.invalid_amount:limit"]
}

test_missing_budget_fact_fails_closed if {
	_decide([_b("monthly", {})], null).reasons == ["budget.missing_fact:monthly"]
	_decide([_b("monthly", {})], "100").reasons == ["budget.missing_fact:monthly"]
	inp := {"version": 1, "phase": "pre", "policies": [_b("monthly", {})]}
	data.governor.decision.reasons == ["budget.missing_fact:monthly"] with input as inp
}

test_no_budget_policy_means_no_budget_check if {
	_decide([], null).decision == "allow"
}

test_fractional_negative_or_non_numeric_amounts_are_refused if {
	every case in [
		[{"limit": 100, "spent": 1.5, "estimated_cost": 1}, "spent"],
		[{"limit": 100, "spent": 1, "reserved": -1, "estimated_cost": 1}, "reserved"],
		[{"limit": 100, "spent": 1, "estimated_cost": "5"}, "estimated_cost"],
		[{"limit": 0.5, "spent": 0, "estimated_cost": 0}, "limit"],
		[{"limit": 100, "estimated_cost": 1}, "spent"],
		[{"limit": 100, "spent": null, "estimated_cost": 1}, "spent"],
	] {
		d := _decide([_b("monthly", {})], case[0])
		d.decision == "deny"
		d.reasons == [sprintf("budget.invalid_amount:%s", [case[1]])]
	}
}

test_every_invalid_amount_is_reported_and_nothing_is_compared if {
	d := _decide([_b("monthly", {})], {"limit": -5, "spent": 0.1, "reserved": 0, "estimated_cost": 1})
	d.reasons == ["budget.invalid_amount:limit", "budget.invalid_amount:spent"]
}

test_reserved_and_estimate_default_to_zero if {
	_decide([_b("monthly", {})], {"limit": 10, "spent": 10}).decision == "allow"
	_decide([_b("monthly", {})], {"limit": 10, "spent": 10, "reserved": null, "estimated_cost": null}).decision == "allow"
	_decide([_b("monthly", {})], {"limit": 10, "spent": 11}).reasons == ["budget.exceeded:monthly"]
}

test_warning_once_the_ratio_is_reached if {
	ps := [_b("monthly", {"warn_ratio_percent": 80})]
	d := _decide(ps, _fact(70000000, 0, 10000000))
	d.decision == "allow"
	d.reasons == ["budget.near_limit:monthly"]
	_decide(ps, _fact(70000000, 0, 9999999)).reasons == []
}

test_exceeding_does_not_also_warn if {
	_decide([_b("monthly", {"warn_ratio_percent": 80})], _fact(100000000, 0, 1)).reasons == ["budget.exceeded:monthly"]
}

test_warning_ratio_from_config if {
	cfg := {"budget": {"warn_ratio_percent": 50}}
	data.governor.decision.reasons == ["budget.near_limit:monthly"] with input as _in([_b("monthly", {})], _fact(50000000, 0, 0)) with data.governor.config as cfg
}

test_malformed_warning_ratio_fails_closed if {
	every ratio in [0, 101, "80", 80.5] {
		d := _decide([_b("monthly", {"warn_ratio_percent": ratio})], _fact(0, 0, 0))
		d.reasons == ["budget.invalid_param:monthly.warn_ratio_percent"]
	}
}

test_currency_must_match_when_the_policy_names_one if {
	_decide([_b("eu", {"currency": "EUR"})], _fact(0, 0, 1)).reasons == ["budget.currency_mismatch:eu"]
	_decide([_b("us", {"currency": "USD"})], _fact(0, 0, 1)).decision == "allow"
	_decide([_b("eu", {"currency": "EUR"})], {"limit": 10, "spent": 0}).decision == "allow"
	_decide([_b("eu", {"currency": 978})], _fact(0, 0, 1)).reasons == ["budget.invalid_param:eu.currency"]
}

test_several_budgets_are_checked_independently if {
	ps := [_b("team", {"limit": 1000000}), _b("org", {})]
	_decide(ps, _fact(900000, 0, 200000)).reasons == ["budget.exceeded:team"]
	_decide(ps, _fact(100000000, 0, 1)).reasons == ["budget.exceeded:org", "budget.exceeded:team"]
}

test_entries_of_other_types_are_ignored if {
	_decide([{"type": "rate_limit", "name": "monthly", "params": {"limit": 1}}], _fact(0, 0, 5)).reasons == [
		"rate_limit.missing_fact:monthly",
	]
}

test_the_post_phase_is_not_budgeted if {
	inp := object.union(_in([_b("monthly", {})], _fact(100000000, 0, 1)), {"phase": "post"})
	data.governor.decision.decision == "allow" with input as inp
}
