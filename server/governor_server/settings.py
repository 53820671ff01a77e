"""The server's settings, read from `GOVERNOR_*` environment variables with embedded defaults.

| setting | environment variable | default |
| --- | --- | --- |
| `database_url` | `GOVERNOR_DATABASE_URL` | the store's SQLite file, `./.governor/governor.db` |
| `engine` | `GOVERNOR_ENGINE` | `regorus` (embedded); `opa-lib`; `opa` (sidecar, needs the URL) |
| `bundle` | `GOVERNOR_BUNDLE` | `bundles/development` of this checkout, with the standard library |
| `verification_key` | `GOVERNOR_BUNDLE_VERIFICATION_KEY` | none (a file path or the key text) |
| `opa_url` | `GOVERNOR_OPA_URL` | none; required by `opa` |
| `opa_bundles` | `GOVERNOR_OPA_BUNDLES` | the bundle above; `name=path,...` (see below) |
| `log_level` | `GOVERNOR_LOG_LEVEL` | `INFO` (the JSON request log and the server's own logs) |
| `host` | `GOVERNOR_HOST` | `127.0.0.1` |
| `port` | `GOVERNOR_PORT` | `8000` |
| `worker_threads` | `GOVERNOR_WORKER_THREADS` | `auto` (see `governor_server.workers`) |

`opa_bundles` are the bundles served to OPA sidecars at `/bundles/<name>.tar.gz`
(`governor_server.opa`): comma-separated `name=path`, or `path` alone (named after its directory or
file, `.tar.gz` dropped).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from governor.errors import ConfigurationError
from governor.storage.sql import default_url

__all__ = ["DEFAULT_BUNDLE", "Settings"]

#: The development bundle of this checkout (data and a manifest; the standard library is added).
DEFAULT_BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "development"


@dataclass(frozen=True)
class Settings:
    """What `create_app` builds the server from (see the module docstring)."""

    database_url: str
    engine: str = "regorus"
    bundle: str | None = str(DEFAULT_BUNDLE)
    verification_key: str | None = None
    opa_url: str | None = None
    opa_bundles: tuple[str, ...] = ()
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 8000
    worker_threads: int | None = None  # None: automatic (see `governor_server.workers`)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from the environment; `ConfigurationError` names a bad value."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(f"GOVERNOR_{name}", "").strip() or None

        raw_port = get("PORT") or "8000"
        try:
            port = int(raw_port)
        except ValueError:
            port = -1
        if not 0 <= port <= 65535:
            raise ConfigurationError(
                f"GOVERNOR_PORT={raw_port!r} is not a port number: use a whole number "
                "from 1 to 65535 (or 0 for any free port)"
            )
        raw_threads = get("WORKER_THREADS") or "auto"
        threads: int | None = None
        if raw_threads.lower() != "auto":
            try:
                threads = int(raw_threads)
            except ValueError:
                threads = -1
            if not 0 <= threads <= 256:
                raise ConfigurationError(
                    f"GOVERNOR_WORKER_THREADS={raw_threads!r} is not a thread count: use auto, "
                    "or a whole number from 0 (inline, on the event loop) to 256"
                )
        engine = get("ENGINE") or "regorus"
        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigurationError(
                f"GOVERNOR_LOG_LEVEL={log_level!r} is not a log level: use DEBUG, INFO, "
                "WARNING, ERROR or CRITICAL"
            )
        return cls(
            database_url=get("DATABASE_URL") or default_url(),
            engine=engine,
            bundle=get("BUNDLE") or (None if engine == "opa" else str(DEFAULT_BUNDLE)),
            verification_key=get("BUNDLE_VERIFICATION_KEY"),
            opa_url=get("OPA_URL"),
            opa_bundles=tuple(
                part.strip() for part in (get("OPA_BUNDLES") or "").split(",") if part.strip()
            ),
            log_level=log_level,
            host=get("HOST") or "127.0.0.1",
            port=port,
            worker_threads=threads,
        )
