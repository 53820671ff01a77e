"""Fixtures for the engine tests: a real OPA REST API double on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from governor.bundle import Bundle
from tests.engine.opa_double import OpaDouble


@pytest.fixture
def start_opa() -> Iterator[Callable[..., OpaDouble]]:
    """Start an `OpaDouble` serving a bundle; every double started is stopped after the test."""
    started: list[OpaDouble] = []

    def start(bundle: Bundle, **options: Any) -> OpaDouble:
        double = OpaDouble(bundle, **options).start()
        started.append(double)
        return double

    yield start
    for double in started:
        double.stop()
