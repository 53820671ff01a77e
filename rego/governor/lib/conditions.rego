# Attribute conditions as data, shared by governor.policies.authorization (`conditions`) and
# governor.policies.approval (`when`).
#
# A condition is {attribute, op, value}:
#   attribute  a dotted path. "args.<path>" reads input.args, "subject.<path>" input.subject,
#              "action.<path>" input.action; any other path is read under input.subject.attributes
#              (so "department" means input.subject.attributes.department).
#   op         eq | neq | in | not_in | lt | lte | gt | gte | exists
#   value      any JSON value for eq/neq; an array for in/not_in; a number or a string for the
#              orderings (the attribute must have the same type); ignored for exists.
# A list of conditions means all of them (AND). A single condition object may stand for a list.
#
# Evaluation is three-valued: `holds(c)` is true when the attribute resolves and the comparison
# succeeds; `known(c)` is true when the outcome is determined (the attribute resolves and, for the
# orderings, has the value's type). `exists` is always known.
package governor.lib.conditions

ops := {"eq", "neq", "in", "not_in", "lt", "lte", "gt", "gte", "exists"}

_orderings := {"lt", "lte", "gt", "gte"}

_roots := {"args", "subject", "action"}

# A value no JSON document holds: stands for "missing" in object.get.
_missing := {"__governor_missing__": "__governor_missing__"}

# as_list(x): a list of conditions from a list or from one condition object; undefined otherwise.
as_list(x) := x if is_array(x)

else := [x] if is_object(x)

# valid(c): c is a well-formed condition.
valid(c) if {
	is_object(c)
	is_string(c.attribute)
	c.attribute != ""
	c.op in ops
	_value_ok(c)
}

_value_ok(c) if c.op == "exists"

_value_ok(c) if {
	c.op in {"eq", "neq"}
	"value" in object.keys(c)
}

_value_ok(c) if {
	c.op in {"in", "not_in"}
	is_array(c.value)
}

_value_ok(c) if {
	c.op in _orderings
	_scalar(c.value)
}

_scalar(x) if is_number(x)

_scalar(x) if is_string(x)

# all_valid(x): x is a condition or a list of conditions, all well-formed.
all_valid(x) if {
	cs := as_list(x)
	every c in cs {
		valid(c)
	}
}

# resolve(path): the value at a dotted attribute path; undefined when it does not resolve.
resolve(path) := v if {
	parts := split(path, ".")
	parts[0] in _roots
	v := _lookup(input[parts[0]], array.slice(parts, 1, count(parts)))
}

resolve(path) := v if {
	parts := split(path, ".")
	not parts[0] in _roots
	v := _lookup(input.subject.attributes, parts)
}

_lookup(doc, rest) := doc if count(rest) == 0

_lookup(doc, rest) := v if {
	count(rest) > 0
	is_object(doc)
	v := object.get(doc, rest, _missing)
	v != _missing
}

_comparable(a, b) if {
	is_number(a)
	is_number(b)
}

_comparable(a, b) if {
	is_string(a)
	is_string(b)
}

# known(c): the outcome of the well-formed condition c is determined.
known(c) if c.op == "exists"

known(c) if {
	c.op in {"eq", "neq", "in", "not_in"}
	_ = resolve(c.attribute)
}

known(c) if {
	c.op in _orderings
	_comparable(resolve(c.attribute), c.value)
}

# holds(c): the well-formed condition c is satisfied.
holds(c) if {
	c.op == "exists"
	_ = resolve(c.attribute)
}

holds(c) if {
	c.op == "eq"
	resolve(c.attribute) == c.value
}

holds(c) if {
	c.op == "neq"
	resolve(c.attribute) != c.value
}

holds(c) if {
	c.op == "in"
	resolve(c.attribute) in c.value
}

holds(c) if {
	c.op == "not_in"
	v := resolve(c.attribute)
	not v in c.value
}

holds(c) if {
	c.op in _orderings
	v := resolve(c.attribute)
	_comparable(v, c.value)
	_compare(c.op, v, c.value)
}

_compare(op, a, b) if {
	op == "lt"
	a < b
}

_compare(op, a, b) if {
	op == "lte"
	a <= b
}

_compare(op, a, b) if {
	op == "gt"
	a > b
}

_compare(op, a, b) if {
	op == "gte"
	a >= b
}

# failing(x): the attributes of the conditions in x that do not hold (missing counts as failing).
failing(x) := {c.attribute | some c in as_list(x); not holds(c)}

# all_hold(x): every condition in x holds.
all_hold(x) if {
	cs := as_list(x)
	every c in cs {
		holds(c)
	}
}

# some_false(x): some condition in x is known and does not hold, so their AND is surely false.
some_false(x) if {
	some c in as_list(x)
	known(c)
	not holds(c)
}
