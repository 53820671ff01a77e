"""Alembic environment of the governor store.

Normally run by `SQLStorage` itself (`governor.storage._migrate.upgrade_to_head`), which passes its
own connection in `config.attributes["connection"]`, already inside a locked transaction. Run by
hand, the URL comes from the `sqlalchemy.url` option or `GOVERNOR_DATABASE_URL`.
"""

from __future__ import annotations

import contextlib
import os

from alembic import context
from sqlalchemy import create_engine, pool

from governor.storage.models import VERSION_TABLE, Base

# The precheck server's tables are declared on the same metadata (revision 0003 onwards).
with contextlib.suppress(ImportError):  # a wheel without the server package
    import governor_server.models  # noqa: F401

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("GOVERNOR_DATABASE_URL")
    if not url:
        raise RuntimeError(
            "no database URL: set GOVERNOR_DATABASE_URL or the sqlalchemy.url option"
        )
    return url


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_offline() -> None:
    """Emit the SQL to stdout (`alembic upgrade head --sql`)."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run against the connection handed in by the store, or a fresh one."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
