"""Operations: Prometheus `/metrics` and one structured (JSON) log line per request.

`install(app, settings)` adds a pure ASGI middleware (no `BaseHTTPMiddleware` overhead on the
precheck path) and the `/metrics` route. Per request the middleware

- counts it and times it: `governor_http_requests_total` and
  `governor_http_request_duration_seconds` by method, route template (`/api/v1/precheck`,
  `/bundles/{name}.tar.gz`; `<unmatched>` for unknown paths, so a scanner cannot blow up the
  label set) and status;
- counts the decision it recorded, if any: `governor_decisions_total{decision}`, and engine
  trouble (a fail-closed decision with reason `engine.unavailable:<cause>`):
  `governor_engine_errors_total{cause}`;
- writes one JSON line on the `governor_server.access` logger: `ts`, `level`, `method`, `route`,
  `path`, `status`, `duration_ms`, `org_id` (when a key authenticated), `decision` (when one
  was made). Never the body, the query string or a key.

Handlers tell the middleware what they learnt through `annotate(...)`: the middleware puts a
fresh dict in a context variable before calling the app; dependencies and sync handlers run in
worker threads on a copy of the context, which still holds the same dict, so what they write is
seen by the middleware afterwards. Outside a request `annotate` does nothing.

Every app has its own `CollectorRegistry`, so two apps in one process (tests) do not share
counters. `/metrics` is unauthenticated, like health: it carries counts only, never an
organisation's id or data.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest

from governor_server.settings import Settings

__all__ = ["ACCESS_LOGGER", "Metrics", "annotate", "install", "router"]

ACCESS_LOGGER = "governor_server.access"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_UNAVAILABLE = "engine.unavailable:"
_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_request_info: ContextVar[dict[str, Any] | None] = ContextVar("governor_request_info", default=None)


def annotate(**fields: Any) -> None:
    """Attach `fields` (org_id, decision, reasons, ...) to the current request's log and metrics."""
    info = _request_info.get()
    if info is not None:
        info.update(fields)


class Metrics:
    """The server's Prometheus collectors, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "governor_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "governor_http_request_duration_seconds",
            "Time from receiving a request to sending its last byte, in seconds.",
            ("method", "route", "status"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "governor_decisions",
            "Decisions the server made and recorded, by outcome.",
            ("decision",),
            registry=self.registry,
        )
        self.engine_errors = Counter(
            "governor_engine_errors",
            "Evaluations that got no decision from the engine (answered fail-closed), by cause.",
            ("cause",),
            registry=self.registry,
        )
        self.opa_events = Counter(
            "governor_opa_decision_log_events",
            "Decision-log events received from OPA sidecars on POST /logs and stored.",
            registry=self.registry,
        )
        self._series: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def request_series(self, method: str, route: str, status: str) -> tuple[Counter, Histogram]:
        """The request counter and latency histogram of one (method, route, status), looked up
        once per label set (`labels(...)` takes a lock and checks the labels on every call)."""
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = (
                self.requests.labels(method, route, status),
                self.latency.labels(method, route, status),
            )
            self._series[key] = series
        return series

    def observe(self, info: dict[str, Any]) -> None:
        """Count what a request recorded (decision, engine errors)."""
        decision = info.get("decision")
        if isinstance(decision, str):
            self.decisions.labels(decision).inc()
        for reason in info.get("reasons") or ():
            if isinstance(reason, str) and reason.startswith(_UNAVAILABLE):
                self.engine_errors.labels(reason[len(_UNAVAILABLE) :]).inc()
        events = info.get("opa_events")
        if isinstance(events, int) and events:
            self.opa_events.inc(events)

    def exposition(self) -> bytes:
        """The Prometheus text format of every collector."""
        return generate_latest(self.registry)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `ts`, `level`, `logger`, `msg` and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"), default=str)


def _configure_logging(level: str) -> logging.Logger:
    """The access logger: JSON lines on stderr at `level` (the server's logger gets the level)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(h.formatter, JsonFormatter) for h in access.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        access.addHandler(handler)
    access.propagate = False
    access.setLevel(numeric)
    logging.getLogger("governor_server").setLevel(numeric)
    return access


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"


class ObservabilityMiddleware:
    """Counts, times and logs every HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, logger: logging.Logger) -> None:
        self.app = app
        self.metrics = metrics
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        info: dict[str, Any] = {}
        token = _request_info.set(info)
        status = 500  # an exception before the response started becomes a 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            _request_info.reset(token)
            elapsed = time.perf_counter() - start
            self._record(scope, status, elapsed, info)

    def _record(self, scope: Scope, status: int, elapsed: float, info: dict[str, Any]) -> None:
        method = str(scope.get("method", ""))
        route = _route_of(scope)
        requests, latency = self.metrics.request_series(method, route, str(status))
        requests.inc()
        latency.observe(elapsed)
        self.metrics.observe(info)
        level = logging.ERROR if status >= 500 else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "path": scope.get("path", ""),
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
        }
        for name in ("org_id", "decision"):
            if info.get(name) is not None:
                fields[name] = info[name]
        # (no `logger.log`: it looks up the calling line, which the JSON line does not carry)
        record = self.logger.makeRecord(
            self.logger.name, level, "", 0, "request", (), None, extra={"fields": fields}
        )
        self.logger.handle(record)


router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """The server's metrics in Prometheus' text exposition format (unauthenticated)."""
    registry: Metrics = request.app.state.governor_metrics
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI, settings: Settings) -> Metrics:
    """Add the metrics/logging middleware and `GET /metrics` to `app`; returns its `Metrics`."""
    disable_created_metrics()  # no `*_created` series: they double the exposition for nothing
    metrics_ = Metrics()
    app.state.governor_metrics = metrics_
    app.add_middleware(
        ObservabilityMiddleware,  # type: ignore[arg-type]
        metrics=metrics_,
        logger=_configure_logging(settings.log_level),
    )
    app.include_router(router)
    return metrics_
