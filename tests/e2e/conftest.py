"""A real server: the app under uvicorn on a free port of 127.0.0.1, over a SQLite file, and
over a fresh PostgreSQL database too when `GOVERNOR_TEST_POSTGRES_URL` points at a server (start
one with scripts/postgres-test-server.sh): `live_server` is then parametrized `[sqlite]` and
`[postgres]`, so every test that uses it runs on both."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from governor_server import Settings, create_app
from governor_server.keys import add_approvers, bootstrap, create_key, ensure_org
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from governor.storage import SQLStorage

POSTGRES_ENV = "GOVERNOR_TEST_POSTGRES_URL"
#: The databases `live_server` runs on: SQLite always, PostgreSQL when a test server is given.
DATABASES = ["sqlite", "postgres"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]
#: The identity of `approver_key`, on the default organisation's approver list: the approver the
#: development bundle's `approval.approvers` names, so it may decide the confirmations of its
#: policy (e.g. of `payments.*` tools) as well as those created without named approvers.
APPROVER = "admin"


@dataclass(frozen=True)
class LiveServer:
    """A running server, its database, and the keys of two organisations (`approver_key` acts
    for `APPROVER`, on the default organisation's approver list)."""

    url: str
    database_url: str
    admin_key: str
    app_key: str
    approver_key: str
    other_app_key: str

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-Governs-Key": key} if key is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def fresh_database(kind: str, directory: Path) -> Iterator[str]:
    """The URL of an empty database of `kind` while the block runs.

    `sqlite`: a file in `directory`. `postgres`: a uniquely named database created on the server
    of `GOVERNOR_TEST_POSTGRES_URL` (its user needs CREATEDB, as the test server's has), dropped
    afterwards, so runs never see each other's rows.
    """
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'governor.db'}"
        return
    server = make_url(os.environ[POSTGRES_ENV])
    name = f"governor_e2e_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="module", params=DATABASES)
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    directory: Path = tmp_path_factory.mktemp("server")
    with fresh_database(request.param, directory) as database_url:
        yield from _serve(database_url)


def _serve(database_url: str) -> Iterator[LiveServer]:
    store = SQLStorage(database_url)
    created = bootstrap(store.engine)
    assert created is not None
    approver_key, _ = create_key(store.engine, "default", "approver", APPROVER)
    add_approvers(store.engine, ensure_org(store.engine, "default")[0], [APPROVER], "test")
    other_app_key, _ = create_key(store.engine, "other", "app")
    store.close()

    port = free_port()
    app = create_app(Settings(database_url=database_url, port=port))
    with serving(app, port) as url:
        yield LiveServer(
            url=url,
            database_url=database_url,
            admin_key=created.admin_key,
            app_key=created.app_key,
            approver_key=approver_key,
            other_app_key=other_app_key,
        )


@contextmanager
def serving(app: FastAPI, port: int) -> Iterator[str]:
    """Run `app` under uvicorn on 127.0.0.1:`port` in a thread; its base URL while it runs."""
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
