"""Budgets and usage over the real server (wire protocol §4.4, §4.5 budget fields, §4.7–§4.10):
context, status, usage record and list, admin-only limits, organisation isolation, precheck
holds (placed, settled, expiring), and exact admission under 100 concurrent spenders."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from governor_server.budgets import HOLD_TTL_SECONDS
from governor_server.keys import create_key
from governor_server.policy import budget_key

from governor.storage import SQLStorage, month_period
from tests.e2e.conftest import LiveServer


@pytest.fixture(scope="module")
def other_admin_key(live_server: LiveServer) -> str:
    store = SQLStorage(live_server.database_url)
    try:
        key, _ = create_key(store.engine, "other", "admin")
    finally:
        store.close()
    return key


@pytest.fixture(scope="module")
def store(live_server: LiveServer) -> Iterator[SQLStorage]:
    opened = SQLStorage(live_server.database_url)
    yield opened
    opened.close()


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:12]}"


def get(server: LiveServer, path: str, key: str, **params: Any) -> httpx.Response:
    with server.client(key) as client:
        return client.get(path, params=params)


def context(server: LiveServer, user: str, key: str | None = None) -> dict[str, Any]:
    response = get(server, "/api/v1/budget/context", key or server.app_key, userId=user)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def usage(server: LiveServer, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    with server.client(key or server.app_key) as client:
        return client.post("/api/v1/usage", json=body)


def usage_body(user: str | None, cost: Any, **extra: Any) -> dict[str, Any]:
    # What governs-ai-sdk 1.0.0 sends: camelCase, None as null, naive UTC + "Z".
    return {
        "userId": user,
        "orgId": None,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "inputTokens": 120,
        "outputTokens": 30,
        "cost": cost,
        "costType": "external",
        "timestamp": "2026-11-21T19:29:54.476930Z",
        **extra,
    }


def set_limit(server: LiveServer, user: str, limit: Any, key: str | None = None) -> httpx.Response:
    with server.client(key or server.admin_key) as client:
        return client.patch(
            f"/api/v1/spend/budget-limits/{user}", json={"monthlyLimit": limit, "currency": "USD"}
        )


def precheck(server: LiveServer, user: str, estimate: Any = None, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {
        "tool": "model.chat",
        "scope": "net.external",
        "raw_text": "Summarise the meeting notes",
        "payload": {"messages": [], "provider": "openai"},
        "tags": ["chat", "model"],
        "user_id": user,
        **extra,
    }
    if estimate is not None:
        body["budget_context"] = {"estimatedCost": estimate}
    with server.client(server.app_key) as client:
        return client.post("/api/v1/precheck", json=body)


# -- GET /api/v1/budget/context -----------------------------------------------------------------


def test_a_fresh_user_has_the_bundle_default_limit(live_server: LiveServer) -> None:
    body = context(live_server, new_user())
    assert body["monthlyLimit"] == 100.0  # bundles/development: default_monthly_limit
    assert body["currentSpend"] == 0.0
    assert body["remainingBudget"] == 100.0
    assert body["currency"] == "USD"
    start, end = month_period()
    assert body["periodStart"] == start.isoformat()
    assert body["periodEnd"] == end.isoformat()
    assert body["limitSource"] == "bundle"


def test_context_without_user_id_answers_for_the_keys_default_user(
    live_server: LiveServer,
) -> None:
    # The full client's precheck enrichment calls it without any query.
    response = get(live_server, "/api/v1/budget/context", live_server.app_key)
    assert response.status_code == 200
    body = response.json()
    assert body["userId"].startswith("key:gk_")
    assert {"monthlyLimit", "currentSpend", "remainingBudget", "currency"} <= set(body)


def test_budget_endpoints_need_a_key(live_server: LiveServer) -> None:
    with live_server.client() as client:
        for response in (
            client.get("/api/v1/budget/context"),
            client.get("/api/v1/budget/status"),
            client.get("/api/v1/usage"),
            client.post("/api/v1/usage", json=usage_body("u", 1)),
        ):
            assert response.status_code == 401
            assert "message" in response.json()
    response = get(live_server, "/api/v1/budget/context", live_server.approver_key)
    assert response.status_code == 403


# -- POST /api/v1/usage ---------------------------------------------------------------------------


def test_recorded_usage_counts_at_once_and_exactly(live_server: LiveServer) -> None:
    user = new_user()
    for _ in range(3):
        response = usage(live_server, usage_body(user, 0.1))
        assert response.status_code == 201, response.text
        assert response.json()["success"] is True
        assert response.json()["id"]
    body = context(live_server, user)
    assert body["currentSpend"] == 0.3  # 3 x 100_000 micro-units, not 0.30000000000000004
    assert body["remainingBudget"] == 99.7


def test_usage_accepts_snake_case_and_tiny_costs(live_server: LiveServer) -> None:
    user = new_user()
    response = usage(live_server, {"user_id": user, "provider": "p", "model": "m", "cost": 1e-06})
    assert response.status_code == 201, response.text
    assert context(live_server, user)["currentSpend"] == 1e-06


@pytest.mark.parametrize(
    ("raw_cost", "problem"),
    [
        ("-1", "greater than or equal to 0"),
        ("-0.000001", "greater than or equal to 0"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ('"0.5"', "must be a number"),
        ("true", "must be a number"),
        ("1e300", "largest amount"),
    ],
)
def test_usage_refuses_bad_costs_naming_the_field(
    live_server: LiveServer, raw_cost: str, problem: str
) -> None:
    user = new_user()
    content = (
        f'{{"userId": "{user}", "provider": "openai", "model": "m", "cost": {raw_cost}, '
        '"timestamp": "2026-11-21T19:29:54.476930Z"}'
    )
    with live_server.client(live_server.app_key) as client:
        response = client.post(
            "/api/v1/usage", content=content, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert "cost" in message and problem in message
    assert context(live_server, user)["currentSpend"] == 0.0


def test_usage_refuses_missing_fields_and_negative_tokens(live_server: LiveServer) -> None:
    body = usage_body(new_user(), 1)
    del body["provider"]
    response = usage(live_server, body)
    assert response.status_code == 422
    assert "provider" in response.json()["message"]
    response = usage(live_server, usage_body(new_user(), 1, inputTokens=-5))
    assert response.status_code == 422
    assert "inputTokens" in response.json()["message"]


def test_usage_for_another_org_id_is_forbidden(live_server: LiveServer) -> None:
    user = new_user()
    response = usage(live_server, usage_body(user, 1, orgId="other"))
    assert response.status_code == 403
    assert "orgId" in response.json()["message"]
    response = usage(live_server, usage_body(user, 1, orgId="default"))  # the key's own org
    assert response.status_code == 201
    assert context(live_server, user)["currentSpend"] == 1.0


# -- GET /api/v1/usage ----------------------------------------------------------------------------

SDK_RECORD_FIELDS = {
    "userId",
    "orgId",
    "provider",
    "model",
    "inputTokens",
    "outputTokens",
    "cost",
    "costType",
    "timestamp",
}


def test_usage_list_has_every_field_the_sdk_parses(live_server: LiveServer) -> None:
    user = new_user()
    usage(live_server, usage_body(user, 0.25))
    usage(live_server, usage_body(user, 0.5, provider="anthropic", model="claude"))
    response = get(live_server, "/api/v1/usage", live_server.app_key, userId=user, limit=10)
    assert response.status_code == 200
    records = response.json()["records"]
    assert response.json()["usage"] == records
    assert [r["cost"] for r in records] == [0.5, 0.25]  # newest first
    for record in records:
        assert set(record) >= SDK_RECORD_FIELDS
        assert record["userId"] == user
        # the organisation as its clients know it (their GOVERNS_ORG_ID), not the internal id
        assert record["orgId"] == "default"
        assert record["timestamp"].startswith("2026-11-21T19:29:54.476930")
    filtered = get(
        live_server,
        "/api/v1/usage",
        live_server.app_key,
        userId=user,
        provider="anthropic",
        timeRange="30d",
    ).json()["records"]
    assert [(r["provider"], r["model"]) for r in filtered] == [("anthropic", "claude")]
    paged = get(
        live_server, "/api/v1/usage", live_server.app_key, userId=user, limit=1, offset=1
    ).json()["records"]
    assert [r["cost"] for r in paged] == [0.25]


def test_usage_list_refuses_a_bad_time_range(live_server: LiveServer) -> None:
    response = get(live_server, "/api/v1/usage", live_server.app_key, timeRange="yesterday")
    assert response.status_code == 422
    assert "timeRange" in response.json()["message"]


# -- GET /api/v1/budget/status --------------------------------------------------------------------


def test_status_allows_within_the_limit_and_refuses_beyond(live_server: LiveServer) -> None:
    user = new_user()
    assert set_limit(live_server, user, 5).status_code == 200
    usage(live_server, usage_body(user, 4))
    allowed = get(
        live_server, "/api/v1/budget/status", live_server.app_key, userId=user, estimatedCost=1.0
    )
    assert allowed.status_code == 200
    body = allowed.json()
    assert "status" not in body  # a top-level status would hide `allowed` from the SDK
    assert body["allowed"] is True
    assert body["remainingBudget"] == 1.0
    assert body["estimatedCost"] == 1.0
    refused = get(
        live_server, "/api/v1/budget/status", live_server.app_key, userId=user, estimatedCost=1.5
    ).json()
    assert refused["allowed"] is False
    assert "budget.exceeded" in refused["reason"]
    # Query floats in Python syntax, exponents included (yarl sends str(float)).
    tiny = get(
        live_server,
        "/api/v1/budget/status",
        live_server.app_key,
        userId=user,
        estimatedCost="1e-07",
    )
    assert tiny.status_code == 200 and tiny.json()["allowed"] is True


def test_status_refuses_a_negative_estimate(live_server: LiveServer) -> None:
    response = get(live_server, "/api/v1/budget/status", live_server.app_key, estimatedCost=-1)
    assert response.status_code == 422
    assert "estimatedCost" in response.json()["message"]


# -- PATCH /api/v1/spend/budget-limits/{userId} ---------------------------------------------------


def test_only_admin_keys_change_limits(live_server: LiveServer) -> None:
    user = new_user()
    for key in (live_server.app_key, live_server.approver_key):
        response = set_limit(live_server, user, 1, key=key)
        assert response.status_code == 403
        assert "admin" in response.json()["message"]
    assert context(live_server, user)["monthlyLimit"] == 100.0
    response = set_limit(live_server, user, 12.5)
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    body = context(live_server, user)
    assert body["monthlyLimit"] == 12.5
    assert body["limitSource"] == "user"


def test_limits_fall_back_from_user_to_org_default_to_bundle(
    live_server: LiveServer, other_admin_key: str
) -> None:
    user, neighbour = new_user(), new_user()
    assert set_limit(live_server, "*", 40, key=other_admin_key).status_code == 200
    assert set_limit(live_server, user, 7).status_code == 200
    assert context(live_server, user)["monthlyLimit"] == 7.0
    assert context(live_server, neighbour)["monthlyLimit"] == 100.0  # "other"'s default only
    assert context(live_server, neighbour, key=live_server.other_app_key)["monthlyLimit"] == 40.0
    assert set_limit(live_server, "*", 20).status_code == 200
    assert context(live_server, neighbour)["limitSource"] == "organisation"
    assert context(live_server, neighbour)["monthlyLimit"] == 20.0
    assert set_limit(live_server, user, None).status_code == 200  # removed: the org default
    assert context(live_server, user)["monthlyLimit"] == 20.0
    assert set_limit(live_server, "*", None).status_code == 200
    assert context(live_server, user)["monthlyLimit"] == 100.0


def test_limit_updates_are_validated(live_server: LiveServer) -> None:
    user = new_user()
    assert set_limit(live_server, user, -1).status_code == 422
    assert "monthlyLimit" in set_limit(live_server, user, -1).json()["message"]
    with live_server.client(live_server.admin_key) as client:
        response = client.patch(
            f"/api/v1/spend/budget-limits/{user}", json={"monthlyLimit": 5, "currency": "EUR"}
        )
    assert response.status_code == 422
    assert "currency" in response.json()["message"]


# -- organisations --------------------------------------------------------------------------------


def test_nothing_of_another_organisation_is_read_counted_or_changed(
    live_server: LiveServer, other_admin_key: str
) -> None:
    user = new_user()  # the same user id in both organisations
    usage(live_server, usage_body(user, 3))
    usage(live_server, usage_body(user, 0.5), key=live_server.other_app_key)
    assert context(live_server, user)["currentSpend"] == 3.0
    assert context(live_server, user, key=live_server.other_app_key)["currentSpend"] == 0.5
    mine = get(live_server, "/api/v1/usage", live_server.app_key, userId=user).json()["records"]
    theirs = get(live_server, "/api/v1/usage", live_server.other_app_key).json()["records"]
    assert [r["cost"] for r in mine] == [3.0]
    assert {r["orgId"] for r in theirs} == {"other"}
    assert {r["orgId"] for r in mine} == {"default"}
    # Another organisation's admin sets a limit for "the same" user: only its own user changes.
    assert set_limit(live_server, user, 1, key=other_admin_key).status_code == 200
    assert context(live_server, user)["monthlyLimit"] == 100.0
    assert context(live_server, user, key=live_server.other_app_key)["monthlyLimit"] == 1.0


# -- precheck holds -------------------------------------------------------------------------------


def test_a_precheck_with_an_estimate_reserves_and_usage_settles_it(
    live_server: LiveServer,
) -> None:
    user = new_user()
    response = precheck(live_server, user, estimate=2, corr_id="call-1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "allow"
    hold = body["metadata"]["budget"]
    assert hold["reserved"] is True and hold["estimatedCost"] == 2.0
    status = get(live_server, "/api/v1/budget/status", live_server.app_key, userId=user).json()
    assert status["reservedAmount"] == 2.0 and status["remainingBudget"] == 98.0
    assert context(live_server, user)["currentSpend"] == 0.0

    settled = usage(live_server, usage_body(user, 1.25, correlationId="call-1"))
    assert settled.status_code == 201
    assert settled.json()["settled"] is True
    assert settled.json()["reservationId"] == hold["reservationId"]
    status = get(live_server, "/api/v1/budget/status", live_server.app_key, userId=user).json()
    assert status["reservedAmount"] == 0.0 and status["currentSpend"] == 1.25
    listed = get(live_server, "/api/v1/usage", live_server.app_key, userId=user).json()
    assert listed["records"][0]["reservationId"] == hold["reservationId"]


def test_usage_without_correlation_settles_the_oldest_live_hold(live_server: LiveServer) -> None:
    user = new_user()
    first = precheck(live_server, user, estimate=1).json()["metadata"]["budget"]
    second = precheck(live_server, user, estimate=3).json()["metadata"]["budget"]
    reply = usage(live_server, usage_body(user, 0.5)).json()
    assert reply["reservationId"] == first["reservationId"]
    reply = usage(live_server, usage_body(user, 2)).json()
    assert reply["reservationId"] == second["reservationId"]
    reply = usage(live_server, usage_body(user, 1)).json()  # no hold left: unreserved
    assert reply["settled"] is False
    body = context(live_server, user)
    assert body["currentSpend"] == 3.5 and body["reservedAmount"] == 0.0


def test_a_refused_precheck_reserves_nothing(live_server: LiveServer) -> None:
    user = new_user()
    assert set_limit(live_server, user, 1).status_code == 200
    body = precheck(live_server, user, estimate=1.5).json()
    assert body["decision"] == "deny"
    assert "budget.exceeded:monthly_spend" in body["reasons"]
    assert body["metadata"]["budget"]["reserved"] is False
    assert context(live_server, user)["reservedAmount"] == 0.0


def test_a_precheck_without_an_estimate_still_enforces_the_users_limit(
    live_server: LiveServer,
) -> None:
    user = new_user()
    assert set_limit(live_server, user, 1).status_code == 200
    assert precheck(live_server, user).json()["decision"] == "allow"
    usage(live_server, usage_body(user, 1.5))
    body = precheck(live_server, user).json()
    assert body["decision"] == "deny"
    assert "budget.exceeded:monthly_spend" in body["reasons"]


def test_a_bad_estimate_is_refused_naming_the_field(live_server: LiveServer) -> None:
    response = precheck(live_server, new_user(), estimate=-1)
    assert response.status_code == 422
    assert "budget_context.estimatedCost" in response.json()["message"]


def test_holds_expire_so_a_crashed_client_leaves_no_phantom_spend(
    live_server: LiveServer, store: SQLStorage
) -> None:
    user = new_user()
    hold = precheck(live_server, user, estimate=4).json()["metadata"]["budget"]
    key = budget_key(store_org_id(store, hold["reservationId"]), user)
    start, end = month_period()
    assert store.usage_totals(key, start, end)["reserved"] == 4_000_000
    reservation = store.get_reservation(hold["reservationId"])
    assert reservation is not None
    later = reservation.expires_at + timedelta(seconds=1)
    assert reservation.expires_at - reservation.created_at == timedelta(seconds=HOLD_TTL_SECONDS)
    assert store.usage_totals(key, start, end, now=later)["reserved"] == 0
    assert store.get_reservation(hold["reservationId"], now=later).status == "expired"  # type: ignore[union-attr]


def store_org_id(store: SQLStorage, reservation_id: str) -> str:
    reservation = store.get_reservation(reservation_id)
    assert reservation is not None
    return reservation.key.split(":")[1]


# -- the proof: concurrent spenders ---------------------------------------------------------------


def test_100_concurrent_spenders_admit_exactly_what_the_limit_holds(
    live_server: LiveServer, store: SQLStorage
) -> None:
    user = new_user()
    assert set_limit(live_server, user, 10).status_code == 200
    spenders = 100
    barrier = threading.Barrier(spenders)

    client = httpx.Client(
        base_url=live_server.url,
        headers={"X-Governs-Key": live_server.app_key},
        timeout=60,
        limits=httpx.Limits(max_connections=spenders),
    )

    def spend(i: int) -> str:
        barrier.wait(timeout=30)
        response = client.post(
            "/api/v1/precheck",
            json={
                "tool": "model.chat",
                "scope": "net.external",
                "raw_text": "hello",
                "user_id": user,
                "corr_id": f"spender-{i}",
                "budget_context": {"estimatedCost": 1.0},
            },
            timeout=60,
        )
        assert response.status_code == 200, response.text
        decision: str = response.json()["decision"]
        return decision

    with client, ThreadPoolExecutor(max_workers=spenders) as pool:
        decisions = list(pool.map(spend, range(spenders)))

    admitted = decisions.count("allow")
    assert admitted == 10, f"admitted {admitted} of {spenders} (limit 10 USD, 1 USD each)"
    assert decisions.count("deny") == spenders - 10
    body = context(live_server, user)
    assert body["reservedAmount"] == 10.0  # never past the limit
    assert body["currentSpend"] == 0.0
    # The admitted calls report their cost: each settles its own hold, and spending is the limit.
    for i in (i for i, decision in enumerate(decisions) if decision == "allow"):
        reply = usage(live_server, usage_body(user, 1.0, correlationId=f"spender-{i}")).json()
        assert reply["settled"] is True
    body = context(live_server, user)
    assert body["reservedAmount"] == 0.0
    assert body["currentSpend"] == 10.0
    assert body["remainingBudget"] == 0.0
