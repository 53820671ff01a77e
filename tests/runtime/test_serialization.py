"""`governor.serialization`: readable JSON that never crashes, a restorable encoding, masking."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import threading
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from governor.serialization import MASK, NotRestorable, decode, encode, mask, to_json


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Order:
    id: int
    amount: Decimal
    placed: dt.date


class Customer(BaseModel):
    name: str
    email: str


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class Client:
    """Stands for an HTTP client or any object that is not data."""


def test_to_json_gives_readable_plain_json_for_data_like_values() -> None:
    value = {
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "day": dt.date(2026, 1, 2),
        "amount": Decimal("10.50"),
        "whole": Decimal("7"),
        "id": uuid.UUID(int=1),
        "path": Path("/tmp/x"),
        "tags": {"b", "a"},
        "pair": (1, 2),
        "colour": Colour.RED,
        "order": Order(1, Decimal("2.5"), dt.date(2026, 1, 1)),
        "customer": Customer(name="Ann", email="ann@example.com"),
        3: "int key",
    }
    out = to_json(value)
    json.dumps(out)  # plain JSON
    assert out["when"] == "2026-01-02T03:04:05+00:00"
    assert out["day"] == "2026-01-02"
    assert out["amount"] == 10.5 and out["whole"] == 7
    assert out["id"] == str(uuid.UUID(int=1)) and out["path"] == "/tmp/x"
    assert out["tags"] == ["a", "b"] and out["pair"] == [1, 2] and out["colour"] == "red"
    assert out["order"] == {"id": 1, "amount": 2.5, "placed": "2026-01-01"}
    assert out["customer"] == {"name": "Ann", "email": "ann@example.com"}
    assert out["3"] == "int key"


def test_to_json_describes_objects_that_are_not_data_and_never_raises() -> None:
    lock = threading.Lock()
    out = to_json({"client": Client(), "lock": lock, "broken": BrokenRepr(), "raw": b"\x00ab"})
    json.dumps(out)
    assert out["client"]["__type__"].endswith("test_serialization.Client")
    assert out["client"]["repr"].startswith("<tests.runtime.test_serialization.Client object")
    assert out["broken"]["repr"].startswith("<tests.runtime.test_serialization.BrokenRepr object")
    assert out["raw"] == {"__type__": "bytes", "repr": "b'\\x00ab'"}
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    json.dumps(to_json(cyclic))  # cut at the depth limit, not a RecursionError
    assert to_json(float("nan")) == {"__type__": "float", "repr": "nan"}


def test_encode_then_decode_gives_back_the_same_values() -> None:
    value = {
        "amount": Decimal("10.50"),
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "day": dt.date(2026, 1, 2),
        "at": dt.time(9, 30),
        "wait": dt.timedelta(days=1, seconds=3),
        "id": uuid.UUID(int=5),
        "path": Path("/srv/data"),
        "raw": b"\x00\xff",
        "buffer": bytearray(b"ab"),
        "pair": (1, "a"),
        "set": {1, 2},
        "frozen": frozenset({"x"}),
        "colour": Colour.RED,
        "order": Order(1, Decimal("2.50"), dt.date(2026, 1, 1)),
        "customer": Customer(name="Ann", email="a@x"),
        "int_keys": {1: "one"},
        "tricky": {"__type__": "not a wrapper"},
        "nan": float("inf"),
    }
    document = encode(value)
    assert json.loads(json.dumps(document)) == document
    assert decode(document) == value


def test_decode_refuses_what_was_stored_only_as_a_description() -> None:
    document = encode({"client": Client()})
    with pytest.raises(NotRestorable, match=r"value\.client: a .*Client object"):
        decode(document)


def test_mask_replaces_sensitive_names_at_any_depth_case_insensitively() -> None:
    document = {
        "args": {"user": {"Password": "hunter2", "name": "ann"}, "items": [{"ssn": "1"}]},
        "output": {"token": "t"},
    }
    masked = mask(document, ["password", "SSN", "token"])
    assert masked == {
        "args": {"user": {"Password": MASK, "name": "ann"}, "items": [{"ssn": MASK}]},
        "output": {"token": MASK},
    }
    assert document["args"]["user"]["Password"] == "hunter2"  # a copy, not in place


def test_mask_follows_dotted_paths_list_indexes_and_encoded_wrappers() -> None:
    encoded = encode({"card": Order(1, Decimal("1"), dt.date(2026, 1, 1)), "rows": ["a", "b"]})
    masked = mask({"args": encoded}, ["args.card.amount", "args.rows.1", "args.missing.x"])
    assert masked["args"]["card"]["fields"]["amount"] == MASK
    assert masked["args"]["rows"] == ["a", MASK]
    assert mask({"args": {"a": 1}, "output": 2}, ["output", "args"]) == {
        "args": MASK,
        "output": MASK,
    }


def test_mask_without_fields_returns_the_value_itself() -> None:
    value = {"a": 1}
    assert mask(value, []) is value
