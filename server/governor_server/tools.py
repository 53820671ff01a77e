"""The tool registry: each organisation's tool definitions, upserted and looked up by name.

A definition is free-form JSON (the SDK's seed shows `name`, `description`, `parameters`); it is
stored whole, with `name` set. Names are restricted to `[A-Za-z0-9._:-]+` (wire protocol §2.1):
the SDK interpolates them into URL paths unescaped. Every function is scoped to one organisation:
another organisation's tools can be neither read nor changed.

These functions take the store's SQLAlchemy engine (`SQLStorage.engine`); each is one short
transaction.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, insert, select, update
from sqlalchemy import exc as sa_exc

from governor_server.models import ToolRow

__all__ = [
    "MAX_DEFINITION_BYTES",
    "MAX_TOOLS_PER_REQUEST",
    "TOOL_NAME",
    "InvalidTool",
    "ToolEntry",
    "delete_tool",
    "get_tool",
    "list_tools",
    "register_tools",
    "update_tool",
    "validate_definition",
]

#: What a tool name may contain (and nothing else): URL-safe without escaping.
TOOL_NAME = re.compile(r"[A-Za-z0-9._:-]+")
MAX_NAME = 255
#: Largest definition accepted, as compact JSON.
MAX_DEFINITION_BYTES = 64 * 1024
MAX_TOOLS_PER_REQUEST = 1000

_TOOLS = cast(Table, ToolRow.__table__)


class InvalidTool(ValueError):
    """A definition that cannot be registered; `field` names where (e.g. `tools[1].name`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ToolEntry:
    """A registered tool: its definition (with `name`) and when it was registered and changed."""

    name: str
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def check_name(name: object, field: str) -> str:
    """`name` if it is a valid tool name; `InvalidTool` naming `field` otherwise."""
    if not isinstance(name, str) or not name:
        raise InvalidTool(field, "a tool needs a name: a non-empty string")
    if len(name) > MAX_NAME or TOOL_NAME.fullmatch(name) is None:
        raise InvalidTool(
            field,
            f"invalid tool name (up to {MAX_NAME} characters of letters, digits and . _ : -, "
            "e.g. payments.transfer)",
        )
    return name


def validate_definition(
    definition: object, field: str, *, name: str | None = None
) -> dict[str, Any]:
    """The definition to store (a copy, with `name`), or `InvalidTool` naming `field`.

    With `name` (the path of `PUT /tools/{name}`), a `name` in the definition must equal it.
    """
    if not isinstance(definition, Mapping):
        raise InvalidTool(field, "a tool definition must be a JSON object")
    stored = dict(definition)
    if name is not None:
        if "name" in stored and stored["name"] != name:
            raise InvalidTool(
                f"{field}.name" if field else "name",
                f"the definition's name differs from the tool in the path ({name})",
            )
        stored["name"] = name
    check_name(stored.get("name"), f"{field}.name" if field else "name")
    size = len(json.dumps(stored, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_DEFINITION_BYTES:
        raise InvalidTool(
            field or "body", f"the definition is {size} bytes; at most {MAX_DEFINITION_BYTES}"
        )
    return stored


def _entry(row: Any) -> ToolEntry:
    return ToolEntry(row.name, dict(row.definition), row.created_at, row.updated_at)


def register_tools(db: Engine, org_id: str, definitions: Sequence[object]) -> list[str]:
    """Upsert `definitions` (validated first, all or nothing) by name; returns their names.

    `InvalidTool` names the first bad field (`tools[i]...`); a name given twice is refused.
    """
    if not definitions:
        raise InvalidTool("tools", "register at least one tool")
    if len(definitions) > MAX_TOOLS_PER_REQUEST:
        raise InvalidTool("tools", f"at most {MAX_TOOLS_PER_REQUEST} tools per request")
    stored: dict[str, dict[str, Any]] = {}
    for index, definition in enumerate(definitions):
        checked = validate_definition(definition, f"tools[{index}]")
        if checked["name"] in stored:
            raise InvalidTool(f"tools[{index}].name", f"{checked['name']} is listed twice")
        stored[checked["name"]] = checked
    try:
        _upsert(db, org_id, stored)
    except sa_exc.IntegrityError:  # another request registered one of the names meanwhile
        _upsert(db, org_id, stored)
    return list(stored)


def _upsert(db: Engine, org_id: str, definitions: Mapping[str, dict[str, Any]]) -> None:
    now = _now()
    with db.begin() as conn:
        existing = set(
            conn.execute(
                select(_TOOLS.c.name).where(
                    _TOOLS.c.org_id == org_id, _TOOLS.c.name.in_(list(definitions))
                )
            ).scalars()
        )
        for name in existing:
            conn.execute(
                update(_TOOLS)
                .where(_TOOLS.c.org_id == org_id, _TOOLS.c.name == name)
                .values(definition=definitions[name], updated_at=now)
            )
        new = [
            {
                "id": uuid.uuid4().hex,
                "org_id": org_id,
                "name": name,
                "definition": definition,
                "created_at": now,
                "updated_at": now,
            }
            for name, definition in definitions.items()
            if name not in existing
        ]
        if new:
            conn.execute(insert(_TOOLS), new)


def list_tools(db: Engine, org_id: str) -> list[ToolEntry]:
    """The organisation's tools, by name."""
    stmt = select(_TOOLS).where(_TOOLS.c.org_id == org_id).order_by(_TOOLS.c.name)
    with db.connect() as conn:
        return [_entry(row) for row in conn.execute(stmt)]


def get_tool(db: Engine, org_id: str, name: str) -> ToolEntry | None:
    """The organisation's tool called `name`, or None."""
    stmt = select(_TOOLS).where(_TOOLS.c.org_id == org_id, _TOOLS.c.name == name)
    with db.connect() as conn:
        row = conn.execute(stmt).first()
    return _entry(row) if row is not None else None


def update_tool(db: Engine, org_id: str, name: str, definition: object) -> ToolEntry | None:
    """Replace the definition of the registered tool `name`; None when it is not registered.

    `InvalidTool` when the definition is not an object or names another tool.
    """
    stored = validate_definition(definition, "", name=name)
    with db.begin() as conn:
        result = conn.execute(
            update(_TOOLS)
            .where(_TOOLS.c.org_id == org_id, _TOOLS.c.name == name)
            .values(definition=stored, updated_at=_now())
        )
    if result.rowcount == 0:
        return None
    return get_tool(db, org_id, name)


def delete_tool(db: Engine, org_id: str, name: str) -> bool:
    """Unregister the organisation's tool `name`; False when it was not registered."""
    with db.begin() as conn:
        result = conn.execute(
            delete(_TOOLS).where(_TOOLS.c.org_id == org_id, _TOOLS.c.name == name)
        )
    return result.rowcount > 0
