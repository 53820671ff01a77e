"""The SDK's tests run against the real server of the e2e harness (uvicorn on a free port, a
SQLite file, the development bundle); `live_server` is reused from tests/e2e/conftest.py."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import LiveServer, free_port, live_server

__all__ = ["ORG", "LiveServer", "closed_port_url", "live_server", "require_route"]

#: The organisation the e2e harness bootstraps (its API keys belong to it).
ORG = "default"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def closed_port_url() -> str:
    """A base URL on which nothing listens (a free port, not bound)."""
    return f"http://127.0.0.1:{free_port()}"


def require_route(server: LiveServer, method: str, path: str) -> None:
    """Skip when the server has no such endpoint yet (tools and analytics are being built)."""
    with server.client(server.admin_key) as client:
        response = client.request(method, path)
    if response.status_code == 404 and "no endpoint" in response.json().get("message", ""):
        pytest.skip(f"the server does not serve {method} {path} yet")
