package governor.lib.conditions_test

import data.governor.lib.conditions

_input := {
	"args": {"amount": 15000, "currency": "EUR", "order": {"id": "o-1", "lines": 3}, "list": [1, 2]},
	"subject": {"user_id": "u1", "roles": ["clerk"], "attributes": {"department": "finance", "level": 3}},
	"action": {"kind": "tool", "name": "payments.refund"},
}

_c(attribute, op, value) := {"attribute": attribute, "op": op, "value": value}

test_resolve_reads_args_subject_action_and_bare_attributes if {
	conditions.resolve("args.amount") == 15000 with input as _input
	conditions.resolve("args.order.id") == "o-1" with input as _input
	conditions.resolve("subject.user_id") == "u1" with input as _input
	conditions.resolve("subject.attributes.level") == 3 with input as _input
	conditions.resolve("action.name") == "payments.refund" with input as _input
	conditions.resolve("department") == "finance" with input as _input
}

# (regorus: an expression under `with input as R` must not also read R, so bind it first)
test_resolve_of_a_root_alone_is_the_whole_document if {
	inp := _input
	conditions.resolve("args") == inp.args with input as inp
}

test_resolve_is_undefined_for_missing_paths if {
	not conditions.resolve("args.missing") with input as _input
	not conditions.resolve("args.amount.deeper") with input as _input
	not conditions.resolve("args.list.0") with input as _input
	not conditions.resolve("nothing") with input as _input
	not conditions.resolve("args.amount") with input as {}
	not conditions.resolve("args.x") with input as {"args": ["not", "an", "object"]}
}

test_eq_and_neq if {
	conditions.holds(_c("args.currency", "eq", "EUR")) with input as _input
	not conditions.holds(_c("args.currency", "eq", "USD")) with input as _input
	conditions.holds(_c("args.currency", "neq", "USD")) with input as _input
	not conditions.holds(_c("args.currency", "neq", "EUR")) with input as _input
	conditions.holds(_c("args.order", "eq", {"id": "o-1", "lines": 3})) with input as _input
}

test_in_and_not_in if {
	conditions.holds(_c("department", "in", ["finance", "legal"])) with input as _input
	not conditions.holds(_c("department", "in", ["sales"])) with input as _input
	conditions.holds(_c("department", "not_in", ["sales"])) with input as _input
	not conditions.holds(_c("department", "not_in", ["finance"])) with input as _input
}

test_orderings_on_numbers_at_the_boundary if {
	conditions.holds(_c("args.amount", "gt", 14999)) with input as _input
	not conditions.holds(_c("args.amount", "gt", 15000)) with input as _input
	conditions.holds(_c("args.amount", "gte", 15000)) with input as _input
	not conditions.holds(_c("args.amount", "gte", 15001)) with input as _input
	conditions.holds(_c("args.amount", "lt", 15001)) with input as _input
	not conditions.holds(_c("args.amount", "lt", 15000)) with input as _input
	conditions.holds(_c("args.amount", "lte", 15000)) with input as _input
	not conditions.holds(_c("args.amount", "lte", 14999)) with input as _input
}

test_orderings_on_strings if {
	conditions.holds(_c("args.currency", "lt", "USD")) with input as _input
	not conditions.holds(_c("args.currency", "gt", "USD")) with input as _input
}

test_ordering_across_types_neither_holds_nor_is_known if {
	c := _c("args.currency", "gt", 10)
	not conditions.holds(c) with input as _input
	not conditions.known(c) with input as _input
}

test_exists if {
	conditions.holds({"attribute": "args.order.id", "op": "exists"}) with input as _input
	not conditions.holds({"attribute": "args.order.missing", "op": "exists"}) with input as _input
	conditions.known({"attribute": "args.order.missing", "op": "exists"}) with input as _input
}

test_missing_attribute_fails_every_comparison_and_is_unknown if {
	every op in ["eq", "neq", "in", "not_in", "lt", "gt"] {
		c := _c("args.missing", op, _value_for(op))
		not conditions.holds(c) with input as _input
		not conditions.known(c) with input as _input
	}
}

_value_for(op) := ["x"] if op in {"in", "not_in"}

else := 1

test_known_when_the_attribute_resolves if {
	conditions.known(_c("args.amount", "eq", 1)) with input as _input
	conditions.known(_c("args.amount", "gt", 1)) with input as _input
}

test_valid_accepts_every_operator if {
	conditions.valid(_c("a", "eq", null))
	conditions.valid(_c("a", "neq", 1))
	conditions.valid(_c("a", "in", []))
	conditions.valid(_c("a", "not_in", [1]))
	conditions.valid(_c("a", "lt", 1))
	conditions.valid(_c("a", "lte", "b"))
	conditions.valid(_c("a", "gt", 2.5))
	conditions.valid(_c("a", "gte", 0))
	conditions.valid({"attribute": "a", "op": "exists"})
}

test_valid_rejects_malformed_conditions if {
	not conditions.valid("args.amount > 5")
	not conditions.valid({"op": "eq", "value": 1})
	not conditions.valid(_c("", "eq", 1))
	not conditions.valid(_c(5, "eq", 1))
	not conditions.valid(_c("a", "like", 1))
	not conditions.valid({"attribute": "a", "op": "eq"})
	not conditions.valid(_c("a", "in", "finance"))
	not conditions.valid(_c("a", "gt", {"n": 1}))
	not conditions.valid(_c("a", "lt", null))
}

test_all_valid_takes_a_list_or_one_condition if {
	conditions.all_valid([])
	conditions.all_valid([_c("a", "eq", 1), _c("b", "gt", 2)])
	conditions.all_valid(_c("a", "eq", 1))
	not conditions.all_valid([_c("a", "eq", 1), _c("b", "bad", 2)])
	not conditions.all_valid("a == 1")
	not conditions.all_valid(7)
}

test_all_hold_is_an_and if {
	conditions.all_hold([]) with input as _input
	conditions.all_hold([_c("args.amount", "gt", 1), _c("department", "eq", "finance")]) with input as _input
	not conditions.all_hold([_c("args.amount", "gt", 1), _c("department", "eq", "sales")]) with input as _input
	conditions.all_hold(_c("args.amount", "gt", 1)) with input as _input
}

test_failing_names_the_attributes_that_fail if {
	cs := [_c("args.amount", "gt", 1), _c("department", "eq", "sales"), _c("args.missing", "eq", 1)]
	conditions.failing(cs) == {"department", "args.missing"} with input as _input
	conditions.failing([]) == set() with input as _input
}

test_some_false_is_three_valued if {
	# a known failure makes the AND false
	conditions.some_false([_c("args.amount", "lt", 10)]) with input as _input

	# an unknown (missing) attribute does not
	not conditions.some_false([_c("args.missing", "lt", 10)]) with input as _input

	# holding conditions do not
	not conditions.some_false([_c("args.amount", "gt", 10)]) with input as _input
	not conditions.some_false([]) with input as _input
}
