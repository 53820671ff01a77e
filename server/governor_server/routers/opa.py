"""The OPA control plane's routes: `GET /bundles/{name}.tar.gz` and `POST /logs`.

See `governor_server.opa` for the behaviour and the OPA configuration that points a sidecar here.
The bundles are built once, in this router's lifespan (after the app's, so the settings are
there); a bundle that cannot be built stops the server from starting, with its reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from governor_server.errors import ApiError
from governor_server.keys import Principal
from governor_server.observability import annotate
from governor_server.opa import (
    BUNDLE_CONTENT_TYPE,
    BadBatch,
    BundleService,
    etag_matches,
    opa_principal,
    parse_batch,
    store_events,
)
from governor_server.schemas import ErrorResponse
from governor_server.state import ServerState, get_state


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServerState = app.state.governor
    app.state.governor_bundles = BundleService.from_settings(state.settings)
    yield


router = APIRouter(
    tags=["opa"],
    lifespan=_lifespan,
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}},
)

Caller = Annotated[Principal, Depends(opa_principal)]
State = Annotated[ServerState, Depends(get_state)]


def _bundles(request: Request) -> BundleService:
    service: BundleService = request.app.state.governor_bundles
    return service


@router.get(
    "/bundles/{name}.tar.gz",
    response_class=Response,
    responses={
        200: {"content": {BUNDLE_CONTENT_TYPE: {}}, "description": "the bundle archive"},
        304: {"description": "the caller's copy (If-None-Match) is current"},
        404: {"model": ErrorResponse},
    },
)
def get_bundle(
    name: str,
    _caller: Caller,
    bundles: Annotated[BundleService, Depends(_bundles)],
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """An OPA bundle archive, with a strong ETag; 304 when `If-None-Match` matches it."""
    bundle = bundles.get(name)
    if bundle is None:
        served = ", ".join(bundles.names) or "none (set GOVERNOR_OPA_BUNDLES)"
        raise ApiError(
            404, "unknown_bundle", f"unknown bundle {name!r}: this server serves {served}"
        )
    headers = {"ETag": bundle.etag, "Cache-Control": "no-cache"}
    if etag_matches(if_none_match, bundle.etag):
        return Response(status_code=304, headers=headers)
    return Response(bundle.archive, media_type=BUNDLE_CONTENT_TYPE, headers=headers)


async def _ingest(request: Request, principal: Principal, state: ServerState) -> JSONResponse:
    if principal.role not in ("app", "admin"):
        raise ApiError(
            403,
            "forbidden",
            f"forbidden: decision logs need a key with role admin or app; key "
            f"{principal.key_prefix} has role {principal.role}",
        )
    body = await request.body()
    try:
        events = parse_batch(body, request.headers.get("content-encoding"))
    except BadBatch as exc:
        raise ApiError(400, "bad_decision_log", f"malformed decision-log batch: {exc}") from None
    stored = await run_in_threadpool(store_events, state.store.engine, principal.org_id, events)
    annotate(opa_events=stored)
    return JSONResponse({"received": len(events), "stored": stored})


_LOG_RESPONSES: dict[int | str, dict[str, Any]] = {400: {"model": ErrorResponse}}


@router.post("/logs", responses=_LOG_RESPONSES)
async def post_logs(request: Request, principal: Caller, state: State) -> JSONResponse:
    """OPA's decision-log upload: a (gzip) JSON array of events, stored as decisions."""
    return await _ingest(request, principal, state)


@router.post("/logs/{partition}", responses=_LOG_RESPONSES)
async def post_logs_partition(
    partition: str, request: Request, principal: Caller, state: State
) -> JSONResponse:
    """The same, for OPA's `decision_logs.partition_name` (the partition is not kept)."""
    return await _ingest(request, principal, state)
