# Budgets: refuse a call whose estimated cost would take spending over the limit.
#
# Applies in phase "pre" only: it decides whether the call may run.
#
# All amounts are whole numbers of micro-units of the currency (1 USD = 1000000), never floats.
# Policy entries: {"type": "budget", "name": ..., "params": {...}}
#   limit               overrides the limit of the fact
#   warn_ratio_percent  whole number 1..100: a warning once the total reaches that share of the
#                       limit, default: config `warn_ratio_percent`, else no warning
#   currency            the currency the limit is in; a fact in another currency is refused
# Facts: input.facts.budget = {limit, spent, reserved, estimated_cost, currency}: spent and
#   reserved in the current period, and this call's estimated cost. reserved and estimated_cost
#   default to 0; spent is required.
# Config read (data.governor.config.budget):
#   default_monthly_limit  the limit when neither params.limit nor facts.budget.limit is given
#                          (the period itself is computed in Python)
#   warn_ratio_percent     the default of the parameter of the same name
#
# The call is refused when spent + reserved + estimated_cost > limit (equal is allowed).
# Reasons: budget.exceeded:<name>, budget.missing_fact:<name>, budget.invalid_amount:<field>
#   (field: limit, spent, reserved or estimated_cost), budget.currency_mismatch:<name>,
#   budget.invalid_param:<name>.<param> (all deny); budget.near_limit:<name> (warn).
package governor.policies.budget

import data.governor.lib.policy as lib

_fact := input.facts.budget

_has_fact if is_object(_fact)

# Each entry with its settings resolved once: e.s.<param>, and e.amounts (the amounts it checks).
_entries := {object.union(e, {"s": _settings(e), "amounts": _amounts(e)}) |
	some e in lib.entries("budget")
} if {
	input.phase == "pre"
} else := set()

_settings(e) := {
	"warn_ratio_percent": lib.setting(e, "warn_ratio_percent", "warn_ratio_percent", null),
	"currency": lib.param(e, "currency", null),
}

# The limit in force for an entry: params, then the fact, then the org default; null if none.
_limit(e) := v if {
	v := e.params.limit
	v != null
} else := v if {
	v := _fact_amount("limit", null)
	v != null
} else := v if {
	v := lib.config("budget").default_monthly_limit
	v != null
} else := null

_fact_amount(field, dflt) := v if {
	_has_fact
	v := _fact[field]
	v != null
} else := dflt

_amounts(e) := {
	"limit": _limit(e),
	"spent": _fact_amount("spent", null),
	"reserved": _fact_amount("reserved", 0),
	"estimated_cost": _fact_amount("estimated_cost", 0),
}

# The common case in one pass: every entry valid, with well-formed amounts in its currency, within
# its limit and below its warning ratio. Then nothing is denied or warned about; otherwise
# _denials and _warnings tell why.
_all_clear if {
	every e in _entries {
		_clear(e)
	}
}

deny := set() if _all_clear

else := _denials

warn := set() if _all_clear

else := _warnings

_clear(e) if {
	_optional_percent(e.s.warn_ratio_percent)
	_currency_ok(e.s.currency)
	_has_fact
	every amount in e.amounts {
		is_number(amount)
		floor(amount) == amount
		amount >= 0
	}
	total := (e.amounts.spent + e.amounts.reserved) + e.amounts.estimated_cost
	total <= e.amounts.limit
	_below_warning(e.s.warn_ratio_percent, total, e.amounts.limit)
}

# clear_entry(p): p (an element of input.policies) is a budget entry that denies and warns about
# nothing: any entry after the call, or, before it, one without a currency to check for which
# _clear would hold. A function, so that governor.lib.combine's short cut can call it; it writes
# out _settings, _amounts and _clear (on regorus a function call costs as much as the checks it
# makes): the first set value of params, fact and config, every amount a whole number >= 0, the
# total within the limit and below the warning ratio when there is one.
clear_entry(p) if {
	p.type == "budget"
	input.phase != "pre"
} else if {
	p.type == "budget"
	params := p.params
	object.get(params, "currency", null) == null
	fact := input.facts.budget
	is_object(fact)
	limit := [x | some x in [object.get(params, "limit", null), object.get(fact, "limit", null), object.get(_config, "default_monthly_limit", null)]; x != null][0]
	spent := object.get(fact, "spent", null)
	reserved := [x | some x in [object.get(fact, "reserved", null), 0]; x != null][0]
	estimate := [x | some x in [object.get(fact, "estimated_cost", null), 0]; x != null][0]
	every amount in [limit, spent, reserved, estimate] {
		is_number(amount)
		floor(amount) == amount
		amount >= 0
	}
	total := (spent + reserved) + estimate
	total <= limit
	ratios := [x | some x in [object.get(params, "warn_ratio_percent", null), object.get(_config, "warn_ratio_percent", null)]; x != null]
	every ratio in array.slice(ratios, 0, 1) {
		is_number(ratio)
		floor(ratio) == ratio
		ratio >= 1
		ratio <= 100
		total * 100 < limit * ratio
	}
}

# data.governor.config.budget, as lib.setting and lib.config read it
_config := c if {
	c := data.governor.config.budget
	is_object(c)
} else := {}

_optional_percent(x) if x == null

_optional_percent(x) if _percent(x)

# no currency asked for, or the fact's currency (when it gives one) is the one asked for
_currency_ok(c) if c == null

_currency_ok(c) if {
	is_string(c)
	_fact_amount("currency", c) == c
}

_below_warning(ratio, _, _) if ratio == null

_below_warning(ratio, total, limit) if {
	ratio != null
	total * 100 < limit * ratio
}

# --- parameter checks --------------------------------------------------------------------------

_invalid contains lib.invalid_param(e, "warn_ratio_percent", "a whole number from 1 to 100") if {
	some e in _entries
	e.s.warn_ratio_percent != null
	not _percent(e.s.warn_ratio_percent)
}

_percent(x) if {
	is_number(x)
	floor(x) == x
	x >= 1
	x <= 100
}

_invalid contains lib.invalid_param(e, "currency", "a currency code such as USD") if {
	some e in _entries
	e.s.currency != null
	not is_string(e.s.currency)
}

_denials contains v if some v in _invalid

_invalid_names := {v.policy | some v in _invalid}

_valid_entries := {e | some e in _entries; not e.name in _invalid_names}

# --- the checks --------------------------------------------------------------------------------

_denials contains lib.violation(e, "missing_fact", sprintf(
	"The spending of budget %s is unavailable, so the call is refused.",
	[e.name],
)) if {
	some e in _valid_entries
	not _has_fact
}

# [entry, field] for every amount that is missing, negative or not a whole number.
_bad_amounts contains [e, field] if {
	some e in _valid_entries
	_has_fact
	some field, amount in e.amounts
	not lib.is_nonneg_int(amount)
}

_bad_names := {e.name | some [e, _] in _bad_amounts}

_denials contains lib.violation_at(e, "invalid_amount", field, sprintf(
	"Budget %s cannot be checked: the %s amount is missing, negative or not a whole number of micro-units.",
	[e.name, field],
)) if {
	some [e, field] in _bad_amounts
}

_denials contains lib.violation(e, "currency_mismatch", sprintf(
	"Budget %s is kept in %s, and this call's cost is in another currency; the call is refused.",
	[e.name, e.s.currency],
)) if {
	some e in _valid_entries
	is_string(e.s.currency)
	_fact_amount("currency", e.s.currency) != e.s.currency
}

# The entries whose amounts can be compared, with the total after this call.
_checked contains [e, total, e.amounts.limit] if {
	some e in _valid_entries
	_has_fact
	not e.name in _bad_names
	total := (e.amounts.spent + e.amounts.reserved) + e.amounts.estimated_cost
}

_denials contains lib.violation(e, "exceeded", sprintf(
	"Budget %s would be exceeded: with this call spending would reach %d of a limit of %d micro-units.",
	[e.name, total, limit],
)) if {
	some [e, total, limit] in _checked
	total > limit
}

_warnings contains lib.violation(e, "near_limit", sprintf(
	"Budget %s is nearly used up: with this call spending reaches %d of a limit of %d micro-units.",
	[e.name, total, limit],
)) if {
	some [e, total, limit] in _checked
	total <= limit
	e.s.warn_ratio_percent != null
	total * 100 >= limit * e.s.warn_ratio_percent
}
