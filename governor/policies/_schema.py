"""JSON Schemas both engines check alike: pydantic models and plain dict schemas, made portable.

`json.match_schema` is implemented differently by the two engines: regorus follows draft
2020-12 and ignores `format`; OPA (gojsonschema) follows draft 7 and asserts `format`. A schema
that uses keywords only one of them understands would make the same call allowed on one engine
and denied on the other. `portable_schema` rewrites a schema into the subset on which they agree
(checked by tests/policies/test_schema.py on both engines):

- `$ref` with sibling keywords: draft 7 ignores the siblings, so `{"$ref": r, ...}` becomes
  `{"allOf": [{"$ref": r}], ...}`. Local refs (`#/$defs/...`, `#/definitions/...`, `#`) are kept.
  A root that is only a `$ref` (pydantic's recursive models) is replaced by its definition.
- `format`: removed; the formats below become a `pattern` both engines check the same way
  (`date-time`, `date`, `time`, `email`, `uuid`, `ipv4`, `ipv6`, `hostname`, `uri`). The
  patterns check the shape (`2024-02-30` passes `date`); other formats are annotations.
- tuples (`prefixItems`, or `items` as a list with `additionalItems`): neither form works on
  both engines. They become `items: {"anyOf": [...]}` (each element must match one of the
  positions' schemas) with `maxItems` for a closed tuple: weaker than positional checking, the
  same on both engines. pydantic's `tuple[int, str]` is checked that way.
- `dependentRequired`, `dependentSchemas`: become draft 7's `dependencies`, which both check.
- draft 4's boolean `exclusiveMinimum`/`exclusiveMaximum`: become the numeric form.
- `$schema`, `$id` at the root, `$comment`, `discriminator`, `contentEncoding`,
  `contentMediaType` and `contentSchema` (annotations) are dropped.
- Refused with `ConfigurationError` (one engine would ignore them): `unevaluatedProperties`,
  `unevaluatedItems`, `minContains`, `maxContains`, `$dynamicRef`, `$dynamicAnchor`,
  `$recursiveRef`, `$recursiveAnchor`, `$anchor`, a nested `$id`, and refs that are not local.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from governor.errors import ConfigurationError

FORMAT_PATTERNS: dict[str, str] = {
    "date-time": (
        r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]"
        r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
        r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    ),
    "date": r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
    "time": (
        r"^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
        r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$"
    ),
    "email": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "ipv4": (
        r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
        r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"
    ),
    "ipv6": r"^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$",
    "hostname": (
        r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
    ),
    "uri": r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$",
}

_DROPPED = {
    "$comment",
    "discriminator",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
}
_REFUSED = {
    "unevaluatedProperties",
    "unevaluatedItems",
    "minContains",
    "maxContains",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
    "$anchor",
}
_ANNOTATIONS = {
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
}
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_VALUES = ("additionalProperties", "propertyNames", "contains", "not", "if", "then", "else")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def schema_from(owner: str, param: str, value: Any, *, mode: str = "validation") -> dict[str, Any]:
    """A portable JSON Schema from a pydantic model class, a pydantic `TypeAdapter`, or a dict.

    `mode` is pydantic's: "validation" for arguments, "serialization" for results.
    """
    raw: Any
    if isinstance(value, Mapping):
        raw = value
    elif isinstance(value, type) and hasattr(value, "model_json_schema"):
        raw = value.model_json_schema(mode=mode)
    elif hasattr(value, "json_schema") and callable(value.json_schema):  # a TypeAdapter
        raw = value.json_schema(mode=mode)
    else:
        raise ConfigurationError(
            f"{owner}: {param} must be a pydantic model class, a pydantic TypeAdapter or a JSON "
            f"Schema dict, got {value!r} ({type(value).__name__})"
        )
    try:
        text = json.dumps(raw, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{owner}: {param} is not a JSON document: {exc}") from None
    return portable_schema(json.loads(text), where=f"{owner}: {param}")


def portable_schema(schema: Any, *, where: str = "schema") -> dict[str, Any]:
    """The schema rewritten so that regorus and OPA check it alike (see the module docstring)."""
    if not isinstance(schema, Mapping):
        raise ConfigurationError(
            f"{where} must be a JSON Schema object, got {type(schema).__name__}"
        )
    root = copy.deepcopy(dict(schema))
    root.pop("$schema", None)
    root.pop("$id", None)
    root = _inline_root_ref(root, where)
    out = _node(root, where, "#")
    assert isinstance(out, dict)
    return out


def allow_extra_names(schema: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Let `names` through a root that forbids unknown properties.

    The executor adds `"args"` and `"kwargs"` to the arguments document (the 0.2.0 shape); a
    model with `extra="forbid"` (`additionalProperties: false`) must not fail on them.
    """
    extra = schema.get("additionalProperties")
    if extra is None or extra is True:
        return schema
    props = dict(schema.get("properties") or {})
    for name in names:
        props.setdefault(name, {})
    return {**schema, "properties": props}


def _inline_root_ref(root: dict[str, Any], where: str) -> dict[str, Any]:
    ref = root.get("$ref")
    if not isinstance(ref, str) or set(root) - {"$ref", "$defs", "definitions"} - _ANNOTATIONS:
        return root
    target = _lookup(root, ref, where)
    if not isinstance(target, dict):
        return root
    merged = {k: v for k, v in root.items() if k != "$ref"}
    merged.update(target)
    return merged


def _lookup(root: Mapping[str, Any], ref: str, where: str) -> Any:
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        raise ConfigurationError(
            f"{where}: $ref {ref!r} is not local; only refs into the schema itself "
            "(#/$defs/..., #/definitions/...) are supported"
        )
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigurationError(f"{where}: $ref {ref!r} points at nothing")
        node = node[part]
    return node


def _node(node: Any, where: str, path: str) -> Any:
    if isinstance(node, bool):
        return node
    if not isinstance(node, Mapping):
        raise ConfigurationError(
            f"{where}: {path} must be a schema (an object or a boolean), got {node!r}"
        )
    node = dict(node)
    refused = sorted(set(node) & _REFUSED)
    if refused:
        raise ConfigurationError(
            f"{where}: {path} uses {', '.join(refused)}, which the two policy engines do not "
            "check alike; express the rule without it"
        )
    if "$id" in node and path != "#":
        raise ConfigurationError(f"{where}: {path} has a nested $id, which is not supported")
    for key in _DROPPED:
        node.pop(key, None)
    extra_all: list[Any] = []

    ref = node.get("$ref")
    if ref is not None:
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            raise ConfigurationError(
                f"{where}: {path}.$ref {ref!r} is not local; only refs into the schema itself "
                "(#/$defs/..., #/definitions/...) are supported"
            )
        siblings = set(node) - {"$ref"} - _ANNOTATIONS
        if siblings:
            del node["$ref"]
            extra_all.append({"$ref": ref})

    fmt = node.pop("format", None)
    if isinstance(fmt, str) and fmt in FORMAT_PATTERNS:
        extra_all.append({"pattern": FORMAT_PATTERNS[fmt]})

    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(node.get(key), bool):
            bound_key = "minimum" if key == "exclusiveMinimum" else "maximum"
            if node.pop(key) and bound_key in node:
                node[key] = node.pop(bound_key)

    _tuples(node, where, path)
    _dependencies(node, where, path)

    for key in _SCHEMA_MAPS:
        if key in node:
            value = node[key]
            if not isinstance(value, Mapping):
                raise ConfigurationError(f"{where}: {path}.{key} must be an object")
            node[key] = {k: _node(v, where, f"{path}.{key}.{k}") for k, v in value.items()}
    for key in _SCHEMA_VALUES:
        if key in node:
            node[key] = _node(node[key], where, f"{path}.{key}")
    if "items" in node:
        node["items"] = _node(node["items"], where, f"{path}.items")
    if "dependencies" in node:
        deps = node["dependencies"]
        node["dependencies"] = {
            k: (list(v) if isinstance(v, list) else _node(v, where, f"{path}.dependencies.{k}"))
            for k, v in deps.items()
        }
    for key in _SCHEMA_LISTS:
        if key in node:
            value = node[key]
            if not isinstance(value, list):
                raise ConfigurationError(f"{where}: {path}.{key} must be a list of schemas")
            node[key] = [_node(v, where, f"{path}.{key}[{i}]") for i, v in enumerate(value)]
    if extra_all:
        node["allOf"] = list(node.get("allOf", [])) + extra_all
    return node


def _tuples(node: dict[str, Any], where: str, path: str) -> None:
    """prefixItems / items-as-list -> items: {anyOf: [...]} (+ maxItems for a closed tuple)."""
    if "prefixItems" in node:
        positions = node.pop("prefixItems")
        rest = node.pop("items", None)
    elif isinstance(node.get("items"), list):
        positions = node.pop("items")
        rest = node.pop("additionalItems", None)
    else:
        node.pop("additionalItems", None)
        return
    if not isinstance(positions, list):
        raise ConfigurationError(f"{where}: {path}.prefixItems must be a list of schemas")
    if rest is False:
        limit = len(positions)
        node["maxItems"] = min(limit, node.get("maxItems", limit))
        rest = None
    closed = isinstance(node.get("maxItems"), int) and node["maxItems"] <= len(positions)
    if rest is None and not closed:
        return  # the items after the tuple are free, so no element can be refused
    options = list(positions) + ([] if rest is None else [rest])
    if options:
        node["items"] = {"anyOf": options}


def _dependencies(node: dict[str, Any], where: str, path: str) -> None:
    """dependentRequired / dependentSchemas -> dependencies (draft 7, checked by both)."""
    merged: dict[str, Any] = {}
    for key in ("dependentRequired", "dependentSchemas", "dependencies"):
        value = node.pop(key, None)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"{where}: {path}.{key} must be an object")
        for prop, dep in value.items():
            if prop in merged:
                merged[prop] = {"allOf": [_as_schema(merged[prop]), _as_schema(dep)]}
            else:
                merged[prop] = dep
    if merged:
        node["dependencies"] = merged


def _as_schema(dep: Any) -> Any:
    return {"required": list(dep)} if isinstance(dep, list) else dep
