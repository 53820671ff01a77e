# Precheck: tool lists, scopes, and PII in the text an agent is about to send.
#
# Policy entries: {"type": "precheck", "name": ..., "params": {...}}. An entry's settings are the
# defaults below, deep-merged with data.governor.config.precheck (the bundle), deep-merged with
# the entry's params: params win, objects merge key by key, lists are replaced.
#
#   tools:    deny, confirm, allow: [glob]     a tool on several lists: deny > confirm > allow
#             default: "allow" | "confirm" | "deny"   for a tool on no list (default "allow")
#             confirm_tags: [glob]             a tool with a matching input.action.tags entry
#                                              needs confirmation (never relaxes a deny)
#   scopes:   denied: [glob]                   input.action.scope matching one is denied
#             allowed: [glob]                  when not empty, a scope matching none is denied
#   pii:      actions: {<kind>: action}        per kind found by governor.pii (default {})
#             default_action: action           for kinds not in actions (default "allow")
#             scope_actions: {<scope glob>: {<kind>: action}}   replaces the kind's action when
#                                              the scope matches; strictest of several matches
#             scan_args: bool                  also scan every string under input.args
#   approval: {approvers: [id], stages: [[id]], timeout_seconds, quorum}   the block of every
#             confirm (stages default to [approvers] when there are approvers)
#   audit_tags: [tag]                          added whenever the entry applies
#
# An action is "redact" | "deny" | "confirm" | "warn" | "allow". Globs use "." as delimiter:
# payments.* matches payments.refund, not payments.eu.refund (payments.** does).
#
# Phases: tool and scope rules and the scan of input.args apply in phase "pre"; input.raw_text
# is scanned in both phases (the postcheck endpoint sends the model's output there). Tool rules
# apply to action.kind "tool" only; an action without a scope skips the scope rules. The wire's
# policy_config and tool_config are client-controlled echoes and are never read.
#
# Reasons: precheck.tool_denied:<tool> (deny list), precheck.tool_not_allowed:<tool> (on no list,
# default deny), precheck.tool_requires_confirmation:<tool> (confirm list, confirm tag or default
# confirm), precheck.scope_denied:<scope>, precheck.scope_not_allowed:<scope>,
# precheck.pii_denied:<kind>, precheck.pii_requires_confirmation:<kind>,
# precheck.pii_detected:<kind> (warn), precheck.invalid_param:<name>.<setting> (deny; an unknown
# action or tool default also counts as "deny"). A reason or message never holds the PII value.
# Redactions: {path: "raw_text" | "args.<key>...", start, end, kind, replacement}.
# Audit: tags pii and pii.<kind> for every scanned finding, plus audit_tags; the path of every
# finding that is not redacted goes to audit_mask.
# Config read: data.governor.config.precheck (the settings above).
package governor.policies.precheck

import data.governor.lib.policy as lib
import data.governor.pii

_defaults := {
	"tools": {"allow": [], "deny": [], "confirm": [], "default": "allow", "confirm_tags": []},
	"scopes": {"allowed": [], "denied": []},
	"pii": {"actions": {}, "default_action": "allow", "scope_actions": {}, "scan_args": false},
	"approval": {"approvers": [], "stages": [], "timeout_seconds": 3600, "quorum": 1},
	"audit_tags": [],
}

# (a static reference: lib.config's data.governor.config[t] costs regorus twice as much)
_config := c if {
	c := data.governor.config.precheck
	is_object(c)
} else := {}

_base := object.union(_defaults, _config)

# the entries, each with its merged settings (an array: outcomes refer to entries by index)
_entries := [{"type": e.type, "name": e.name, "params": e.params, "settings": _settings(e.params)} |
	some e in lib.entries("precheck")
]

# (entries without params, the usual kind, skip a deep merge)
_settings(params) := _base if params == {}

else := object.union(_base, params)

_pre if input.phase == "pre"

_matches(patterns, value) if {
	some pattern in lib.strings(patterns)
	glob.match(pattern, ["."], value)
}

_confirmation(e, code, detail, message) := object.union(
	lib.violation_at(e, code, detail, message),
	{"approval": _approval(e.settings.approval)},
)

_approval(a) := {
	"approvers": approvers,
	"stages": _stages(a, approvers),
	"timeout_seconds": a.timeout_seconds,
	"quorum": a.quorum,
} if {
	approvers := [x | some x in _array(a.approvers); is_string(x)]
}

_stages(a, approvers) := a.stages if {
	is_array(a.stages)
	count(a.stages) > 0
} else := [approvers] if {
	count(approvers) > 0
} else := []

# Iteration guards: `some x in v` over a string or number yields nothing on OPA but is an error
# on regorus, so every settings value is type-checked before it is iterated.
_array(x) := x if is_array(x)

else := []

_object(x) := x if is_object(x)

else := {}

# --- settings checks (fail closed) -------------------------------------------------------------

_actions := {"allow", "warn", "redact", "confirm", "deny"}

_string_lists := [
	"tools.allow", "tools.deny", "tools.confirm", "tools.confirm_tags",
	"scopes.allowed", "scopes.denied", "approval.approvers", "audit_tags",
]

_setting(e, key) := object.get(e.settings, split(key, "."), null)

# The common case in one pass: every entry's settings are well-formed. Then nothing is invalid;
# otherwise _invalid_settings names each malformed setting.
_invalid := set() if {
	every e in _entries {
		_settings_ok(e.settings)
	}
} else := _invalid_settings

# (written out, the string lists checked together: on regorus a function call costs more than
# the checks it makes)
_settings_ok(s) if {
	lists := [
		s.tools.allow, s.tools.deny, s.tools.confirm, s.tools.confirm_tags,
		s.scopes.allowed, s.scopes.denied, s.approval.approvers, s.audit_tags,
	]
	{type_name(l) | some l in lists} == {"array"}
	count({type_name(x) | some l in lists; some x in l} - {"string"}) == 0
	s.tools.default in {"allow", "confirm", "deny"}
	every n in [s.approval.timeout_seconds, s.approval.quorum] {
		is_number(n)
		floor(n) == n
		n > 0
	}
	is_array(s.approval.stages)
	every stage in s.approval.stages {
		is_array(stage)
		every x in stage {
			is_string(x)
		}
	}
	is_boolean(s.pii.scan_args)
	s.pii.default_action in _actions
	is_object(s.pii.actions)
	every action in s.pii.actions {
		action in _actions
	}
	is_object(s.pii.scope_actions)
	every actions in s.pii.scope_actions {
		is_object(actions)
		every action in actions {
			action in _actions
		}
	}
}

_invalid_settings contains lib.invalid_param(e, key, "a list of strings") if {
	some e in _entries
	some key in _string_lists
	not lib.is_string_list(_setting(e, key))
}

_invalid_settings contains lib.invalid_param(e, "tools.default", `"allow", "confirm" or "deny"`) if {
	some e in _entries
	not _one_of(_setting(e, "tools.default"), {"allow", "confirm", "deny"})
}

_invalid_settings contains lib.invalid_param(e, key, "a positive whole number") if {
	some e in _entries
	some key in ["approval.timeout_seconds", "approval.quorum"]
	not lib.is_pos_int(_setting(e, key))
}

_invalid_settings contains lib.invalid_param(e, "approval.stages", "a list of lists of approver ids") if {
	some e in _entries
	not _stage_lists(_setting(e, "approval.stages"))
}

_invalid_settings contains lib.invalid_param(e, "pii.scan_args", "true or false") if {
	some e in _entries
	not is_boolean(_setting(e, "pii.scan_args"))
}

_invalid_settings contains lib.invalid_param(e, key, "one of allow, warn, redact, confirm, deny") if {
	some e in _entries
	some [key, path] in _action_settings(e.settings.pii)
	not _one_of(object.get(e.settings, path, null), _actions)
}

_invalid_settings contains lib.invalid_param(e, key, "an object") if {
	some e in _entries
	some key in ["pii.actions", "pii.scope_actions"]
	not is_object(_setting(e, key))
}

_invalid_settings contains lib.invalid_param(e, sprintf("pii.scope_actions.%s", [scope]), "an object of actions by kind") if {
	some e in _entries
	some scope, actions in _object(e.settings.pii.scope_actions)
	not is_object(actions)
}

# Not `not x in set`: with x undefined, OPA makes that undefined while regorus makes it true.
_one_of(x, allowed) if x in allowed

_stage_lists(x) if {
	is_array(x)
	every stage in x {
		lib.is_string_list(stage)
	}
}

# [name, path] of every configured action (a path, not a split name: scopes hold dots)
_action_settings(p) := {["pii.default_action", ["pii", "default_action"]]} | {[sprintf("pii.actions.%s", [kind]), ["pii", "actions", kind]] |
	some kind, _ in _object(p.actions)
} | {[sprintf("pii.scope_actions.%s.%s", [scope, kind]), ["pii", "scope_actions", scope, kind]] |
	some scope, actions in _object(p.scope_actions)
	some kind, _ in _object(actions)
}

deny contains v if some v in _invalid

# --- tools -------------------------------------------------------------------------------------

_tool := input.action.name if {
	_pre
	input.action.kind == "tool"
	is_string(input.action.name)
}

# [outcome, code] for a tool under one entry's settings
_tool_outcome(s, tool) := ["deny", "tool_denied"] if {
	_matches(s.tools.deny, tool)
} else := ["confirm", "tool_requires_confirmation"] if {
	_matches(s.tools.confirm, tool)
} else := ["allow", "tool_allowed"] if {
	_matches(s.tools.allow, tool)
} else := ["confirm", "tool_requires_confirmation"] if {
	s.tools.default == "confirm"
} else := ["allow", "tool_allowed"] if {
	s.tools.default == "allow"
} else := ["deny", "tool_not_allowed"]

_tool_messages := {
	"tool_denied": "Tool %s is on the deny list.",
	"tool_not_allowed": "Tool %s is on no list, and tools on no list are denied.",
	"tool_requires_confirmation": "Tool %s needs confirmation.",
}

# [entry index, outcome, code] of the tool under each entry's settings, worked out once
_tool_outcomes contains [i, outcome, code] if {
	some i, e in _entries
	[outcome, code] := _tool_outcome(e.settings, _tool)
}

deny contains v if {
	some [i, "deny", code] in _tool_outcomes
	v := lib.violation_at(_entries[i], code, _tool, sprintf(_tool_messages[code], [_tool]))
}

confirm contains c if {
	some [i, "confirm", code] in _tool_outcomes
	c := _confirmation(_entries[i], code, _tool, sprintf(_tool_messages[code], [_tool]))
}

confirm contains c if {
	some [i, outcome, _] in _tool_outcomes
	outcome != "deny"
	some tag in lib.strings(input.action.tags)
	_matches(_entries[i].settings.tools.confirm_tags, tag)
	message := sprintf("Tool %s is tagged %s, which needs confirmation.", [_tool, tag])
	c := _confirmation(_entries[i], "tool_requires_confirmation", _tool, message)
}

# --- scopes ------------------------------------------------------------------------------------

_scope := input.action.scope if {
	_pre
	is_string(input.action.scope)
}

deny contains v if {
	some e in _entries
	_matches(e.settings.scopes.denied, _scope)
	v := lib.violation_at(e, "scope_denied", _scope, sprintf("Scope %s is denied.", [_scope]))
}

deny contains v if {
	scope := _scope
	some e in _entries
	count(lib.strings(e.settings.scopes.allowed)) > 0
	not _matches(e.settings.scopes.allowed, scope)
	v := lib.violation_at(e, "scope_not_allowed", scope, sprintf("Scope %s is not on the allowed list.", [scope]))
}

# --- PII ---------------------------------------------------------------------------------------

# Every finding, {path, span}: in raw_text, and in each string under input.args by its path
# (only when an entry scans them: findings no entry scans change nothing).
_findings := array.concat(_text_findings, _arg_findings) if _scan_args

else := _text_findings

_text_findings := [{"path": "raw_text", "span": span} | some span in pii.find(input.raw_text)]

_arg_findings := [{"path": path, "span": span} |
	walk(input.args, [keys, value])
	is_string(value)
	path := concat(".", array.concat(["args"], [sprintf("%v", [k]) | some k in keys]))
	some span in pii.find(value)
]

_scan_args if {
	_pre
	some e in _entries
	e.settings.pii.scan_args == true
}

_scanned(_, f) if f.path == "raw_text"

_scanned(s, f) if {
	f.path != "raw_text"
	s.pii.scan_args == true
}

_kinds_found := {f.span.kind | some f in _findings}

_severity := {"allow": 0, "warn": 1, "redact": 2, "confirm": 3, "deny": 4}

_by_severity := ["allow", "warn", "redact", "confirm", "deny"]

# an unknown action counts as deny (and is reported by the settings checks)
_known(action) := action if _one_of(action, _actions)

else := "deny"

_strictest(actions) := _by_severity[max([_severity[_known(a)] | some a in actions])]

_scope_actions(s, kind) := [a |
	some pattern, actions in _object(s.pii.scope_actions)
	glob.match(pattern, ["."], _scope)
	a := actions[kind]
]

# The action for a kind under one entry's settings.
# Values are bound in the bodies: when an else branch's head value is undefined, OPA moves on to
# the next branch but regorus makes the whole function undefined.
_kind_action(s, kind) := action if {
	scoped := _scope_actions(s, kind)
	count(scoped) > 0
	action := _strictest(scoped)
} else := action if {
	action := _known(s.pii.actions[kind])
} else := action if {
	action := _known(s.pii.default_action)
}

# per entry (by index), the action for each kind found
_kind_actions := [{kind: action | some kind in _kinds_found; action := _kind_action(e.settings, kind)} |
	some e in _entries
]

# [entry index, finding index, action] for every scanned finding
_outcomes contains [i, j, _kind_actions[i][f.span.kind]] if {
	some i, e in _entries
	some j, f in _findings
	_scanned(e.settings, f)
}

_pii_codes := {"deny": "pii_denied", "confirm": "pii_requires_confirmation", "warn": "pii_detected"}

_pii_message(f) := sprintf("Found %s in %s.", [f.span.kind, f.path])

redact contains r if {
	some [_, j, "redact"] in _outcomes
	f := _findings[j]
	r := object.union({"path": f.path}, f.span)
}

deny contains v if {
	some [i, j, "deny"] in _outcomes
	f := _findings[j]
	v := lib.violation_at(_entries[i], _pii_codes.deny, f.span.kind, _pii_message(f))
}

confirm contains c if {
	some [i, j, "confirm"] in _outcomes
	f := _findings[j]
	c := _confirmation(_entries[i], _pii_codes.confirm, f.span.kind, _pii_message(f))
}

warn contains w if {
	some [i, j, "warn"] in _outcomes
	f := _findings[j]
	w := lib.violation_at(_entries[i], _pii_codes.warn, f.span.kind, _pii_message(f))
}

# --- the short cut ---------------------------------------------------------------------------

# clear_entry(p): p (an element of input.policies) is a precheck entry under whose settings this
# package contributes nothing but its audit_tags: well-formed settings, the tool (if any) allowed
# and not tagged for confirmation, the scope (if any) neither denied nor outside a non-empty
# allowed list, and no PII found in what the entry scans. A function, so that
# governor.lib.combine's short cut can call it; clear_tags(ps) is then this package's whole
# audit answer for the entries ps.
clear_entry(p) if {
	p.type == "precheck"
	s := _settings(p.params)
	_settings_ok(s)
	count(_text_findings) == 0
	_args_clear(s)
	_tool_clear(s)
	_scope_clear(s)
}

# nothing found in the arguments, when these settings scan them (before the call only)
_args_clear(s) if {
	s.pii.scan_args == false
} else if {
	not _pre
} else if {
	count(_arg_findings) == 0
}

clear_tags(ps) := {t |
	some p in ps
	p.type == "precheck"
	some t in _settings(p.params).audit_tags
}

# redact_entry(p): as clear_entry, except that PII may be found in what the entry scans as long
# as each finding's action under its settings is "redact" or "allow". quiet_findings(ps) then
# gives [finding, action] for every finding an entry of ps scans: what redactions, audit tags
# and audit masks this package contributes.
redact_entry(p) if {
	p.type == "precheck"
	s := _settings(p.params)
	_settings_ok(s)
	_tool_clear(s)
	_scope_clear(s)
	every f in _scanned_by(s) {
		_kind_action(s, f.span.kind) in {"redact", "allow"}
	}
}

quiet_findings(ps) := {[f, _kind_action(s, f.span.kind)] |
	some p in ps
	p.type == "precheck"
	s := _settings(p.params)
	some f in _scanned_by(s)
}

# the findings an entry with settings s scans: raw_text, and the arguments when s says so
_scanned_by(s) := array.concat(_text_findings, _arg_findings) if {
	s.pii.scan_args == true
	_pre
} else := _text_findings

_has_tool if _tool

_tool_clear(s) if {
	not _has_tool
} else if {
	_tool_outcome(s, _tool)[0] == "allow"
	not _confirm_tagged(s)
}

_confirm_tagged(s) if {
	some tag in lib.strings(input.action.tags)
	_matches(s.tools.confirm_tags, tag)
}

_has_scope if _scope

_scope_clear(s) if {
	not _has_scope
} else if {
	not _matches(s.scopes.denied, _scope)
	_scope_allowed(s)
}

_scope_allowed(s) if count(s.scopes.allowed) == 0

_scope_allowed(s) if _matches(s.scopes.allowed, _scope)

# --- audit -------------------------------------------------------------------------------------

audit_tags contains tag if {
	some e in _entries
	some tag in lib.strings(e.settings.audit_tags)
}

audit_tags contains "pii" if some _ in _outcomes

audit_tags contains sprintf("pii.%s", [_findings[j].span.kind]) if some [_, j, _] in _outcomes

# a value that stays in the request (anything but redacted) is masked in the audit record
audit_mask contains _findings[j].path if {
	some [_, j, action] in _outcomes
	action != "redact"
}
