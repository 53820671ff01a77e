"""governor/policies/_checks.py: the argument view user callables get."""

from __future__ import annotations

from typing import Any

from governor.policies import CallInfo
from governor.policies._checks import call_arguments, conditions
from tests.policies._support import make_call


def pay(amount: int, account: str, memo: str = "") -> None:
    """A governed function."""


def test_keyword_and_positional_calls_give_the_same_names_and_kwargs() -> None:
    positional = call_arguments(make_call(pay, 5000, "ACC456"))
    keyword = call_arguments(make_call(pay, amount=5000, account="ACC456"))
    for view in (positional, keyword):
        assert view["amount"] == 5000
        assert view.get("amount", 0) > 0
        assert view["kwargs"]["amount"] == 5000
        assert view["kwargs"]["memo"] == ""
    assert positional["args"] == [5000, "ACC456"]
    assert keyword["args"] == []


def test_the_view_holds_the_real_objects() -> None:
    marker = object()

    def f(client: Any) -> None: ...

    view = call_arguments(make_call(f, marker))
    assert view["client"] is marker
    assert view["args"][0] is marker


def test_extra_keyword_arguments_appear_in_kwargs() -> None:
    def f(a: int, **options: Any) -> None: ...

    view = call_arguments(make_call(f, 1, colour="red"))
    assert view["kwargs"]["colour"] == "red"
    assert view["kwargs"]["a"] == 1


def test_parameters_named_args_and_kwargs_keep_their_values() -> None:
    def f(args: list[int], kwargs: dict[str, int]) -> None: ...

    view = call_arguments(make_call(f, [1], {"k": 2}))
    assert view["args"] == [1]
    assert view["kwargs"] == {"k": 2}


def test_without_raw_objects_the_json_arguments_are_used() -> None:
    call = CallInfo(
        execution_id="e",
        function_name="pay",
        phase="pre",
        args={"amount": 7, "account": "A", "args": [7], "kwargs": {"account": "A"}},
        inputs={"args": [7], "kwargs": {"account": "A"}},
    )
    view = call_arguments(call)
    assert view["amount"] == 7
    assert view["args"] == [7]
    assert view["kwargs"] == {"account": "A", "amount": 7}


def test_a_single_condition_object_stands_for_a_list() -> None:
    one = {"attribute": "args.amount", "op": "gt", "value": 5}
    assert conditions("X", "when", one) == [one]
