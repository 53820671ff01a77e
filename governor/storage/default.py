"""The one store a process shares by default (every `@govern` without `storage=` uses it)."""

from __future__ import annotations

import os
import threading

from governor.storage.base import StorageBackend

_lock = threading.Lock()
_default: StorageBackend | None = None
_default_pid: int | None = None


def get_default_storage() -> StorageBackend:
    """Return this process's shared store, creating it on first use.

    It is `SQLStorage()`: `GOVERNOR_DATABASE_URL`, else the SQLite file `./.governor/governor.db`.
    Replace it with `set_default_storage` (tests, or an `InMemoryStorage` for a quick start). A
    child process (fork) creates its own instead of reusing the parent's connections.
    """
    global _default, _default_pid
    store, pid = _default, os.getpid()
    if store is not None and _default_pid == pid:
        return store
    with _lock:
        if _default is None or _default_pid != pid:
            from governor.storage.sql import SQLStorage

            _default, _default_pid = SQLStorage(), pid
        return _default


def set_default_storage(storage: StorageBackend | None) -> None:
    """Make `storage` the shared store; None forgets it, so the next use creates a fresh one.

    The replaced store is not closed: whoever created it decides when it is no longer used.
    """
    global _default, _default_pid
    with _lock:
        _default, _default_pid = storage, os.getpid()
