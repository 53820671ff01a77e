"""JSON-safe copies of arbitrary values, a restorable encoding of arguments, and masking.

Three functions carry everything the runtime stores or hands to the engine:

- `to_json(value)`: a **readable**, plain-JSON copy, for the engine's input (`input.args`,
  `input.output`), audit records, events and execution records. It never raises: data-like values
  keep their content (datetimes and dates as ISO strings, `Decimal` as a number, UUIDs and paths
  as strings, sets as sorted lists, dataclasses and pydantic models as objects of their fields),
  and anything else, such as a `self` or a client object, becomes
  `{"__type__": "module.Class", "repr": "<its repr, cut at 200 characters>"}`.
- `encode(value)` / `decode(document)`: a **restorable** encoding, for snapshots, so that a replay
  or a resumed approval calls the function with a `Decimal` and not a string. Plain JSON stays as
  it is; other known types are wrapped as `{"__type__": <kind>, ...}`. Objects that cannot be
  stored (a client, a lock) are kept as readable `{"__type__", "repr"}` and `decode` refuses them
  with `NotRestorable`, naming the argument.
- `mask(value, fields)`: the **one** masking function. Every record, snapshot, event and callback
  payload goes through it before it leaves the executor (see `governor.executor`).

Masking rules: a field without a dot (`"password"`) masks the value of every object key with that
name, at any depth, case-insensitively; a dotted path (`"args.card.number"`, `"output"`) masks the
value at that path from the document's root, where a number selects a list element and typed
wrappers of `encode` are looked through. The value is replaced with `MASK`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import math
import sys
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from governor.errors import GovernanceError

__all__ = [
    "MASK",
    "NotRestorable",
    "decode",
    "encode",
    "mask",
    "safe_repr",
    "to_json",
    "type_name",
]

#: What a masked value is replaced with (governor 0.2.0's marker, kept).
MASK = "***REDACTED***"
#: Longest repr kept for an object that is not data.
REPR_LIMIT = 200
#: Deeper structures are cut here (a reference cycle, usually) and shown by their repr.
MAX_DEPTH = 32

_TYPE = "__type__"


class NotRestorable(GovernanceError, ValueError):
    """A stored value cannot be turned back into the object it was (a client, a lock, a `self`).

    Raised by `decode`; the message names the path of the value and its type, so the caller knows
    which argument to pass again.
    """


def type_name(value: Any) -> str:
    """`module.Qualname` of the value's type (just `Qualname` for builtins)."""
    kind = type(value)
    module = getattr(kind, "__module__", "") or ""
    name = getattr(kind, "__qualname__", kind.__name__)
    return name if module == "builtins" else f"{module}.{name}"


def safe_repr(value: Any, limit: int = REPR_LIMIT) -> str:
    """`repr(value)` cut to `limit` characters; never raises (a failing repr is described)."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break the governed call
        text = f"<{type_name(value)} object (repr failed: {type(exc).__name__})>"
    if not isinstance(text, str):
        text = f"<{type_name(value)} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _opaque(value: Any) -> dict[str, Any]:
    return {_TYPE: type_name(value), "repr": safe_repr(value)}


# -- readable JSON --------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """Return a plain-JSON, readable copy of `value`; never raises (see the module docstring)."""
    try:
        return _plain(value, 0)
    except Exception:  # a property or __iter__ that raises: keep the call alive
        return _opaque(value)


def _number(value: Decimal) -> Any:
    if not value.is_finite():
        return {_TYPE: "decimal.Decimal", "repr": str(value)}
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _float(value: float) -> Any:
    return value if math.isfinite(value) else {_TYPE: "float", "repr": repr(value)}


def _sorted_items(items: list[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=repr)


def _plain(value: Any, depth: int) -> Any:
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if kind is float:
        return _float(value)
    if depth >= MAX_DEPTH:
        return _opaque(value)
    if kind is dict or isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key if type(key) is str else _key(key)] = _plain(item, depth + 1)
        return out
    if kind is list or kind is tuple:
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, Enum):
        return _plain(value.value, depth + 1)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, set | frozenset):
        return _sorted_items([_plain(item, depth + 1) for item in value])
    if isinstance(value, list | tuple):
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, uuid.UUID | PurePath):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {_TYPE: "bytes", "repr": safe_repr(bytes(value))}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        }
    dump = _model_dump(value)
    if dump is not None:
        return _plain(dump, depth + 1)
    return _opaque(value)


def _key(key: Any) -> str:
    if isinstance(key, Enum):
        key = key.value
    if isinstance(key, str):
        return str(key)
    if key is None or isinstance(key, bool | int | float | Decimal | uuid.UUID | PurePath):
        return str(key)
    if isinstance(key, dt.date | dt.time):
        return key.isoformat()
    return safe_repr(key)


def _model_dump(value: Any) -> Any:
    """A pydantic (v2) model's fields as JSON-mode data, or None for anything else."""
    dump = getattr(type(value), "model_dump", None)
    if dump is None or isinstance(value, type):
        return None
    try:
        return value.model_dump(mode="json")
    except Exception:
        return None


# -- restorable encoding ---------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """Return a JSON document from which `decode` rebuilds `value` (see the module docstring).

    Never raises: what cannot be stored is kept in readable form and refused by `decode`.
    """
    try:
        return _encode(value, 0)
    except Exception:
        return _opaque(value)


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _encode(value: Any, depth: int) -> Any:
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else {_TYPE: "float", "value": repr(value)}
    if depth >= MAX_DEPTH:
        return _opaque(value)
    if kind is list:
        return [_encode(item, depth + 1) for item in value]
    if kind is dict:
        if _TYPE not in value and all(type(k) is str for k in value):
            return {k: _encode(v, depth + 1) for k, v in value.items()}
        return {
            _TYPE: "dict",
            "items": [[_encode(k, depth + 1), _encode(v, depth + 1)] for k, v in value.items()],
        }
    if kind is tuple:
        return {_TYPE: "tuple", "items": [_encode(item, depth + 1) for item in value]}
    if kind is set or kind is frozenset:
        items = _sorted_items([_encode(item, depth + 1) for item in value])
        return {_TYPE: kind.__name__, "items": items}
    if isinstance(value, Enum):
        return {_TYPE: "enum", "class": _class_path(kind), "value": _encode(value.value, depth + 1)}
    if kind is dt.datetime:
        return {_TYPE: "datetime", "value": value.isoformat()}
    if kind is dt.date:
        return {_TYPE: "date", "value": value.isoformat()}
    if kind is dt.time:
        return {_TYPE: "time", "value": value.isoformat()}
    if kind is dt.timedelta:
        return {_TYPE: "timedelta", "value": [value.days, value.seconds, value.microseconds]}
    if kind is Decimal:
        return {_TYPE: "decimal", "value": str(value)}
    if kind is uuid.UUID:
        return {_TYPE: "uuid", "value": str(value)}
    if isinstance(value, PurePath):
        return {_TYPE: "path", "value": str(value)}
    if kind is bytes or kind is bytearray:
        return {_TYPE: kind.__name__, "base64": base64.b64encode(value).decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            f.name: _encode(getattr(value, f.name), depth + 1)
            for f in dataclasses.fields(value)
            if f.init
        }
        return {_TYPE: "dataclass", "class": _class_path(kind), "fields": fields}
    dump = _model_dump(value)
    if dump is not None:
        return {_TYPE: "model", "class": _class_path(kind), "fields": dump}
    if isinstance(value, Mapping):
        return _encode(dict(value), depth)
    # subclasses of the builtins (str enums were handled above): stored as their base type
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _encode(float(value), depth)
    if isinstance(value, list):
        return _encode(list(value), depth)
    if isinstance(value, tuple):
        return _encode(tuple(value), depth)
    return _opaque(value)


def decode(document: Any, *, path: str = "value") -> Any:
    """Rebuild the value `encode` stored. Raises `NotRestorable` naming `path` for what it cannot.

    Enums, dataclasses and pydantic models are rebuilt only when their module is already imported
    (stored data never makes governor import a module); otherwise they are `NotRestorable`.
    """
    kind = type(document)
    if document is None or kind is str or kind is bool or kind is int or kind is float:
        return document
    if kind is list:
        return [decode(item, path=f"{path}[{i}]") for i, item in enumerate(document)]
    if kind is not dict:
        raise NotRestorable(f"{path}: {type_name(document)} is not an encoded value")
    if _TYPE not in document:
        return {k: decode(v, path=f"{path}.{k}") for k, v in document.items()}
    return _decode_typed(document, path)


def _decode_typed(document: dict[str, Any], path: str) -> Any:
    tag = document[_TYPE]
    try:
        if tag == "dict":
            return {
                decode(k, path=path): decode(v, path=f"{path}[{i}]")
                for i, (k, v) in enumerate(document["items"])
            }
        if tag in ("tuple", "set", "frozenset"):
            items = [decode(x, path=f"{path}[{i}]") for i, x in enumerate(document["items"])]
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        if tag == "float":
            return float(document["value"])
        if tag == "datetime":
            return dt.datetime.fromisoformat(document["value"])
        if tag == "date":
            return dt.date.fromisoformat(document["value"])
        if tag == "time":
            return dt.time.fromisoformat(document["value"])
        if tag == "timedelta":
            days, seconds, micro = document["value"]
            return dt.timedelta(days=days, seconds=seconds, microseconds=micro)
        if tag == "decimal":
            return Decimal(document["value"])
        if tag == "uuid":
            return uuid.UUID(document["value"])
        if tag == "path":
            from pathlib import Path

            return Path(document["value"])
        if tag in ("bytes", "bytearray"):
            raw = base64.b64decode(document["base64"])
            return raw if tag == "bytes" else bytearray(raw)
        if tag in ("enum", "dataclass", "model"):
            return _decode_class(document, tag, path)
    except NotRestorable:
        raise
    except Exception as exc:
        raise NotRestorable(f"{path}: the stored {tag} is malformed ({exc})") from None
    shown = document.get("repr", "")
    raise NotRestorable(
        f"{path}: a {tag} object ({shown}) was stored only as its description and cannot be "
        "rebuilt; pass this argument again"
    )


def _decode_class(document: dict[str, Any], tag: str, path: str) -> Any:
    cls = _loaded_class(str(document["class"]))
    if cls is None:
        raise NotRestorable(
            f"{path}: {document['class']} is not importable in this process (its module is not "
            "imported yet); import it before replaying or resuming"
        )
    if tag == "enum":
        return cls(decode(document["value"], path=path))
    fields = document["fields"]
    if tag == "dataclass":
        return cls(**{k: decode(v, path=f"{path}.{k}") for k, v in fields.items()})
    return cls.model_validate(fields)


def _loaded_class(dotted: str) -> Any:
    """The class `module.Qual.Name` if its module is already in `sys.modules`, else None."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        target: Any = module
        for attr in parts[cut:]:
            target = getattr(target, attr, None)
            if target is None:
                return None
        return target if isinstance(target, type) else None
    return None


# -- masking ---------------------------------------------------------------------------------------


def mask(value: Any, fields: Iterable[str]) -> Any:
    """Return a copy of the JSON document `value` with every sensitive field replaced by `MASK`.

    `fields` holds names (masked at any depth, case-insensitively) and dotted paths (from the
    root). With no fields the value is returned as it is, not copied.
    """
    names: set[str] = set()
    paths: list[list[str]] = []
    for field in fields:
        if not isinstance(field, str) or not field:
            continue
        if "." in field:
            paths.append(field.split("."))
        else:
            names.add(field.lower())
    if not names and not paths:
        return value
    masked = _mask_names(value, names, 0) if names else _copy(value, 0)
    for parts in paths:
        masked = _mask_path(masked, parts)
    return masked


def _copy(value: Any, depth: int) -> Any:
    if depth >= MAX_DEPTH:
        return value
    if type(value) is dict:
        return {k: _copy(v, depth + 1) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v, depth + 1) for v in value]
    return value


def _mask_names(value: Any, names: set[str], depth: int) -> Any:
    if depth >= MAX_DEPTH:
        return value
    if type(value) is dict:
        return {
            k: (
                MASK
                if k != _TYPE and isinstance(k, str) and k.lower() in names
                else _mask_names(v, names, depth + 1)
            )
            for k, v in value.items()
        }
    if type(value) is list:
        return [_mask_names(v, names, depth + 1) for v in value]
    return value


def _payload(node: dict[str, Any]) -> Any:
    """The contents of an `encode` wrapper, looked through by paths (a dataclass's fields...)."""
    for key in ("fields", "items"):
        if key in node:
            return node[key]
    return None


def _mask_path(node: Any, parts: list[str]) -> Any:
    """Mask the value at `parts` inside `node` (already a private copy, changed in place)."""
    if not parts:
        return MASK
    head, rest = parts[0], parts[1:]
    container = node
    if type(node) is dict and _TYPE in node:
        inner = _payload(node)
        if inner is None:
            return node
        container = inner
    if type(container) is dict and head in container:
        container[head] = _mask_path(container[head], rest)
    elif type(container) is list and head.isdigit() and int(head) < len(container):
        container[int(head)] = _mask_path(container[int(head)], rest)
    return node
