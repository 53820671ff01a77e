# Authorization: roles, permissions and attribute conditions on the subject (input.subject).
#
# Applies in phase "pre" only: it decides whether the call may run.
#
# Policy entries: {"type": "authorization", "name": ..., "params": {...}}
#   required_roles              list of roles; ANY one of them suffices
#   required_permissions        list of permissions; ALL are needed. A subject holds its own
#                               input.subject.permissions plus those its roles grant through
#                               data.governor.config.authorization.roles
#   conditions                  list of attribute conditions, all must hold
#                               ({attribute, op, value}; see governor.lib.conditions)
#   require_approval_on_failure boolean, default false: a missing role, permission or failed
#                               condition asks for approval (confirm) instead of denying
#   approvers                   approvers for that confirm (default: config `approvers`)
#   approval_timeout_seconds    timeout for that confirm (default: config
#                               `approval_timeout_seconds`, else 3600)
# Config read (data.governor.config.authorization):
#   roles                       {<role>: {permissions: [...]}}: what each role grants
#   approvers                   default approvers for require_approval_on_failure
#   approval_timeout_seconds    default timeout for require_approval_on_failure
#
# Reasons: authorization.missing_role:<name>, authorization.missing_permission:<name>,
#   authorization.condition_failed:<name> (deny, or confirm with require_approval_on_failure),
#   authorization.no_subject:<name> (a role or permission is required and input.subject is
#   missing or empty; always deny), authorization.invalid_param:<name>.<param> (always deny).
package governor.policies.authorization

import data.governor.lib.conditions
import data.governor.lib.policy as lib

_config := lib.config("authorization")

# Each entry with its settings resolved once: e.s.<param>.
_entries := {object.union(e, {"s": _settings(e)}) | some e in lib.entries("authorization")} if {
	input.phase == "pre"
} else := set()

_settings(e) := {
	"required_roles": lib.param(e, "required_roles", []),
	"required_permissions": lib.param(e, "required_permissions", []),
	"conditions": lib.param(e, "conditions", []),
	"require_approval_on_failure": lib.param(e, "require_approval_on_failure", false),
	"approvers": lib.setting(e, "approvers", "approvers", []),
	"approval_timeout_seconds": lib.setting(e, "approval_timeout_seconds", "approval_timeout_seconds", 3600),
}

_subject := input.subject if is_object(input.subject)

else := {}

_has_subject if count(_subject) > 0

_roles := lib.strings(object.get(_subject, "roles", []))

# Permissions granted by the subject's roles through the configured role table.
_role_permissions contains p if {
	some role in _roles
	some p in lib.strings(_config.roles[role].permissions)
}

_permissions := lib.strings(object.get(_subject, "permissions", [])) | _role_permissions

# --- parameter checks --------------------------------------------------------------------------

_invalid contains lib.invalid_param(e, "required_roles", "a list of role names") if {
	some e in _entries
	not lib.is_string_list(e.s.required_roles)
}

_invalid contains lib.invalid_param(e, "required_permissions", "a list of permission names") if {
	some e in _entries
	not lib.is_string_list(e.s.required_permissions)
}

_invalid contains lib.invalid_param(e, "conditions", "a list of {attribute, op, value} conditions") if {
	some e in _entries
	not conditions.all_valid(e.s.conditions)
}

_invalid contains lib.invalid_param(e, "require_approval_on_failure", "true or false") if {
	some e in _entries
	not is_boolean(e.s.require_approval_on_failure)
}

_invalid contains lib.invalid_param(e, "approvers", "a list of approver names") if {
	some e in _entries
	not lib.is_string_list(e.s.approvers)
}

_invalid contains lib.invalid_param(e, "approval_timeout_seconds", "a positive whole number of seconds") if {
	some e in _entries
	not lib.is_pos_int(e.s.approval_timeout_seconds)
}

deny contains v if some v in _invalid

_invalid_names := {v.policy | some v in _invalid}

_valid_entries := {e | some e in _entries; not e.name in _invalid_names}

# --- the checks --------------------------------------------------------------------------------

_needs_subject(s) if count(s.required_roles) > 0

_needs_subject(s) if count(s.required_permissions) > 0

deny contains lib.violation(e, "no_subject", sprintf(
	"Policy %s requires an authenticated caller with roles or permissions, and none was given.",
	[e.name],
)) if {
	some e in _valid_entries
	_needs_subject(e.s)
	not _has_subject
}

_failures contains [e, lib.violation(e, "missing_role", sprintf(
	"The caller has none of the roles policy %s requires (one of: %s).",
	[e.name, concat(", ", sort(e.s.required_roles))],
))] if {
	some e in _valid_entries
	_has_subject
	count(e.s.required_roles) > 0
	every role in e.s.required_roles {
		not role in _roles
	}
}

_failures contains [e, lib.violation(e, "missing_permission", sprintf(
	"The caller lacks permissions policy %s requires: %s.",
	[e.name, concat(", ", sort(missing))],
))] if {
	some e in _valid_entries
	_has_subject
	missing := {p | some p in e.s.required_permissions; not p in _permissions}
	count(missing) > 0
}

_failures contains [e, lib.violation(e, "condition_failed", sprintf(
	"The call does not meet the conditions of policy %s on: %s.",
	[e.name, concat(", ", sort(failing))],
))] if {
	some e in _valid_entries
	failing := conditions.failing(e.s.conditions)
	count(failing) > 0
}

deny contains v if {
	some [e, v] in _failures
	e.s.require_approval_on_failure == false
}

confirm contains object.union(v, {"approval": {
	"approvers": e.s.approvers,
	"stages": _stage_lists(e.s.approvers),
	"timeout_seconds": e.s.approval_timeout_seconds,
	"quorum": 1,
}}) if {
	some [e, v] in _failures
	e.s.require_approval_on_failure == true
}

# The approvers form the only stage, as everywhere a confirm has no stages of its own.
_stage_lists(approvers) := [approvers] if count(approvers) > 0

else := []
