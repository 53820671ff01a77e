package governor.policies_test.precheck

import data.governor.policies.precheck

_config := {
	"tools": {
		"deny": ["shell.exec", "fs.*"],
		"confirm": ["payments.*"],
		"allow": ["search.web", "payments.quote", "shell.exec"],
		"default": "allow",
		"confirm_tags": ["payments", "payments.*"],
	},
	"scopes": {"allowed": [], "denied": ["admin.*"]},
	"pii": {
		"actions": {"email": "redact", "us_ssn": "redact", "credit_card": "redact", "api_key": "deny"},
		"default_action": "allow",
		"scan_args": false,
	},
	"approval": {"approvers": ["alice", "bob"], "stages": [], "timeout_seconds": 600, "quorum": 1},
	"audit_tags": ["gdpr"],
}

_approval := {"approvers": ["alice", "bob"], "stages": [["alice", "bob"]], "timeout_seconds": 600, "quorum": 1}

_entry := {"type": "precheck", "name": "guard", "params": {}}

_tool(name) := {"kind": "tool", "name": name, "scope": "net.internal", "tags": []}

_input(action, text) := {"version": 1, "phase": "pre", "action": action, "raw_text": text, "policies": [_entry]}

_with_params(params) := [{"type": "precheck", "name": "guard", "params": params}]

# the reasons an element set gives: <code>:<detail>
_reasons(elements) := {sprintf("%s:%s", [v.code, v.detail]) | some v in elements}

_cfg(patch) := object.union(_config, patch)

# --- applying ----------------------------------------------------------------------------------

test_nothing_contributed_without_a_precheck_entry if {
	inp := object.union(_input(_tool("shell.exec"), "a@b.io"), {"policies": [{"type": "audit", "name": "x"}]})
	count(precheck.deny) == 0 with input as inp with data.governor.config.precheck as _config
	count(precheck.redact) == 0 with input as inp with data.governor.config.precheck as _config
	count(precheck.audit_tags) == 0 with input as inp with data.governor.config.precheck as _config
}

test_defaults_allow_everything_without_bundle_config if {
	inp := _input(_tool("shell.exec"), "mail a@b.io")
	count(precheck.deny) == 0 with input as inp
	count(precheck.confirm) == 0 with input as inp
	count(precheck.redact) == 0 with input as inp
	precheck.audit_tags == {"pii", "pii.email"} with input as inp
}

test_malformed_policy_entries_and_params_are_ignored if {
	inp := object.union(_input(_tool("shell.exec"), ""), {"policies": ["precheck", {"type": "precheck", "params": "deny all", "name": 7}]})
	precheck.deny == {{
		"policy": "precheck", "type": "precheck", "code": "tool_denied", "detail": "shell.exec",
		"message": "Tool shell.exec is on the deny list.",
	}} with input as inp with data.governor.config.precheck as _config
}

# --- tools -------------------------------------------------------------------------------------

test_tool_on_deny_list_is_denied_even_if_also_allowed if {
	precheck.deny == {{
		"policy": "guard", "type": "precheck", "code": "tool_denied", "detail": "shell.exec",
		"message": "Tool shell.exec is on the deny list.",
	}} with input as _input(_tool("shell.exec"), "") with data.governor.config.precheck as _config
}

test_deny_glob_matches_one_segment_only if {
	_reasons(precheck.deny) == {"tool_denied:fs.delete"} with input as _input(_tool("fs.delete"), "")
		with data.governor.config.precheck as _config
	count(precheck.deny) == 0 with input as _input(_tool("fs.tmp.delete"), "")
		with data.governor.config.precheck as _config
}

test_confirm_glob_needs_confirmation_with_the_approval_block if {
	precheck.confirm == {{
		"policy": "guard", "type": "precheck", "code": "tool_requires_confirmation", "detail": "payments.refund",
		"message": "Tool payments.refund needs confirmation.",
		"approval": _approval,
	}} with input as _input(_tool("payments.refund"), "") with data.governor.config.precheck as _config
}

test_confirm_beats_allow if {
	_reasons(precheck.confirm) == {"tool_requires_confirmation:payments.quote"} with input as _input(_tool("payments.quote"), "")
		with data.governor.config.precheck as _config
}

test_deny_beats_confirm if {
	cfg := _cfg({"tools": {"deny": ["payments.*"]}})
	_reasons(precheck.deny) == {"tool_denied:payments.refund"} with input as _input(_tool("payments.refund"), "")
		with data.governor.config.precheck as cfg
	count(precheck.confirm) == 0 with input as _input(_tool("payments.refund"), "")
		with data.governor.config.precheck as cfg
}

test_unlisted_tool_follows_the_default if {
	inp := _input(_tool("calendar.read"), "")
	count(precheck.deny) == 0 with input as inp with data.governor.config.precheck as _config
	count(precheck.confirm) == 0 with input as inp with data.governor.config.precheck as _config
	precheck.deny == {{
		"policy": "guard", "type": "precheck", "code": "tool_not_allowed", "detail": "calendar.read",
		"message": "Tool calendar.read is on no list, and tools on no list are denied.",
	}} with input as inp with data.governor.config.precheck as _cfg({"tools": {"default": "deny"}})
	_reasons(precheck.confirm) == {"tool_requires_confirmation:calendar.read"} with input as inp
		with data.governor.config.precheck as _cfg({"tools": {"default": "confirm"}})
}

test_allow_listed_tool_is_allowed_whatever_the_default if {
	count(precheck.deny) == 0 with input as _input(_tool("search.web"), "")
		with data.governor.config.precheck as _cfg({"tools": {"default": "deny"}})
}

test_unknown_tool_default_fails_closed if {
	_reasons(precheck.deny) == {"tool_not_allowed:calendar.read", "invalid_param:guard.tools.default"} with input as _input(_tool("calendar.read"), "")
		with data.governor.config.precheck as _cfg({"tools": {"default": "maybe"}})
}

test_confirm_tag_needs_confirmation if {
	action := object.union(_tool("billing.charge"), {"tags": ["finance", "payments.card"]})
	precheck.confirm == {{
		"policy": "guard", "type": "precheck", "code": "tool_requires_confirmation", "detail": "billing.charge",
		"message": "Tool billing.charge is tagged payments.card, which needs confirmation.",
		"approval": _approval,
	}} with input as _input(action, "") with data.governor.config.precheck as _config
}

test_confirm_tag_does_not_soften_a_deny if {
	action := object.union(_tool("shell.exec"), {"tags": ["payments"]})
	count(precheck.confirm) == 0 with input as _input(action, "") with data.governor.config.precheck as _config
	_reasons(precheck.deny) == {"tool_denied:shell.exec"} with input as _input(action, "")
		with data.governor.config.precheck as _config
}

test_tool_rules_apply_to_tool_actions_only if {
	action := {"kind": "function", "name": "shell.exec", "tags": ["payments"]}
	count(precheck.deny) == 0 with input as _input(action, "") with data.governor.config.precheck as _config
	count(precheck.confirm) == 0 with input as _input(action, "") with data.governor.config.precheck as _config
}

test_tool_and_scope_rules_do_not_apply_after_the_call if {
	inp := object.union(_input(object.union(_tool("shell.exec"), {"scope": "admin.users"}), ""), {"phase": "post"})
	count(precheck.deny) == 0 with input as inp with data.governor.config.precheck as _config
}

test_explicit_approval_stages_are_kept if {
	cfg := _cfg({"approval": {"stages": [["alice"], ["bob", "carol"]], "quorum": 2}})
	some c in precheck.confirm with input as _input(_tool("payments.refund"), "") with data.governor.config.precheck as cfg
	c.approval == {"approvers": ["alice", "bob"], "stages": [["alice"], ["bob", "carol"]], "timeout_seconds": 600, "quorum": 2}
}

test_no_approvers_means_no_stages if {
	cfg := _cfg({"approval": {"approvers": []}})
	some c in precheck.confirm with input as _input(_tool("payments.refund"), "") with data.governor.config.precheck as cfg
	c.approval.stages == []
}

# --- scopes ------------------------------------------------------------------------------------

test_denied_scope_glob_is_denied if {
	action := {"kind": "model", "name": "model.chat", "scope": "admin.users"}
	precheck.deny == {{
		"policy": "guard", "type": "precheck", "code": "scope_denied", "detail": "admin.users",
		"message": "Scope admin.users is denied.",
	}} with input as _input(action, "") with data.governor.config.precheck as _config
}

test_scope_outside_a_non_empty_allowed_list_is_denied if {
	cfg := _cfg({"scopes": {"allowed": ["net.internal", "fs.read.*"]}})
	count(precheck.deny) == 0 with input as _input(_tool("search.web"), "") with data.governor.config.precheck as cfg
	_reasons(precheck.deny) == {"scope_not_allowed:net.external"} with input as _input(object.union(_tool("search.web"), {"scope": "net.external"}), "")
		with data.governor.config.precheck as cfg
	count(precheck.deny) == 0 with input as _input(object.union(_tool("search.web"), {"scope": "fs.read.tmp"}), "")
		with data.governor.config.precheck as cfg
}

test_action_without_scope_is_not_checked_against_scopes if {
	cfg := _cfg({"scopes": {"allowed": ["net.internal"]}})
	count(precheck.deny) == 0 with input as _input({"kind": "tool", "name": "search.web"}, "")
		with data.governor.config.precheck as cfg
	count(precheck.deny) == 0 with input as _input({"kind": "tool", "name": "search.web", "scope": null}, "")
		with data.governor.config.precheck as cfg
}

# --- PII ---------------------------------------------------------------------------------------

test_pii_in_raw_text_is_redacted_with_code_point_offsets if {
	precheck.redact == {
		{"path": "raw_text", "kind": "email", "start": 7, "end": 22, "replacement": "[REDACTED_EMAIL]"},
		{"path": "raw_text", "kind": "us_ssn", "start": 27, "end": 38, "replacement": "[REDACTED_US_SSN]"},
		{"path": "raw_text", "kind": "email", "start": 43, "end": 58, "replacement": "[REDACTED_EMAIL]"},
	} with input as _input(_tool("search.web"), "Grüße, jane@example.io ssn 123-45-6789 and jane@example.io")
		with data.governor.config.precheck as _config
}

test_raw_text_is_scanned_after_the_call_too if {
	inp := object.union(_input({"kind": "model", "name": "model.chat"}, "reply to a@b.io"), {"phase": "post"})
	{r.kind | some r in precheck.redact} == {"email"} with input as inp with data.governor.config.precheck as _config
}

test_pii_deny_reason_names_the_kind_never_the_value if {
	key := "sk-abcdefghijklmnopqrstuvwxyz0123"
	inp := _input(_tool("search.web"), sprintf("use %s", [key]))
	denies := precheck.deny with input as inp with data.governor.config.precheck as _config
	denies == {{
		"policy": "guard", "type": "precheck", "code": "pii_denied", "detail": "api_key",
		"message": "Found api_key in raw_text.",
	}}
	every v in denies {
		not contains(v.message, key)
	}
}

test_allowed_pii_is_tagged_and_masked_but_not_redacted if {
	inp := _input(_tool("search.web"), "call 555-123-4567")
	count(precheck.redact) == 0 with input as inp with data.governor.config.precheck as _config
	count(precheck.deny) == 0 with input as inp with data.governor.config.precheck as _config
	precheck.audit_tags == {"gdpr", "pii", "pii.phone"} with input as inp with data.governor.config.precheck as _config
	precheck.audit_mask == {"raw_text"} with input as inp with data.governor.config.precheck as _config
}

test_redacted_pii_is_not_masked if {
	count(precheck.audit_mask) == 0 with input as _input(_tool("search.web"), "mail a@b.io")
		with data.governor.config.precheck as _config
}

test_pii_confirm_and_warn_actions if {
	cfg := _cfg({"pii": {"actions": {"email": "confirm", "phone": "warn"}}})
	inp := _input(_tool("search.web"), "a@b.io or 555-123-4567")
	precheck.confirm == {{
		"policy": "guard", "type": "precheck", "code": "pii_requires_confirmation", "detail": "email",
		"message": "Found email in raw_text.", "approval": _approval,
	}} with input as inp with data.governor.config.precheck as cfg
	precheck.warn == {{
		"policy": "guard", "type": "precheck", "code": "pii_detected", "detail": "phone",
		"message": "Found phone in raw_text.",
	}} with input as inp with data.governor.config.precheck as cfg
}

test_pii_default_action_covers_unlisted_kinds if {
	{r.kind | some r in precheck.redact} == {"ipv4", "phone"} with input as _input(_tool("search.web"), "10.0.0.1 555-123-4567")
		with data.governor.config.precheck as _cfg({"pii": {"default_action": "redact"}})
}

test_unknown_pii_action_fails_closed if {
	_reasons(precheck.deny) == {"pii_denied:email", "invalid_param:guard.pii.actions.email"} with input as _input(_tool("search.web"), "a@b.io")
		with data.governor.config.precheck as _cfg({"pii": {"actions": {"email": "obfuscate"}}})
}

test_scope_actions_replace_the_kind_action if {
	cfg := _cfg({"pii": {"scope_actions": {"net.external": {"credit_card": "deny"}}}})
	external := _input(object.union(_tool("search.web"), {"scope": "net.external"}), "card 4111111111111111")
	_reasons(precheck.deny) == {"pii_denied:credit_card"} with input as external with data.governor.config.precheck as cfg
	count(precheck.redact) == 0 with input as external with data.governor.config.precheck as cfg
	{r.kind | some r in precheck.redact} == {"credit_card"} with input as _input(_tool("search.web"), "card 4111111111111111")
		with data.governor.config.precheck as cfg
}

test_scope_actions_may_relax_and_the_strictest_matching_scope_wins if {
	cfg := _cfg({"pii": {"scope_actions": {
		"net.internal": {"email": "allow"},
		"net.*": {"email": "warn"},
		"net.internal.*": {"email": "deny"},
	}}})
	inp := _input(_tool("search.web"), "a@b.io")
	count(precheck.redact) == 0 with input as inp with data.governor.config.precheck as cfg
	_reasons(precheck.warn) == {"pii_detected:email"} with input as inp with data.governor.config.precheck as cfg
}

test_args_are_scanned_nested_when_enabled if {
	inp := object.union(_input(_tool("search.web"), ""), {"args": {
		"to": "jane@example.io",
		"meta": {"cc": ["x", "bob@example.io"], "n": 3},
	}})
	precheck.redact == {
		{"path": "args.to", "kind": "email", "start": 0, "end": 15, "replacement": "[REDACTED_EMAIL]"},
		{"path": "args.meta.cc.1", "kind": "email", "start": 0, "end": 14, "replacement": "[REDACTED_EMAIL]"},
	} with input as inp with data.governor.config.precheck as _cfg({"pii": {"scan_args": true}})
}

test_args_are_not_scanned_by_default if {
	inp := object.union(_input(_tool("search.web"), ""), {"args": {"to": "jane@example.io"}})
	count(precheck.redact) == 0 with input as inp with data.governor.config.precheck as _config
	precheck.audit_tags == {"gdpr"} with input as inp with data.governor.config.precheck as _config
}

test_args_are_not_scanned_after_the_call if {
	inp := object.union(_input(_tool("search.web"), ""), {"phase": "post", "args": {"to": "jane@example.io"}})
	count(precheck.redact) == 0 with input as inp with data.governor.config.precheck as _cfg({"pii": {"scan_args": true}})
}

test_denied_pii_in_args_is_masked_by_path if {
	cfg := _cfg({"pii": {"scan_args": true}})
	inp := object.union(_input(_tool("search.web"), ""), {"args": {"headers": {"auth": "key sk-abcdefghijklmnopqrstuvwxyz0123"}}})
	precheck.deny == {{
		"policy": "guard", "type": "precheck", "code": "pii_denied", "detail": "api_key",
		"message": "Found api_key in args.headers.auth.",
	}} with input as inp with data.governor.config.precheck as cfg
	precheck.audit_mask == {"args.headers.auth"} with input as inp with data.governor.config.precheck as cfg
}

test_non_string_raw_text_finds_nothing if {
	count(precheck.redact) == 0 with input as _input(_tool("search.web"), 12345) with data.governor.config.precheck as _config
	count(precheck.redact) == 0 with input as object.remove(_input(_tool("search.web"), ""), ["raw_text"])
		with data.governor.config.precheck as _config
}

# --- settings ----------------------------------------------------------------------------------

test_params_override_bundle_config if {
	inp := object.union(_input(_tool("shell.exec"), "a@b.io ssn 123-45-6789"), {"policies": _with_params({
		"tools": {"deny": []},
		"pii": {"actions": {"email": "deny"}},
	})})

	# shell.exec is no longer denied; the allow list from the bundle still applies
	_reasons(precheck.deny) == {"pii_denied:email"} with input as inp with data.governor.config.precheck as _config

	# the other PII actions of the bundle are kept (objects merge, lists are replaced)
	{r.kind | some r in precheck.redact} == {"us_ssn"} with input as inp with data.governor.config.precheck as _config
}

test_each_entry_contributes_under_its_own_name if {
	inp := object.union(_input(_tool("shell.exec"), ""), {"policies": [
		{"type": "precheck", "name": "strict"},
		{"type": "precheck", "name": "lenient", "params": {"tools": {"deny": []}}},
	]})
	{[v.policy, v.code] | some v in precheck.deny} == {["strict", "tool_denied"]} with input as inp
		with data.governor.config.precheck as _config
}

test_malformed_settings_deny_and_name_the_setting if {
	params := {
		"tools": {"deny": "shell.exec", "allow": [1], "default": null},
		"scopes": {"denied": {}},
		"pii": {
			"actions": {"email": "hide"},
			"default_action": 3,
			"scope_actions": {"net.*": "deny", "ok": {"iban": "deny", "phone": true}},
			"scan_args": "yes",
		},
		"approval": {"approvers": "alice", "stages": [["a"], "b"], "timeout_seconds": 0, "quorum": 1.5},
		"audit_tags": "pci",
	}
	inp := object.union(_input(_tool("search.web"), "a@b.io"), {"policies": _with_params(params)})
	invalid := {v.detail | some v in precheck.deny; v.code == "invalid_param"} with input as inp
		with data.governor.config.precheck as _config
	invalid == {
		"guard.tools.deny", "guard.tools.allow", "guard.tools.default", "guard.scopes.denied",
		"guard.pii.actions.email", "guard.pii.default_action", "guard.pii.scope_actions.net.*",
		"guard.pii.scope_actions.ok.phone", "guard.pii.scan_args", "guard.approval.approvers",
		"guard.approval.stages", "guard.approval.timeout_seconds", "guard.approval.quorum",
		"guard.audit_tags",
	}
}

test_settings_of_the_wrong_shape_deny_without_an_error if {
	params := {"tools": "none", "pii": {"actions": [], "scope_actions": "x"}, "approval": 5}
	inp := object.union(_input(_tool("payments.refund"), "a@b.io"), {"policies": _with_params(params)})
	invalid := {v.detail | some v in precheck.deny; v.code == "invalid_param"} with input as inp
		with data.governor.config.precheck as _config
	{
		"guard.tools.allow", "guard.tools.default", "guard.pii.actions", "guard.pii.scope_actions",
		"guard.approval.approvers", "guard.approval.timeout_seconds",
	} - invalid == set()

	# a tool is never let through by a broken configuration
	_reasons(precheck.deny)["tool_not_allowed:payments.refund"] with input as inp with data.governor.config.precheck as _config
}
