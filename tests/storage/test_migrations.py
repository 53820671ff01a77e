"""The schema comes from Alembic: created on first use, once, matching `models.py`, reversible."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from governor_server import models as server_models  # noqa: F401  (registers the server tables)
from sqlalchemy import create_engine, inspect, text

from governor.errors import StorageError
from governor.storage import AuditRecord, SQLStorage
from governor.storage._migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from governor.storage.models import VERSION_TABLE, Base
from tests.storage.conftest import postgres_url, sqlite_url

TABLES = {
    "governor_executions",
    "governor_snapshots",
    "governor_events",
    "governor_audit_records",
    "governor_approvals",
    "governor_rate_limit_keys",
    "governor_rate_limit_calls",
    "governor_budget_usage",
    "governor_budget_reservations",
    "governor_budget_daily_totals",
    "governor_orgs",
    "governor_api_keys",
    "governor_org_approvers",
    "governor_decisions",
    "governor_confirmations",
    "governor_budget_limits",
    "governor_tools",
    "governor_decision_daily_counts",
    VERSION_TABLE,
}
SERVER_TABLES = {
    "governor_orgs",
    "governor_api_keys",
    "governor_org_approvers",
    "governor_decisions",
    "governor_confirmations",
    "governor_budget_limits",
    "governor_tools",
    "governor_decision_daily_counts",
}
TABLES_0001 = (
    TABLES
    - SERVER_TABLES
    - {
        "governor_approvals",
        "governor_budget_usage",
        "governor_budget_reservations",
        "governor_budget_daily_totals",
    }
)


def test_the_migrations_ship_inside_the_package() -> None:
    package = Path(__file__).resolve().parents[2] / "governor" / "storage"
    assert package / "migrations" == MIGRATIONS_DIR
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert head_revision() == "0008"


def test_first_use_creates_the_schema_at_head(tmp_path: Path) -> None:
    store = SQLStorage(sqlite_url(tmp_path))
    assert set(inspect(store.engine).get_table_names()) == TABLES
    with store.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    store.close()


def test_the_indexes_cover_what_is_filtered(tmp_path: Path) -> None:
    store = SQLStorage(sqlite_url(tmp_path))
    inspector = inspect(store.engine)

    def indexed(table: str) -> list[list[str | None]]:
        return [index["column_names"] for index in inspector.get_indexes(table)]

    assert ["status", "created_at"] in indexed("governor_executions")
    assert ["function_name", "created_at"] in indexed("governor_executions")
    assert ["created_at"] in indexed("governor_executions")
    assert ["execution_id", "timestamp"] in indexed("governor_events")
    assert ["execution_id"] in indexed("governor_audit_records")
    assert ["timestamp"] in indexed("governor_audit_records")
    assert ["key", "at"] in indexed("governor_rate_limit_calls")
    assert ["expires_at"] in indexed("governor_rate_limit_keys")
    assert ["key", "created_at", "amount"] in indexed("governor_budget_usage")
    assert ["org_id", "created_at"] in indexed("governor_budget_usage")
    assert ["key", "expires_at"] in indexed("governor_budget_reservations")
    assert ["status", "expires_at"] in indexed("governor_budget_reservations")
    assert ["org_id", "created_at"] in indexed("governor_decisions")
    assert ["org_id", "user_id", "created_at"] in indexed("governor_decisions")
    assert ["org_id", "tool", "created_at"] in indexed("governor_decisions")
    assert ["org_id", "tool_call", "created_at"] in indexed("governor_decisions")
    store.close()


def test_a_store_at_head_does_not_migrate_again(tmp_path: Path) -> None:
    SQLStorage(sqlite_url(tmp_path)).close()
    store = SQLStorage(sqlite_url(tmp_path))
    upgrade_to_head(store.engine, store.engine)
    with store.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    assert [tuple(row) for row in rows] == [(head_revision(),)]
    store.close()


def test_threads_racing_on_a_fresh_file_migrate_it_once(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []
    stores: list[SQLStorage] = []

    def open_store() -> None:
        try:
            barrier.wait()
            stores.append(SQLStorage(sqlite_url(tmp_path)))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(inspect(stores[0].engine).get_table_names()) == TABLES
    for store in stores:
        store.close()


def test_the_applications_own_alembic_version_table_is_left_alone(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('app_rev_42')"))
    engine.dispose()
    store = SQLStorage(sqlite_url(tmp_path))
    with store.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "app_rev_42"
        )
    store.close()


def test_downgrade_to_base_and_back_up(tmp_path: Path) -> None:
    store = SQLStorage(sqlite_url(tmp_path))
    config = alembic_config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(store.engine).get_table_names()) == {VERSION_TABLE}
    upgrade_to_head(store.engine, store.engine)
    assert set(inspect(store.engine).get_table_names()) == TABLES
    store.close()


def test_a_0001_database_with_data_upgrades_to_head_and_back(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    engine = create_engine(url)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    engine.dispose()
    old = SQLStorage(url, migrate=False)
    old.append_audit_record(AuditRecord(action="call", decision="allow"))
    old.close()

    store = SQLStorage(url)  # migrates 0001 -> head, keeping the data
    assert set(inspect(store.engine).get_table_names()) == TABLES
    assert store.verify_audit_chain() is None
    assert len(store.list_audit_records()) == 1
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
    assert set(inspect(store.engine).get_table_names()) == TABLES_0001
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_migrated_schema_matches_the_models(kind: str, tmp_path: Path) -> None:
    url = sqlite_url(tmp_path) if kind == "sqlite" else postgres_url()
    store = SQLStorage(url)
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        differences = compare_metadata(context, Base.metadata)
    store.close()
    assert differences == [], "models.py and the migrations disagree: add a revision"


def test_a_database_migrated_by_a_newer_governor_is_refused_clearly(tmp_path: Path) -> None:
    SQLStorage(sqlite_url(tmp_path)).close()
    engine = create_engine(sqlite_url(tmp_path))
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(StorageError, match="revision '0099'.*newer governor"):
        SQLStorage(sqlite_url(tmp_path))
