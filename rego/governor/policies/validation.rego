# Validation: JSON Schemas on the arguments and the result, and the verdicts of Python validators.
#
# Policy entries: {"type": "validation", "name": ..., "params": {...}}
#   input_schema   JSON Schema object, checked in phase "pre" against input.args
#                  (input.args missing counts as {}; a non-object is checked as {"value": args})
#   output_schema  JSON Schema object, checked in phase "post" against input.output
#                  (a non-object output is checked as {"value": output})
#   strict         boolean, default true: a failure denies; false turns it into a warning
# Facts: input.facts.checks[<policy name>] = {ok: bool, errors: [...]}, the result of the Python
#   validators of that policy; ok false is a failure like a schema mismatch. The errors are
#   never copied into reasons or messages (they may hold the rejected values).
# Config read: data.governor.config.validation.strict (the default of `strict`).
#
# Reasons: validation.input_invalid:<name>, validation.output_invalid:<name>,
#   validation.check_failed:<name> (deny, or warn when not strict),
#   validation.invalid_fact:<name>, validation.invalid_param:<name>.<param> (always deny).
#
# Only the verdict of json.match_schema is used: its error list differs between engines.
# A schema that is not valid JSON Schema is an evaluation error (fail closed on both engines).
package governor.policies.validation

import data.governor.lib.policy as lib

# Each entry with `strict` resolved once as e.strict.
_entries := {object.union(e, {"strict": lib.setting(e, "strict", "strict", true)}) |
	some e in lib.entries("validation")
}

_schema_params := {"input_schema", "output_schema"}

# The documents the schemas apply to: JSON Schema in OPA only checks objects.
_as_object(x) := x if is_object(x)

else := {"value": x}

_args_doc := _as_object(input.args) if {
	input.args != null
} else := {}

_output_doc := _as_object(input.output) if {
	_ = input.output
} else := {"value": null}

_targets := {"input_schema": ["pre", "input_invalid"], "output_schema": ["post", "output_invalid"]}

_failure_messages := {
	"input_invalid": "The arguments do not match the input schema of policy %s.",
	"output_invalid": "The result does not match the output schema of policy %s.",
}

_docs := {"input_schema": _args_doc, "output_schema": _output_doc}

# Failures of schema and validator checks: [entry, violation].
_failures contains [e, v] if {
	some e in _entries
	some key in _schema_params
	schema := e.params[key]
	is_object(schema)
	[phase, code] := _targets[key]
	input.phase == phase
	[ok, _] := json.match_schema(_docs[key], schema)
	ok == false
	v := lib.violation(e, code, sprintf(_failure_messages[code], [e.name]))
}

_failures contains [e, v] if {
	some e in _entries
	check := input.facts.checks[e.name]
	check.ok == false
	v := lib.violation(e, "check_failed", sprintf(
		"The validator of policy %s rejected this call (%d error(s)); see the validation report.",
		[e.name, _error_count(check)],
	))
}

_error_count(check) := count(check.errors) if is_array(check.errors)

else := 0

deny contains v if {
	some [e, v] in _failures
	e.strict == true
}

warn contains v if {
	some [e, v] in _failures
	e.strict == false
}

# --- malformed parameters and facts: always deny (fail closed) ----------------------------------

deny contains lib.invalid_param(e, key, "a JSON Schema object") if {
	some e in _entries
	some key in _schema_params
	schema := e.params[key]
	schema != null
	not is_object(schema)
}

deny contains lib.invalid_param(e, "strict", "true or false") if {
	some e in _entries
	not is_boolean(e.strict)
}

deny contains lib.violation(e, "invalid_fact", sprintf(
	"The validator result for policy %s is malformed (it needs a boolean ok); the call is refused.",
	[e.name],
)) if {
	some e in _entries
	check := input.facts.checks[e.name]
	not _well_formed_check(check)
}

_well_formed_check(check) if {
	is_object(check)
	is_boolean(check.ok)
}
