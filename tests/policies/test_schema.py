"""governor/policies/_schema.py: schemas (pydantic or dict) that both engines check alike."""

from __future__ import annotations

import datetime
import uuid
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from governor.engine.base import Engine
from governor.errors import ConfigurationError
from governor.policies._schema import portable_schema, schema_from
from tests.policies._support import minimal_input


class Address(BaseModel):
    city: str
    zip: str = Field(pattern=r"^[0-9]{5}$")


class Customer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    age: int = Field(ge=0)
    kind: Literal["person", "company"] = "person"
    address: Address | None = None
    others: list[Address] = []
    pair: tuple[int, str] | None = None
    joined: datetime.date | None = None
    ref: uuid.UUID | None = None
    email: str | None = Field(default=None, json_schema_extra={"format": "email"})


class Node(BaseModel):
    value: int
    children: list[Node] = []


def verdict(engine: Engine, schema: dict[str, Any], args: Any) -> bool:
    entry = {"type": "validation", "name": "v", "params": {"input_schema": schema}}
    document = engine.evaluate("governor.decision", minimal_input(entry, args=args))
    assert document["decision"] in ("allow", "deny"), document
    return bool(document["decision"] == "allow")


GOOD = {"name": "Ann", "age": 30}
CUSTOMER_CASES = [
    (GOOD, True),
    ({"name": "", "age": 30}, False),
    ({"name": "Ann", "age": -1}, False),
    ({"name": "Ann"}, False),
    ({**GOOD, "kind": "robot"}, False),
    ({**GOOD, "unknown": 1}, False),
    ({**GOOD, "address": {"city": "Oslo", "zip": "12345"}}, True),
    ({**GOOD, "address": {"city": "Oslo", "zip": "123"}}, False),
    ({**GOOD, "others": [{"city": "A", "zip": "11111"}, {"city": "B"}]}, False),
    ({**GOOD, "pair": [1, "a"]}, True),
    ({**GOOD, "pair": [1, "a", 2]}, False),
    ({**GOOD, "pair": [None, "a"]}, False),
    ({**GOOD, "joined": "2024-02-01"}, True),
    ({**GOOD, "joined": "2024-13-01"}, False),
    ({**GOOD, "ref": "6f1c2a1e-7c1b-4f6e-9a55-0d3f3b0b6e1a"}, True),
    ({**GOOD, "ref": "not-a-uuid"}, False),
    ({**GOOD, "email": "ann@example.com"}, True),
    ({**GOOD, "email": "nope"}, False),
    ({**GOOD, "args": [], "kwargs": {"name": "Ann"}}, True),
]


@pytest.mark.parametrize(("args", "valid"), CUSTOMER_CASES)
def test_a_pydantic_model_is_checked_alike_by_both_engines(
    regorus: Engine, opa: Engine, args: dict[str, Any], valid: bool
) -> None:
    schema = schema_from("T", "input_schema", Customer)
    from governor.policies._schema import allow_extra_names

    schema = allow_extra_names(schema, ("args", "kwargs"))
    assert verdict(regorus, schema, args) is valid
    assert verdict(opa, schema, args) is valid


@pytest.mark.parametrize(
    ("args", "valid"),
    [
        ({"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}, True),
        ({"value": 1, "children": [{"value": 2, "children": [{"value": "x"}]}]}, False),
    ],
)
def test_recursive_models_keep_their_refs_on_both_engines(
    regorus: Engine, opa: Engine, args: dict[str, Any], valid: bool
) -> None:
    schema = schema_from("T", "input_schema", Node)
    assert "$defs" in schema and "$ref" not in schema  # the root ref is inlined
    assert verdict(regorus, schema, args) is valid
    assert verdict(opa, schema, args) is valid


DICT_CASES: list[tuple[dict[str, Any], Any, bool]] = [
    # a $ref with siblings: draft 7 ignores the siblings, so they move under allOf
    (
        {
            "properties": {"x": {"$ref": "#/$defs/S", "maxLength": 2}},
            "$defs": {"S": {"type": "string"}},
        },
        {"x": "abc"},
        False,
    ),
    ({"properties": {"x": {"format": "ipv4"}}}, {"x": "999.1.1.1"}, False),
    ({"properties": {"x": {"format": "ipv4"}}}, {"x": "10.0.0.1"}, True),
    ({"properties": {"x": {"format": "date-time"}}}, {"x": "2024-01-02T03:04:05Z"}, True),
    ({"properties": {"x": {"format": "date-time"}}}, {"x": "yesterday"}, False),
    ({"properties": {"x": {"format": "made-up"}}}, {"x": "anything"}, True),
    ({"properties": {"x": {"dependentRequired": {"a": ["b"]}}}}, {"x": {"a": 1}}, False),
    ({"properties": {"x": {"dependentRequired": {"a": ["b"]}}}}, {"x": {"a": 1, "b": 2}}, True),
    (
        {"properties": {"x": {"dependentSchemas": {"a": {"required": ["c"]}}}}},
        {"x": {"a": 1}},
        False,
    ),
    (
        {"properties": {"x": {"items": [{"type": "integer"}], "additionalItems": False}}},
        {"x": [1, 2]},
        False,
    ),
    (
        {"properties": {"x": {"items": [{"type": "integer"}], "additionalItems": False}}},
        {"x": [1]},
        True,
    ),
    (
        {"properties": {"x": {"prefixItems": [{"type": "integer"}], "items": {"type": "string"}}}},
        {"x": [1, None]},
        False,
    ),
    ({"properties": {"x": {"minimum": 0, "exclusiveMinimum": True}}}, {"x": 0}, False),
    ({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}, {"x": 1}, True),
]


@pytest.mark.parametrize(("schema", "args", "valid"), DICT_CASES)
def test_dict_schemas_are_made_portable(
    regorus: Engine, opa: Engine, schema: dict[str, Any], args: Any, valid: bool
) -> None:
    portable = portable_schema(schema)
    assert verdict(regorus, portable, args) is valid
    assert verdict(opa, portable, args) is valid


@pytest.mark.parametrize(
    "keyword",
    ["unevaluatedProperties", "unevaluatedItems", "minContains", "$dynamicRef", "$anchor"],
)
def test_keywords_only_one_engine_checks_are_refused(keyword: str) -> None:
    with pytest.raises(ConfigurationError, match=keyword.replace("$", r"\$")):
        portable_schema({"properties": {"x": {keyword: False}}}, where="P: input_schema")


def test_remote_refs_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not local"):
        portable_schema({"$ref": "https://example.com/schema.json", "type": "object"})


def test_type_adapters_and_bad_values() -> None:
    assert schema_from("T", "output_schema", TypeAdapter(list[int]))["type"] == "array"
    with pytest.raises(ConfigurationError, match="T: input_schema must be a pydantic model"):
        schema_from("T", "input_schema", 42)
    with pytest.raises(ConfigurationError, match="not a JSON document"):
        schema_from("T", "input_schema", {"x": {1, 2}})


def test_the_callers_schema_is_not_modified() -> None:
    schema = {"properties": {"x": {"format": "uuid"}}}
    portable_schema(schema)
    assert schema == {"properties": {"x": {"format": "uuid"}}}
