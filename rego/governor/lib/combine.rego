# The machinery behind governor.decision: the checks of the input envelope, and the collection of
# what every package under data.governor.policies contributes, each element in one shape.
# It lives apart so that the document data.governor.decision holds only the contract's fields.
#
#   input_errors      the malformed envelope fields: input, version, phase, policies, facts,
#                     subject
#   denies, confirms, warns
#                     findings {policy, type, code, detail, message, approval}; a plain string
#                     element becomes {policy: <package>, type: <package>, code: "denied" |
#                     "confirm" | "warning", message: <the string>}, and so does a boolean
#                     rule that is true (`deny if {...}`), with a generic message
#   redacts           {path, start, end, kind, replacement}
#   tags, masks       strings
#   reason(f)         "<type>.<code>:<detail>"
#   ordered(fs)       the findings ordered by reason, then policy and message
#
# Reads no data.governor.config key.
package governor.lib.combine

# --- the input envelope ----------------------------------------------------------------------

input_errors contains "input" if not _object_input

# Negated calls go through helper rules: `not f(x)` with x undefined is true in regorus and
# undefined in OPA (which hoists x out of the negation); `not <rule>` agrees on both.
_object_input if is_object(input)

input_errors contains "version" if {
	is_object(input)
	not input.version == 1
}

input_errors contains "phase" if {
	is_object(input)
	not _phase_ok
}

_phase_ok if input.phase in {"pre", "post"}

input_errors contains "policies" if {
	_present("policies")
	not is_array(input.policies)
}

input_errors contains "policies" if {
	is_array(input.policies)
	some p in input.policies
	not _policy_entry_ok(p)
}

input_errors contains field if {
	some field in {"facts", "subject"}
	_present(field)
	not is_object(input[field])
}

_present(field) if {
	is_object(input)
	input[field] != null
}

_policy_entry_ok(p) if {
	is_object(p)
	is_string(p.type)
	_optional(p, "name", "string")
	_optional(p, "params", "object")
}

_optional(obj, key, _) if object.get(obj, key, null) == null

_optional(obj, key, type) if type_name(obj[key]) == type

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

# _members(pkg, rule): the elements of a package's partial set (a set or an array); a boolean
# rule that is true (`deny if {...}`) counts as one element `true`; anything else as none.
_members(pkg, rule) := {x | some x in pkg[rule]} if {
	is_set(pkg[rule])
} else := {x | some x in pkg[rule]} if {
	is_array(pkg[rule])
} else := {true} if {
	pkg[rule] == true
} else := set()

# _contributions: [rule, package name, element] for every element of every package's sets,
# walked once per evaluation.
_rules := {"deny", "confirm", "warn", "redact", "audit_mask", "audit_tags"}

_contributions := {[rule, name, x] |
	some name, pkg in data.governor.policies
	is_object(pkg)
	some rule in _rules
	some x in _members(pkg, rule)
}

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

tags := {t | some ["audit_tags", _, t] in _contributions; is_string(t)}

masks := {m | some ["audit_mask", _, m] in _contributions; is_string(m)}

reason(f) := sprintf("%s.%s:%s", [f.type, f.code, f.detail])

ordered(fs) := [f |
	some key in sort({[reason(g), g.policy, g.message, g] | some g in fs})
	f := key[3]
]
