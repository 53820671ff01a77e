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
#
# Speed: the common case (every audit entry carries its four parameters, well-formed, as
# AuditPolicy sends them) is read straight from input.policies (_plain); the general rules
# below (_masks, _tags, _warnings) resolve defaults and name every malformed parameter, and
# give the same sets for such an input.
package governor.policies.audit

import data.governor.lib.policy as lib

# --- the common case -------------------------------------------------------------------------

# plain_entry(p): p (an element of input.policies) is an audit entry with its four parameters,
# each well-formed: nothing to warn about, no default to apply. A function, so that
# governor.lib.combine's short cut can call it (on regorus a call costs a fraction of a rule).
plain_entry(p) if {
	p.type == "audit"
	s := p.params
	is_boolean(s.log_inputs)
	is_boolean(s.log_outputs)
	is_array(s.sensitive_fields)
	is_array(s.compliance_tags)
	every f in s.sensitive_fields {
		is_string(f)
	}
	every t in s.compliance_tags {
		is_string(t)
	}
}

# _plain: input.policies is a list whose every audit entry is a plain_entry.
_plain if {
	is_array(input.policies)
	every p in input.policies {
		_plain_or_other(p)
	}
}

_plain_or_other(p) if {
	p.type != "audit"
} else if {
	plain_entry(p)
}

# plain_masks(policies), plain_tags(policies): audit_mask and audit_tags for a list of entries
# whose every audit entry is a plain_entry.
plain_masks(policies) := _always("always_mask") | {f |
	some p in policies
	p.type == "audit"
	some f in p.params.sensitive_fields
} | {f |
	some p in policies
	p.type == "audit"
	p.params.log_inputs == false
	some f in _input_fields
} | {"output" |
	some p in policies
	p.type == "audit"
	p.params.log_outputs == false
}

plain_tags(policies) := _always("always_tags") | {t |
	some p in policies
	p.type == "audit"
	some t in p.params.compliance_tags
}

audit_mask := plain_masks(input.policies) if _plain else := _masks

audit_tags := plain_tags(input.policies) if _plain else := _tags

warn := set() if _plain else := _warnings

# _always(key): the strings of data.governor.config.audit[key] (always_mask, always_tags).
_always(key) := {x | some x in v; is_string(x)} if {
	v := data.governor.config.audit[key]
	type_name(v) in {"array", "set"}
} else := set()

# --- the general rules -----------------------------------------------------------------------

# Each entry with its parameters resolved once: e.s.<param>.
_entries := {object.union(e, {"s": {
	"sensitive_fields": lib.param(e, "sensitive_fields", []),
	"compliance_tags": lib.param(e, "compliance_tags", []),
	"log_inputs": lib.param(e, "log_inputs", true),
	"log_outputs": lib.param(e, "log_outputs", true),
}}) | some e in lib.entries("audit")}

_lists := {"sensitive_fields", "compliance_tags"}

_flags := {"log_inputs", "log_outputs"}

_input_fields := {"args", "raw_text", "payload"}

_masks contains field if {
	some field in _always("always_mask")
}

_masks contains field if {
	some e in _entries
	some field in lib.strings(e.s.sensitive_fields)
}

_masks contains field if {
	some e in _entries
	e.s.log_inputs == false
	some field in _input_fields
}

_masks contains "output" if {
	some e in _entries
	e.s.log_outputs == false
}

_tags contains tag if {
	some tag in _always("always_tags")
}

_tags contains tag if {
	some e in _entries
	some tag in lib.strings(e.s.compliance_tags)
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
