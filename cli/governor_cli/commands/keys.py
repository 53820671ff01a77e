"""`governor keys create|list|revoke|approvers`: the server's `X-Governs-Key` API keys, and who
may approve confirmations.

    governor keys create --org acme --role app     # prints the key ONCE; store it now
    governor keys create --org acme --role approver --identity alice@acme.example
    governor keys list [--org acme]                # prefixes, roles, identities, state; never keys
    governor keys revoke gk_1a2b3c4d               # its next request gets 401
    governor keys approvers add --org acme alice@acme.example   # may now approve for acme
    governor keys approvers list --org acme
    governor keys approvers remove --org acme alice@acme.example

An approver key decides an organisation's confirmations only while its identity is on the
organisation's approver list (admin keys always may). The database is `--database-url`, else
`GOVERNOR_DATABASE_URL`, else `./.governor/governor.db` (the server's). Keys are stored as SHA-256
hashes. Exit codes: 0 done, 2 invalid input (an unknown role, prefix, organisation or identity, an
approver key without an identity, an unusable database).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from governor_server.keys import (
    UnknownKey,
    add_approvers,
    create_key,
    ensure_org,
    find_org,
    list_approvers,
    list_keys,
    remove_approver,
    revoke_key,
)
from governor_server.models import ROLES

from governor.errors import GovernanceError
from governor.storage import SQLStorage
from governor_cli.sources import fail

_ROLE_HELP = f"One of {', '.join(ROLES)}."

_ORG = typer.Option("--org", help="The organisation.")

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
        identity: Annotated[
            str | None,
            typer.Option(
                "--identity",
                help="Who the key acts for (e.g. alice@acme.example); required for approver keys.",
            ),
        ] = None,
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Create a key and print it once: it is stored hashed and cannot be shown again."""
        if role not in ROLES:
            fail(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
        if role == "approver" and identity is None:
            fail(
                "an approver key needs --identity NAME (who approves, e.g. alice@acme.example): "
                "it is what the organisation's approver list names"
            )
        with _store(database_url) as store:
            try:
                key, info = create_key(store.engine, org, role, identity)
            except ValueError as exc:
                fail(str(exc))
            org_id = find_org(store.engine, org)
            listed = {a.identity for a in list_approvers(store.engine, org_id)} if org_id else set()
        typer.echo(key)
        who = f" ({info.identity})" if info.identity else ""
        typer.echo(
            f"created {info.role} key {info.prefix}{who} for organisation {info.org_name!r}; "
            "the key above is shown only now: store it in a secret manager",
            err=True,
        )
        if info.role == "approver" and info.identity not in listed:
            typer.echo(
                f"{info.identity} is not on {info.org_name!r}'s approver list yet: "
                f"`governor keys approvers add --org {info.org_name} {info.identity}` "
                "lets this key approve",
                err=True,
            )

    @keys.command("list")
    def _list(
        org: Annotated[
            str | None, typer.Option("--org", help="Only this organisation's keys.")
        ] = None,
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """List keys by prefix (oldest first): organisation, role, identity, created, state."""
        with _store(database_url) as store:
            infos = list_keys(store.engine, org)
        if not infos:
            typer.echo("no API keys" + (f" for organisation {org!r}" if org else ""), err=True)
            return
        typer.echo(
            f"{'PREFIX':<12}  {'ORG':<20}  {'ROLE':<8}  {'IDENTITY':<24}  {'CREATED':<20}  STATE"
        )
        for info in infos:
            state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M:%S}" if info.revoked_at else "active"
            typer.echo(
                f"{info.prefix:<12}  {info.org_name:<20}  {info.role:<8}  "
                f"{info.identity or '-':<24}  {info.created_at:%Y-%m-%d %H:%M:%S}     {state}"
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

    keys.add_typer(_approvers_group())
    app.add_typer(keys)


def _approvers_group() -> typer.Typer:
    """`governor keys approvers add|remove|list`: an organisation's approver list."""
    approvers = typer.Typer(
        name="approvers",
        help="Who may approve an organisation's confirmations (the identities of approver keys).",
        no_args_is_help=True,
    )

    @approvers.command("add")
    def _add(
        org: Annotated[str, _ORG],
        identities: Annotated[
            list[str], typer.Argument(help="Identities, e.g. alice@acme.example.")
        ],
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Put identities on the list (the organisation is created if missing); idempotent."""
        with _store(database_url) as store:
            try:
                org_id, _ = ensure_org(store.engine, org)
                added = add_approvers(store.engine, org_id, identities, "cli")
            except ValueError as exc:
                fail(str(exc))
        for identity in identities:
            verb = "added" if identity in added else "already on the list:"
            typer.echo(f"{verb} {identity} (approver of organisation {org!r})")

    @approvers.command("remove")
    def _remove(
        org: Annotated[str, _ORG],
        identities: Annotated[list[str], typer.Argument(help="Identities to take off the list.")],
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """Take identities off the list: their keys can no longer approve, at once."""
        with _store(database_url) as store:
            org_id = _existing_org(store, org)
            missing = [i for i in identities if not remove_approver(store.engine, org_id, i)]
        for identity in identities:
            if identity not in missing:
                typer.echo(f"removed {identity} (approver of organisation {org!r})")
        if missing:
            fail(f"not on the approver list of organisation {org!r}: {', '.join(missing)}")

    @approvers.command("list")
    def _list(
        org: Annotated[str, _ORG],
        database_url: Annotated[str | None, _DATABASE] = None,
    ) -> None:
        """List the identities on the organisation's approver list."""
        with _store(database_url) as store:
            entries = list_approvers(store.engine, _existing_org(store, org))
        if not entries:
            typer.echo(f"no approvers for organisation {org!r}", err=True)
            return
        typer.echo(f"{'IDENTITY':<32}  {'ADDED':<20}  ADDED BY")
        for entry in entries:
            typer.echo(
                f"{entry.identity:<32}  {entry.added_at:%Y-%m-%d %H:%M:%S}     {entry.added_by}"
            )

    return approvers


def _existing_org(store: SQLStorage, name: str) -> str:
    org_id = find_org(store.engine, name)
    if org_id is None:
        fail(f"no organisation {name!r}: `governor keys list` shows the organisations' keys")
    return org_id
