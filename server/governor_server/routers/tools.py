"""The tool registry and tool execution (wire protocol §4.2, §4.3, §4.14-§4.19).

Un-prefixed `/tools...` as the SDK calls them, plus the precheck's enrichment reads
`/api/v1/tools/{tool}/metadata` and `/api/v1/policies`. Everything is scoped to the key's
organisation: another organisation's tool is "not found". A 404's message says `not found`, which
the SDK turns into `ToolNotFoundError`.

`POST /tools/{name}/execute` decides exactly as a precheck of that tool does (the same function
as `POST /api/v1/precheck`, with the body the SDK's tool-call helper sends), and so is recorded as
a tool call; the server holds no tool implementations, so `result` is null.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from governor_server.auth import require_role
from governor_server.errors import ApiError
from governor_server.keys import Principal
from governor_server.routers import checks
from governor_server.schemas import ErrorResponse
from governor_server.state import ServerState, get_state
from governor_server.tools import (
    InvalidTool,
    ToolEntry,
    delete_tool,
    get_tool,
    list_tools,
    register_tools,
    update_tool,
)

router = APIRouter(
    tags=["tools"],
    responses={
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)

App = Annotated[Principal, Depends(require_role("app"))]
State = Annotated[ServerState, Depends(get_state)]


class RegisterTools(BaseModel):
    """`POST /tools`: `{"tools": [definition, ...]}`, or one definition object by itself."""

    model_config = ConfigDict(extra="allow")

    tools: list[Any] | None = None


class ExecuteTool(BaseModel):
    """`POST /tools/{name}/execute` (§4.19): the SDK sends `args`, `userId`, `corrId`."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    args: dict[str, Any] = Field(default_factory=dict)
    user_id: str | None = Field(default=None, alias="userId", min_length=1, max_length=255)
    corr_id: str | None = Field(default=None, alias="corrId", max_length=255)


def _invalid(error: InvalidTool) -> ApiError:
    return ApiError(400, "invalid_tool", f"invalid request: {error}")


def _not_found(name: str) -> ApiError:
    return ApiError(404, "tool_not_found", f"Tool not found: {name}")


def _found(state: ServerState, principal: Principal, name: str) -> ToolEntry:
    entry = get_tool(state.store.engine, principal.org_id, name)
    if entry is None:
        raise _not_found(name)
    return entry


def _metadata(entry: ToolEntry) -> dict[str, Any]:
    own = entry.definition.get("metadata")
    return {
        **(own if isinstance(own, dict) else {}),
        "createdAt": entry.created_at.isoformat().replace("+00:00", "Z"),
        "updatedAt": entry.updated_at.isoformat().replace("+00:00", "Z"),
    }


@router.post("/tools")
def register(body: RegisterTools, principal: App, state: State) -> dict[str, Any]:
    """Register (upsert by name) one or many tools; names must match `[A-Za-z0-9._:-]+`."""
    if body.tools is not None:
        definitions: list[Any] = body.tools
    elif body.model_extra and "name" in body.model_extra:
        definitions = [body.model_extra]
    else:
        raise ApiError(
            422,
            "validation_error",
            'invalid request: tools: send {"tools": [{"name": ..., ...}, ...]}',
        )
    try:
        names = register_tools(state.store.engine, principal.org_id, definitions)
    except InvalidTool as error:
        raise _invalid(error) from None
    return {"registered": names}


@router.get("/tools")
def list_all(principal: App, state: State) -> dict[str, Any]:
    """The organisation's tools, by name."""
    return {"tools": [e.definition for e in list_tools(state.store.engine, principal.org_id)]}


@router.get("/tools/{name}")
def get_one(name: str, principal: App, state: State) -> dict[str, Any]:
    """The stored definition (with `name`) plus a `metadata` object."""
    entry = _found(state, principal, name)
    return {**entry.definition, "name": entry.name, "metadata": _metadata(entry)}


@router.put("/tools/{name}")
def update(
    name: str,
    principal: App,
    state: State,
    definition: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    """Replace a registered tool's definition (404 when it is not registered)."""
    try:
        entry = update_tool(state.store.engine, principal.org_id, name, definition)
    except InvalidTool as error:
        raise _invalid(error) from None
    if entry is None:
        raise _not_found(name)
    return {"updated": entry.name, "tool": entry.definition}


@router.delete("/tools/{name}")
def unregister(name: str, principal: App, state: State) -> dict[str, Any]:
    """Unregister a tool (404 when it is not registered)."""
    if not delete_tool(state.store.engine, principal.org_id, name):
        raise _not_found(name)
    return {"deleted": name}


@router.post("/tools/{name}/execute")
def execute(
    name: str, body: ExecuteTool, request: Request, principal: App, state: State
) -> dict[str, Any]:
    """Decide on a call of a registered tool exactly as a precheck of it (recorded likewise)."""
    entry = _found(state, principal, name)
    scope = entry.definition.get("scope")
    decided = checks._check(
        state,
        principal,
        phase="pre",
        tool=name,
        scope=scope if isinstance(scope, str) else None,
        raw_text=f"Tool call: {name}",
        user_id=body.user_id,
        corr_id=body.corr_id,
        tags=["tool_call"],
        payload={"args": body.args},
        base_url=str(request.base_url),
    )
    return {
        "tool": name,
        "decision": decided["decision"],
        "reasons": decided["reasons"],
        "result": None,
        "executed": False,
        "requiresConfirmation": decided["requiresConfirmation"],
        "confirmationUrl": decided["confirmationUrl"],
        "metadata": decided["metadata"],
    }


@router.get("/api/v1/tools/{name}/metadata")
def tool_metadata(name: str, principal: App, state: State) -> dict[str, Any]:
    """Precheck enrichment (§4.3): `{"metadata": definition}`; 404 for unknown tools."""
    entry = _found(state, principal, name)
    return {"name": entry.name, "metadata": entry.definition}


@router.get("/api/v1/policies")
def policies(principal: App, state: State) -> dict[str, Any]:
    """Precheck enrichment (§4.2): a summary of the policy in force (informational only).

    The SDK echoes it back in `policy_config`, which the server never reads.
    """
    summary: dict[str, Any] = {
        "id": state.engine.revision,
        "version": "v1",
        "engine": getattr(state.engine, "name", type(state.engine).__name__),
        "revision": state.engine.revision,
    }
    bundle = getattr(state.engine, "bundle", None)
    data = getattr(bundle, "data", None)
    tools: Any = {}
    if isinstance(data, dict):
        config = data.get("governor", {}).get("config", {})
        tools = config.get("precheck", {}).get("tools", {}) if isinstance(config, dict) else {}
    if isinstance(tools, dict):
        summary["deny_tools"] = list(tools.get("deny", []))
        summary["allow_tools"] = list(tools.get("allow", []))
        summary["confirm_tools"] = list(tools.get("confirm", []))
        summary["tool_access"] = {"default": tools.get("default", "allow")}
    return {"policies": [summary]}
