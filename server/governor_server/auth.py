"""Authentication by the `X-Governs-Key` header, and authorisation by the key's role.

401 for a missing, unknown or revoked key; 403 for a valid key whose role may not use the
endpoint (wire protocol §2.5). The organisation always comes from the key, never the request.

The dependencies are async: the key is looked up where the app's precheck work runs
(`governor_server.workers`: inline, or on its worker threads), the role check needs no thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header

from governor_server.errors import ApiError
from governor_server.keys import Principal, authenticate
from governor_server.observability import annotate
from governor_server.state import ServerState, get_state

__all__ = ["KEY_HEADER", "current_principal", "require_role"]

KEY_HEADER = "X-Governs-Key"


async def current_principal(
    state: Annotated[ServerState, Depends(get_state)],
    x_governs_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """Dependency: the caller's organisation and role, from a valid, unrevoked key."""
    return await _principal(state, x_governs_key)


async def _principal(state: ServerState, key: str | None) -> Principal:
    if not key:
        raise ApiError(
            401,
            "missing_api_key",
            f"missing API key: send it in the {KEY_HEADER} header "
            "(create one with `governor keys create --org NAME --role app`)",
        )
    principal = await state.workers.run(authenticate, state.store.engine, key.strip())
    if principal is None:
        raise ApiError(
            401,
            "invalid_api_key",
            "invalid API key: it is unknown or was revoked; `governor keys list` shows the "
            "valid keys by prefix, `governor keys create` makes a new one",
        )
    annotate(org_id=principal.org_id)
    return principal


def require_role(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: the principal, if its role is one of `roles` (admin always is).

    It authenticates as `current_principal` does, itself: every request of the app's surfaces
    solves it, and each level of dependencies costs FastAPI a few microseconds.
    """
    allowed = frozenset(roles) | {"admin"}

    async def dependency(
        state: Annotated[ServerState, Depends(get_state)],
        x_governs_key: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Principal:
        principal = await _principal(state, x_governs_key)
        if principal.role not in allowed:
            raise ApiError(
                403,
                "forbidden",
                f"forbidden: this endpoint needs a key with role {' or '.join(sorted(allowed))}; "
                f"key {principal.key_prefix} has role {principal.role}",
            )
        return principal

    return dependency
