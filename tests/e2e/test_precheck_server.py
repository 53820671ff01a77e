"""The precheck server over HTTP, end to end: health, precheck/postcheck on the development
bundle, keys and roles, error bodies, and decisions recorded per organisation."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from governor_server import Settings, create_app
from governor_server.decisions import list_decisions
from governor_server.keys import authenticate, create_key

from governor.storage import SQLStorage
from tests.e2e.conftest import LiveServer, free_port, serving

SIMPLE_FIELDS = {"decision", "reasons", "raw_text_out", "policy_id", "ts"}
FULL_FIELDS = {"decision", "reasons", "metadata", "requiresConfirmation", "confirmationUrl"}


def precheck(server: LiveServer, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    with server.client(key or server.app_key) as client:
        return client.post("/api/v1/precheck", json=body)


def test_health_is_public_and_names_engine_bundle_and_database(live_server: LiveServer) -> None:
    with live_server.client() as client:
        response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["services"] == {"database": "ok", "engine": "ok"}
    assert body["engine"] == "regorus"
    assert body["bundle_revision"] == "development-1"
    assert isinstance(body["timestamp"], str) and isinstance(body["version"], str)


def test_health_is_503_with_the_same_body_when_the_database_is_gone(tmp_path: Path) -> None:
    directory = tmp_path / "gone"
    port = free_port()
    app = create_app(Settings(database_url=f"sqlite:///{directory / 'governor.db'}", port=port))
    with serving(app, port) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/api/v1/health").json()["status"] == "healthy"
        app.state.governor.store.engine.dispose()  # no pooled connection survives
        shutil.rmtree(directory)  # and no new one can be opened
        response = client.get("/api/v1/health")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["services"] == {"database": "unavailable", "engine": "ok"}
    assert isinstance(body["timestamp"], str) and isinstance(body["version"], str)


def test_plain_chat_text_is_allowed_and_echoed(live_server: LiveServer) -> None:
    response = precheck(
        live_server,
        {
            "tool": "model.chat",
            "scope": "net.external",
            "raw_text": "Summarise my last invoice, please.",
            "payload": {"messages": [], "provider": "openai"},
            "tags": ["chat", "model"],
            "user_id": "alice",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= SIMPLE_FIELDS | FULL_FIELDS
    assert body["decision"] == "allow"
    assert body["reasons"] == []
    assert body["raw_text_out"] == "Summarise my last invoice, please."
    assert body["requiresConfirmation"] is False and body["confirmationUrl"] is None
    assert body["policy_id"] == "development-1" and body["metadata"]["policyId"] == "development-1"


def test_pii_is_redacted_in_raw_text_out_and_never_echoed(live_server: LiveServer) -> None:
    text = "I'm Alice (alice@example.com), SSN 123-45-6789, card 4111 1111 1111 1111."
    response = precheck(live_server, {"tool": "model.chat", "raw_text": text})  # minimal body
    assert response.status_code == 200
    body = response.json()
    assert body["decision"] == "redact"
    assert body["raw_text_out"] == (
        "I'm Alice ([REDACTED_EMAIL]), SSN [REDACTED_US_SSN], card [REDACTED_CREDIT_CARD]."
    )
    assert body["reasons"] == [
        "pii.redacted:credit_card",
        "pii.redacted:email",
        "pii.redacted:us_ssn",
    ]
    for secret in ("alice@example.com", "123-45-6789", "4111"):
        assert secret not in response.text.replace(text, "")
        assert secret not in str(body["metadata"]) and secret not in str(body["reasons"])


def test_payment_tools_need_confirmation(live_server: LiveServer) -> None:
    response = precheck(
        live_server,
        {
            "tool": "payments.transfer",
            "scope": "net.external",
            "raw_text": "Tool call: payments.transfer",
            "payload": {"args": {"amount": 10}},
            "tags": ["tool_call"],
            "user_id": "bob",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["decision"] == "confirm"
    assert body["requiresConfirmation"] is True
    assert body["reasons"] == ["precheck.tool_requires_confirmation:payments.transfer"]
    assert body["metadata"]["approval"]["approvers"] == ["admin"]


def test_shell_exec_is_denied_with_200_and_no_text(live_server: LiveServer) -> None:
    response = precheck(
        live_server, {"tool": "shell.exec", "raw_text": "Tool call: shell.exec", "scope": None}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["decision"] == "deny"
    assert body["reasons"] == ["precheck.tool_denied:shell.exec"]
    assert body["raw_text_out"] == ""


def test_postcheck_redacts_the_models_output(live_server: LiveServer) -> None:
    with live_server.client(live_server.app_key) as client:
        response = client.post(
            "/api/v1/postcheck",
            json={
                "tool": "model.chat",
                "raw_text": "Reach Bob at bob@example.org.",
                "corr_id": "c1",
            },
        )
    assert response.status_code == 200
    body = response.json()
    assert body["decision"] == "redact"
    assert body["raw_text_out"] == "Reach Bob at [REDACTED_EMAIL]."


@pytest.mark.parametrize(
    ("key", "code"),
    [(None, "missing_api_key"), ("", "missing_api_key"), ("gk_00000000_nope", "invalid_api_key")],
)
def test_a_missing_or_unknown_key_gets_401_with_a_message(
    live_server: LiveServer, key: str | None, code: str
) -> None:
    with live_server.client(key) as client:
        response = client.post("/api/v1/precheck", json={"tool": "model.chat", "raw_text": "hi"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == code
    assert "governor keys" in response.json()["message"]


def test_an_approver_key_may_not_precheck(live_server: LiveServer) -> None:
    response = precheck(
        live_server, {"tool": "model.chat", "raw_text": "hi"}, live_server.approver_key
    )
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "role" in response.json()["message"]


def test_an_admin_key_may_precheck(live_server: LiveServer) -> None:
    response = precheck(
        live_server, {"tool": "model.chat", "raw_text": "hi"}, live_server.admin_key
    )
    assert response.status_code == 200


def test_a_missing_field_is_422_naming_the_field(live_server: LiveServer) -> None:
    response = precheck(live_server, {"raw_text": "hi"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert "tool" in body["message"]
    assert body["detail"][0]["field"] == "tool"


def test_a_wrongly_typed_field_is_422_without_echoing_the_value(live_server: LiveServer) -> None:
    response = precheck(live_server, {"tool": "model.chat", "raw_text": "hi", "tags": "secret-1"})
    assert response.status_code == 422
    assert "tags" in response.json()["message"]
    assert "secret-1" not in response.text


def test_invalid_json_is_400_with_a_message(live_server: LiveServer) -> None:
    with live_server.client(live_server.app_key) as client:
        response = client.post(
            "/api/v1/precheck",
            content=b'{"tool": ',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
    assert "JSON" in response.json()["message"]


def test_unknown_paths_and_trailing_slashes_are_json_404_not_redirects(
    live_server: LiveServer,
) -> None:
    with live_server.client(live_server.app_key) as client:
        slash = client.post("/api/v1/precheck/", json={"tool": "t", "raw_text": ""})
        wrong_method = client.get("/api/v1/precheck")
    assert slash.status_code == 404 and "not found" in slash.json()["message"]
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"


def test_decisions_are_recorded_under_the_keys_organisation_only(live_server: LiveServer) -> None:
    response = precheck(
        live_server,
        {"tool": "model.chat", "raw_text": "only for other", "user_id": "carol", "corr_id": "x-1"},
        live_server.other_app_key,
    )
    assert response.status_code == 200
    store = SQLStorage(live_server.database_url)
    try:
        other = authenticate(store.engine, live_server.other_app_key)
        default = authenticate(store.engine, live_server.app_key)
        assert other is not None and default is not None
        recorded = list_decisions(store.engine, other.org_id)
        assert [(d.user_id, d.tool, d.decision, d.corr_id) for d in recorded] == [
            ("carol", "model.chat", "allow", "x-1")
        ]
        assert recorded[0].policy_revision == "development-1"
        assert recorded[0].id == response.json()["metadata"]["decisionId"]
        assert all(d.user_id != "carol" for d in list_decisions(store.engine, default.org_id))
        assert list_decisions(store.engine, "no-such-org") == []
    finally:
        store.close()


def test_a_request_without_user_id_is_recorded_under_the_keys_default_user(
    live_server: LiveServer,
) -> None:
    store = SQLStorage(live_server.database_url)
    try:
        key, info = create_key(store.engine, "third", "app")
        assert (
            precheck(live_server, {"tool": "model.chat", "raw_text": "hi"}, key).status_code == 200
        )
        principal = authenticate(store.engine, key)
        assert principal is not None
        [entry] = list_decisions(store.engine, principal.org_id)
        assert entry.user_id == f"key:{info.prefix}"
    finally:
        store.close()
