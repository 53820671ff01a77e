"""Real engines over the standard library, shared by the policy tests (compiled once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from governor.bundle import Bundle, load_paths, standard_library_path
from governor.engine import opa_lib
from governor.engine.opa_lib import OpaLibEngine
from governor.engine.regorus import RegorusEngine


@pytest.fixture(scope="session")
def stdlib() -> Bundle:
    """The standard Rego library, without bundle data."""
    return load_paths([standard_library_path()])


@pytest.fixture(scope="session")
def regorus(stdlib: Bundle) -> Iterator[RegorusEngine]:
    """The embedded engine over the standard library."""
    engine = RegorusEngine(stdlib)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def opa(stdlib: Bundle) -> Iterator[OpaLibEngine]:
    """Real OPA (in-process bindings) over the standard library."""
    if not opa_lib.available():
        pytest.skip("opa-golib-python-bindings is not installed (make install)")
    engine = OpaLibEngine(stdlib)
    yield engine
    engine.close()
