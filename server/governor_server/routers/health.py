"""`GET /api/v1/health` (wire protocol §4.1): unauthenticated; engine, bundle and database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text

from governor_server import __version__
from governor_server.schemas import HealthResponse
from governor_server.state import ServerState, get_state

router = APIRouter(prefix="/api/v1", tags=["health"])


def _database_ok(state: ServerState) -> bool:
    try:
        with state.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "the database is unreachable"}},
)
def health(state: Annotated[ServerState, Depends(get_state)]) -> JSONResponse:
    """Report `healthy`, or `unhealthy` (503, same body) when the database does not answer."""
    database = _database_ok(state)
    revision = state.engine.revision
    body = HealthResponse(
        status="healthy" if database else "unhealthy",
        services={
            "database": "ok" if database else "unavailable",
            "engine": "ok",
        },
        timestamp=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        version=__version__,
        engine=str(getattr(state.engine, "name", type(state.engine).__name__)),
        bundle_revision=revision if isinstance(revision, str) else None,
    )
    return JSONResponse(body.model_dump(), status_code=200 if database else 503)
