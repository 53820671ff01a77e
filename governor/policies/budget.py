"""`BudgetPolicy`: refuse a call whose estimated cost would take spending over the limit.

Rego package `governor.policies.budget` (phase "pre"). Entry params:
`{currency, limit?, warn_ratio_percent?}` (`limit` omitted when None: the fact's limit, else the
bundle's `default_monthly_limit`, applies).

Every amount is a whole number of micro-units of the currency (1 USD = 1_000_000), never a
float: `usd("0.25") == 250_000` converts a decimal string exactly.

Facts, gathered by the executor under the store's lock on `key(call)`:
`budget = {limit, spent, reserved, estimated_cost, currency}` where `estimated_cost` is
`estimate(call)`. On allow the executor reserves the estimate (for `reservation_ttl_seconds`),
settles it with `actual(call, result)` (the estimate when that is None) and releases it if the
call fails. When `key(call)` is None (`per_user` and no user) there is no ledger to read: the
executor sends no `budget` fact and Rego denies `budget.missing_fact:<name>`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from governor.errors import ConfigurationError
from governor.policies._checks import (
    bool_param,
    call_arguments,
    callable_param,
    int_param,
    is_int,
    optional_int,
    str_param,
    where,
)
from governor.policies.base import CallInfo, Policy, PolicyPhase

MICRO_UNITS = 1_000_000

CostFunction = Callable[[Any], Any]


def usd(amount: str | int | Decimal) -> int:
    """A decimal amount of currency as micro-units, exactly: `usd("0.25") == 250_000`.

    Accepts a string, an int or a `Decimal`; a float is refused (0.1 is not exact in binary), as
    is an amount with more than six decimal places or a negative one.
    """
    if isinstance(amount, float):
        raise ConfigurationError(
            f"usd(): give the amount as a string such as {str(amount)!r}, not a float "
            "(floats are not exact)"
        )
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise ConfigurationError(f"usd(): amount must be a decimal string, got {amount!r}")
    try:
        value = Decimal(amount.strip() if isinstance(amount, str) else amount)
    except InvalidOperation:
        raise ConfigurationError(f"usd(): {amount!r} is not a decimal amount") from None
    if not value.is_finite():
        raise ConfigurationError(f"usd(): {amount!r} is not a finite amount")
    micro = value * MICRO_UNITS
    if micro != micro.to_integral_value():
        raise ConfigurationError(
            f"usd(): {amount!r} has more than six decimal places (the smallest unit is 0.000001)"
        )
    if micro < 0:
        raise ConfigurationError(f"usd(): {amount!r} is negative")
    return int(micro)


def _amount(owner: str, param: str, value: Any) -> int:
    if isinstance(value, float):
        raise ConfigurationError(
            f"{owner}: {param} must be a whole number of micro-units (1 USD = 1000000), got the "
            f"float {value!r}; use usd({str(value)!r}) = {_suggest(value)}"
        )
    if isinstance(value, Decimal):
        raise ConfigurationError(
            f"{owner}: {param} must be a whole number of micro-units, got Decimal {value}; "
            f"use usd({str(value)!r})"
        )
    return int_param(owner, param, value, minimum=0, hint="micro-units, 1 USD = 1000000")


def _suggest(value: float) -> str:
    try:
        return str(usd(str(value)))
    except ConfigurationError:
        return "the amount in micro-units"


class BudgetPolicy(Policy):
    """Spending limits on calls with a cost, decided in Rego on integer micro-units."""

    policy_type = "budget"

    def __init__(
        self,
        name: str | None = None,
        limit: int | None = None,
        estimated_cost: int | CostFunction = 0,
        actual_cost: CostFunction | None = None,
        per_user: bool = True,
        currency: str = "USD",
        warn_ratio_percent: int | None = None,
        reservation_ttl_seconds: int = 300,
    ) -> None:
        super().__init__(name=name, phase=PolicyPhase.PRE_EXECUTION)
        owner = where("BudgetPolicy", name)
        self._owner = owner
        self.limit = None if limit is None else _amount(owner, "limit", limit)
        if callable(estimated_cost):
            self.estimated_cost: int | CostFunction = estimated_cost
        else:
            self.estimated_cost = _amount(owner, "estimated_cost", estimated_cost)
        self.actual_cost = callable_param(owner, "actual_cost", actual_cost)
        self.per_user = bool_param(owner, "per_user", per_user)
        self.currency = str_param(owner, "currency", currency)
        self.warn_ratio_percent = optional_int(
            owner, "warn_ratio_percent", warn_ratio_percent, minimum=1, hint="1 to 100"
        )
        if self.warn_ratio_percent is not None and self.warn_ratio_percent > 100:
            raise ConfigurationError(
                f"{owner}: warn_ratio_percent must be a whole number from 1 to 100, "
                f"got {warn_ratio_percent}"
            )
        self.reservation_ttl_seconds = int_param(
            owner, "reservation_ttl_seconds", reservation_ttl_seconds, minimum=1, hint="seconds"
        )

    def params(self) -> dict[str, Any]:
        """`{currency, limit?, warn_ratio_percent?}`."""
        params: dict[str, Any] = {"currency": self.currency}
        if self.limit is not None:
            params["limit"] = self.limit
        if self.warn_ratio_percent is not None:
            params["warn_ratio_percent"] = self.warn_ratio_percent
        return params

    def user_id(self, call: CallInfo) -> str | None:
        """The caller's id (`input.subject.user_id`), or None."""
        value = call.subject.get("user_id")
        if value is None or value == "" or isinstance(value, bool):
            return None
        return str(value)

    def key(self, call: CallInfo) -> str | None:
        """The ledger this call spends from: `budget:<name>`, plus `:user:<id>` with `per_user`
        (None when `per_user` and the call has no user). A budget spans every function it
        governs, so the function name is not part of the key."""
        base = f"budget:{self.name}"
        if not self.per_user:
            return base
        user = self.user_id(call)
        return None if user is None else f"{base}:user:{user}"

    def estimate(self, call: CallInfo) -> int:
        """This call's estimated cost in micro-units: `estimated_cost`, or
        `estimated_cost(arguments)` (bound arguments by name plus "args"/"kwargs").

        Raises `ConfigurationError` naming `estimated_cost` when the function returns something
        other than a whole number >= 0; whatever it raises itself propagates. The executor turns
        either into `estimated_cost: null` in the fact, which Rego denies
        (`budget.invalid_amount:estimated_cost`).
        """
        if not callable(self.estimated_cost):
            return self.estimated_cost
        return self._checked("estimated_cost", self.estimated_cost(call_arguments(call)))

    def actual(self, call: CallInfo, result: Any) -> int | None:
        """The call's actual cost from `actual_cost(result)`, or None (settle with the estimate).

        Raises `ConfigurationError` naming `actual_cost` for anything but a whole number >= 0.
        """
        if self.actual_cost is None:
            return None
        return self._checked("actual_cost", self.actual_cost(result))

    def _checked(self, field: str, value: Any) -> int:
        if is_int(value) and value >= 0:
            return int(value)
        if isinstance(value, float):
            raise ConfigurationError(
                f"{self._owner}: {field} returned the float {value!r}; costs are whole numbers "
                f"of micro-units (1 USD = 1000000), e.g. usd({str(value)!r}) = {_suggest(value)}"
            )
        raise ConfigurationError(
            f"{self._owner}: {field} returned {value!r} ({type(value).__name__}); expected a "
            "whole number of micro-units >= 0"
        )
