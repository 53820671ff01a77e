package governor.policies_test.approval

_ap(name, params) := {"type": "approval", "name": name, "params": params}

_in(policies, args, approval) := {
	"version": 1,
	"phase": "pre",
	"policies": policies,
	"args": args,
	"facts": {"approval": approval},
}

_decide(policies, args, approval) := d if {
	d := data.governor.decision with input as _in(policies, args, approval)
}

_large := [{"attribute": "args.amount", "op": "gt", "value": 10000}]

test_without_when_every_call_needs_approval if {
	d := _decide([_ap("payments", {"approvers": ["cfo", "controller"]})], {}, {})
	d.decision == "confirm"
	d.reasons == ["approval.required:payments"]
	d.violations[0].message == "Policy payments requires approval before this call runs."
	d.approval == {
		"required": true,
		"approvers": ["cfo", "controller"],
		"stages": [["cfo", "controller"]],
		"timeout_seconds": 3600,
		"quorum": 1,
	}
}

test_when_above_the_threshold_needs_approval if {
	_decide([_ap("large", {"approvers": ["cfo"], "when": _large})], {"amount": 10001}, {}).decision == "confirm"
}

test_when_at_or_below_the_threshold_is_allowed if {
	_decide([_ap("large", {"approvers": ["cfo"], "when": _large})], {"amount": 10000}, {}).decision == "allow"
	_decide([_ap("large", {"approvers": ["cfo"], "when": _large})], {"amount": 5}, {}).decision == "allow"
}

test_when_as_a_single_condition_object if {
	ps := [_ap("large", {"when": {"attribute": "args.amount", "op": "gt", "value": 10000}})]
	_decide(ps, {"amount": 20000}, {}).decision == "confirm"
	_decide(ps, {"amount": 20}, {}).decision == "allow"
}

test_when_conditions_are_all_needed if {
	w := [{"attribute": "args.amount", "op": "gt", "value": 10000}, {"attribute": "args.currency", "op": "eq", "value": "USD"}]
	_decide([_ap("large", {"when": w})], {"amount": 20000, "currency": "USD"}, {}).decision == "confirm"
	_decide([_ap("large", {"when": w})], {"amount": 20000, "currency": "EUR"}, {}).decision == "allow"
}

test_when_that_cannot_be_evaluated_asks_for_approval if {
	_decide([_ap("large", {"when": _large})], {}, {}).decision == "confirm"
	_decide([_ap("large", {"when": _large})], {"amount": "lots"}, {}).decision == "confirm"
}

test_when_from_config_applies_without_params if {
	cfg := {"approval": {"default_when": _large, "default_approvers": ["finance-lead"]}}
	ps := [_ap("large", {})]
	data.governor.decision.decision == "allow" with input as _in(ps, {"amount": 50}, {}) with data.governor.config as cfg
	d := data.governor.decision with input as _in(ps, {"amount": 50000}, {}) with data.governor.config as cfg
	d.decision == "confirm"
	d.approval.approvers == ["finance-lead"]
}

test_config_defaults_for_timeout_on_timeout_and_quorum if {
	cfg := {"approval": {"default_timeout_seconds": 120, "default_quorum": 2, "default_on_timeout": "pending"}}
	ps := [_ap("p", {"approvers": ["a", "b", "c"]})]
	d := data.governor.decision with input as _in(ps, {}, {"p": {"status": "expired"}}) with data.governor.config as cfg
	d.decision == "confirm"
	d.approval.timeout_seconds == 120
	d.approval.quorum == 2
}

test_approved_is_allowed if {
	_decide([_ap("p", {"approvers": ["cfo"]})], {}, {"p": {"status": "approved", "approver": "cfo"}}).decision == "allow"
}

test_auto_approve_is_allowed if {
	_decide([_ap("p", {"approvers": ["cfo"]})], {}, {"p": {"auto_approve": true}}).decision == "allow"
	_decide([_ap("p", {"approvers": ["cfo"]})], {}, {"p": {"status": "pending", "auto_approve": true}}).decision == "allow"
	_decide([_ap("p", {"approvers": ["cfo"]})], {}, {"p": {"status": "pending", "auto_approve": false}}).decision == "confirm"
}

test_rejected_is_denied_even_with_auto_approve if {
	d := _decide([_ap("p", {"approvers": ["cfo"]})], {}, {"p": {"status": "rejected", "approver": "cfo"}})
	d.decision == "deny"
	d.reasons == ["approval.rejected:p"]
	_decide([_ap("p", {})], {}, {"p": {"status": "rejected", "auto_approve": true}}).reasons == ["approval.rejected:p"]
}

test_expired_is_denied_when_on_timeout_is_reject if {
	d := _decide([_ap("p", {"approvers": ["cfo"]})], {}, {"p": {"status": "expired"}})
	d.decision == "deny"
	d.reasons == ["approval.expired:p"]
}

test_expired_keeps_waiting_when_on_timeout_is_pending if {
	d := _decide([_ap("p", {"approvers": ["cfo"], "on_timeout": "pending"})], {}, {"p": {"status": "expired"}})
	d.decision == "confirm"
	d.reasons == ["approval.required:p"]
}

test_expired_with_auto_approve_is_allowed if {
	_decide([_ap("p", {})], {}, {"p": {"status": "expired", "auto_approve": true}}).decision == "allow"
}

test_pending_or_no_state_asks_again if {
	_decide([_ap("p", {"approvers": ["cfo"]})], {}, {"p": {"status": "pending", "stage": "finance"}}).decision == "confirm"
	inp := {"version": 1, "phase": "pre", "policies": [_ap("p", {})]}
	data.governor.decision.decision == "confirm" with input as inp
}

test_state_is_read_for_the_policy_by_name if {
	_decide([_ap("p", {})], {}, {"other": {"status": "approved"}}).decision == "confirm"
}

test_malformed_state_fails_closed if {
	every state in [{"status": "maybe"}, {"status": 1}, {"auto_approve": "yes"}, "approved", ["approved"]] {
		d := _decide([_ap("p", {})], {}, {"p": state})
		d.reasons == ["approval.invalid_fact:p"]
	}
}

test_stages_become_approver_lists_with_the_strictest_timeout_and_quorum if {
	stages := [
		{"name": "manager", "approvers": ["m1", "m2"], "quorum": 2},
		{"name": "finance", "approvers": ["cfo"], "timeout_seconds": 600},
	]
	d := _decide([_ap("p", {"stages": stages, "timeout_seconds": 7200})], {}, {})
	d.approval == {
		"required": true,
		"approvers": ["cfo", "m1", "m2"],
		"stages": [["m1", "m2"], ["cfo"]],
		"timeout_seconds": 600,
		"quorum": 2,
	}
}

test_no_approvers_and_no_stages_leave_the_choice_to_the_approval_service if {
	_decide([_ap("p", {})], {}, {}).approval == {"required": true, "approvers": [], "stages": [], "timeout_seconds": 3600, "quorum": 1}
}

test_malformed_params_fail_closed if {
	every case in [
		[{"approvers": "cfo"}, "approvers"],
		[{"timeout_seconds": 0}, "timeout_seconds"],
		[{"timeout_seconds": 1.5}, "timeout_seconds"],
		[{"on_timeout": "escalate"}, "on_timeout"],
		[{"quorum": 0}, "quorum"],
		[{"quorum": 3, "approvers": ["a", "b"]}, "quorum"],
		[{"stages": "manager"}, "stages"],
		[{"stages": [{"name": "s", "approvers": []}]}, "stages"],
		[{"stages": [{"approvers": ["a"]}]}, "stages"],
		[{"stages": [{"name": "s", "approvers": ["a"], "quorum": 2}]}, "stages"],
		[{"stages": [{"name": "s", "approvers": ["a"], "timeout_seconds": -1}]}, "stages"],
		[{"when": [{"attribute": "args.amount", "op": "over", "value": 1}]}, "when"],
	] {
		d := _decide([_ap("p", case[0])], {"amount": 1}, {})
		d.decision == "deny"
		d.reasons == [sprintf("approval.invalid_param:p.%s", [case[1]])]
	}
}

test_several_approval_policies_merge_into_one_block if {
	ps := [
		_ap("large", {"approvers": ["cfo"], "when": _large, "timeout_seconds": 1800}),
		_ap("legal", {"approvers": ["counsel", "gc"], "quorum": 2}),
		_ap("small", {"approvers": ["clerk"], "when": [{"attribute": "args.amount", "op": "lt", "value": 100}]}),
	]
	d := _decide(ps, {"amount": 50000}, {})
	d.reasons == ["approval.required:large", "approval.required:legal"]
	d.approval == {
		"required": true,
		"approvers": ["cfo", "counsel", "gc"],
		"stages": [["cfo"], ["counsel", "gc"]],
		"timeout_seconds": 1800,
		"quorum": 2,
	}
}

test_one_policy_approved_and_another_pending_still_confirms if {
	ps := [_ap("a", {"approvers": ["x"]}), _ap("b", {"approvers": ["y"]})]
	d := _decide(ps, {}, {"a": {"status": "approved"}})
	d.reasons == ["approval.required:b"]
	d.approval.approvers == ["y"]
}

test_entries_of_other_types_are_ignored if {
	_decide([{"type": "audit", "name": "p", "params": {"approvers": ["cfo"]}}], {}, {}).decision == "allow"
}

test_the_post_phase_asks_for_no_approval if {
	inp := object.union(_in([_ap("p", {"approvers": ["cfo"]})], {}, {}), {"phase": "post"})
	data.governor.decision.decision == "allow" with input as inp
}
