"""Operations over HTTP: Prometheus `/metrics` counters move with requests, decisions and engine
errors; one JSON log line per request."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from governor_server import Settings
from governor_server.keys import authenticate
from governor_server.observability import ACCESS_LOGGER, JsonFormatter

from governor.storage import SQLStorage
from tests.e2e.conftest import LiveServer, free_port
from tests.e2e.servers import running, sample

PRECHECK = "/api/v1/precheck"


def scrape(url: str) -> str:
    with httpx.Client(base_url=url, timeout=10) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


def requests_total(text: str, method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return sample(text, "governor_http_requests_total", **labels)


def test_metrics_count_requests_latency_and_decisions(live_server: LiveServer) -> None:
    before = scrape(live_server.url)
    with live_server.client(live_server.app_key) as client:
        statuses = [
            client.post(PRECHECK, json={"tool": "model.chat", "raw_text": "hi"}).status_code,
            client.post(PRECHECK, json={"tool": "shell.exec", "raw_text": "x"}).status_code,
            client.post(PRECHECK, json={"tool": 3}).status_code,
            client.get("/no/such/path").status_code,
        ]
    assert statuses == [200, 200, 422, 404]
    after = scrape(live_server.url)

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("governor_http_requests_total", method="POST", route=PRECHECK, status="200") == 2
    assert moved("governor_http_requests_total", method="POST", route=PRECHECK, status="422") == 1
    # Unknown paths share one label value, so scanners cannot grow the label set.
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert moved("governor_http_requests_total", **unmatched) == 1
    latency = {"method": "POST", "route": PRECHECK, "status": "200"}
    assert moved("governor_http_request_duration_seconds_count", **latency) == 2
    assert moved("governor_http_request_duration_seconds_sum", **latency) > 0
    assert moved("governor_decisions_total", decision="allow") >= 1
    assert moved("governor_decisions_total", decision="deny") >= 1
    # The scrape before this one was counted too.
    assert requests_total(after, "GET", "/metrics", "200") >= 1
    assert "# TYPE governor_http_request_duration_seconds histogram" in after
    assert "# TYPE governor_engine_errors_total counter" in after


def test_engine_errors_are_counted(live_server: LiveServer) -> None:
    # An OPA sidecar that is not there: every decision fails closed and counts as an engine error.
    settings = Settings(
        database_url=live_server.database_url,
        engine="opa",
        bundle=None,
        opa_url=f"http://127.0.0.1:{free_port()}",
    )
    with running(settings) as url:
        with httpx.Client(base_url=url, timeout=10) as client:
            client.headers["X-Governs-Key"] = live_server.app_key
            response = client.post(PRECHECK, json={"tool": "model.chat", "raw_text": "hi"})
        text = scrape(url)
    assert response.status_code == 200
    assert response.json()["decision"] == "deny"
    assert response.json()["reasons"] == ["engine.unavailable:error"]
    assert sample(text, "governor_engine_errors_total", cause="error") == 1
    assert sample(text, "governor_decisions_total", decision="deny") == 1


@pytest.fixture
def access_lines() -> Iterator[list[str]]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def test_one_json_log_line_per_request(live_server: LiveServer, access_lines: list[str]) -> None:
    secret = "alice@example.com"
    with live_server.client(live_server.app_key) as client:
        client.post(PRECHECK, json={"tool": "model.chat", "raw_text": f"mail {secret}"})
    with live_server.client() as client:
        client.get("/api/v1/health")
    store = SQLStorage(live_server.database_url)
    try:
        principal = authenticate(store.engine, live_server.app_key)
    finally:
        store.close()
    assert principal is not None

    records = [json.loads(line) for line in access_lines]
    prechecks = [r for r in records if r["route"] == PRECHECK]
    assert len(prechecks) == 1
    line = prechecks[0]
    assert line["msg"] == "request" and line["level"] == "info"
    assert (line["method"], line["status"], line["path"]) == ("POST", 200, PRECHECK)
    assert line["org_id"] == principal.org_id
    assert line["decision"] == "redact"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["ts"].endswith("Z")
    health = [r for r in records if r["route"] == "/api/v1/health"]
    assert len(health) == 1 and "org_id" not in health[0] and "decision" not in health[0]
    # Never the body, a key or a value the policy redacted.
    assert secret not in "".join(access_lines)
    assert live_server.app_key not in "".join(access_lines)
