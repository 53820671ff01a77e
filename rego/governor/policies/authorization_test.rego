package governor.policies_test.authorization

_auth(name, params) := {"type": "authorization", "name": name, "params": params}

_in(policies, subject) := {"version": 1, "phase": "pre", "policies": policies, "subject": subject, "args": {"amount": 250, "region": "eu"}}

_decide(policies, subject) := d if {
	d := data.governor.decision with input as _in(policies, subject)
}

_roles_table := {"authorization": {"roles": {
	"admin": {"permissions": ["payments.refund", "payments.read", "users.manage"]},
	"clerk": {"permissions": ["payments.read"]},
}}}

_alice := {"user_id": "alice", "roles": ["clerk"], "permissions": ["reports.read"], "attributes": {"department": "finance", "clearance": 2, "badge": "secret-badge-77"}}

test_any_one_required_role_suffices if {
	_decide([_auth("staff", {"required_roles": ["admin", "clerk"]})], _alice).decision == "allow"
}

test_no_required_role_is_denied if {
	d := _decide([_auth("admins", {"required_roles": ["admin", "auditor"]})], _alice)
	d.decision == "deny"
	d.reasons == ["authorization.missing_role:admins"]
	d.violations[0].message == "The caller has none of the roles policy admins requires (one of: admin, auditor)."
}

test_all_required_permissions_are_needed if {
	_decide([_auth("p", {"required_permissions": ["reports.read"]})], _alice).decision == "allow"
	d := _decide([_auth("p", {"required_permissions": ["reports.read", "reports.write", "audit.read"]})], _alice)
	d.reasons == ["authorization.missing_permission:p"]
	d.violations[0].message == "The caller lacks permissions policy p requires: audit.read, reports.write."
}

test_roles_grant_permissions_through_the_config_table if {
	ps := [_auth("refunds", {"required_permissions": ["payments.read"]})]
	data.governor.decision.decision == "allow" with input as _in(ps, _alice) with data.governor.config as _roles_table
	data.governor.decision.reasons == ["authorization.missing_permission:refunds"] with input as _in(ps, _alice) with data.governor.config as {}
	ps2 := [_auth("refunds", {"required_permissions": ["payments.refund"]})]
	data.governor.decision.reasons == ["authorization.missing_permission:refunds"] with input as _in(ps2, _alice) with data.governor.config as _roles_table
	admin := {"user_id": "root", "roles": ["admin"]}
	data.governor.decision.decision == "allow" with input as _in(ps2, admin) with data.governor.config as _roles_table
}

test_roles_and_permissions_together if {
	ps := [_auth("both", {"required_roles": ["clerk"], "required_permissions": ["payments.refund"]})]
	data.governor.decision.reasons == ["authorization.missing_permission:both"] with input as _in(ps, _alice) with data.governor.config as _roles_table
	d := _decide([_auth("both", {"required_roles": ["admin"], "required_permissions": ["x"]})], {"user_id": "bob"})
	d.reasons == ["authorization.missing_permission:both", "authorization.missing_role:both"]
}

test_missing_subject_with_requirements_is_no_subject if {
	ps := [_auth("staff", {"required_roles": ["clerk"]})]
	_decide(ps, {}).reasons == ["authorization.no_subject:staff"]
	_decide(ps, null).reasons == ["authorization.no_subject:staff"]
	inp := {"version": 1, "phase": "pre", "policies": ps}
	data.governor.decision.reasons == ["authorization.no_subject:staff"] with input as inp
	_decide([_auth("perm", {"required_permissions": ["x"]})], {}).reasons == ["authorization.no_subject:perm"]
}

test_no_requirements_need_no_subject if {
	_decide([_auth("open", {})], null).decision == "allow"
}

test_subject_with_malformed_roles_holds_none if {
	d := _decide([_auth("staff", {"required_roles": ["clerk"]})], {"user_id": "x", "roles": "clerk"})
	d.reasons == ["authorization.missing_role:staff"]
}

test_attribute_conditions_must_all_hold if {
	ok := [
		{"attribute": "department", "op": "eq", "value": "finance"},
		{"attribute": "subject.attributes.clearance", "op": "gte", "value": 2},
		{"attribute": "args.region", "op": "in", "value": ["eu", "uk"]},
	]
	_decide([_auth("abac", {"conditions": ok})], _alice).decision == "allow"
	bad := array.concat(ok, [{"attribute": "clearance", "op": "gte", "value": 3}])
	d := _decide([_auth("abac", {"conditions": bad})], _alice)
	d.reasons == ["authorization.condition_failed:abac"]
	d.violations[0].message == "The call does not meet the conditions of policy abac on: clearance."
}

test_a_missing_attribute_fails_its_condition if {
	c := [{"attribute": "args.approved_by", "op": "neq", "value": "nobody"}]
	_decide([_auth("abac", {"conditions": c})], _alice).reasons == ["authorization.condition_failed:abac"]
}

test_conditions_on_arguments_need_no_subject if {
	c := [{"attribute": "args.amount", "op": "lte", "value": 500}]
	_decide([_auth("small", {"conditions": c})], null).decision == "allow"
	c2 := [{"attribute": "args.amount", "op": "lt", "value": 250}]
	_decide([_auth("small", {"conditions": c2})], null).reasons == ["authorization.condition_failed:small"]
}

test_messages_never_echo_attribute_values if {
	c := [{"attribute": "badge", "op": "eq", "value": "other"}]
	d := _decide([_auth("abac", {"conditions": c})], _alice)
	d.decision == "deny"
	every v in d.violations {
		not contains(v.message, "secret-badge-77")
	}
}

test_require_approval_on_failure_turns_the_deny_into_a_confirm if {
	ps := [_auth("admins", {"required_roles": ["admin"], "require_approval_on_failure": true, "approvers": ["security"]})]
	d := _decide(ps, _alice)
	d.decision == "confirm"
	d.reasons == ["authorization.missing_role:admins"]
	d.approval == {"required": true, "approvers": ["security"], "stages": [["security"]], "timeout_seconds": 3600, "quorum": 1}
}

test_approval_on_failure_takes_approvers_and_timeout_from_config if {
	ps := [_auth("admins", {"required_roles": ["admin"], "require_approval_on_failure": true})]
	cfg := {"authorization": {"approvers": ["it-ops"], "approval_timeout_seconds": 600}}
	d := data.governor.decision with input as _in(ps, _alice) with data.governor.config as cfg
	d.approval == {"required": true, "approvers": ["it-ops"], "stages": [["it-ops"]], "timeout_seconds": 600, "quorum": 1}
	d2 := data.governor.decision with input as _in(ps, _alice) with data.governor.config as {}
	d2.approval == {"required": true, "approvers": [], "stages": [], "timeout_seconds": 3600, "quorum": 1}
}

test_approval_on_failure_does_not_cover_a_missing_subject if {
	ps := [_auth("admins", {"required_roles": ["admin"], "require_approval_on_failure": true})]
	d := _decide(ps, {})
	d.decision == "deny"
	d.reasons == ["authorization.no_subject:admins"]
}

test_approval_on_failure_is_not_asked_when_authorized if {
	ps := [_auth("staff", {"required_roles": ["clerk"], "require_approval_on_failure": true})]
	_decide(ps, _alice).decision == "allow"
}

test_malformed_params_fail_closed_even_with_approval_on_failure if {
	every case in [
		[{"required_roles": "admin"}, "required_roles"],
		[{"required_permissions": ["a", 1]}, "required_permissions"],
		[{"conditions": [{"attribute": "x", "op": "like", "value": 1}]}, "conditions"],
		[{"conditions": "clearance > 2"}, "conditions"],
		[{"require_approval_on_failure": "yes"}, "require_approval_on_failure"],
		[{"require_approval_on_failure": true, "approvers": "security"}, "approvers"],
		[{"require_approval_on_failure": true, "approval_timeout_seconds": 0}, "approval_timeout_seconds"],
	] {
		d := _decide([_auth("a", object.union({"required_roles": ["nobody"]}, case[0]))], _alice)
		d.decision == "deny"
		d.reasons == [sprintf("authorization.invalid_param:a.%s", [case[1]])]
	}
}

test_several_policies_are_checked_independently if {
	ps := [
		_auth("staff", {"required_roles": ["clerk"]}),
		_auth("admins", {"required_roles": ["admin"]}),
		_auth("finance", {"conditions": [{"attribute": "department", "op": "eq", "value": "finance"}]}),
	]
	_decide(ps, _alice).reasons == ["authorization.missing_role:admins"]
}

test_deny_from_one_policy_beats_confirm_from_another if {
	ps := [
		_auth("admins", {"required_roles": ["admin"], "require_approval_on_failure": true}),
		_auth("auditors", {"required_roles": ["auditor"]}),
	]
	d := _decide(ps, _alice)
	d.decision == "deny"
	d.reasons == ["authorization.missing_role:admins", "authorization.missing_role:auditors"]
	d.approval.required == false
}

test_entries_of_other_types_are_ignored if {
	_decide([{"type": "audit", "name": "x", "params": {"required_roles": ["admin"]}}], _alice).decision == "allow"
}

test_the_post_phase_is_not_authorized_again if {
	inp := object.union(_in([_auth("admins", {"required_roles": ["admin"]})], _alice), {"phase": "post"})
	data.governor.decision.decision == "allow" with input as inp
}
