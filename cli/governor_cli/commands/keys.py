"""`governor keys create|list|revoke`: the server's `X-Governs-Key` API keys.

    governor keys create --org acme --role app     # prints the key ONCE; store it now
    governor keys list [--org acme]                # prefixes, roles, state; never the keys
    governor keys revoke gk_1a2b3c4d               # its next request gets 401

The database is `--database-url`, else `GOVERNOR_DATABASE_URL`, else `./.governor/governor.db`
(the server's). Keys are stored as SHA-256 hashes. Exit codes: 0 done, 2 invalid input (an
unknown role or prefix, an unusable database).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from governor_server.keys import UnknownKey, create_key, list_keys, revoke_key
from governor_server.models import ROLES

from governor.errors import GovernanceError
from governor.storage import SQLStorage
from governor_cli.sources import fail

_ROLE_HELP = f"One of {', '.join(ROLES)}."

_DATABASE = typer.Option(
    "--database-url",
    envvar="GOVERNOR_DATABASE_URL",
    help="The server's database (default: ./.governor/governor.db).",
    show_default=False,
)


@contextmanager
def _store(url: str | None) -> Iterator[SQLStorage]:
    try:
        store = SQLStorage(url or None)
    except GovernanceError as exc:
        fail(str(exc))
    try:
        yield store
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add the `keys` command group to `app`."""
    keys = typer.Typer(
        name="keys",
        help="Create, list and revoke the server's API keys (X-Governs-Key).",
        no_args_is_help=True,
    )

    @keys.command("create")
    def _create(
        org: Annotated[
            str, typer.Option("--org", help="The organisation (created if it does not exist).")
        ],
        role: Annotated[str, typer.Option("--role", help=_ROLE_HELP)] = "app",
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Create a key and print it once: it is stored hashed and cannot be shown again."""
        if role not in ROLES:
            fail(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
        with _store(database_url) as store:
            try:
                key, info = create_key(store.engine, org, role)
            except ValueError as exc:
                fail(str(exc))
        typer.echo(key)
        typer.echo(
            f"created {info.role} key {info.prefix} for organisation {info.org_name!r}; "
            "the key above is shown only now: store it in a secret manager",
            err=True,
        )

    @keys.command("list")
    def _list(
        org: Annotated[
            str | None, typer.Option("--org", help="Only this organisation's keys.")
        ] = None,
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """List keys by prefix (oldest first): organisation, role, created, revoked."""
        with _store(database_url) as store:
            infos = list_keys(store.engine, org)
        if not infos:
            typer.echo("no API keys" + (f" for organisation {org!r}" if org else ""), err=True)
            return
        typer.echo(f"{'PREFIX':<12}  {'ORG':<20}  {'ROLE':<8}  {'CREATED':<20}  STATE")
        for info in infos:
            state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M:%S}" if info.revoked_at else "active"
            typer.echo(
                f"{info.prefix:<12}  {info.org_name:<20}  {info.role:<8}  "
                f"{info.created_at:%Y-%m-%d %H:%M:%S}     {state}"
            )

    @keys.command("revoke")
    def _revoke(
        prefix: Annotated[str, typer.Argument(help="The key's prefix, e.g. gk_1a2b3c4d.")],
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Revoke a key at once (its next request gets 401); revoking twice is harmless."""
        with _store(database_url) as store:
            try:
                info = revoke_key(store.engine, prefix)
            except UnknownKey as exc:
                fail(str(exc))
        typer.echo(f"revoked {info.role} key {info.prefix} of organisation {info.org_name!r}")

    app.add_typer(keys)
