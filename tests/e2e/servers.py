"""More real servers for the e2e tests: `running(settings)` runs the app under uvicorn on a free
port of 127.0.0.1 (like the `live_server` fixture, but with settings of the test's choosing), and
a little Prometheus text parsing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from governor_server import Settings, create_app
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import free_port, serving


@contextmanager
def running(settings: Settings) -> Iterator[str]:
    """The server's base URL while it runs (the port of `settings` is replaced by a free one)."""
    port = free_port()
    with serving(create_app(Settings(**{**settings.__dict__, "port": port})), port) as url:
        yield url


def sample(text: str, name: str, **labels: str) -> float:
    """The sample `name` with exactly `labels` in a Prometheus exposition (0 if absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0
