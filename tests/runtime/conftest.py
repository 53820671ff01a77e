"""Fixtures for the runtime tests: real stores (memory, a SQLite file in tmp_path), a fresh
emitter, and the runtime reset around every test so settings never leak between tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from governor import runtime
from governor.events import EventEmitter, set_default_emitter
from governor.storage import InMemoryStorage, SQLStorage, StorageBackend, set_default_storage
from tests.storage.conftest import make_store


@pytest.fixture(autouse=True)
def _isolated_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No GOVERNOR_* setting of the developer's shell, no engine or store kept between tests."""
    for name in (
        runtime.ENV_ENGINE,
        runtime.ENV_BUNDLE,
        runtime.ENV_VERIFICATION_KEY,
        runtime.ENV_OPA_URL,
        runtime.ENV_FAIL_OPEN,
    ):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    set_default_emitter(None)
    set_default_storage(None)
    yield
    runtime.reset()
    set_default_emitter(None)
    set_default_storage(None)


@pytest.fixture
def memory() -> InMemoryStorage:
    """An empty in-memory store."""
    return InMemoryStorage()


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SQLStorage]:
    """An empty SQLite file store in tmp_path."""
    store = make_store("sqlite", tmp_path)
    assert isinstance(store, SQLStorage)
    yield store
    store.close()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    """Both backends the runtime is tested on."""
    backend = make_store(request.param, tmp_path)
    yield backend
    backend.close()


@pytest.fixture
def emitter() -> EventEmitter:
    """A fresh emitter with no handlers."""
    return EventEmitter()
