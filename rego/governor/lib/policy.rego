# Shared helpers for the policy packages under governor.policies.
#
# A policy package calls `entries(<type>)` to get its own entries of `input.policies`, reads its
# parameters with `param` and `setting`, and builds the elements of its partial sets with
# `violation`, `violation_at` and `invalid_param`. Nothing here contributes to a decision.
#
# Entries are {type, name, params}: `name` defaults to the type when absent or not a string,
# `params` to {} when absent or not an object. A parameter that is null counts as absent.
package governor.lib.policy

# entries(t): the entries of input.policies whose type is t.
entries(t) := {e |
	is_array(input.policies)
	some p in input.policies
	is_object(p)
	p.type == t
	e := {"type": t, "name": entry_name(p, t), "params": entry_params(p)}
}

entry_name(p, t) := p.name if is_string(p.name)

else := t

entry_params(p) := p.params if is_object(p.params)

else := {}

# config(t): the object at data.governor.config.<t>, or {}.
config(t) := c if {
	c := data.governor.config[t]
	is_object(c)
} else := {}

# param(e, key, dflt): e.params[key] when set, else dflt.
param(e, key, dflt) := v if {
	v := e.params[key]
	v != null
} else := dflt

# setting(e, key, cfg_key, dflt): e.params[key] when set, else data.governor.config.<type>[cfg_key]
# when set, else dflt. (Indexing a config value that is not an object is undefined, as for
# config(type)[cfg_key], on both engines.)
setting(e, key, cfg_key, dflt) := v if {
	v := e.params[key]
	v != null
} else := v if {
	v := data.governor.config[e.type][cfg_key]
	v != null
} else := dflt

# Type checks used to validate parameters and facts (integers only: money and counts never float).
is_int(x) if {
	is_number(x)
	floor(x) == x
}

# (is_int inlined: a nested call costs regorus as much as the checks themselves)
is_nonneg_int(x) if {
	is_number(x)
	floor(x) == x
	x >= 0
}

is_pos_int(x) if {
	is_number(x)
	floor(x) == x
	x > 0
}

is_string_list(x) if {
	is_array(x)
	every s in x {
		is_string(s)
	}
}

# strings(x): the strings of an array or set as a set; {} for anything else.
strings(x) := {s | some s in x; is_string(s)} if {
	is_array(x)
} else := {s | some s in x; is_string(s)} if {
	is_set(x)
} else := set()

# violation(e, code, message): an element of deny, confirm or warn for entry e.
violation(e, code, message) := {"policy": e.name, "type": e.type, "code": code, "message": message}

# violation_at(e, code, detail, message): as violation, with a reason detail other than the name.
violation_at(e, code, detail, message) := {
	"policy": e.name,
	"type": e.type,
	"code": code,
	"detail": detail,
	"message": message,
}

# invalid_param(e, key, expected): the violation for a malformed parameter (fail closed).
invalid_param(e, key, expected) := violation_at(
	e,
	"invalid_param",
	sprintf("%s.%s", [e.name, key]),
	sprintf("Policy %s is misconfigured: parameter %s must be %s.", [e.name, key, expected]),
)
