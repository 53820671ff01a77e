"""Errors on the wire: every non-2xx response is a JSON object with `message` and `error`.

The GovernsAI SDK reads only `message` from an error body (wire protocol §2.5), so FastAPI's
`{"detail": ...}` is replaced everywhere: `ApiError` for our own refusals, and handlers for
Starlette's HTTP errors (unknown route, wrong method), request validation (the message names the
field), and anything unexpected (500, logged with its traceback, no internals in the body).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "error_response", "install_error_handlers"]

logger = logging.getLogger("governor_server")

#: The stable `error` code of each status we answer with when the raiser named none.
_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """A refusal: HTTP status, stable machine `code`, and a `message` a person can act on."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status_code: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """The JSON error body: `{"error": code, "message": message, ...extra}`."""
    return JSONResponse(
        {"error": code, "message": message, **extra},
        status_code=status_code,
        headers=dict(headers or {}),
    )


def _location(loc: Sequence[Any]) -> str:
    """`("body", "payload", "x")` -> `payload.x`; list indices as `[i]`."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def _validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    shown = []
    for error in errors[:5]:
        where = _location(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            shown.append("the body is not valid JSON")
        else:
            shown.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid request: " + "; ".join(shown) + more


def _safe_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The validation errors without the submitted values (they may hold PII or secrets)."""
    return [
        {"field": _location(e.get("loc", ())), "type": e.get("type"), "message": e.get("msg")}
        for e in errors
    ]


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"not found: no endpoint {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method not allowed: {request.method} is not served on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
    return error_response(
        status,
        "invalid_json" if status == 400 else "validation_error",
        _validation_message(errors),
        detail=_safe_errors(errors),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "internal_error",
        "internal server error: the server's log has the traceback (logger governor_server)",
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error response of `app` a JSON object with `message` and `error`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
