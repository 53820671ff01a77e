"""What the app builds once at startup and every request shares."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from governor.engine import Engine
from governor.storage import SQLStorage
from governor_server.settings import Settings

__all__ = ["ServerState", "get_state"]


@dataclass
class ServerState:
    """The store (orgs, keys, decisions, budget ledger) and the policy engine."""

    settings: Settings
    store: SQLStorage
    engine: Engine


def get_state(request: Request) -> ServerState:
    """Dependency: the running app's `ServerState`."""
    state: ServerState = request.app.state.governor
    return state
