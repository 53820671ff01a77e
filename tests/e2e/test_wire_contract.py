"""Every endpoint of the wire protocol (§5's summary table, plus our approver list), checked
against the contract's cross-cutting rules over HTTP, the way the SDK calls them
(`Content-Type: application/json` on every request, bodiless GET and DELETE included):

- a missing or unknown `X-Governs-Key` is 401, a key whose role may not call it 403, each a JSON
  object with a stable `error` and a `message` (§2.5);
- an allowed key gets a 2xx JSON object (§2.4);
- a bad body or query is 400/422 whose message names the field;
- another organisation's ids are 404 with `not found` in the message, and nothing changes;
- paths have no trailing slash and nothing redirects (§2.1).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from governor_server.keys import add_approvers, create_key, ensure_org

from governor.storage import SQLStorage
from tests.e2e.conftest import LiveServer

#: What the 1.0.0 client sends on every request (§2.2).
SDK_HEADERS = {"Content-Type": "application/json", "User-Agent": "governs-ai-python-sdk/1.0.0"}


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: a request that succeeds for `roles`, with `{id}`-style placeholders."""

    method: str
    path: str
    roles: tuple[str, ...]  # the key roles allowed (admin always is)
    body: Any = None
    query: dict[str, Any] = field(default_factory=dict)
    public: bool = False

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def _confirmation() -> dict[str, Any]:
    return {
        "requestType": "tool_call",
        "requestDesc": "Transfer 10 USD",
        "requestPayload": {"amount": 10},
        "reasons": ["tool.requires_confirmation:payments.transfer"],
        "userId": "alice",
        "correlationId": None,
    }


ENDPOINTS = [
    Endpoint("GET", "/api/v1/health", (), public=True),
    Endpoint("GET", "/api/v1/policies", ("app",)),
    Endpoint("GET", "/api/v1/tools/{tool}/metadata", ("app",)),
    Endpoint("GET", "/api/v1/budget/context", ("app",), query={"userId": "alice"}),
    Endpoint(
        "POST", "/api/v1/precheck", ("app",), body={"tool": "model.chat", "raw_text": "hi there"}
    ),
    Endpoint("POST", "/api/v1/postcheck", ("app",), body={"tool": "model.chat", "raw_text": "ok"}),
    Endpoint(
        "GET", "/api/v1/budget/status", ("app",), query={"userId": "alice", "estimatedCost": 0.5}
    ),
    Endpoint(
        "POST",
        "/api/v1/usage",
        ("app",),
        body={"userId": "alice", "orgId": None, "provider": "p", "model": "m", "cost": 0.01},
    ),
    Endpoint("GET", "/api/v1/usage", ("app",), query={"timeRange": "30d", "userId": "alice"}),
    Endpoint(
        "PATCH",
        "/api/v1/spend/budget-limits/{user}",
        ("admin",),
        body={"monthlyLimit": 50.0, "currency": "USD"},
    ),
    Endpoint("POST", "/confirmation", ("app",), body=_confirmation()),
    Endpoint("GET", "/confirmation/{confirmation}", ("app", "approver")),
    Endpoint("DELETE", "/confirmation/{confirmation}", ("app",)),
    Endpoint("POST", "/confirmation/{confirmation}/approve", ("approver",)),
    Endpoint("POST", "/confirmation/{confirmation}/reject", ("approver",), body={"note": "no"}),
    Endpoint("POST", "/tools", ("app",), body={"tools": [{"name": "wire.extra"}]}),
    Endpoint("GET", "/tools", ("app",)),
    Endpoint("GET", "/tools/{tool}", ("app",)),
    Endpoint("PUT", "/tools/{tool}", ("app",), body={"description": "updated"}),
    Endpoint("DELETE", "/tools/{tool}", ("app",)),
    Endpoint(
        "POST", "/tools/{tool}/execute", ("app",), body={"args": {}, "userId": "a", "corrId": None}
    ),
    Endpoint(
        "GET", "/api/v1/decisions", ("app",), query={"timeRange": "30d", "includeStats": "true"}
    ),
    Endpoint(
        "GET", "/api/v1/toolcalls", ("app",), query={"timeRange": "7d", "includeStats": "false"}
    ),
    Endpoint("GET", "/api/v1/spend", ("app",), query={"timeRange": "30d"}),
    Endpoint("GET", "/api/v1/approvers", ("admin",)),
    Endpoint("PUT", "/api/v1/approvers/{identity}", ("admin",)),
    Endpoint("DELETE", "/api/v1/approvers/{identity}", ("admin",)),
]
AUTHENTICATED = [e for e in ENDPOINTS if not e.public]


@dataclass(frozen=True)
class Keys:
    """A key of each role of the default organisation, and of another organisation."""

    app: str
    approver: str
    admin: str
    other_app: str
    other_approver: str
    other_admin: str

    def of(self, role: str, *, other: bool = False) -> str:
        key: str = getattr(self, f"other_{role}" if other else role)
        return key


@pytest.fixture(scope="module", autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    for client in _clients.values():
        client.close()
    _clients.clear()


@pytest.fixture(scope="module")
def keys(live_server: LiveServer) -> Keys:
    store = SQLStorage(live_server.database_url)
    try:
        other_approver, _ = create_key(store.engine, "other", "approver", "wire-approver")
        add_approvers(store.engine, ensure_org(store.engine, "other")[0], ["wire-approver"], "t")
        other_admin, _ = create_key(store.engine, "other", "admin")
    finally:
        store.close()
    return Keys(
        app=live_server.app_key,
        approver=live_server.approver_key,
        admin=live_server.admin_key,
        other_app=live_server.other_app_key,
        other_approver=other_approver,
        other_admin=other_admin,
    )


_clients: dict[str, httpx.Client] = {}


def http(server: LiveServer) -> httpx.Client:
    """One client per server (building an httpx.Client costs more than a request here)."""
    if server.url not in _clients:
        _clients[server.url] = httpx.Client(base_url=server.url, timeout=10)
    return _clients[server.url]


def as_key(key: str) -> dict[str, str]:
    return {"X-Governs-Key": key}


def send(
    server: LiveServer,
    endpoint: Endpoint,
    key: str | None,
    path: str | None = None,
    body: Any = None,
    query: dict[str, Any] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    headers = dict(SDK_HEADERS)
    if key is not None:
        headers["X-Governs-Key"] = key
    payload = endpoint.body if body is None else body
    return http(server).request(
        endpoint.method,
        path or endpoint.path,
        headers=headers,
        params=endpoint.query if query is None else query,
        json=payload,
        **kwargs,
    )


def bind(server: LiveServer, endpoint: Endpoint, keys: Keys) -> dict[str, str]:
    """New resources of the default organisation for `endpoint.path`'s placeholders."""
    bound: dict[str, str] = {}
    if "{tool}" in endpoint.path:
        bound["tool"] = f"wire.t{uuid.uuid4().hex[:8]}"
        registered = http(server).post(
            "/tools", json={"tools": [{"name": bound["tool"]}]}, headers=as_key(keys.app)
        )
        assert registered.status_code == 200
    if "{confirmation}" in endpoint.path:
        created = http(server).post("/confirmation", json=_confirmation(), headers=as_key(keys.app))
        assert created.status_code == 201, created.text
        bound["confirmation"] = created.json()["correlationId"]
    if "{identity}" in endpoint.path:
        bound["identity"] = f"wire-{uuid.uuid4().hex[:8]}@example.org"
        listed = http(server).put(
            f"/api/v1/approvers/{bound['identity']}", headers=as_key(keys.admin)
        )
        assert listed.status_code == 200
    if "{user}" in endpoint.path:
        bound["user"] = f"wire-user-{uuid.uuid4().hex[:8]}"
    return bound


def any_path(endpoint: Endpoint) -> str:
    """`endpoint.path` with made-up ids: authentication and roles are checked before any lookup."""
    return endpoint.path.format(
        tool="wire.none", confirmation="cf_none", identity="nobody", user="nobody"
    )


def fresh_path(server: LiveServer, endpoint: Endpoint, keys: Keys) -> str:
    """`endpoint.path` with its placeholders bound to new resources of the default organisation."""
    return endpoint.path.format(**bind(server, endpoint, keys))


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert isinstance(body["error"], str) and isinstance(body["message"], str), body
    assert body["message"] and body["error"]
    if code is not None:
        assert body["error"] == code, body
    return body


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_an_allowed_key_gets_a_2xx_json_object(
    live_server: LiveServer, keys: Keys, endpoint: Endpoint
) -> None:
    roles = endpoint.roles or ("app",)
    for role in dict.fromkeys([*roles, "admin"]):  # admin keys may call everything
        path = fresh_path(live_server, endpoint, keys)
        response = send(live_server, endpoint, None if endpoint.public else keys.of(role), path)
        assert 200 <= response.status_code < 300, (role, response.text)
        assert response.headers["content-type"] == "application/json"
        assert isinstance(response.json(), dict)


@pytest.mark.parametrize("endpoint", AUTHENTICATED, ids=lambda e: e.name)
@pytest.mark.parametrize(
    ("key", "code"),
    [(None, "missing_api_key"), ("", "missing_api_key"), ("gk_00000000_nope", "invalid_api_key")],
    ids=["no-key", "empty-key", "unknown-key"],
)
def test_a_missing_or_unknown_key_is_401_on_every_endpoint(
    live_server: LiveServer, keys: Keys, endpoint: Endpoint, key: str | None, code: str
) -> None:
    assert_error(send(live_server, endpoint, key, any_path(endpoint)), 401, code)


@pytest.mark.parametrize("endpoint", AUTHENTICATED, ids=lambda e: e.name)
def test_a_key_without_the_role_is_403_on_every_endpoint(
    live_server: LiveServer, keys: Keys, endpoint: Endpoint
) -> None:
    refused = [r for r in ("app", "approver") if r not in endpoint.roles]
    assert refused or endpoint.roles == ("app", "approver")
    for role in refused:
        response = send(live_server, endpoint, keys.of(role), any_path(endpoint))
        body = assert_error(response, 403, "forbidden")
        assert f"has role {role}" in body["message"]


#: For each endpoint with a body or a query: a bad one, and the field its message must name.
BAD_INPUT: dict[str, tuple[dict[str, Any], str]] = {
    "POST /api/v1/precheck": ({"body": {"tool": 1, "raw_text": "x"}}, "tool"),
    "POST /api/v1/postcheck": ({"body": {"tool": "model.chat"}}, "raw_text"),
    "GET /api/v1/budget/context": ({"query": {"userId": ""}}, "userId"),
    "GET /api/v1/budget/status": ({"query": {"estimatedCost": "lots"}}, "estimatedCost"),
    "POST /api/v1/usage": ({"body": {"provider": "p", "model": "m", "cost": "1"}}, "cost"),
    "GET /api/v1/usage": ({"query": {"limit": 0}}, "limit"),
    "PATCH /api/v1/spend/budget-limits/{user}": ({"body": {"monthlyLimit": -1}}, "monthlyLimit"),
    "POST /confirmation": ({"body": {**_confirmation(), "requestType": ""}}, "requestType"),
    "POST /confirmation/{confirmation}/reject": ({"body": {"note": ["x"]}}, "note"),
    "POST /tools": ({"body": {"tools": [{"name": "bad name"}]}}, "tools[0].name"),
    "PUT /tools/{tool}": ({"body": ["not", "an", "object"]}, "body"),
    "POST /tools/{tool}/execute": ({"body": {"args": [1]}}, "args"),
    "GET /api/v1/decisions": ({"query": {"timeRange": "forever"}}, "timeRange"),
    "GET /api/v1/toolcalls": ({"query": {"includeStats": "maybe"}}, "includeStats"),
    "GET /api/v1/spend": ({"query": {"timeRange": "1y"}}, "timeRange"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_bad_input_is_refused_naming_the_field(
    live_server: LiveServer, keys: Keys, name: str
) -> None:
    endpoint = next(e for e in ENDPOINTS if e.name == name)
    bad, field_name = BAD_INPUT[name]
    role = "admin" if "admin" in endpoint.roles else endpoint.roles[0]
    path = fresh_path(live_server, endpoint, keys)
    response = send(live_server, endpoint, keys.of(role), path, **bad)
    assert response.status_code in (400, 422), response.text
    body = assert_error(response, response.status_code)
    assert field_name in body["message"], body["message"]


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.body is not None], ids=lambda e: e.name
)
def test_a_body_that_is_not_json_is_400_on_every_endpoint_with_a_body(
    live_server: LiveServer, keys: Keys, endpoint: Endpoint
) -> None:
    role = "admin" if "admin" in endpoint.roles else endpoint.roles[0]
    response = http(live_server).request(
        endpoint.method,
        fresh_path(live_server, endpoint, keys),
        content=b'{"tool": ',
        headers={**SDK_HEADERS, "X-Governs-Key": keys.of(role)},
    )
    body = assert_error(response, 400, "invalid_json")
    assert "JSON" in body["message"]


#: Endpoints that address one existing resource of the organisation by id (tool, confirmation,
#: approver). `PUT /api/v1/approvers/{identity}` is not one: it lists the identity in the caller's
#: own organisation; budget limits are per organisation by user id (tests/e2e/test_budgets.py).
BY_ID = [
    e
    for e in AUTHENTICATED
    if "{" in e.path and "{user}" not in e.path and e.name != "PUT /api/v1/approvers/{identity}"
]


@pytest.mark.parametrize("endpoint", BY_ID, ids=lambda e: e.name)
def test_another_organisations_ids_are_not_found_and_stay_unchanged(
    live_server: LiveServer, keys: Keys, endpoint: Endpoint
) -> None:
    bound = bind(live_server, endpoint, keys)
    role = "admin" if "admin" in endpoint.roles else endpoint.roles[0]
    other = keys.of(role, other=True)
    response = send(live_server, endpoint, other, endpoint.path.format(**bound))
    body = assert_error(response, 404)
    assert "not found" in body["message"].lower()
    # still there, unchanged, in its own organisation
    client, admin = http(live_server), as_key(keys.admin)
    if "tool" in bound:
        tool = client.get(f"/tools/{bound['tool']}", headers=admin)
        assert tool.status_code == 200 and "description" not in tool.json()
    elif "confirmation" in bound:
        status = client.get(f"/confirmation/{bound['confirmation']}", headers=admin).json()
        assert (status["status"], status["decidedBy"]) == ("pending", None)
    else:
        listed = client.get("/api/v1/approvers", headers=admin).json()["approvers"]
        assert bound["identity"] in {a["identity"] for a in listed}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_a_trailing_slash_is_a_json_404_never_a_redirect(
    live_server: LiveServer, keys: Keys, endpoint: Endpoint
) -> None:
    path = fresh_path(live_server, endpoint, keys) + "/"
    response = send(live_server, endpoint, keys.admin, path)
    assert not 300 <= response.status_code < 400
    assert_error(response, 404, "not_found")
