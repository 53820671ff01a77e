"""A real ASGI app under uvicorn on a free port of 127.0.0.1, as tests/e2e runs the server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.e2e.conftest import free_port, serving


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run `app` (its lifespan included) while the block runs; yields its base URL."""
    with serving(app, free_port()) as url:
        yield url
