# The decision: the only entrypoint Python evaluates (`data.governor.decision`).
#
# This package decides nothing by itself. It combines the partial sets `deny`, `confirm`,
# `redact`, `warn`, `audit_mask` and `audit_tags` of every package under data.governor.policies
# (the standard ones and any user package `governor.policies.<name>`, found generically), and it
# checks the input envelope (version 1, phase "pre"|"post", `policies` a list of {type, name?,
# params?}, `facts` and `subject` objects when present). A malformed envelope is a deny with
# reason `input.invalid:<field>`. The collection itself is in governor.lib.combine.
#
# Elements a package may contribute:
#   deny, confirm, warn: {policy, type, code, message}, plus optionally `detail` (the part of the
#       reason after the colon; default: `policy`) and, for confirm, `approval` {approvers,
#       stages, timeout_seconds, quorum}. A plain string is accepted too (code "denied",
#       "confirm" or "warning", the package's name as policy and type, the string as message),
#       and so is a boolean rule that is true (`deny if { ... }`).
#   redact: {path, start, end, kind, replacement}
#   audit_mask, audit_tags: strings
#
# The document (always defined, whatever the input), and nothing else:
#   decision    "deny" > "confirm" > "redact" > "allow"
#   reasons     sorted, unique "<type>.<code>:<detail>" of every deny, confirm and warn element
#   violations  [{policy, type, code, message}] of the same elements (warnings included),
#               ordered by reason
#   approval    {required, approvers, stages, timeout_seconds, quorum}. When the decision is
#               confirm: the union of the confirm elements' approvers (sorted), their stages
#               concatenated (ordered by reason), the smallest timeout and the largest quorum
#               (at least 1); a timeout of 0 means no element set one. Otherwise
#               {required: false, approvers: [], stages: [], timeout_seconds: 0, quorum: 0}.
#   redactions  [{path, start, end, kind, replacement}] sorted by path, then start
#   audit       {tags, mask}: sorted, unique
#
# Reads no data.governor.config key.
package governor.decision

import data.governor.lib.combine

decision := "deny" if {
	count(combine.denies) > 0
} else := "confirm" if {
	count(combine.confirms) > 0
} else := "redact" if {
	count(combine.redacts) > 0
} else := "allow"

reasons := sort({combine.reason(f) | some f in (combine.denies | combine.confirms) | combine.warns})

violations := [{"policy": f.policy, "type": f.type, "code": f.code, "message": f.message} |
	some f in combine.ordered((combine.denies | combine.confirms) | combine.warns)
]

approval := {
	"required": true,
	"approvers": sort({a |
		some f in combine.confirms
		some a in _list(f.approval, "approvers")
		is_string(a)
	}),
	"stages": [s | some f in combine.ordered(combine.confirms); some s in _list(f.approval, "stages")],
	"timeout_seconds": _min_or_zero({t |
		some f in combine.confirms
		t := _get(f.approval, "timeout_seconds")
		is_number(t)
		t > 0
	}),
	"quorum": max({1} | {q |
		some f in combine.confirms
		q := _get(f.approval, "quorum")
		is_number(q)
	}),
} if {
	decision == "confirm"
} else := {"required": false, "approvers": [], "stages": [], "timeout_seconds": 0, "quorum": 0}

redactions := [{"path": k[0], "start": k[1], "end": k[2], "kind": k[3], "replacement": k[4]} |
	some k in sort({[r.path, r.start, r.end, r.kind, r.replacement] | some r in combine.redacts})
]

audit := {"tags": sort(combine.tags), "mask": sort(combine.masks)}

_list(obj, key) := obj[key] if {
	is_object(obj)
	is_array(obj[key])
} else := []

_get(obj, key) := obj[key] if is_object(obj)

_min_or_zero(s) := min(s) if count(s) > 0

else := 0
