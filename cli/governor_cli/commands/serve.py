"""`governor serve`: the precheck server (FastAPI) under uvicorn.

    governor serve [--host 127.0.0.1] [--port 8000]

Settings come from `GOVERNOR_*` (see `governor_server.settings`); `--host`/`--port` win. On the
first start against a database (no `default` organisation yet) it creates that organisation with
an admin key and an app key, and prints them once with a ready-to-paste `curl` precheck. Ctrl-C
(SIGINT) or SIGTERM stops it gracefully. Exit codes: 0 stopped, 2 invalid settings.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated

import typer

from governor.errors import GovernanceError
from governor.storage import SQLStorage
from governor_cli.sources import fail

if TYPE_CHECKING:
    from governor_server import Settings


def first_start_message(base_url: str, admin_key: str, app_key: str) -> str:
    """What the first start prints: both keys, once, and a precheck to paste."""
    body = '{"tool": "model.chat", "raw_text": "Mail me at alice@example.com", "user_id": "alice"}'
    curl = (
        f"curl -s -X POST {base_url}/api/v1/precheck \\\n"
        f"  -H 'Content-Type: application/json' -H {shlex.quote('X-Governs-Key: ' + app_key)} \\\n"
        f"  -d {shlex.quote(body)}"
    )
    return (
        "\nFirst start: created the organisation 'default' and two API keys.\n"
        "They are shown ONLY NOW (stored hashed); keep them somewhere safe.\n\n"
        f"  admin key: {admin_key}\n"
        f"  app key:   {app_key}\n\n"
        "Try a precheck (the e-mail address comes back redacted):\n\n"
        f"{curl}\n\n"
        "More keys: governor keys create --org default --role app\n"
    )


def run_server(settings: Settings) -> None:
    """Run the app of `settings` under uvicorn until interrupted (what `governor serve` runs).

    uvicorn's own access log is off: the app logs every request itself, as one JSON line. Once
    everything is imported, the objects that live as long as the process (modules, classes,
    functions: most of the heap) are frozen out of the garbage collector, so that its full
    collections, which stop every request, traverse only what requests allocate.
    """
    import gc

    import uvicorn
    from governor_server import create_app

    app = create_app(settings)
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def register(app: typer.Typer) -> None:
    """Add the `serve` command to `app`."""

    @app.command("serve")
    def _serve(
        host: Annotated[
            str | None, typer.Option("--host", help="Interface (default GOVERNOR_HOST, 127.0.0.1).")
        ] = None,
        port: Annotated[
            int | None, typer.Option("--port", help="Port (default GOVERNOR_PORT, 8000).")
        ] = None,
    ) -> None:
        """Run the precheck server (GovernsAI wire protocol) until interrupted."""
        import dataclasses

        from governor_server import Settings
        from governor_server.app import build_engine
        from governor_server.keys import bootstrap
        from governor_server.opa import BundleService

        try:
            settings = Settings.from_env()
            settings = dataclasses.replace(
                settings,
                host=host if host is not None else settings.host,
                port=port if port is not None else settings.port,
            )
            build_engine(settings).close()  # fail here, clearly, rather than inside uvicorn
            BundleService.from_settings(settings)  # the bundles served to OPA sidecars, too
            store = SQLStorage(settings.database_url)
        except GovernanceError as exc:
            fail(str(exc))
        try:
            created = bootstrap(store.engine)
        finally:
            store.close()
        if created is not None:
            shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
            typer.echo(
                first_start_message(
                    f"http://{shown_host}:{settings.port}", created.admin_key, created.app_key
                )
            )
        run_server(settings)
