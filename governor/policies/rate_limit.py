"""`RateLimitPolicy`: at most `max_calls` (+ `burst_size`) calls per window.

Rego package `governor.policies.rate_limit` (phase "pre"). Entry params:
`{max_calls, window_seconds, per_user, burst_size?}` (`burst_size` omitted when None: the bundle's
`default_burst_size` applies, else 0).

Facts, gathered by the executor under the store's lock on `key(call)`:
`rate_limit[<name>] = {count, window_seconds}`, the calls already admitted in the window (not
counting this one). When `key(call)` is None (`per_user` and no user) the executor counts nothing
and sends no fact; Rego then denies `rate_limit.no_user:<name>`, which reads
`input.subject.user_id`, so the executor must put the same user id there (`user_id(call)`).
"""

from __future__ import annotations

from typing import Any

from governor.policies._checks import (
    bool_param,
    dotted_get,
    int_param,
    optional_int,
    str_param,
    where,
)
from governor.policies.base import CallInfo, Policy, PolicyPhase


class RateLimitPolicy(Policy):
    """Limit calls per function (and per user with `per_user`), decided in Rego on exact counts."""

    policy_type = "rate_limit"

    def __init__(
        self,
        name: str | None = None,
        max_calls: int = 100,
        window_seconds: int = 60,
        per_user: bool = False,
        burst_size: int | None = None,
        user_key: str = "user.id",
    ) -> None:
        super().__init__(name=name, phase=PolicyPhase.PRE_EXECUTION)
        owner = where("RateLimitPolicy", name)
        self.max_calls = int_param(owner, "max_calls", max_calls, minimum=0)
        self.window_seconds = int_param(
            owner, "window_seconds", window_seconds, minimum=1, hint="seconds"
        )
        self.per_user = bool_param(owner, "per_user", per_user)
        self.burst_size = optional_int(owner, "burst_size", burst_size, minimum=0)
        self.user_key = str_param(owner, "user_key", user_key)

    def params(self) -> dict[str, Any]:
        """`{max_calls, window_seconds, per_user, burst_size?}`."""
        params: dict[str, Any] = {
            "max_calls": self.max_calls,
            "window_seconds": self.window_seconds,
            "per_user": self.per_user,
        }
        if self.burst_size is not None:
            params["burst_size"] = self.burst_size
        return params

    def user_id(self, call: CallInfo) -> str | None:
        """The caller's id: `user_key` (a dotted path) in the context, else the subject's
        `user_id`; None when there is none (empty strings count as none)."""
        value = dotted_get(call.context, self.user_key)
        if value is None or value == "":
            value = call.subject.get("user_id")
        if value is None or value == "" or isinstance(value, bool):
            return None
        return str(value)

    def key(self, call: CallInfo) -> str | None:
        """The counter this call is counted on: `rate_limit:<name>:<function>`, plus `:user:<id>`
        with `per_user`; None when `per_user` and the call has no user (never counted)."""
        base = f"rate_limit:{self.name}:{call.function_name}"
        if not self.per_user:
            return base
        user = self.user_id(call)
        if user is None:
            return None
        return f"{base}:user:{user}"

    def fact(self, count: int) -> dict[str, Any]:
        """The fact for this policy given the count read under the lock: `{rate_limit: {name:
        {count, window_seconds}}}`."""
        return {"rate_limit": {self.name: {"count": count, "window_seconds": self.window_seconds}}}
