# The fields of the document data.governor.decision (see governor/decision.rego), computed from
# the findings governor.lib.combine collects.
#
#   outcome     "deny" > "confirm" > "redact" > "allow"   (the document's `decision`)
#   reasons, violations, approval, redactions, audit      as in the document
#   no_approval the approval field when the decision is not confirm
#
# Rules of other packages are referenced by their full path, never through an import: regorus
# evaluates the WHOLE imported package the first time a rule is read through the import's name
# (functions are not affected).
#
# Reads no data.governor.config key.
package governor.lib.decision

outcome := "deny" if {
	count(data.governor.lib.combine.denies) > 0
} else := "confirm" if {
	count(data.governor.lib.combine.confirms) > 0
} else := "redact" if {
	count(data.governor.lib.combine.redacts) > 0
} else := "allow"

reasons := sort({data.governor.lib.combine.reason(f) | some f in (data.governor.lib.combine.denies | data.governor.lib.combine.confirms) | data.governor.lib.combine.warns})

violations := [{"policy": f.policy, "type": f.type, "code": f.code, "message": f.message} |
	some f in data.governor.lib.combine.ordered((data.governor.lib.combine.denies | data.governor.lib.combine.confirms) | data.governor.lib.combine.warns)
]

approval := {
	"required": true,
	"approvers": sort({a |
		some f in data.governor.lib.combine.confirms
		some a in _list(f.approval, "approvers")
		is_string(a)
	}),
	"stages": [s | some f in data.governor.lib.combine.ordered(data.governor.lib.combine.confirms); some s in _list(f.approval, "stages")],
	"timeout_seconds": _min_or_zero({t |
		some f in data.governor.lib.combine.confirms
		t := _get(f.approval, "timeout_seconds")
		is_number(t)
		t > 0
	}),
	"quorum": max({1} | {q |
		some f in data.governor.lib.combine.confirms
		q := _get(f.approval, "quorum")
		is_number(q)
	}),
} if {
	outcome == "confirm"
} else := no_approval

no_approval := {"required": false, "approvers": [], "stages": [], "timeout_seconds": 0, "quorum": 0}

redactions := [{"path": k[0], "start": k[1], "end": k[2], "kind": k[3], "replacement": k[4]} |
	some k in sort({[r.path, r.start, r.end, r.kind, r.replacement] | some r in data.governor.lib.combine.redacts})
]

audit := {"tags": sort(data.governor.lib.combine.tags), "mask": sort(data.governor.lib.combine.masks)}

_list(obj, key) := obj[key] if {
	is_object(obj)
	is_array(obj[key])
} else := []

_get(obj, key) := obj[key] if is_object(obj)

_min_or_zero(s) := min(s) if count(s) > 0

else := 0
