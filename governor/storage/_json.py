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


#: Where a value sits: the field's name, or `(parent, key-or-index)`. Rendered as a path string
#: (`_path`) only when a value is rejected, so the hot path never builds strings.
_Where = str | tuple[Any, str | int]


def _path(where: _Where) -> str:
    if isinstance(where, str):
        return where
    parent, key = where
    if isinstance(key, int):
        return f"{_path(parent)}[{key}]"
    return _child(_path(parent), key)


def _copy(value: Any, where: _Where, depth: int) -> Any:
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise NotJSONSafe(
                f"{_path(where)} is {value!r}, which JSON cannot represent; store null or a "
                "string instead"
            )
        return value
    if depth >= _MAX_DEPTH:
        raise NotJSONSafe(
            f"{_path(where)} is nested more than {_MAX_DEPTH} levels deep (a reference cycle?); "
            "make the value JSON-safe before storing it"
        )
    if kind is dict or isinstance(value, dict):
        out: dict[str, Any] = {}
        inner = depth + 1
        for key, item in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise NotJSONSafe(
                        f"{_path(where)} has the key {key!r} of type {type(key).__name__}; JSON "
                        "object keys must be strings, convert the keys before storing the value"
                    )
                key = str(key)
            item_kind = type(item)
            if item is None or item_kind is str or item_kind is bool or item_kind is int:
                out[key] = item
            else:
                out[key] = _copy(item, (where, key), inner)
        return out
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        return [_copy(item, (where, i), depth + 1) for i, item in enumerate(value)]
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _copy(float(value), where, depth)
    raise NotJSONSafe(
        f"{_path(where)} holds a {kind.__module__}.{kind.__qualname__} object, which is not JSON; "
        "convert it to JSON (dict, list, str, int, float, bool, None) before storing it "
        "(the @govern decorator does this for arguments and results)"
    )


def copy_json(value: Any) -> Any:
    """A deep copy of a value `ensure_json` already accepted (no checks: a stored record's
    JSON fields, copied again for a caller)."""
    kind = type(value)
    if kind is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if kind is list:
        return [copy_json(v) for v in value]
    if value is None or kind is str or kind is int or kind is bool or kind is float:
        return value
    return _copy(value, "value", 0)  # not yet plain: copy it the checked way


def _child(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def canonical_json(value: Any) -> str:
    """Serialise plain JSON deterministically: sorted keys, no spaces, UTF-8 characters kept."""
    return _CANONICAL.encode(value)
