"""Argument checks shared by the policy constructors, and the argument view user callables get.

Every check raises `ConfigurationError` with a message that names the policy, the parameter and
the problem, e.g. `RateLimitPolicy(name='api'): max_calls must be a whole number >= 0, got -1`.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from governor.errors import ConfigurationError
from governor.policies.base import CallInfo

CONDITION_OPS = ("eq", "neq", "in", "not_in", "lt", "lte", "gt", "gte", "exists")
_ORDERINGS = {"lt", "lte", "gt", "gte"}
_CONDITION_KEYS = {"attribute", "op", "value"}


def where(owner: str, name: str | None) -> str:
    """How a message names a policy: `RateLimitPolicy(name='api')`."""
    return f"{owner}(name={name!r})" if name else owner


def fail(owner: str, param: str, problem: str, value: Any) -> ConfigurationError:
    """The error for a bad parameter value."""
    return ConfigurationError(f"{owner}: {param} must be {problem}, got {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def is_int(value: Any) -> bool:
    """A real whole number: an `int` that is not a `bool`."""
    return isinstance(value, int) and not isinstance(value, bool)


def int_param(owner: str, param: str, value: Any, *, minimum: int, hint: str = "") -> int:
    """A whole number >= minimum (floats and booleans are refused)."""
    if not is_int(value) or value < minimum:
        text = f"a whole number >= {minimum}" + (f" ({hint})" if hint else "")
        raise fail(owner, param, text, value)
    return int(value)


def optional_int(owner: str, param: str, value: Any, *, minimum: int, hint: str = "") -> int | None:
    """None, or a whole number >= minimum."""
    if value is None:
        return None
    return int_param(owner, param, value, minimum=minimum, hint=hint)


def bool_param(owner: str, param: str, value: Any) -> bool:
    """True or False (no truthy stand-ins)."""
    if not isinstance(value, bool):
        raise fail(owner, param, "true or false", value)
    return value


def str_param(owner: str, param: str, value: Any, *, choices: tuple[str, ...] = ()) -> str:
    """A non-empty string, optionally one of `choices`."""
    if not isinstance(value, str) or not value.strip():
        raise fail(owner, param, "a non-empty string", value)
    if choices and value not in choices:
        raise fail(owner, param, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def str_list(owner: str, param: str, value: Any) -> list[str]:
    """None (an empty list) or a list/tuple of non-empty strings. A lone string is refused:
    `required_roles="admin"` would otherwise read as five one-letter roles."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise fail(owner, param, "a list of strings", value)
    items = sorted(value) if isinstance(value, set | frozenset) else list(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise fail(owner, param, "a list of non-empty strings", value)
    return items


def callable_param(owner: str, param: str, value: Any) -> Callable[..., Any] | None:
    """None or a callable."""
    if value is not None and not callable(value):
        raise fail(owner, param, "a callable", value)
    return value


def json_value(owner: str, param: str, value: Any) -> Any:
    """A JSON-safe copy of value (dicts with string keys, lists, strings, finite numbers, bools,
    None); anything else is refused, naming the path of the offending part."""
    return _json_copy(owner, param, value)


def _json_copy(owner: str, path: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if is_int(value):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise fail(owner, path, "a finite number", value)
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise fail(owner, path, "an object with string keys", key)
            out[key] = _json_copy(owner, f"{path}.{key}", item)
        return out
    if isinstance(value, list | tuple):
        return [_json_copy(owner, f"{path}[{i}]", item) for i, item in enumerate(value)]
    raise fail(owner, path, "JSON (objects, lists, strings, numbers, booleans, null)", value)


def conditions(owner: str, param: str, value: Any) -> list[dict[str, Any]]:
    """Attribute conditions as `governor.lib.conditions` reads them: a list of
    `{attribute, op, value}` (a single condition object stands for a list of one)."""
    if value is None:
        return []
    items = [value] if isinstance(value, Mapping) else value
    if not isinstance(items, list | tuple):
        raise fail(owner, param, "a list of {attribute, op, value} conditions", value)
    out = []
    for i, cond in enumerate(items):
        at = f"{param}[{i}]"
        if not isinstance(cond, Mapping):
            raise fail(owner, at, "an object {attribute, op, value}", cond)
        unknown = sorted(set(cond) - _CONDITION_KEYS)
        if unknown:
            raise ConfigurationError(
                f"{owner}: {at} has unknown key(s) {', '.join(unknown)}; "
                "a condition has attribute, op and value"
            )
        attribute = cond.get("attribute")
        if not isinstance(attribute, str) or not attribute:
            raise fail(owner, f"{at}.attribute", "a dotted path such as 'args.amount'", attribute)
        op = cond.get("op")
        if op not in CONDITION_OPS:
            raise fail(owner, f"{at}.op", "one of " + ", ".join(CONDITION_OPS), op)
        clean: dict[str, Any] = {"attribute": attribute, "op": op}
        if op == "exists":
            if "value" in cond:
                clean["value"] = json_value(owner, f"{at}.value", cond["value"])
        elif "value" not in cond:
            raise ConfigurationError(f"{owner}: {at}.value is required for op {op!r}")
        else:
            v = json_value(owner, f"{at}.value", cond["value"])
            if op in ("in", "not_in") and not isinstance(v, list):
                raise fail(owner, f"{at}.value", f"a list for op {op!r}", v)
            if op in _ORDERINGS and (isinstance(v, bool) or not isinstance(v, int | float | str)):
                raise fail(owner, f"{at}.value", f"a number or a string for op {op!r}", v)
            clean["value"] = v
        out.append(clean)
    return out


def unknown_key(owner: str, key: str, known: Iterable[str], what: str) -> ConfigurationError:
    """The error for an unknown key, suggesting the closest known one (difflib)."""
    names = sorted(known)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigurationError(f"{owner}: unknown {what} {key!r}{hint} (known: {', '.join(names)})")


def dotted_get(doc: Any, path: str) -> Any:
    """The value at a dotted path in nested mappings (or attributes), or None."""
    current = doc
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif current is not None and hasattr(current, part):
            current = getattr(current, part)
        else:
            return None
        if current is None:
            return None
    return current


def call_arguments(call: CallInfo) -> dict[str, Any]:
    """What user callables (validators, conditions, authorizers, costs) receive.

    The bound arguments by parameter name (real objects when the executor supplied `raw_bound`,
    else the JSON-safe `call.args`), plus, unless a parameter has that name:
      `"args"`    the positional arguments as passed (a list), as in 0.2.0;
      `"kwargs"`  EVERY argument by name (those passed positionally too, and the extras of a
                  `**kwargs`), so `x["kwargs"]["amount"]` sees the amount however it was passed.
    Both README styles (`x.get("amount", 0) > 0`, `x["kwargs"]["amount"]`) therefore work for
    positional and keyword calls alike: a positional call is not a way around a check.
    """
    real = bool(call.raw_bound or call.raw_args or call.raw_kwargs)
    if real:
        by_name = {**_named(call.args), **call.raw_bound}
        positional = list(call.raw_args)
        extras = dict(call.raw_kwargs)
        names = call.raw_bound
    else:
        by_name = _named(call.args)
        positional = list(call.inputs.get("args", []) or [])
        extras = dict(call.inputs.get("kwargs", {}) or {})
        names = {}
    view = dict(by_name)
    if "args" in names or ("args" in call.args and not _is_shape(call, "args")):
        view["args"] = by_name.get("args", call.args.get("args"))
    else:
        view["args"] = positional
    if "kwargs" in names or ("kwargs" in call.args and not _is_shape(call, "kwargs")):
        view["kwargs"] = by_name.get("kwargs", call.args.get("kwargs"))
    else:
        view["kwargs"] = {**extras, **{k: v for k, v in by_name.items() if k not in extras}}
    return view


def _is_shape(call: CallInfo, key: str) -> bool:
    """Whether call.args[key] is the documented {"args","kwargs"} shape rather than a parameter."""
    return key in call.inputs and call.args.get(key) == call.inputs.get(key)


def _named(args: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k not in ("args", "kwargs")}


async def resolve(value: Any) -> Any:
    """Await value if a user callable returned an awaitable."""
    if inspect.isawaitable(value):
        return await value
    return value


def describe_exception(exc: BaseException) -> str:
    """`ValueError: amount must be positive` (the message a failed check carries)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def json_text(value: Any) -> str:
    """Compact JSON (for messages)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
