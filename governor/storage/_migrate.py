"""Bringing a database to the newest schema with Alembic, safely from many processes at once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, func, select

from governor.errors import StorageError
from governor.storage.models import VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported inside the functions: most processes find the schema at head and never
# need more of it than the version check, so `import governor` stays light.

#: The Alembic script directory; inside the package, so it ships in the wheel.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: PostgreSQL advisory lock held while migrating (any stable 64-bit number of our own).
MIGRATION_LOCK_ID = 0x676F765F6D696772  # "gov_migr"


def alembic_config() -> Config:
    """Return an Alembic `Config` for the store's migrations (no ini file needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    return config


def head_revision() -> str:
    """Return the newest revision id shipped with this version of governor."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    """Return every revision id shipped with this version of governor."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


def current_revision(conn: Connection) -> str | None:
    """Return the database's revision, or None for a database governor never touched."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade_to_head(read_engine: Engine, write_engine: Engine) -> None:
    """Run `alembic upgrade head` unless the database is already there.

    `write_engine` must begin transactions that exclude other writers (SQLite: BEGIN IMMEDIATE);
    on PostgreSQL an advisory lock is taken too. The whole upgrade runs in that one transaction,
    so processes that start together on a fresh database migrate it once, and the others then
    find it at head.
    """
    head = head_revision()
    with read_engine.connect() as conn:
        if current_revision(conn) == head:
            return
    with write_engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_ID)))
        current = current_revision(conn)
        if current == head:
            return
        if current is not None and current not in known_revisions():
            raise StorageError(
                f"the database's governor schema is at revision {current!r}, which this version "
                f"of governor does not know (its newest is {head!r}): a newer governor migrated "
                "it. Upgrade governor here, or point GOVERNOR_DATABASE_URL at another database"
            )
        from alembic import command

        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
