"""The SDK's tests run against the real server of the e2e harness (uvicorn on a free port, a
SQLite file, the development bundle); `live_server` is reused from tests/e2e/conftest.py."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import LiveServer, free_port, live_server

__all__ = ["ORG", "LiveServer", "closed_port_url", "live_server"]

#: The organisation the e2e harness bootstraps (its API keys belong to it).
ORG = "default"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def closed_port_url() -> str:
    """A base URL on which nothing listens (a free port, not bound)."""
    return f"http://127.0.0.1:{free_port()}"
