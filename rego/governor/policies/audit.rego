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

_entries := lib.entries("audit")

_config := lib.config("audit")

_lists := {"sensitive_fields", "compliance_tags"}

_flags := {"log_inputs", "log_outputs"}

_input_fields := {"args", "raw_text", "payload"}

audit_mask contains field if some field in lib.strings(_config.always_mask)

audit_mask contains field if {
	some e in _entries
	some field in lib.strings(lib.param(e, "sensitive_fields", []))
}

audit_mask contains field if {
	some e in _entries
	lib.param(e, "log_inputs", true) == false
	some field in _input_fields
}

audit_mask contains "output" if {
	some e in _entries
	lib.param(e, "log_outputs", true) == false
}

audit_tags contains tag if some tag in lib.strings(_config.always_tags)

audit_tags contains tag if {
	some e in _entries
	some tag in lib.strings(lib.param(e, "compliance_tags", []))
}

warn contains lib.invalid_param(e, key, "a list of strings") if {
	some e in _entries
	some key in _lists
	not lib.is_string_list(lib.param(e, key, []))
}

warn contains lib.invalid_param(e, key, "true or false") if {
	some e in _entries
	some key in _flags
	not is_boolean(lib.param(e, key, true))
}
