"""Checking that values are plain JSON, and the canonical JSON the audit chain hashes."""

from __future__ import annotations

import json
import math
from typing import Any

from governor.errors import NotJSONSafe

_MAX_DEPTH = 100
#: The encoder of `canonical_json`, built once (json.dumps builds one per call with options).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def ensure_json(value: Any, field: str) -> Any:
    """Return a deep copy of `value` as plain JSON, or raise `NotJSONSafe` naming the bad field.

    Tuples become lists and str/int/float/dict subclasses (enums, OrderedDict) become their base
    type, so every backend stores and returns the same thing. Rejected, with the path of the value:
    objects of other types, dict keys that are not strings, NaN and infinities, and nesting deeper
    than 100 levels (usually a cycle).
    """
    return _copy(value, field, 0)


def _copy(value: Any, path: str, depth: int) -> Any:
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise NotJSONSafe(
                f"{path} is {value!r}, which JSON cannot represent; store null or a string instead"
            )
        return value
    if depth >= _MAX_DEPTH:
        raise NotJSONSafe(
            f"{path} is nested more than {_MAX_DEPTH} levels deep (a reference cycle?); "
            "make the value JSON-safe before storing it"
        )
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotJSONSafe(
                    f"{path} has the key {key!r} of type {type(key).__name__}; JSON object keys "
                    "must be strings, convert the keys before storing the value"
                )
            out[str(key)] = _copy(item, _child(path, key), depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_copy(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _copy(float(value), path, depth)
    raise NotJSONSafe(
        f"{path} holds a {kind.__module__}.{kind.__qualname__} object, which is not JSON; "
        "convert it to JSON (dict, list, str, int, float, bool, None) before storing it "
        "(the @govern decorator does this for arguments and results)"
    )


def _child(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def canonical_json(value: Any) -> str:
    """Serialise plain JSON deterministically: sorted keys, no spaces, UTF-8 characters kept."""
    return _CANONICAL.encode(value)
