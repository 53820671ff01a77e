"""`governor serve`'s first start: the default organisation and its keys, shown once."""

from __future__ import annotations

from pathlib import Path

from governor_cli.commands.serve import first_start_message
from governor_server.keys import authenticate, bootstrap

from governor.storage import SQLStorage


def test_bootstrap_creates_the_default_org_once(tmp_path: Path) -> None:
    store = SQLStorage(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        created = bootstrap(store.engine)
        assert created is not None
        admin = authenticate(store.engine, created.admin_key)
        app = authenticate(store.engine, created.app_key)
        assert admin is not None and admin.role == "admin" and admin.org_name == "default"
        assert app is not None and app.role == "app" and app.org_id == admin.org_id
        assert bootstrap(store.engine) is None
    finally:
        store.close()


def test_the_first_start_message_has_both_keys_and_a_curl_precheck() -> None:
    message = first_start_message("http://127.0.0.1:8000", "gk_a_admin", "gk_b_app")
    assert "gk_a_admin" in message and "gk_b_app" in message
    assert "curl -s -X POST http://127.0.0.1:8000/api/v1/precheck" in message
    assert "'X-Governs-Key: gk_b_app'" in message
