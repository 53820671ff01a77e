# Tests live in governor.policies_test.*, not governor.policies.*: a package governor.policies.<name>
# is a user package to governor.decision (read when an input names the type <name>), and reading
# one makes regorus evaluate every package under governor.policies, test rules included.
package governor.policies_test.rate_limit

_rl(name, params) := {"type": "rate_limit", "name": name, "params": params}

_in(policies, facts, subject) := {
	"version": 1,
	"phase": "pre",
	"policies": policies,
	"facts": {"rate_limit": facts},
	"subject": subject,
}

_decide(policies, facts) := d if {
	d := data.governor.decision with input as _in(policies, facts, {"user_id": "u1"})
}

_count(n) := {"count": n, "window_seconds": 60}

test_below_the_limit_is_allowed if {
	d := _decide([_rl("api", {"max_calls": 5})], {"api": _count(4)})
	d.decision == "allow"
	d.reasons == []
}

test_at_the_limit_is_denied if {
	d := _decide([_rl("api", {"max_calls": 5})], {"api": _count(5)})
	d.decision == "deny"
	d.reasons == ["rate_limit.exceeded:api"]
	d.violations[0].message == "Rate limit api reached: at most 5 calls per 60 seconds."
}

test_above_the_limit_is_denied if {
	_decide([_rl("api", {"max_calls": 5})], {"api": _count(9)}).reasons == ["rate_limit.exceeded:api"]
}

test_burst_size_adds_to_the_limit if {
	ps := [_rl("api", {"max_calls": 5, "burst_size": 2})]
	_decide(ps, {"api": _count(6)}).decision == "allow"
	_decide(ps, {"api": _count(7)}).reasons == ["rate_limit.exceeded:api"]
}

test_zero_max_calls_refuses_every_call if {
	_decide([_rl("off", {"max_calls": 0})], {"off": _count(0)}).reasons == ["rate_limit.exceeded:off"]
}

test_defaults_are_100_calls_per_60_seconds if {
	_decide([_rl("api", {})], {"api": _count(99)}).decision == "allow"
	_decide([_rl("api", {})], {"api": _count(100)}).reasons == ["rate_limit.exceeded:api"]
}

test_config_defaults_apply_when_params_are_absent if {
	cfg := {"rate_limit": {"default_max_calls": 10, "default_window_seconds": 3600, "default_burst_size": 1}}
	ps := [_rl("api", {})]
	facts_ok := {"api": {"count": 10, "window_seconds": 3600}}
	facts_over := {"api": {"count": 11, "window_seconds": 3600}}
	data.governor.decision.decision == "allow" with input as _in(ps, facts_ok, {}) with data.governor.config as cfg
	data.governor.decision.reasons == ["rate_limit.exceeded:api"] with input as _in(ps, facts_over, {}) with data.governor.config as cfg
}

test_params_override_config_defaults if {
	cfg := {"rate_limit": {"default_max_calls": 10}}
	ps := [_rl("api", {"max_calls": 2})]
	data.governor.decision.reasons == ["rate_limit.exceeded:api"] with input as _in(ps, {"api": _count(2)}, {}) with data.governor.config as cfg
}

test_missing_fact_fails_closed if {
	d := _decide([_rl("api", {"max_calls": 5})], {})
	d.decision == "deny"
	d.reasons == ["rate_limit.missing_fact:api"]
	_decide([_rl("api", {"max_calls": 5})], {"api": null}).reasons == ["rate_limit.missing_fact:api"]
}

test_missing_rate_limit_facts_object_fails_closed if {
	inp := {"version": 1, "phase": "pre", "policies": [_rl("api", {})]}
	data.governor.decision.reasons == ["rate_limit.missing_fact:api"] with input as inp
}

test_per_user_without_a_user_is_refused_not_passed if {
	ps := [_rl("per_user_api", {"max_calls": 5, "per_user": true})]
	every subject in [{}, {"user_id": ""}, {"user_id": null}, {"roles": ["admin"]}] {
		d := data.governor.decision with input as _in(ps, {}, subject)
		d.reasons == ["rate_limit.no_user:per_user_api"]
	}
	inp := {"version": 1, "phase": "pre", "policies": ps, "facts": {"rate_limit": {"per_user_api": _count(0)}}}
	data.governor.decision.reasons == ["rate_limit.no_user:per_user_api"] with input as inp
}

test_per_user_with_a_user_checks_the_count if {
	ps := [_rl("api", {"max_calls": 5, "per_user": true})]
	data.governor.decision.decision == "allow" with input as _in(ps, {"api": _count(4)}, {"user_id": "u1"})
	data.governor.decision.decision == "allow" with input as _in(ps, {"api": _count(4)}, {"user_id": 42})
	data.governor.decision.reasons == ["rate_limit.exceeded:api"] with input as _in(ps, {"api": _count(5)}, {"user_id": "u1"})
	data.governor.decision.reasons == ["rate_limit.missing_fact:api"] with input as _in(ps, {}, {"user_id": "u1"})
}

test_malformed_fact_fails_closed if {
	ps := [_rl("api", {"max_calls": 5})]
	every fact in [
		{"count": -1, "window_seconds": 60},
		{"count": 1.5, "window_seconds": 60},
		{"count": "3", "window_seconds": 60},
		{"window_seconds": 60},
		{"count": 1, "window_seconds": 3600},
		{"count": 1, "window_seconds": null},
		3,
	] {
		_decide(ps, {"api": fact}).reasons == ["rate_limit.invalid_fact:api"]
	}
}

test_fact_without_a_window_is_accepted if {
	_decide([_rl("api", {"max_calls": 5})], {"api": {"count": 1}}).decision == "allow"
}

test_malformed_params_fail_closed_with_the_param_named if {
	every case in [
		[{"max_calls": "10"}, "api.max_calls"],
		[{"max_calls": -1}, "api.max_calls"],
		[{"max_calls": 2.5}, "api.max_calls"],
		[{"window_seconds": 0}, "api.window_seconds"],
		[{"window_seconds": "1m"}, "api.window_seconds"],
		[{"burst_size": -2}, "api.burst_size"],
		[{"per_user": "yes"}, "api.per_user"],
	] {
		d := _decide([_rl("api", case[0])], {"api": _count(0)})
		d.reasons == [sprintf("rate_limit.invalid_param:%s", [case[1]])]
	}
}

test_several_limits_are_checked_independently if {
	ps := [_rl("per_minute", {"max_calls": 10}), _rl("per_hour", {"max_calls": 100, "window_seconds": 3600})]
	d := _decide(ps, {"per_minute": _count(10), "per_hour": {"count": 99, "window_seconds": 3600}})
	d.reasons == ["rate_limit.exceeded:per_minute"]
	d2 := _decide(ps, {"per_minute": _count(10), "per_hour": {"count": 100, "window_seconds": 3600}})
	d2.reasons == ["rate_limit.exceeded:per_hour", "rate_limit.exceeded:per_minute"]
}

test_an_unnamed_entry_is_named_after_its_type if {
	inp := {"version": 1, "phase": "pre", "policies": [{"type": "rate_limit", "params": {"max_calls": 1}}], "facts": {"rate_limit": {"rate_limit": _count(1)}}}
	data.governor.decision.reasons == ["rate_limit.exceeded:rate_limit"] with input as inp
}

test_entries_of_other_types_are_ignored if {
	ps := [{"type": "audit", "name": "api", "params": {"max_calls": 0}}]
	_decide(ps, {"api": _count(5)}).decision == "allow"
	data.governor.policies.rate_limit.deny == set() with input as _in(ps, {"api": _count(5)}, {})
}

test_the_post_phase_is_not_rate_limited if {
	inp := object.union(_in([_rl("api", {"max_calls": 1})], {"api": _count(1)}, {}), {"phase": "post"})
	data.governor.decision.decision == "allow" with input as inp
}

# --- the common case, read straight from the input ----------------------------------------------

# What RateLimitPolicy sends: every parameter but burst_size, which it sends only when set.
_full(name, max_calls, extra) := _rl(name, object.union({"max_calls": max_calls, "window_seconds": 60, "per_user": false}, extra))

test_a_full_entry_under_its_limit_is_clear_and_nothing_is_denied if {
	ps := [_full("api", 5, {}), _full("burst", 1, {"burst_size": 2})]
	facts := {"api": _count(4), "burst": _count(2)}
	every p in ps {
		data.governor.policies.rate_limit.clear_entry(p) with input as _in(ps, facts, {})
	}
	data.governor.policies.rate_limit.deny == set() with input as _in(ps, facts, {})
	_decide(ps, facts).decision == "allow"
}

test_a_full_entry_takes_its_burst_from_config_when_not_given if {
	ps := [_full("api", 5, {})]
	cfg := {"rate_limit": {"default_burst_size": 2}}
	data.governor.policies.rate_limit.clear_entry(ps[0]) with input as _in(ps, {"api": _count(6)}, {}) with data.governor.config as cfg
	not data.governor.policies.rate_limit.clear_entry(ps[0]) with input as _in(ps, {"api": _count(7)}, {}) with data.governor.config as cfg
	data.governor.decision.reasons == ["rate_limit.exceeded:api"] with input as _in(ps, {"api": _count(7)}, {}) with data.governor.config as cfg
}

test_a_per_user_entry_is_clear_only_with_a_user if {
	ps := [_full("api", 5, {"per_user": true})]
	data.governor.policies.rate_limit.clear_entry(ps[0]) with input as _in(ps, {"api": _count(1)}, {"user_id": "u1"})
	not data.governor.policies.rate_limit.clear_entry(ps[0]) with input as _in(ps, {"api": _count(1)}, {})
	data.governor.decision.reasons == ["rate_limit.no_user:api"] with input as _in(ps, {"api": _count(1)}, {})
}

test_every_entry_is_clear_after_the_call if {
	inp := object.union(_in([_full("api", 1, {})], {}, {}), {"phase": "post"})
	data.governor.policies.rate_limit.clear_entry(_full("api", 1, {})) with input as inp
}

# The short cut never clears what the general rules would deny, and they agree on the rest.
test_what_the_short_cut_does_not_clear_the_general_rules_decide if {
	cases := [
		[[_full("api", 5, {})], {"api": _count(5)}],
		[[_full("api", 5, {})], {"api": {"count": 1, "window_seconds": 30}}],
		[[_full("api", 5, {})], {"api": {"count": 1.5, "window_seconds": 60}}],
		[[_full("api", 5, {})], {"api": {"count": -1, "window_seconds": 60}}],
		[[_full("api", 5, {})], {}],
		[[_full("api", -1, {})], {"api": _count(0)}],
		[[_full("api", 2.5, {})], {"api": _count(0)}],
		[[_full("api", "5", {})], {"api": _count(0)}],
		[[_full("api", 5, {"window_seconds": 0})], {"api": _count(0)}],
		[[_full("api", 5, {"burst_size": -1})], {"api": _count(0)}],
		[[_full("api", 5, {"burst_size": null})], {"api": _count(5)}],
		[[_full("api", 5, {"per_user": "yes"})], {"api": _count(0)}],
		[[{"type": "rate_limit", "params": {"max_calls": 5, "window_seconds": 60, "per_user": false}}], {"rate_limit": _count(0)}],
	]
	every c in cases {
		[ps, facts] := c
		inp := _in(ps, facts, {})
		not data.governor.policies.rate_limit.clear_entry(ps[0]) with input as inp
		data.governor.policies.rate_limit.deny == data.governor.policies.rate_limit._denials with input as inp
	}
}
