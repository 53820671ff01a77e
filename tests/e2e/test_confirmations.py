"""Confirmations over HTTP, end to end (wire protocol §4.11-§4.13a, and §4.5's confirm):
create, status, cancel, expiry, approve/reject by listed approver keys only (the organisation's
approver list and the confirmation's own approvers), the approver list kept by admin keys,
organisation isolation, deciding twice, and a confirm precheck whose URL resolves to its pending
confirmation."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from governor_server.confirmations import (
    ConfirmationConflict,
    Decider,
    create_confirmation,
    decide_confirmation,
    get_confirmation,
)
from governor_server.keys import add_approvers, authenticate, create_key, ensure_org, hash_key
from sqlalchemy import text

from governor.storage import SQLStorage
from tests.e2e.conftest import APPROVER, LiveServer

#: Every key of the §4.12 status object the SDK reads.
STATUS_FIELDS = {"correlationId", "status", "approved", "approvedAt", "rejectedAt", "expiresAt"}


def _request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "requestType": "tool_call",
        "requestDesc": "Transfer 10 USD to ACME",
        "requestPayload": {"tool": "payments.transfer", "args": {"amount": 10}},
        "reasons": ["precheck.tool_requires_confirmation:payments.transfer"],
        "userId": "alice",
        "correlationId": None,  # as the SDK sends it when none is given
    }
    body.update(overrides)
    return body


def create(server: LiveServer, key: str | None = None, **overrides: Any) -> httpx.Response:
    with server.client(key or server.app_key) as client:
        return client.post("/confirmation", json=_request(**overrides))


def created_id(server: LiveServer, **overrides: Any) -> str:
    response = create(server, **overrides)
    assert response.status_code == 201, response.text
    correlation_id: str = response.json()["correlationId"]
    return correlation_id


def call(server: LiveServer, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with server.client(key) as client:
        return client.request(method, path, **kwargs)


def approver_key(
    server: LiveServer, identity: str, *, org: str = "default", listed: bool = True
) -> str:
    """A new approver key acting for `identity`, put on `org`'s approver list if `listed`."""
    store = SQLStorage(server.database_url)
    try:
        key, _ = create_key(store.engine, org, "approver", identity)
        if listed:
            add_approvers(store.engine, ensure_org(store.engine, org)[0], [identity], "test")
    finally:
        store.close()
    return key


def status_of(server: LiveServer, correlation_id: str) -> dict[str, Any]:
    response = call(server, server.app_key, "GET", f"/confirmation/{correlation_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def parse(stamp: str) -> datetime:
    assert stamp.endswith("Z")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_create_answers_201_pending_with_a_generated_id_url_and_expiry(
    live_server: LiveServer,
) -> None:
    before = datetime.now(UTC)
    response = create(live_server)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending" and body["approved"] is False
    correlation_id = body["correlationId"]
    assert correlation_id.startswith("cf_") and len(correlation_id) > 20
    assert body["confirmationUrl"] == f"{live_server.url}/confirmation/{correlation_id}"
    expires = parse(body["expiresAt"])
    assert before + timedelta(minutes=59) < expires < before + timedelta(minutes=61)
    assert body["userId"] == "alice" and body["requestType"] == "tool_call"
    assert body["requestPayload"] == {"tool": "payments.transfer", "args": {"amount": 10}}
    assert body["decidedBy"] is None
    assert created_id(live_server) != correlation_id


def test_status_is_the_top_level_object_the_sdk_reads(live_server: LiveServer) -> None:
    correlation_id = created_id(live_server)
    response = call(live_server, live_server.app_key, "GET", f"/confirmation/{correlation_id}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= STATUS_FIELDS
    assert body["correlationId"] == correlation_id
    assert (body["status"], body["approved"]) == ("pending", False)
    assert body["approvedAt"] is None and body["rejectedAt"] is None
    # approvers may read it too
    approver = call(live_server, live_server.approver_key, "GET", f"/confirmation/{correlation_id}")
    assert approver.status_code == 200 and approver.json()["status"] == "pending"


def test_a_given_correlation_id_is_used_and_a_duplicate_is_409(live_server: LiveServer) -> None:
    first = create(live_server, correlationId="order-42:pay.1")
    assert first.status_code == 201 and first.json()["correlationId"] == "order-42:pay.1"
    again = create(live_server, correlationId="order-42:pay.1")
    assert again.status_code == 409
    assert again.json()["error"] == "confirmation_exists"
    assert "already exists" in again.json()["message"]
    # the same id in another organisation is that organisation's own
    other = create(live_server, live_server.other_app_key, correlationId="order-42:pay.1")
    assert other.status_code == 201


@pytest.mark.parametrize("bad", ["has space", "a/b", "x" * 129, ""])
def test_a_correlation_id_that_cannot_travel_in_a_path_is_422(
    live_server: LiveServer, bad: str
) -> None:
    response = create(live_server, correlationId=bad)
    assert response.status_code == 422
    assert "correlationId" in response.json()["message"]


def test_a_missing_field_is_422_naming_it(live_server: LiveServer) -> None:
    body = _request()
    del body["requestType"]
    response = call(live_server, live_server.app_key, "POST", "/confirmation", json=body)
    assert response.status_code == 422
    assert "requestType" in response.json()["message"]


def test_cancel_sets_cancelled_and_only_once(live_server: LiveServer) -> None:
    correlation_id = created_id(live_server)
    path = f"/confirmation/{correlation_id}"
    # the SDK's DELETE carries a JSON content type and no body
    cancelled = call(
        live_server, live_server.app_key, "DELETE", path,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["approved"] is False
    assert cancelled.json()["cancelledAt"] is not None
    status = call(live_server, live_server.app_key, "GET", path).json()
    assert status["status"] == "cancelled"
    assert status["decidedBy"]["role"] == "app"
    again = call(live_server, live_server.app_key, "DELETE", path)
    assert again.status_code == 409 and "cancelled" in again.json()["message"]
    approve = call(live_server, live_server.approver_key, "POST", f"{path}/approve")
    assert approve.status_code == 409


def test_a_pending_confirmation_expires_on_read(live_server: LiveServer) -> None:
    response = create(live_server, expiresInSeconds=0.4)
    assert response.status_code == 201 and response.json()["status"] == "pending"
    correlation_id = response.json()["correlationId"]
    path = f"/confirmation/{correlation_id}"
    time.sleep(0.6)
    status = call(live_server, live_server.app_key, "GET", path)
    assert status.status_code == 200
    body = status.json()
    assert (body["status"], body["approved"]) == ("expired", False)
    assert parse(body["expiresAt"]) < datetime.now(UTC)
    approve = call(live_server, live_server.approver_key, "POST", f"{path}/approve")
    assert approve.status_code == 409
    assert approve.json()["error"] == "confirmation_not_pending"
    assert "expired" in approve.json()["message"]
    assert call(live_server, live_server.app_key, "DELETE", path).status_code == 409


@pytest.mark.parametrize("seconds", [0, -1, 8 * 24 * 3600])
def test_an_expiry_out_of_range_is_422(live_server: LiveServer, seconds: float) -> None:
    response = create(live_server, expiresInSeconds=seconds)
    assert response.status_code == 422 and "expiresInSeconds" in response.json()["message"]


def test_expiry_at_an_explicit_time_in_the_service(live_server: LiveServer) -> None:
    store = SQLStorage(live_server.database_url)
    try:
        principal = authenticate(store.engine, live_server.app_key)
        assert principal is not None
        start = datetime(2030, 1, 1, tzinfo=UTC)
        entry = create_confirmation(
            store.engine,
            org_id=principal.org_id,
            user_id="alice",
            created_by_key=principal.key_prefix,
            request_type="tool_call",
            request_desc="d",
            ttl_seconds=60,
            now=start,
        )
        stored = get_confirmation(store.engine, principal.org_id, entry.correlation_id)
        assert stored.status_at(start + timedelta(seconds=59)) == "pending"
        assert stored.status_at(start + timedelta(seconds=60)) == "expired"
        with pytest.raises(ConfirmationConflict, match="expired"):
            decide_confirmation(
                store.engine,
                principal.org_id,
                entry.correlation_id,
                approve=True,
                decider=Decider("gk_test", "approver", identity=APPROVER),
                now=start + timedelta(seconds=61),
            )
    finally:
        store.close()


def test_an_approver_key_approves_and_is_recorded_as_the_approver(
    live_server: LiveServer,
) -> None:
    correlation_id = created_id(live_server)
    path = f"/confirmation/{correlation_id}"
    response = call(
        live_server,
        live_server.approver_key,
        "POST",
        f"{path}/approve",
        json={"approver": "someone-else", "reason": "invoice checked"},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["approved"]) == ("approved", True)
    assert body["approvedAt"] is not None and body["rejectedAt"] is None
    prefix = live_server.approver_key[: len("gk_") + 8]  # the rest may contain "_"
    assert body["decidedBy"] == {"keyPrefix": prefix, "role": "approver", "identity": APPROVER}
    assert body["decisionReason"] == "invoice checked"
    assert "someone-else" not in response.text
    status = call(live_server, live_server.app_key, "GET", path).json()
    assert status["approved"] is True and status["decidedBy"]["keyPrefix"] == prefix


def test_an_approver_key_rejects_with_an_optional_note_or_no_body(
    live_server: LiveServer,
) -> None:
    first = created_id(live_server)
    noted = call(
        live_server, live_server.approver_key, "POST", f"/confirmation/{first}/reject",
        json={"note": "not this month"},
    )  # fmt: skip
    assert noted.status_code == 200
    assert noted.json()["status"] == "rejected" and noted.json()["approved"] is False
    assert noted.json()["rejectedAt"] is not None and noted.json()["approvedAt"] is None
    assert noted.json()["decisionReason"] == "not this month"
    second = created_id(live_server)
    bare = call(
        live_server, live_server.admin_key, "POST", f"/confirmation/{second}/reject",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert bare.status_code == 200 and bare.json()["status"] == "rejected"
    assert bare.json()["decidedBy"]["role"] == "admin" and bare.json()["decisionReason"] is None


def test_an_admin_key_may_approve(live_server: LiveServer) -> None:
    correlation_id = created_id(live_server)
    response = call(
        live_server, live_server.admin_key, "POST", f"/confirmation/{correlation_id}/approve"
    )
    assert response.status_code == 200 and response.json()["decidedBy"]["role"] == "admin"


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_an_app_key_may_not_decide(live_server: LiveServer, action: str) -> None:
    correlation_id = created_id(live_server)
    response = call(
        live_server, live_server.app_key, "POST", f"/confirmation/{correlation_id}/{action}"
    )
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden" and "approver" in response.json()["message"]
    status = call(live_server, live_server.app_key, "GET", f"/confirmation/{correlation_id}")
    assert status.json()["status"] == "pending"


def test_an_approver_key_may_not_create_or_cancel(live_server: LiveServer) -> None:
    assert create(live_server, live_server.approver_key).status_code == 403
    correlation_id = created_id(live_server)
    response = call(
        live_server, live_server.approver_key, "DELETE", f"/confirmation/{correlation_id}"
    )
    assert response.status_code == 403


def test_deciding_twice_is_409_with_a_message(live_server: LiveServer) -> None:
    correlation_id = created_id(live_server)
    path = f"/confirmation/{correlation_id}"
    assert call(live_server, live_server.approver_key, "POST", f"{path}/approve").status_code == 200
    for action in ("approve", "reject"):
        again = call(live_server, live_server.approver_key, "POST", f"{path}/{action}")
        assert again.status_code == 409
        body = again.json()
        assert body["error"] == "confirmation_not_pending"
        assert "approved" in body["message"] and "not pending" in body["message"]
    assert call(live_server, live_server.app_key, "GET", path).json()["status"] == "approved"


def test_racing_deciders_have_exactly_one_winner(live_server: LiveServer) -> None:
    correlation_id = created_id(live_server)
    path = f"/confirmation/{correlation_id}"
    actions = ["approve", "reject"] * 6

    def decide(action: str) -> int:
        return call(live_server, live_server.approver_key, "POST", f"{path}/{action}").status_code

    with ThreadPoolExecutor(len(actions)) as pool:
        codes = list(pool.map(decide, actions))
    assert sorted(codes) == [200] + [409] * (len(actions) - 1)
    winner = actions[codes.index(200)]
    status = call(live_server, live_server.app_key, "GET", path).json()
    assert status["status"] == {"approve": "approved", "reject": "rejected"}[winner]


def test_another_organisations_confirmation_is_not_found(live_server: LiveServer) -> None:
    correlation_id = created_id(live_server)
    path = f"/confirmation/{correlation_id}"
    other_approver = approver_key(live_server, "other-approver", org="other")
    for key, method, suffix in [
        (live_server.other_app_key, "GET", ""),
        (live_server.other_app_key, "DELETE", ""),
        (other_approver, "POST", "/approve"),
        (other_approver, "POST", "/reject"),
    ]:
        response = call(live_server, key, method, path + suffix)
        assert response.status_code == 404, (method, suffix)
        assert response.json()["error"] == "confirmation_not_found"
        assert response.json()["message"] == f"Confirmation not found: {correlation_id}"
        assert "not found" in response.json()["message"]
    # untouched in its own organisation
    assert call(live_server, live_server.app_key, "GET", path).json()["status"] == "pending"


def test_an_unknown_id_is_404_and_a_missing_key_401(live_server: LiveServer) -> None:
    response = call(live_server, live_server.app_key, "GET", "/confirmation/cf_nope")
    assert response.status_code == 404 and "not found" in response.json()["message"]
    with live_server.client() as client:
        assert client.get("/confirmation/cf_nope").status_code == 401
        assert client.post("/confirmation", json=_request()).status_code == 401


def test_a_confirm_precheck_returns_a_url_that_resolves_to_the_pending_confirmation(
    live_server: LiveServer,
) -> None:
    with live_server.client(live_server.app_key) as client:
        response = client.post(
            "/api/v1/precheck",
            json={
                "tool": "payments.transfer",
                "scope": "net.external",
                "raw_text": "Tool call: payments.transfer to bob@example.com",
                "payload": {"args": {"amount": 10, "iban": "DE00123"}},
                "tags": ["tool_call"],
                "user_id": "bob",
                "corr_id": "trace-7",
            },
        )
    assert response.status_code == 200
    body = response.json()
    assert body["decision"] == "confirm" and body["requiresConfirmation"] is True
    correlation_id = body["metadata"]["correlationId"]
    assert isinstance(correlation_id, str) and correlation_id != "trace-7"
    url = body["confirmationUrl"]
    assert url == f"{live_server.url}/confirmation/{correlation_id}"
    assert url.endswith(correlation_id)

    with httpx.Client(headers={"X-Governs-Key": live_server.approver_key}, timeout=10) as client:
        status = client.get(url)
    assert status.status_code == 200
    confirmation = status.json()
    assert confirmation["correlationId"] == correlation_id
    assert (confirmation["status"], confirmation["approved"]) == ("pending", False)
    assert confirmation["userId"] == "bob"
    assert confirmation["requestType"] == "tool_call"
    assert confirmation["decisionId"] == body["metadata"]["decisionId"]
    assert confirmation["reasons"] == body["reasons"]
    assert confirmation["approvers"] == ["admin"]
    assert confirmation["expiresAt"] == body["metadata"]["expiresAt"]
    expires = parse(confirmation["expiresAt"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    # what the approver sees is the redacted text, never the request's PII or arguments
    assert "bob@example.com" not in status.text and "DE00123" not in status.text
    assert confirmation["requestPayload"]["text"] == (
        "Tool call: payments.transfer to [REDACTED_EMAIL]"
    )
    assert "bob@example.com" not in response.text

    with httpx.Client(headers={"X-Governs-Key": live_server.approver_key}, timeout=10) as client:
        approved = client.post(f"{url}/approve")
    assert approved.status_code == 200 and approved.json()["approved"] is True


def test_a_non_confirm_precheck_creates_no_confirmation(live_server: LiveServer) -> None:
    with live_server.client(live_server.app_key) as client:
        response = client.post("/api/v1/precheck", json={"tool": "model.chat", "raw_text": "hi"})
    body = response.json()
    assert body["decision"] == "allow" and body["confirmationUrl"] is None
    assert "correlationId" not in body["metadata"]


# -- who may decide: the organisation's approver list, the confirmation's approvers ----------


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_an_approver_not_on_the_list_gets_403_and_nothing_changes(
    live_server: LiveServer, action: str
) -> None:
    mallory = approver_key(live_server, "mallory@example.org", listed=False)
    correlation_id = created_id(live_server)
    response = call(
        live_server, mallory, "POST", f"/confirmation/{correlation_id}/{action}",
        json={"reason": "trust me"},
    )  # fmt: skip
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "approver_not_allowed"
    assert "'mallory@example.org'" in body["message"] and "approver list" in body["message"]
    assert "governor keys approvers add --org default mallory@example.org" in body["message"]
    status = status_of(live_server, correlation_id)
    assert (status["status"], status["decidedBy"], status["decisionReason"]) == (
        "pending",
        None,
        None,
    )
    # an unlisted approver learns nothing about which ids exist either
    unknown = call(live_server, mallory, "POST", f"/confirmation/cf_nope/{action}")
    assert unknown.status_code == 403 and unknown.json()["error"] == "approver_not_allowed"


def test_an_approver_key_without_identity_is_never_allowed(live_server: LiveServer) -> None:
    # a key created before approver identities existed (revision 0008) has none
    legacy = approver_key(live_server, "legacy-approver")
    store = SQLStorage(live_server.database_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(
                text("UPDATE governor_api_keys SET identity = NULL WHERE key_hash = :h"),
                {"h": hash_key(legacy)},
            )
    finally:
        store.close()
    correlation_id = created_id(live_server)
    response = call(live_server, legacy, "POST", f"/confirmation/{correlation_id}/approve")
    assert response.status_code == 403
    assert response.json()["error"] == "approver_not_allowed"
    assert "has no identity" in response.json()["message"]
    assert status_of(live_server, correlation_id)["status"] == "pending"


def test_admins_keep_the_approver_list_over_http(live_server: LiveServer) -> None:
    dana = approver_key(live_server, "dana@example.org", listed=False)
    first, second = created_id(live_server), created_id(live_server)
    admin = live_server.admin_key
    assert call(live_server, dana, "POST", f"/confirmation/{first}/approve").status_code == 403

    added = call(live_server, admin, "PUT", "/api/v1/approvers/dana@example.org")
    assert added.status_code == 200
    entry = next(a for a in added.json()["approvers"] if a["identity"] == "dana@example.org")
    assert entry["addedBy"] == admin[: len("gk_") + 8] and parse(entry["addedAt"])
    again = call(live_server, admin, "PUT", "/api/v1/approvers/dana@example.org")  # idempotent
    assert again.status_code == 200 and again.json() == added.json()
    listed = call(live_server, admin, "GET", "/api/v1/approvers").json()["approvers"]
    assert {"dana@example.org", APPROVER} <= {a["identity"] for a in listed}

    approved = call(live_server, dana, "POST", f"/confirmation/{first}/approve")
    assert approved.status_code == 200
    assert approved.json()["decidedBy"]["identity"] == "dana@example.org"

    removed = call(live_server, admin, "DELETE", "/api/v1/approvers/dana@example.org")
    assert removed.status_code == 200
    assert "dana@example.org" not in {a["identity"] for a in removed.json()["approvers"]}
    refused = call(live_server, dana, "POST", f"/confirmation/{second}/reject")
    assert refused.status_code == 403 and refused.json()["error"] == "approver_not_allowed"
    assert status_of(live_server, second)["status"] == "pending"
    gone = call(live_server, admin, "DELETE", "/api/v1/approvers/dana@example.org")
    assert gone.status_code == 404 and gone.json()["error"] == "approver_not_found"
    assert "not found" in gone.json()["message"]


def test_the_approver_list_is_for_admin_keys_only_and_per_organisation(
    live_server: LiveServer,
) -> None:
    for key in (live_server.app_key, live_server.approver_key):
        for method, path in [
            ("GET", "/api/v1/approvers"),
            ("PUT", "/api/v1/approvers/eve"),
            ("DELETE", f"/api/v1/approvers/{APPROVER}"),
        ]:
            response = call(live_server, key, method, path)
            assert response.status_code == 403, (method, path)
            assert response.json()["error"] == "forbidden"
    with live_server.client() as client:
        assert client.get("/api/v1/approvers").status_code == 401
    store = SQLStorage(live_server.database_url)
    try:
        other_admin, _ = create_key(store.engine, "other", "admin")
    finally:
        store.close()
    theirs = call(live_server, other_admin, "GET", "/api/v1/approvers").json()["approvers"]
    assert APPROVER not in {a["identity"] for a in theirs}
    # the default organisation's approver is not another organisation's to remove
    assert call(
        live_server, other_admin, "DELETE", f"/api/v1/approvers/{APPROVER}"
    ).status_code == (404)


@pytest.mark.parametrize("bad", ["has space", "x" * 256, "semi;colon", "née"])
def test_an_invalid_identity_is_422_naming_it(live_server: LiveServer, bad: str) -> None:
    response = call(live_server, live_server.admin_key, "PUT", f"/api/v1/approvers/{bad}")
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert "identity" in response.json()["message"]
    created = create(live_server, approvers=[bad])
    assert created.status_code == 422 and "approvers[0]" in created.json()["message"]


def test_a_confirmation_naming_approvers_is_theirs_to_decide(live_server: LiveServer) -> None:
    carol = approver_key(live_server, "carol@example.org")
    response = create(live_server, approvers=["carol@example.org"])
    assert response.status_code == 201 and response.json()["approvers"] == ["carol@example.org"]
    correlation_id = response.json()["correlationId"]
    # the fixture's approver is on the list, but not one this confirmation names
    refused = call(
        live_server, live_server.approver_key, "POST", f"/confirmation/{correlation_id}/approve"
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "approver_not_designated"
    assert "carol@example.org" in refused.json()["message"]
    assert status_of(live_server, correlation_id)["status"] == "pending"
    approved = call(live_server, carol, "POST", f"/confirmation/{correlation_id}/approve")
    assert approved.status_code == 200
    assert approved.json()["decidedBy"] == {
        "keyPrefix": carol[: len("gk_") + 8],
        "role": "approver",
        "identity": "carol@example.org",
    }
    # admin keys may always decide, named or not
    other = created_id(live_server, approvers=["carol@example.org"])
    by_admin = call(live_server, live_server.admin_key, "POST", f"/confirmation/{other}/reject")
    assert by_admin.status_code == 200 and by_admin.json()["decidedBy"]["role"] == "admin"


def test_a_precheck_confirmation_is_for_the_approvers_its_policy_names(
    live_server: LiveServer,
) -> None:
    with live_server.client(live_server.app_key) as client:
        body = client.post(
            "/api/v1/precheck",
            json={"tool": "payments.transfer", "raw_text": "Tool call: payments.transfer"},
        ).json()
    assert body["decision"] == "confirm"
    correlation_id = body["metadata"]["correlationId"]
    assert status_of(live_server, correlation_id)["approvers"] == [APPROVER]
    listed_but_not_named = approver_key(live_server, "bob@example.org")
    refused = call(
        live_server, listed_but_not_named, "POST", f"/confirmation/{correlation_id}/approve"
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "approver_not_designated"
    approved = call(
        live_server, live_server.approver_key, "POST", f"/confirmation/{correlation_id}/approve"
    )
    assert approved.status_code == 200 and approved.json()["approved"] is True
