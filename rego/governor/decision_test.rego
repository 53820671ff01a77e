package governor.decision_test

# The policy packages are replaced by mocks (`with data.governor.policies as {...}`) wherever a
# test is about combining, with an input whose policies name every mocked package (a package
# contributes only when input.policies names its type, audit always); the envelope tests run
# against the real library.

_ok := {"version": 1, "phase": "pre"}

_no_approval := {"required": false, "approvers": [], "stages": [], "timeout_seconds": 0, "quorum": 0}

_v(policy, type, code) := {"policy": policy, "type": type, "code": code, "message": sprintf("%s failed", [policy])}

# an input whose policies name every package of pkgs
_naming(pkgs) := {"version": 1, "phase": "pre", "policies": [{"type": name} | some name, _ in pkgs]}

_decide(pkgs) := d if {
	d := data.governor.decision with data.governor.policies as pkgs with input as _naming(pkgs)
}

# --- the envelope --------------------------------------------------------------------------------

test_valid_envelope_without_policies_allows_with_the_full_empty_document if {
	inp := _ok
	data.governor.decision == {
		"decision": "allow",
		"reasons": [],
		"violations": [],
		"approval": {"required": false, "approvers": [], "stages": [], "timeout_seconds": 0, "quorum": 0},
		"redactions": [],
		"audit": {"tags": [], "mask": []},
	} with input as inp
}

test_empty_input_object_is_denied_for_version_and_phase if {
	d := data.governor.decision with input as {}
	d.decision == "deny"
	d.reasons == ["input.invalid:phase", "input.invalid:version"]
	d.approval.required == false
	count(d.violations) == 2
}

test_non_object_input_is_denied_and_the_document_stays_defined if {
	every inp in ["a string", 5, [1, 2], null, true] {
		d := data.governor.decision with input as inp
		d.decision == "deny"
		d.reasons == ["input.invalid:input"]
		d.approval == {"required": false, "approvers": [], "stages": [], "timeout_seconds": 0, "quorum": 0}
		d.redactions == []
		d.audit == {"tags": [], "mask": []}
	}
}

test_version_other_than_1_is_denied if {
	every version in [2, 0, "1", null] {
		d := data.governor.decision with input as {"version": version, "phase": "pre"}
		d.reasons == ["input.invalid:version"]
	}
}

test_phase_other_than_pre_or_post_is_denied if {
	data.governor.decision.reasons == ["input.invalid:phase"] with input as {"version": 1, "phase": "during"}
	data.governor.decision.reasons == ["input.invalid:phase"] with input as {"version": 1}
	data.governor.decision.decision == "allow" with input as {"version": 1, "phase": "post"}
}

test_policies_must_be_a_list_of_typed_objects if {
	every policies in [
		"rate_limit",
		{"type": "rate_limit"},
		["rate_limit"],
		[{"name": "no type"}],
		[{"type": 5}],
		[{"type": "audit", "name": 5}],
		[{"type": "audit", "params": ["x"]}],
	] {
		d := data.governor.decision with input as {"version": 1, "phase": "pre", "policies": policies}
		d.decision == "deny"
		"input.invalid:policies" in d.reasons
	}
}

test_policies_may_omit_name_and_params_or_set_them_null if {
	ps := [{"type": "audit"}, {"type": "audit", "name": null, "params": null}]
	data.governor.decision.decision == "allow" with input as {"version": 1, "phase": "pre", "policies": ps}
}

test_facts_and_subject_must_be_objects_when_present if {
	d := data.governor.decision with input as {"version": 1, "phase": "pre", "facts": [], "subject": "alice"}
	d.reasons == ["input.invalid:facts", "input.invalid:subject"]
	data.governor.decision.decision == "allow" with input as {"version": 1, "phase": "pre", "facts": null, "subject": null}
}

test_input_violations_never_echo_the_input if {
	d := data.governor.decision with input as {"version": "secret-token-123", "phase": "pre"}
	every v in d.violations {
		not contains(v.message, "secret-token-123")
	}
}

test_invalid_envelope_denies_alongside_policy_findings if {
	pkgs := {"p": {"warn": {_v("w", "p", "soft")}}}
	inp := {"version": 2, "phase": "pre", "policies": [{"type": "p"}]}
	d := data.governor.decision with data.governor.policies as pkgs with input as inp
	d.decision == "deny"
	d.reasons == ["input.invalid:version", "p.soft:w"]
}

# --- precedence ----------------------------------------------------------------------------------

_redaction := {"path": "raw_text", "start": 0, "end": 4, "kind": "email", "replacement": "[EMAIL]"}

test_deny_beats_confirm_redact_and_warn if {
	pkgs := {
		"a": {"deny": {_v("d", "a", "no")}},
		"b": {"confirm": {_v("c", "b", "ask")}},
		"c": {"redact": {_redaction}, "warn": {_v("w", "c", "hmm")}},
	}
	d := _decide(pkgs)
	d.decision == "deny"
	d.approval == _no_approval
}

test_confirm_beats_redact if {
	d := _decide({"b": {"confirm": {_v("c", "b", "ask")}}, "c": {"redact": {_redaction}}})
	d.decision == "confirm"
	d.approval.required == true
}

test_redact_beats_allow if {
	d := _decide({"c": {"redact": {_redaction}}})
	d.decision == "redact"
	d.redactions == [_redaction]
	d.approval == _no_approval
}

test_warn_alone_still_allows_with_a_reason if {
	d := _decide({"c": {"warn": {_v("w", "c", "hmm")}}})
	d.decision == "allow"
	d.reasons == ["c.hmm:w"]
	d.violations == [_v("w", "c", "hmm")]
}

test_nothing_contributed_allows if {
	_decide({}).decision == "allow"
	_decide({"empty": {}}).decision == "allow"
}

# --- reasons and violations ----------------------------------------------------------------------

test_reasons_are_sorted_and_unique if {
	pkgs := {
		"z": {"deny": {_v("zeta", "z", "b"), _v("alpha", "z", "b")}},
		"a": {"warn": {_v("mid", "a", "x")}, "deny": {{"policy": "alpha", "type": "z", "code": "b", "message": "again"}}},
	}
	_decide(pkgs).reasons == ["a.x:mid", "z.b:alpha", "z.b:zeta"]
}

test_violations_follow_reason_order_with_exactly_four_fields if {
	pkgs := {"p": {
		"deny": {{"policy": "b", "type": "t", "code": "c", "message": "m2", "detail": "x", "extra": 1}},
		"confirm": {object.union(_v("a", "t", "c"), {"approval": {"approvers": ["x"]}})},
	}}
	_decide(pkgs).violations == [
		{"policy": "a", "type": "t", "code": "c", "message": "a failed"},
		{"policy": "b", "type": "t", "code": "c", "message": "m2"},
	]
}

test_detail_replaces_the_policy_name_in_the_reason if {
	pkgs := {"budget": {"deny": {{"policy": "monthly", "type": "budget", "code": "invalid_amount", "detail": "spent", "message": "m"}}}}
	_decide(pkgs).reasons == ["budget.invalid_amount:spent"]
}

test_user_package_joins_by_its_name_with_defaults if {
	pkgs := {"acme_payments": {"deny": {{"code": "over_limit", "message": "Refunds above 500 need a manager."}}}}
	d := _decide(pkgs)
	d.decision == "deny"
	d.reasons == ["acme_payments.over_limit:acme_payments"]
}

test_plain_string_and_boolean_rules_from_user_packages_count if {
	d := _decide({"acme": {"deny": {"payments are frozen"}}})
	d.reasons == ["acme.denied:acme"]
	d.violations == [{"policy": "acme", "type": "acme", "code": "denied", "message": "payments are frozen"}]
	_decide({"acme": {"deny": true}}).decision == "deny"
	_decide({"acme": {"confirm": true}}).decision == "confirm"
	_decide({"acme": {"warn": true}}).reasons == ["acme.warning:acme"]
	_decide({"acme": {"deny": false}}).decision == "allow"
}

test_array_contributions_count_and_other_shapes_are_ignored if {
	_decide({"acme": {"deny": [_v("x", "acme", "no")]}}).decision == "deny"
	_decide({"acme": {"deny": {"not": "a set"}}}).decision == "allow"
	_decide({"acme": {"deny": 5}, "odd": "not a package"}).decision == "allow"
}

test_non_string_fields_are_rendered_as_text if {
	_decide({"acme": {"deny": {{"policy": 7, "type": "acme", "code": 1, "message": ["m"]}}}}).reasons == ["acme.1:7"]
}

# --- the approval block ----------------------------------------------------------------------

_c(policy, approval) := object.union(_v(policy, "approval", "required"), {"approval": approval})

test_single_confirm_passes_its_approval_block_through if {
	a := {"approvers": ["bob", "alice"], "stages": [["bob", "alice"]], "timeout_seconds": 600, "quorum": 2}
	_decide({"approval": {"confirm": {_c("one", a)}}}).approval == {
		"required": true,
		"approvers": ["alice", "bob"],
		"stages": [["bob", "alice"]],
		"timeout_seconds": 600,
		"quorum": 2,
	}
}

test_several_confirms_merge_approvers_stages_timeout_and_quorum if {
	pkgs := {
		"approval": {"confirm": {
			_c("b_second", {"approvers": ["carol"], "stages": [["carol"]], "timeout_seconds": 900, "quorum": 1}),
			_c("a_first", {"approvers": ["alice", "bob"], "stages": [["alice"], ["bob"]], "timeout_seconds": 3600, "quorum": 2}),
		}},
		"precheck": {"confirm": {{
			"policy": "tools", "type": "precheck", "code": "tool_requires_confirmation", "message": "m",
			"approval": {"approvers": ["alice"], "stages": [["dave"]], "timeout_seconds": 1800, "quorum": 1},
		}}},
	}
	_decide(pkgs).approval == {
		"required": true,
		"approvers": ["alice", "bob", "carol"],
		"stages": [["alice"], ["bob"], ["carol"], ["dave"]],
		"timeout_seconds": 900,
		"quorum": 2,
	}
}

test_confirm_without_an_approval_block_still_requires_approval if {
	_decide({"acme": {"confirm": {_v("x", "acme", "ask")}}}).approval == {
		"required": true, "approvers": [], "stages": [], "timeout_seconds": 0, "quorum": 1,
	}
}

test_malformed_approval_fields_are_ignored if {
	a := {"approvers": ["ok", 5], "stages": "none", "timeout_seconds": -5, "quorum": "two"}
	_decide({"acme": {"confirm": {_c("x", a)}}}).approval == {
		"required": true, "approvers": ["ok"], "stages": [], "timeout_seconds": 0, "quorum": 1,
	}
	_decide({"acme": {"confirm": {_c("x", "not an object")}}}).approval.approvers == []
}

# --- redactions and audit --------------------------------------------------------------------

test_redactions_are_sorted_by_path_then_start if {
	r1 := {"path": "raw_text", "start": 10, "end": 14, "kind": "ssn", "replacement": "[SSN]"}
	r2 := {"path": "raw_text", "start": 2, "end": 5, "kind": "email", "replacement": "[EMAIL]"}
	r3 := {"path": "args.note", "start": 40, "end": 44, "kind": "phone", "replacement": "[PHONE]"}
	d := _decide({"pii": {"redact": {r1, r2}}, "other": {"redact": {r3, "not an object"}}})
	d.redactions == [r3, r2, r1]
}

test_redaction_fields_get_defaults if {
	_decide({"pii": {"redact": {{"path": "raw_text", "start": 1}}}}).redactions == [
		{"path": "raw_text", "start": 1, "end": 0, "kind": "", "replacement": ""},
	]
}

test_audit_tags_and_masks_are_merged_sorted_and_unique if {
	pkgs := {
		"audit": {"audit_tags": {"SOX", "GDPR"}, "audit_mask": {"password", "args.card"}},
		"acme": {"audit_tags": ["SOX", "PCI", 5], "audit_mask": {"token"}},
	}
	d := _decide(pkgs)
	d.audit == {"tags": ["GDPR", "PCI", "SOX"], "mask": ["args.card", "password", "token"]}
	d.decision == "allow"
}

# --- end to end, with the real packages ------------------------------------------------------

test_real_packages_combine_deny_over_confirm if {
	inp := {
		"version": 1,
		"phase": "pre",
		"subject": {"user_id": "u1", "roles": ["clerk"]},
		"args": {"amount": 50000},
		"policies": [
			{"type": "approval", "name": "large_refund", "params": {"approvers": ["cfo"], "when": [{"attribute": "args.amount", "op": "gt", "value": 10000}]}},
			{"type": "rate_limit", "name": "refunds", "params": {"max_calls": 3}},
			{"type": "audit", "params": {"sensitive_fields": ["args.card"], "compliance_tags": ["SOX"]}},
		],
		"facts": {"rate_limit": {"refunds": {"count": 3, "window_seconds": 60}}},
	}
	d := data.governor.decision with input as inp
	d.decision == "deny"
	d.reasons == ["approval.required:large_refund", "rate_limit.exceeded:refunds"]
	d.approval == _no_approval
	d.audit == {"tags": ["SOX"], "mask": ["args.card"]}
}

test_real_packages_confirm_when_nothing_denies if {
	inp := {
		"version": 1,
		"phase": "pre",
		"args": {"amount": 50000},
		"policies": [
			{"type": "approval", "name": "large_refund", "params": {"approvers": ["cfo"], "when": [{"attribute": "args.amount", "op": "gt", "value": 10000}]}},
			{"type": "rate_limit", "name": "refunds", "params": {"max_calls": 3}},
		],
		"facts": {"rate_limit": {"refunds": {"count": 2, "window_seconds": 60}}},
	}
	d := data.governor.decision with input as inp
	d.decision == "confirm"
	d.approval == {"required": true, "approvers": ["cfo"], "stages": [["cfo"]], "timeout_seconds": 3600, "quorum": 1}
}

# --- which packages contribute ---------------------------------------------------------------

test_a_package_contributes_only_when_input_policies_name_its_type if {
	pkgs := {
		"budget": {"deny": {_v("monthly", "budget", "exceeded")}, "warn": set()},
		"acme": {"deny": {_v("refunds", "acme", "frozen")}},
	}
	none := data.governor.decision with data.governor.policies as pkgs with input as _ok
	none.decision == "allow"
	none.reasons == []
	acme := object.union(_ok, {"policies": [{"type": "acme"}]})
	data.governor.decision.reasons == ["acme.frozen:refunds"] with data.governor.policies as pkgs with input as acme
	budget := object.union(_ok, {"policies": [{"type": "budget", "name": "monthly"}]})
	data.governor.decision.reasons == ["budget.exceeded:monthly"] with data.governor.policies as pkgs with input as budget
}

test_malformed_entries_name_no_type if {
	pkgs := {"acme": {"deny": {_v("refunds", "acme", "frozen")}}}
	inp := object.union(_ok, {"policies": ["acme", {"name": "acme"}, {"type": ["acme"]}]})
	d := data.governor.decision with data.governor.policies as pkgs with input as inp
	d.reasons == ["input.invalid:policies"]
}

test_audit_contributes_without_an_audit_policy if {
	pkgs := {"audit": {
		"audit_tags": {"SOX"},
		"audit_mask": {"password"},
		"warn": {_v("audit", "audit", "invalid_param")},
	}}
	d := data.governor.decision with data.governor.policies as pkgs with input as _ok
	d.audit == {"tags": ["SOX"], "mask": ["password"]}
	d.reasons == ["audit.invalid_param:audit"]
}

test_audit_config_applies_to_every_decision if {
	cfg := {"always_mask": ["password", "token"], "always_tags": ["SOC2"]}
	d := data.governor.decision with data.governor.config.audit as cfg with input as _ok
	d.decision == "allow"
	d.audit == {"tags": ["SOC2"], "mask": ["password", "token"]}
}

test_a_user_package_beside_the_standard_ones_contributes_when_active if {
	acme := {"deny": {{"code": "frozen", "message": "Payments are frozen."}}, "audit_tags": ["PCI"]}
	limit := {"type": "rate_limit", "name": "api", "params": {"max_calls": 5}}
	facts := {"rate_limit": {"api": {"count": 1, "window_seconds": 60}}}
	inactive := object.union(_ok, {"policies": [limit], "facts": facts})
	d1 := data.governor.decision with data.governor.policies.acme as acme with input as inactive
	d1.decision == "allow"
	d1.audit.tags == []
	active := object.union(inactive, {"policies": [limit, {"type": "acme"}]})
	d2 := data.governor.decision with data.governor.policies.acme as acme with input as active
	d2.reasons == ["acme.frozen:acme"]
	d2.audit.tags == ["PCI"]
}

test_a_type_without_a_package_contributes_nothing if {
	d := data.governor.decision with input as object.union(_ok, {"policies": [{"type": "no_such_package"}]})
	d.decision == "allow"
	d.reasons == []
}

test_a_standard_package_contributes_only_with_an_entry_of_its_type if {
	# the real precheck package denies this tool, but only for an input with a precheck entry
	cfg := {"tools": {"deny": ["shell.exec"]}}
	inp := object.union(_ok, {"action": {"kind": "tool", "name": "shell.exec"}})
	data.governor.decision.decision == "allow" with data.governor.config.precheck as cfg with input as inp
	guarded := object.union(inp, {"policies": [{"type": "precheck", "name": "guard"}]})
	data.governor.decision.reasons == ["precheck.tool_denied:shell.exec"] with data.governor.config.precheck as cfg with input as guarded
}

test_precheck_findings_reach_the_audit_field if {
	inp := object.union(_ok, {"raw_text": "write to a@b.io", "policies": [{"type": "precheck", "name": "guard"}]})
	d := data.governor.decision with input as inp
	d.decision == "allow"
	d.audit == {"tags": ["pii", "pii.email"], "mask": ["raw_text"]}
	data.governor.decision.audit == {"tags": [], "mask": []} with input as object.union(inp, {"policies": []})
}

# --- the short cut (governor.lib.combine.quiet_audit) ---------------------------------------------

# An input as Python sends it: facts and subject objects, every entry with a name and params.
_py(policies, facts) := {
	"version": 1,
	"phase": "pre",
	"action": {"kind": "function", "name": "pay", "scope": null, "tags": []},
	"subject": {"user_id": "u1"},
	"args": {"amount": 5},
	"policies": policies,
	"facts": object.union({"now": 1}, facts),
}

_audit_entry := {"type": "audit", "name": "audit", "params": {"sensitive_fields": ["card"], "compliance_tags": ["SOX"], "log_inputs": true, "log_outputs": false}}

_limit_entry := {"type": "rate_limit", "name": "api", "params": {"max_calls": 5, "window_seconds": 60, "per_user": true}}

_counted(n) := {"rate_limit": {"api": {"count": n, "window_seconds": 60}}}

# Negated calls go through a helper rule (see governor.lib.combine).
_short_cut(inp) if data.governor.lib.combine.quiet_audit(inp.policies) with input as inp

# The document of the general rules.
_same_as_general(inp, cfg) if {
	d := data.governor.decision with input as inp with data.governor.config as cfg
	d.decision == data.governor.lib.decision.outcome with input as inp with data.governor.config as cfg
	d.reasons == data.governor.lib.decision.reasons with input as inp with data.governor.config as cfg
	d.violations == data.governor.lib.decision.violations with input as inp with data.governor.config as cfg
	d.approval == data.governor.lib.decision.approval with input as inp with data.governor.config as cfg
	d.redactions == data.governor.lib.decision.redactions with input as inp with data.governor.config as cfg
	d.audit == data.governor.lib.decision.audit with input as inp with data.governor.config as cfg
}

test_the_short_cut_gives_the_document_of_the_general_rules if {
	cfg := {"audit": {"always_mask": ["password"], "always_tags": ["SOC2"]}}
	every ps in [[], [_audit_entry], [_limit_entry], [_audit_entry, _limit_entry]] {
		inp := _py(ps, _counted(4))
		every c in [{}, cfg] {
			data.governor.lib.combine.quiet_audit(inp.policies) with input as inp with data.governor.config as c
			_same_as_general(inp, c)
		}
	}
	d := data.governor.decision with input as _py([_audit_entry, _limit_entry], _counted(4)) with data.governor.config as cfg
	d.audit == {"tags": ["SOC2", "SOX"], "mask": ["card", "output", "password"]}
}

test_the_short_cut_leaves_everything_else_to_the_general_rules if {
	ok := _py([_audit_entry, _limit_entry], _counted(1))
	cases := [
		_py([_audit_entry, _limit_entry], _counted(5)),
		_py([_limit_entry], {}),
		object.union(object.remove(ok, ["subject"]), {"subject": {}}),
		_py([object.union(_audit_entry, {"params": {"sensitive_fields": "card"}})], {}),
		_py([{"type": "audit", "params": _audit_entry.params}], {}),
		_py([object.union(_audit_entry, {"params": null})], {}),
		_py([{"type": "budget", "name": "b", "params": {"limit": 1}}], {}),
		_py([{"type": "acme", "name": "a", "params": {}}], {}),
		_py(["audit"], {}),
		_py({"type": "audit"}, {}),
		object.union(ok, {"version": 2}),
		object.union(ok, {"phase": "during"}),
		object.union(ok, {"subject": "u1"}),
		object.union(ok, {"facts": 1}),
		{"version": 1, "phase": "pre", "policies": []},
	]
	every inp in cases {
		not _short_cut(inp)
		_same_as_general(inp, {})
	}
}

# --- constant: decisions Python may reuse (governor.lib.combine.constant) ------------------------

_constant(inp) if data.governor.lib.combine.constant with input as inp

test_only_plain_audit_entries_make_a_constant_decision if {
	quiet := _audit_entry.params
	keep_nothing := object.union(quiet, {"log_inputs": false, "log_outputs": false})
	every ps in [[], [_audit_entry], [_audit_entry, object.union(_audit_entry, {"name": "b", "params": keep_nothing})]] {
		_constant(_py(ps, {}))
	}
	every inp in [
		_py([_limit_entry], _counted(1)),
		_py([_audit_entry, _limit_entry], _counted(1)),
		_py([{"type": "budget", "name": "b", "params": {"limit": 1}}], {}),
		_py([{"type": "acme", "name": "a", "params": {}}], {}),
		_py([object.union(_audit_entry, {"params": {"sensitive_fields": "card"}})], {}),
		object.union(_py([], {}), {"version": 2}),
		object.union(_py([], {}), {"subject": "u1"}),
	] {
		not _constant(inp)
	}
}

# What "constant" promises: the rest of the input changes nothing, whatever the bundle's config.
test_a_constant_decision_ignores_the_rest_of_the_input if {
	cfg := {"audit": {"always_mask": ["password"], "always_tags": ["SOC2"]}}
	ps := [_audit_entry, object.union(_audit_entry, {"name": "b", "params": object.union(_audit_entry.params, {"log_inputs": false})})]
	base := _py(ps, {})
	others := [
		object.union(base, {"phase": "post", "output": {"card": "4111 1111 1111 1111"}}),
		object.union(base, {"subject": {"user_id": "someone else", "roles": ["admin"]}}),
		object.union(base, {"args": {"to": "a@b.io", "note": "ssn 123-45-6789"}, "raw_text": "x"}),
		object.union(base, {"action": {"kind": "tool", "name": "shell.exec", "scope": null, "tags": ["payments"]}}),
		object.union(base, {"facts": {"now": 99, "rate_limit": {"api": {"count": 9, "window_seconds": 1}}}}),
	]
	every c in [{}, cfg] {
		want := data.governor.decision with input as base with data.governor.config as c
		every inp in others {
			data.governor.lib.combine.constant with input as inp with data.governor.config as c
			got := data.governor.decision with input as inp with data.governor.config as c
			got == want
		}
	}
}

# --- the short cut with precheck and budget entries (as the precheck server sends them) --------

_server_cfg := {
	"precheck": {
		"tools": {"deny": ["shell.exec"], "confirm": ["payments.*"], "confirm_tags": ["payments"]},
		"scopes": {"denied": ["admin.*"]},
		"pii": {"actions": {"email": "redact"}},
		"audit_tags": ["gdpr"],
	},
	"budget": {"default_monthly_limit": 100, "warn_ratio_percent": 80},
}

_server_entries := [
	{"type": "precheck", "name": "precheck", "params": {}},
	{"type": "budget", "name": "monthly", "params": {}},
	_audit_entry,
]

_server_in(action, text, spent) := {
	"version": 1,
	"phase": "pre",
	"action": action,
	"subject": {"user_id": "u1"},
	"args": {"note": "write to a@b.io"},
	"raw_text": text,
	"policies": _server_entries,
	"facts": {"now": 1, "budget": {"limit": null, "spent": spent, "reserved": 5, "estimated_cost": 5, "currency": "USD"}},
}

_chat := {"kind": "model", "name": "model.chat", "scope": null, "tags": []}

_tool_action(name, scope, tags) := {"kind": "tool", "name": name, "scope": scope, "tags": tags}

_server_short_cut(inp) if data.governor.lib.combine.quiet_audit(inp.policies) with input as inp with data.governor.config as _server_cfg

test_the_short_cut_takes_clear_precheck_and_budget_entries if {
	clear := [
		_server_in(_chat, "summarise the report", 10),
		_server_in(_tool_action("search.web", "net.internal", ["tool_call"]), "", 0),
		object.union(_server_in(_chat, "the reply", 95), {"phase": "post"}),
		_server_in(_chat, "no text at all", 0),
	]
	every inp in clear {
		_server_short_cut(inp)
		_same_as_general(inp, _server_cfg)
		d := data.governor.decision with input as inp with data.governor.config as _server_cfg
		d.decision == "allow"
		d.audit.tags == ["SOX", "gdpr"]
	}
}

test_the_short_cut_leaves_findings_and_refusals_to_the_general_rules if {
	scan_args := [object.union(_server_entries[0], {"params": {"pii": {"scan_args": true}}}), _server_entries[1]]
	others := [
		_server_in(_chat, "write to a@b.io", 10),
		_server_in(_tool_action("shell.exec", null, []), "", 10),
		_server_in(_tool_action("payments.transfer", null, []), "", 10),
		_server_in(_tool_action("crm.lookup", null, ["payments"]), "", 10),
		_server_in(_tool_action("crm.lookup", "admin.users", []), "", 10),
		_server_in(_chat, "hello", 91),
		_server_in(_chat, "hello", 70),
		object.union(object.remove(_server_in(_chat, "hello", 10), ["facts"]), {"facts": {"now": 1}}),
		object.union(_server_in(_chat, "hello", 10), {"policies": [object.union(_server_entries[1], {"params": {"currency": "EUR"}})]}),
		object.union(_server_in(_chat, "hello", 10), {"policies": scan_args}),
		object.union(_server_in(_chat, "hello", 10), {"policies": [object.union(_server_entries[0], {"params": {"tools": {"default": "maybe"}}})]}),
	]
	every inp in others {
		not _server_short_cut(inp)
		_same_as_general(inp, _server_cfg)
	}
}


# --- the short cut for PII that is only redacted or allowed (governor.lib.combine.quiet_redact) --

_quiet_redact(inp) if data.governor.lib.combine.quiet_redact(inp.policies) with input as inp with data.governor.config as _server_cfg

_precheck_with(params) := object.union(_server_entries[0], {"params": params})

test_the_redact_short_cut_gives_the_document_of_the_general_rules if {
	scanning := _precheck_with({"pii": {"scan_args": true}})
	cases := [
		_server_in(_chat, "write to jane@example.com today", 10),
		_server_in(_chat, "the host is 10.0.0.1", 10),
		_server_in(_chat, "jane@example.com on 10.0.0.1, and bob@example.org", 10),
		object.union(_server_in(_chat, "nothing here", 10), {"policies": [scanning, _server_entries[1], _audit_entry]}),
		object.union(_server_in(_chat, "mail a@b.io", 10), {"policies": [_server_entries[0], scanning, _audit_entry]}),
		object.union(_server_in(_chat, "the answer: jane@example.com", 95), {"phase": "post"}),
	]
	every inp in cases {
		_quiet_redact(inp)
		_same_as_general(inp, _server_cfg)
	}
	d := data.governor.decision with input as cases[2] with data.governor.config as _server_cfg
	d.decision == "redact"
	[[r.path, r.kind] | some r in d.redactions] == [["raw_text", "email"], ["raw_text", "email"]]
	d.audit == {"tags": ["SOX", "gdpr", "pii", "pii.email", "pii.ipv4"], "mask": ["card", "output", "raw_text"]}
	allowed := data.governor.decision with input as cases[1] with data.governor.config as _server_cfg
	allowed.decision == "allow"
	allowed.redactions == []
}

test_the_redact_short_cut_leaves_other_actions_and_refusals_to_the_general_rules if {
	text := "write to jane@example.com today"
	others := [
		object.union(_server_in(_chat, text, 10), {"policies": [_precheck_with({"pii": {"actions": {"email": "deny"}}})]}),
		object.union(_server_in(_chat, text, 10), {"policies": [_precheck_with({"pii": {"actions": {"email": "confirm"}}})]}),
		object.union(_server_in(_chat, text, 10), {"policies": [_precheck_with({"pii": {"actions": {"email": "warn"}}})]}),
		_server_in(_tool_action("shell.exec", null, []), text, 10),
		_server_in(_chat, text, 91),
		object.union(_server_in(_chat, text, 10), {"subject": "u1"}),
	]
	every inp in others {
		not _quiet_redact(inp)
		_same_as_general(inp, _server_cfg)
	}
}
