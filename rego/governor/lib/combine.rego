# The machinery behind data.governor.decision: the checks of the input envelope, and the
# collection of what every ACTIVE package under data.governor.policies contributes, each element
# in one shape. A package is active when input.policies names its type; audit always is.
#
#   input_errors      the malformed envelope fields: input, version, phase, policies, facts,
#                     subject
#   active            the types input.policies names
#   denies, confirms, warns
#                     findings {policy, type, code, detail, message, approval}; a plain string
#                     element becomes {policy: <package>, type: <package>, code: "denied" |
#                     "confirm" | "warning", message: <the string>}, and so does a boolean
#                     rule that is true (`deny if {...}`), with a generic message
#   redacts           {path, start, end, kind, replacement}
#   tags, masks       strings
#   quiet             true when denies, confirms, warns and redacts are all empty
#   quiet_audit(ps)   with ps = input.policies: the audit field of the decision in the
#                     commonest quiet case (audit and rate_limit entries at most, as @govern
#                     sends them), by functions only; undefined otherwise
#   quiet_redact(ps)  the whole decision document when the only findings are PII that
#                     precheck entries redact or allow; undefined otherwise
#   constant          true when the decision depends on input.policies and the bundle alone
#   reason(f)         "<type>.<code>:<detail>"
#   ordered(fs)       the findings ordered by reason, then policy and message
#
# Speed (regorus evaluates every rule body and function call it reaches, ~1-2 us each): the
# common cases take short cuts that give the same result as the general rules they skip, and
# other packages' rules are referenced by full path, never through an import (regorus evaluates
# a whole imported package when one of its rules is read through the import's name).
#
# Reads no data.governor.config key.
package governor.lib.combine

# --- the input envelope ----------------------------------------------------------------------

# A well-formed envelope is recognised in one rule; only a malformed one is taken apart field by
# field (_input_errors).
input_errors := set() if {
	_envelope_ok
} else := _input_errors

_envelope_ok if {
	input.version == 1
	input.phase in {"pre", "post"}
	type_name(object.get(input, "facts", null)) in {"null", "object"}
	type_name(object.get(input, "subject", null)) in {"null", "object"}
	_policies_ok
}

_policies_ok if {
	is_object(input)
	object.get(input, "policies", null) == null
}

_policies_ok if {
	is_array(input.policies)
	every p in input.policies {
		is_object(p)
		is_string(p.type)
		type_name(object.get(p, "name", null)) in {"null", "string"}
		type_name(object.get(p, "params", null)) in {"null", "object"}
	}
}

_input_errors contains "input" if not _object_input

# Negated calls go through helper rules: `not f(x)` with x undefined is true in regorus and
# undefined in OPA (which hoists x out of the negation); `not <rule>` agrees on both.
_object_input if is_object(input)

_input_errors contains "version" if {
	is_object(input)
	not input.version == 1
}

_input_errors contains "phase" if {
	is_object(input)
	not _phase_ok
}

_phase_ok if input.phase in {"pre", "post"}

_input_errors contains "policies" if {
	_present("policies")
	not _policies_ok
}

_input_errors contains field if {
	some field in {"facts", "subject"}
	_present(field)
	not is_object(input[field])
}

_present(field) if {
	is_object(input)
	input[field] != null
}

_input_messages := {
	"input": "The request sent to the policy engine is not a JSON object.",
	"version": "The request sent to the policy engine must have version 1.",
	"phase": "The request sent to the policy engine must have phase \"pre\" or \"post\".",
	"policies": concat(" ", [
		"The request's policies must be a list of objects, each with a string type,",
		"an optional string name and optional object params.",
	]),
	"facts": "The request's facts must be an object.",
	"subject": "The request's subject must be an object.",
}

_input_findings contains f if {
	some field in input_errors
	f := {
		"policy": "input",
		"type": "input",
		"code": "invalid",
		"detail": field,
		"message": _input_messages[field],
		"approval": {},
	}
}

# --- what the policy packages contribute --------------------------------------------------------

# active: the types input.policies names. A package contributes when its type is active; the
# audit package always (its config always_mask / always_tags apply without an audit policy).
active := {p.type |
	is_array(input.policies)
	some p in input.policies
	is_object(p)
	is_string(p.type)
}

_standard := {"validation", "authorization", "rate_limit", "budget", "approval", "audit", "precheck"}

# _contributions: [rule, package name, element] for every element of the sets deny, confirm,
# warn and redact of every active package (audit_mask and audit_tags go straight to masks and
# tags). The standard packages are read through static references, one definition of _sets per
# package: a reference with a variable in it (data.governor.policies[name]) makes regorus
# evaluate every package under data.governor.policies, a cost paid only when a user package is
# active.
_contributions contains [rule, t, x] if {
	some t in (active | {"audit"})
	some [rule, x] in _sets(t)
}

_sets("validation") := union({
	{["deny", x] | some x in data.governor.policies.validation.deny},
	{["warn", x] | some x in data.governor.policies.validation.warn},
})

_sets("authorization") := union({
	{["deny", x] | some x in data.governor.policies.authorization.deny},
	{["confirm", x] | some x in data.governor.policies.authorization.confirm},
})

_sets("rate_limit") := {["deny", x] | some x in data.governor.policies.rate_limit.deny}

_sets("budget") := union({
	{["deny", x] | some x in data.governor.policies.budget.deny},
	{["warn", x] | some x in data.governor.policies.budget.warn},
})

_sets("approval") := union({
	{["deny", x] | some x in data.governor.policies.approval.deny},
	{["confirm", x] | some x in data.governor.policies.approval.confirm},
})

_sets("audit") := {["warn", x] | some x in data.governor.policies.audit.warn}

_sets("precheck") := union({
	{["deny", x] | some x in data.governor.policies.precheck.deny},
	{["confirm", x] | some x in data.governor.policies.precheck.confirm},
	{["warn", x] | some x in data.governor.policies.precheck.warn},
	{["redact", x] | some x in data.governor.policies.precheck.redact},
})

_contributions contains c if {
	some c in _user_contributions
	c[0] in {"deny", "confirm", "warn", "redact"}
}

# _user_contributions: [rule, package name, element] for every element of every set of every
# active user package governor.policies.<name>, found generically.
_rules := {"deny", "confirm", "warn", "redact", "audit_mask", "audit_tags"}

_user_contributions contains [rule, name, x] if {
	some name in active
	not name in _standard
	pkg := data.governor.policies[name]
	is_object(pkg)
	some rule in _rules
	some x in _elements(pkg[rule])
}

# _elements(v): the elements of a partial set (a set or an array); a boolean rule that is true
# (`deny if {...}`) counts as one element `true`; anything else as none.
_elements(v) := v if {
	is_set(v)
} else := {x | some x in v} if {
	is_array(v)
} else := {true} if {
	v == true
} else := set()

# _finding(name, x, code): a deny/confirm/warn element of package `name` in one shape.
_finding(name, x, _) := f if {
	is_object(x)
	policy := _str(object.get(x, "policy", name))
	f := {
		"policy": policy,
		"type": _str(object.get(x, "type", name)),
		"code": _str(object.get(x, "code", "violation")),
		"detail": _str(object.get(x, "detail", policy)),
		"message": _str(object.get(x, "message", "")),
		"approval": object.get(x, "approval", {}),
	}
}

_finding(name, x, code) := f if {
	not is_object(x)
	f := {
		"policy": name,
		"type": name,
		"code": code,
		"detail": name,
		"message": _plain_message(name, x, code),
		"approval": {},
	}
}

_plain_message(name, x, code) := sprintf(_rule_messages[code], [name]) if x == true

else := _str(x)

_rule_messages := {
	"denied": "Policy package %s denies this call.",
	"confirm": "Policy package %s asks for confirmation of this call.",
	"warning": "Policy package %s warns about this call.",
}

_str(x) := x if is_string(x)

else := sprintf("%v", [x])

denies := {_finding(name, x, "denied") | some ["deny", name, x] in _contributions} | _input_findings

confirms := {_finding(name, x, "confirm") | some ["confirm", name, x] in _contributions}

warns := {_finding(name, x, "warning") | some ["warn", name, x] in _contributions}

redacts := {r |
	some ["redact", _, x] in _contributions
	is_object(x)
	r := {
		"path": object.get(x, "path", ""),
		"start": object.get(x, "start", 0),
		"end": object.get(x, "end", 0),
		"kind": object.get(x, "kind", ""),
		"replacement": object.get(x, "replacement", ""),
	}
}

tags contains t if {
	some t in data.governor.policies.audit.audit_tags
	is_string(t)
}

tags contains t if {
	"precheck" in active
	some t in data.governor.policies.precheck.audit_tags
	is_string(t)
}

tags contains t if {
	some ["audit_tags", _, t] in _user_contributions
	is_string(t)
}

masks contains m if {
	some m in data.governor.policies.audit.audit_mask
	is_string(m)
}

masks contains m if {
	"precheck" in active
	some m in data.governor.policies.precheck.audit_mask
	is_string(m)
}

masks contains m if {
	some ["audit_mask", _, m] in _user_contributions
	is_string(m)
}

# quiet: nothing denies, confirms, warns or redacts (no element of those sets, no envelope
# error), so the decision is "allow" with empty reasons, violations and redactions.
quiet if {
	count(input_errors) == 0
	count(_contributions) == 0
}

# quiet_audit(ps), called with ps = input.policies: the short cut of data.governor.decision, in
# one function (on regorus a function call costs a fraction of a rule, and the packages'
# functions it calls read the input as their rules do). Defined only in the common quiet case:
# a well-formed envelope as Python sends it (facts and subject objects, every entry with a
# string name and object params) whose entries are all of type audit or rate_limit, that the
# audit package reads straight (audit.plain_entry: nothing to warn about) and the rate_limit
# package clears (rate_limit.clear_entry). Then only those two packages are active (no user
# package, not precheck), nothing denies, confirms, warns or redacts (quiet), and its value is
# the decision's audit field as the general rules give it: {"tags": sort(tags), "mask":
# sort(masks)}. The packages' own functions decide, so a test that mocks their rules
# (`with data.governor.policies...`) must give an input without facts or subject to reach the
# general rules.
quiet_audit(ps) := {
	"tags": sort(data.governor.policies.audit.plain_tags(ps) | data.governor.policies.precheck.clear_tags(ps)),
	"mask": sort(data.governor.policies.audit.plain_masks(ps)),
} if {
	_python_envelope(ps)
	every p in ps {
		_quiet_entry(p)
	}
}

# _python_envelope(ps), ps = input.policies: the envelope as Python builds it (facts and subject
# objects, every entry with a string name and object params), which the short cuts read straight.
_python_envelope(ps) if {
	input.version == 1
	input.phase in {"pre", "post"}
	is_object(input.facts)
	is_object(input.subject)
	is_array(ps)
	every p in ps {
		is_string(p.name)
		is_object(p.params)
	}
}

_quiet_entry(p) if {
	data.governor.policies.audit.plain_entry(p)
} else if {
	data.governor.policies.rate_limit.clear_entry(p)
} else if {
	data.governor.policies.budget.clear_entry(p)
} else if {
	data.governor.policies.precheck.clear_entry(p)
}

# constant: the decision depends on input.policies and the bundle's data alone, not on the rest of
# the input. True when quiet_audit gives it and every entry is a plain audit entry (no rate_limit
# entry: its count is a fact of the call). quiet_audit then reads nothing but the entries, given
# an envelope as Python builds every one (version 1, phase "pre" or "post", facts and subject
# objects), so every such input with these entries gets the same decision. Python evaluates it
# once per bundle and entries and reuses it (governor.decision.DecisionMemo), as OPA's partial
# evaluation would fold a decision that depends on no unknown into a constant.
constant if {
	quiet_audit(input.policies)
	every p in input.policies {
		data.governor.policies.audit.plain_entry(p)
	}
}

# quiet_redact(ps), called with ps = input.policies: the whole decision document in the next
# commonest case, a precheck that finds PII to redact (or to allow) and nothing else: a Python
# envelope whose entries are plain audit entries, clear rate_limit and budget entries, and
# precheck entries whose findings all get "redact" or "allow" (precheck.redact_entry). Nothing
# denies, confirms or warns then; the redactions, tags and masks are the general rules' (the
# precheck package's quiet_findings in their shapes).
quiet_redact(ps) := {
	"decision": _redact_outcome(redactions),
	"reasons": [],
	"violations": [],
	"approval": data.governor.lib.decision.no_approval,
	"redactions": redactions,
	"audit": {"tags": sort(tags), "mask": sort(masks)},
} if {
	_python_envelope(ps)
	every p in ps {
		_redact_quiet_entry(p)
	}
	found := data.governor.policies.precheck.quiet_findings(ps)
	redactions := [{"path": k[0], "start": k[1], "end": k[2], "kind": k[3], "replacement": k[4]} |
		some k in sort({[f.path, f.span.start, f.span.end, f.span.kind, f.span.replacement] | some [f, "redact"] in found})
	]
	pii := {sprintf("pii.%s", [f.span.kind]) | some [f, _] in found} | {"pii" | count(found) > 0}
	tags := (data.governor.policies.audit.plain_tags(ps) | data.governor.policies.precheck.clear_tags(ps)) | pii
	masks := data.governor.policies.audit.plain_masks(ps) | {f.path |
		some [f, action] in found
		action != "redact"
	}
}

_redact_quiet_entry(p) if {
	data.governor.policies.audit.plain_entry(p)
} else if {
	data.governor.policies.rate_limit.clear_entry(p)
} else if {
	data.governor.policies.budget.clear_entry(p)
} else if {
	data.governor.policies.precheck.redact_entry(p)
}

_redact_outcome(redactions) := "redact" if count(redactions) > 0

else := "allow"

reason(f) := sprintf("%s.%s:%s", [f.type, f.code, f.detail])

ordered(fs) := [f |
	some key in sort({[reason(g), g.policy, g.message, g] | some g in fs})
	f := key[3]
]
