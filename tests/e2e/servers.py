"""More real servers for the e2e tests: `running(settings)` runs the app under uvicorn on a free
port of 127.0.0.1 (like the `live_server` fixture, but with settings of the test's choosing), and
a little Prometheus text parsing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from governor_server import Settings, create_app
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import free_port


@contextmanager
def running(settings: Settings) -> Iterator[str]:
    """The server's base URL while it runs (the port of `settings` is replaced by a free one)."""
    port = free_port()
    app = create_app(Settings(**{**settings.__dict__, "port": port}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start within 15 s (see its log above)")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "the server did not shut down within 15 s"


def sample(text: str, name: str, **labels: str) -> float:
    """The sample `name` with exactly `labels` in a Prometheus exposition (0 if absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0
