"""What the app builds once at startup and every request shares."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from governor.engine import Engine
from governor.storage import SQLStorage
from governor_server.settings import Settings
from governor_server.workers import WorkerPool

__all__ = ["ServerState", "get_state"]


@dataclass
class ServerState:
    """The store (orgs, keys, decisions, budget ledger), the policy engine and where prechecks
    are decided (`governor_server.workers`: inline, or on worker threads)."""

    settings: Settings
    store: SQLStorage
    engine: Engine
    workers: WorkerPool = field(default_factory=lambda: WorkerPool(0))


async def get_state(request: Request) -> ServerState:
    """Dependency: the running app's `ServerState` (async: no worker thread for a lookup)."""
    state: ServerState = request.app.state.governor
    return state
