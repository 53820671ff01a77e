"""One shared store per process, created lazily, replaceable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from governor.storage import (
    InMemoryStorage,
    SQLStorage,
    StorageBackend,
    get_default_storage,
    set_default_storage,
)


@pytest.fixture(autouse=True)
def _fresh_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOVERNOR_DATABASE_URL", raising=False)
    set_default_storage(None)
    yield
    set_default_storage(None)


def test_the_default_is_one_sqlite_store_under_dot_governor(tmp_path: Path) -> None:
    store = get_default_storage()
    assert isinstance(store, SQLStorage)
    assert get_default_storage() is store
    assert (tmp_path / ".governor" / "governor.db").is_file()
    store.close()


def test_threads_asking_at_once_share_one_store() -> None:
    barrier = threading.Barrier(10)
    seen: list[StorageBackend] = []

    def ask() -> None:
        barrier.wait()
        seen.append(get_default_storage())

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(store) for store in seen}) == 1
    seen[0].close()


def test_set_default_storage_replaces_it() -> None:
    memory = InMemoryStorage()
    set_default_storage(memory)
    assert get_default_storage() is memory


def test_nothing_is_created_until_first_use(tmp_path: Path) -> None:
    set_default_storage(None)
    assert not (tmp_path / ".governor").exists()
