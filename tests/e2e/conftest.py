"""A real server: the app under uvicorn on a free port of 127.0.0.1, over a SQLite file."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from governor_server import Settings, create_app
from governor_server.keys import bootstrap, create_key

from governor.storage import SQLStorage


@dataclass(frozen=True)
class LiveServer:
    """A running server, its database, and the keys of two organisations."""

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


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory: Path = tmp_path_factory.mktemp("server")
    database_url = f"sqlite:///{directory / 'governor.db'}"
    store = SQLStorage(database_url)
    created = bootstrap(store.engine)
    assert created is not None
    approver_key, _ = create_key(store.engine, "default", "approver")
    other_app_key, _ = create_key(store.engine, "other", "app")
    store.close()

    port = free_port()
    settings = Settings(database_url=database_url, port=port)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start within 15 s (see its log above)")
        time.sleep(0.02)
    try:
        yield LiveServer(
            url=f"http://127.0.0.1:{port}",
            database_url=database_url,
            admin_key=created.admin_key,
            app_key=created.app_key,
            approver_key=approver_key,
            other_app_key=other_app_key,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "the server did not shut down within 15 s"
