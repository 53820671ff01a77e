# Rate limits: at most max_calls (+ burst_size) calls per window, counted by Python.
#
# Applies in phase "pre" only: it decides whether the call may run.
#
# Policy entries: {"type": "rate_limit", "name": ..., "params": {...}}
#   max_calls       whole number >= 0, default: config `default_max_calls`, else 100
#   window_seconds  whole number > 0, default: config `default_window_seconds`, else 60
#   per_user        boolean, default false: the count is per input.subject.user_id, and a call
#                   without a user is refused (never let through uncounted)
#   burst_size      whole number >= 0, extra calls allowed on top of max_calls, default: config
#                   `default_burst_size`, else 0
# Facts: input.facts.rate_limit[<policy name>] = {count, window_seconds}: the calls already
#   admitted in the current window (not counting this one) and the window they were counted in.
# Config read (data.governor.config.rate_limit):
#   default_max_calls, default_window_seconds, default_burst_size
#
# The call is admitted while count < max_calls + burst_size.
# Reasons (all deny): rate_limit.exceeded:<name>, rate_limit.no_user:<name>,
#   rate_limit.missing_fact:<name>, rate_limit.invalid_fact:<name> (count not a whole number >= 0,
#   or counted in another window), rate_limit.invalid_param:<name>.<param>.
package governor.policies.rate_limit

import data.governor.lib.policy as lib

# Each entry with its settings resolved once: e.s.<param>.
_entries := {object.union(e, {"s": _settings(e)}) | some e in lib.entries("rate_limit")} if {
	input.phase == "pre"
} else := set()

_settings(e) := {
	"max_calls": lib.setting(e, "max_calls", "default_max_calls", 100),
	"window_seconds": lib.setting(e, "window_seconds", "default_window_seconds", 60),
	"burst_size": lib.setting(e, "burst_size", "default_burst_size", 0),
	"per_user": lib.param(e, "per_user", false),
}

# The common case in one pass, read straight from input.policies: every rate_limit entry named,
# with max_calls, window_seconds and per_user given (burst_size given or defaulted), valid, with
# its user when per_user, a well-formed count fact counted over its window and room under its
# limit. Then nothing is denied; otherwise _denials tells why (or finds nothing to deny).
deny := set() if {
	is_array(input.policies)
	every p in input.policies {
		_clear_or_other(p)
	}
} else := _denials

_clear_or_other(p) if {
	p.type != "rate_limit"
} else if {
	clear_entry(p)
}

# clear_entry(p): p (an element of input.policies) is a rate_limit entry that denies nothing:
# any entry after the call, or, before it, a named entry whose parameters are given and admit
# the call as above. A function, so that governor.lib.combine's short cut can call it (on
# regorus a call costs a fraction of a rule). It writes out the checks of
# lib.is_nonneg_int, lib.is_pos_int, _fact and _fact_ok: a function call costs as much as the
# checks it makes.
clear_entry(p) if {
	p.type == "rate_limit"
	input.phase != "pre"
} else if {
	p.type == "rate_limit"
	name := p.name
	is_string(name)
	s := p.params
	max_calls := s.max_calls
	is_number(max_calls)
	floor(max_calls) == max_calls
	max_calls >= 0
	window := s.window_seconds
	is_number(window)
	floor(window) == window
	window > 0
	burst := _burst(s)
	is_number(burst)
	floor(burst) == burst
	burst >= 0
	_user_ok(s.per_user)
	fact := input.facts.rate_limit[name]
	n := fact.count
	is_number(n)
	floor(n) == n
	n >= 0
	fact.window_seconds == window
	n < max_calls + burst
}

# _burst(params): lib.setting(e, "burst_size", "default_burst_size", 0), with the config read by
# its static path (a reference with a variable into data costs regorus more).
_burst(params) := b if {
	b := params.burst_size
	b != null
} else := b if {
	b := data.governor.config.rate_limit.default_burst_size
	b != null
} else := 0

# --- parameter checks --------------------------------------------------------------------------

_invalid contains lib.invalid_param(e, "max_calls", "a whole number of calls, 0 or more") if {
	some e in _entries
	not lib.is_nonneg_int(e.s.max_calls)
}

_invalid contains lib.invalid_param(e, "window_seconds", "a positive whole number of seconds") if {
	some e in _entries
	not lib.is_pos_int(e.s.window_seconds)
}

_invalid contains lib.invalid_param(e, "burst_size", "a whole number of calls, 0 or more") if {
	some e in _entries
	not lib.is_nonneg_int(e.s.burst_size)
}

_invalid contains lib.invalid_param(e, "per_user", "true or false") if {
	some e in _entries
	not is_boolean(e.s.per_user)
}

_denials contains v if some v in _invalid

_invalid_names := {v.policy | some v in _invalid}

# --- the checks --------------------------------------------------------------------------------

_has_user if {
	id := input.subject.user_id
	is_string(id)
	id != ""
}

_has_user if is_number(input.subject.user_id)

_denials contains lib.violation(e, "no_user", sprintf(
	"Policy %s limits calls per user, and this call has no user id; it is refused.",
	[e.name],
)) if {
	some e in _entries
	not e.name in _invalid_names
	e.s.per_user == true
	not _has_user
}

# The valid entries that can be checked against a count (per-user limits need a user), with
# their count fact as e.fact (null when missing).
_countable contains object.union(e, {"fact": _fact(e.name)}) if {
	some e in _entries
	not e.name in _invalid_names
	_user_ok(e.s.per_user)
}

_user_ok(per_user) if {
	per_user == false
} else if {
	per_user == true
	_has_user
}

_fact(name) := f if {
	f := input.facts.rate_limit[name]
} else := null

_denials contains lib.violation(e, "missing_fact", sprintf(
	"The call count for rate limit %s is unavailable, so the call is refused.",
	[e.name],
)) if {
	some e in _countable
	e.fact == null
}

_denials contains lib.violation(e, "invalid_fact", sprintf(
	"The call count for rate limit %s is malformed or was counted over another window; the call is refused.",
	[e.name],
)) if {
	some e in _countable
	e.fact != null
	not _fact_ok(e.fact, e.s)
}

_fact_ok(fact, s) if {
	is_object(fact)
	lib.is_nonneg_int(fact.count)
	object.get(fact, "window_seconds", s.window_seconds) == s.window_seconds
}

_denials contains lib.violation(e, "exceeded", sprintf(
	"Rate limit %s reached: at most %d calls per %d seconds.",
	[e.name, limit, e.s.window_seconds],
)) if {
	some e in _countable
	_fact_ok(e.fact, e.s)
	limit := e.s.max_calls + e.s.burst_size
	e.fact.count >= limit
}
