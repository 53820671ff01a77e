"""Fixtures building real stores: in memory, a SQLite file in tmp_path, and PostgreSQL when
`GOVERNOR_TEST_POSTGRES_URL` points at a server (start one with scripts/postgres-test-server.sh)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from governor.storage import InMemoryStorage, SQLStorage, StorageBackend

POSTGRES_ENV = "GOVERNOR_TEST_POSTGRES_URL"
POSTGRES_SKIP = (
    f"{POSTGRES_ENV} is not set: run scripts/postgres-test-server.sh and export the URL it "
    "prints to run the storage tests on PostgreSQL too"
)


def postgres_url() -> str:
    """Return the test server's URL or skip the test, saying how to get one."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(POSTGRES_SKIP)
    return url


def sqlite_url(directory: Path) -> str:
    """Return the URL of a SQLite file in `directory`."""
    return f"sqlite:///{directory / 'governor.db'}"


_template: Path | None = None


def _migrated_sqlite_file(directory: Path) -> None:
    """Put a SQLite file already at the newest revision into `directory`.

    Migrating takes a noticeable fraction of a second (fsyncs), so it is done once per session
    and the file copied; the tests of creation and migration build theirs from nothing.
    """
    global _template
    if _template is None:
        import tempfile

        _template = Path(tempfile.mkdtemp(prefix="governor-template-")) / "governor.db"
        SQLStorage(f"sqlite:///{_template}").close()
    shutil.copyfile(_template, directory / "governor.db")


def make_store(kind: str, tmp_path: Path) -> StorageBackend:
    """Build an empty store of `kind` ("memory", "sqlite" or "postgres")."""
    if kind == "memory":
        return InMemoryStorage()
    if kind == "sqlite":
        _migrated_sqlite_file(tmp_path)
        return SQLStorage(sqlite_url(tmp_path))
    store = SQLStorage(postgres_url())
    store.clear()
    return store


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    """Every backend, empty."""
    backend = make_store(request.param, tmp_path)
    yield backend
    backend.clear()
    backend.close()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStorage]:
    """Every SQL backend, empty."""
    backend = make_store(request.param, tmp_path)
    assert isinstance(backend, SQLStorage)
    yield backend
    backend.clear()
    backend.close()


Work = Callable[[StorageBackend, str, int], tuple[int, list[str]]]


def _process(work: Work, url: str, key: str, callers: int, start: object, results: object) -> None:
    """A worker process: its own store on the shared database, `callers` threads of `work`."""
    try:
        store = SQLStorage(url)  # processes race to create the schema on a fresh file
        start.wait()  # type: ignore[attr-defined]
        admitted, errors = work(store, key, callers)
        store.close()
        results.put((admitted, errors))  # type: ignore[attr-defined]
    except BaseException as error:
        results.put((0, [repr(error)]))  # type: ignore[attr-defined]


def run_in_processes(
    work: Work, url: str, key: str, callers: int, processes: int
) -> tuple[int, list[str]]:
    """Run `work(store, key, callers // processes)` in `processes` spawned processes that start
    together on one database; return the total admitted and every error."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(
            target=_process, args=(work, url, key, callers // processes, start, results)
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=90) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return (
        sum(admitted for admitted, _ in outcomes),
        [error for _, errors in outcomes for error in errors],
    )
