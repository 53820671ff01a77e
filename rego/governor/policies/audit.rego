# Audit: what the audit record must mask, and the compliance tags it carries.
#
# Never changes the decision: it contributes only audit_mask and audit_tags (and a warning
# reason for a malformed parameter). Applies in both phases.
# Policy entries: {"type": "audit", "name": ..., "params": {...}}
#   sensitive_fields  list of field names or dotted paths to mask in the record
#   compliance_tags   list of tags (e.g. "SOX", "GDPR")
#   log_inputs        boolean, default true; false masks the arguments ("args", "raw_text",
#                     "payload")
#   log_outputs       boolean, default true; false masks the result ("output")
# Config read (data.governor.config.audit):
#   always_mask       field names masked in every record, with or without an audit policy
#                     (e.g. ["password", "api_key", "token", "secret", "ssn"])
#   always_tags       tags put on every record, with or without an audit policy
#
# Reasons: audit.invalid_param:<name>.<param> (warn only; the invalid value is ignored).
package governor.policies.audit

import data.governor.lib.policy as lib

# Each entry with its parameters resolved once: e.s.<param>.
_entries := {object.union(e, {"s": {
	"sensitive_fields": lib.param(e, "sensitive_fields", []),
	"compliance_tags": lib.param(e, "compliance_tags", []),
	"log_inputs": lib.param(e, "log_inputs", true),
	"log_outputs": lib.param(e, "log_outputs", true),
}}) | some e in lib.entries("audit")}

_config := lib.config("audit")

_lists := {"sensitive_fields", "compliance_tags"}

_flags := {"log_inputs", "log_outputs"}

_input_fields := {"args", "raw_text", "payload"}

audit_mask contains field if {
	type_name(_config.always_mask) in {"array", "set"}
	some field in _config.always_mask
	is_string(field)
}

audit_mask contains field if {
	some e in _entries
	some field in lib.strings(e.s.sensitive_fields)
}

audit_mask contains field if {
	some e in _entries
	e.s.log_inputs == false
	some field in _input_fields
}

audit_mask contains "output" if {
	some e in _entries
	e.s.log_outputs == false
}

audit_tags contains tag if {
	type_name(_config.always_tags) in {"array", "set"}
	some tag in _config.always_tags
	is_string(tag)
}

audit_tags contains tag if {
	some e in _entries
	some tag in lib.strings(e.s.compliance_tags)
}

# The common case: every entry's parameters are well-formed, so there is nothing to warn about;
# otherwise _warnings names each malformed one.
warn := set() if {
	every e in _entries {
		_params_ok(e.s)
	}
} else := _warnings

_params_ok(s) if {
	lib.is_string_list(s.sensitive_fields)
	lib.is_string_list(s.compliance_tags)
	is_boolean(s.log_inputs)
	is_boolean(s.log_outputs)
}

_warnings contains lib.invalid_param(e, key, "a list of strings") if {
	some e in _entries
	some key in _lists
	not lib.is_string_list(e.s[key])
}

_warnings contains lib.invalid_param(e, key, "true or false") if {
	some e in _entries
	some key in _flags
	not is_boolean(e.s[key])
}
