"""The tool registry and tool execution over HTTP (wire protocol §4.2, §4.3, §4.14-§4.19):
CRUD, name validation, 404 wording, execute on the development bundle, organisation isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveServer


def call(
    server: LiveServer, method: str, path: str, key: str | None = None, **kwargs: Any
) -> httpx.Response:
    with server.client(key or server.app_key) as client:
        return client.request(method, path, **kwargs)


def register(server: LiveServer, *tools: dict[str, Any], key: str | None = None) -> httpx.Response:
    return call(server, "POST", "/tools", key, json={"tools": list(tools)})


def test_register_list_get_update_delete(live_server: LiveServer) -> None:
    response = register(
        live_server,
        {"name": "crm.lookup", "description": "Find a customer", "parameters": {"id": "str"}},
        {"name": "calendar:create", "description": "Create an event"},
    )
    assert response.status_code == 200
    assert response.json() == {"registered": ["crm.lookup", "calendar:create"]}

    listed = call(live_server, "GET", "/tools").json()["tools"]
    names = [tool["name"] for tool in listed]
    assert "crm.lookup" in names and "calendar:create" in names
    assert names == sorted(names)

    got = call(live_server, "GET", "/tools/crm.lookup")
    assert got.status_code == 200
    body = got.json()
    assert body["name"] == "crm.lookup" and body["description"] == "Find a customer"
    assert body["parameters"] == {"id": "str"}
    assert isinstance(body["metadata"], dict) and body["metadata"]["createdAt"].endswith("Z")

    enrichment = call(live_server, "GET", "/api/v1/tools/crm.lookup/metadata")
    assert enrichment.status_code == 200
    assert enrichment.json()["metadata"]["description"] == "Find a customer"

    updated = call(
        live_server, "PUT", "/tools/crm.lookup", json={"description": "Find a customer by id"}
    )
    assert updated.status_code == 200
    got = call(live_server, "GET", "/tools/crm.lookup").json()
    assert got["description"] == "Find a customer by id" and "parameters" not in got

    # Registering again upserts by name.
    assert register(live_server, {"name": "crm.lookup", "description": "v3"}).status_code == 200
    assert call(live_server, "GET", "/tools/crm.lookup").json()["description"] == "v3"

    deleted = call(live_server, "DELETE", "/tools/crm.lookup")
    assert deleted.status_code == 200 and deleted.json() == {"deleted": "crm.lookup"}
    assert call(live_server, "GET", "/tools/crm.lookup").status_code == 404


def test_a_single_definition_body_registers_one_tool(live_server: LiveServer) -> None:
    response = call(live_server, "POST", "/tools", json={"name": "single.tool"})
    assert response.status_code == 200 and response.json() == {"registered": ["single.tool"]}


@pytest.mark.parametrize(
    ("tools", "field"),
    [
        ([{"name": "ok.tool"}, {"name": "bad/name"}], "tools[1].name"),
        ([{"name": "has space"}], "tools[0].name"),
        ([{"name": "query?x=1"}], "tools[0].name"),
        ([{"name": ""}], "tools[0].name"),
        ([{"description": "no name"}], "tools[0].name"),
        ([{"name": "x" * 256}], "tools[0].name"),
        (["not an object"], "tools[0]"),
        ([{"name": "twice"}, {"name": "twice"}], "tools[1].name"),
        ([], "tools"),
    ],
)
def test_invalid_names_are_400_naming_the_field(
    live_server: LiveServer, tools: list[Any], field: str
) -> None:
    response = call(live_server, "POST", "/tools", json={"tools": tools})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_tool"
    assert field in body["message"]
    # Nothing of a refused batch is registered.
    assert call(live_server, "GET", "/tools/ok.tool").status_code == 404


def test_a_put_naming_another_tool_is_400(live_server: LiveServer) -> None:
    register(live_server, {"name": "put.me"})
    response = call(live_server, "PUT", "/tools/put.me", json={"name": "other.name"})
    assert response.status_code == 400 and "name" in response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tools/nope.tool"),
        ("PUT", "/tools/nope.tool"),
        ("DELETE", "/tools/nope.tool"),
        ("POST", "/tools/nope.tool/execute"),
        ("GET", "/api/v1/tools/nope.tool/metadata"),
    ],
)
def test_unknown_tools_are_404_saying_not_found(
    live_server: LiveServer, method: str, path: str
) -> None:
    body = {"args": {}, "userId": "u"} if method in ("PUT", "POST") else None
    response = call(live_server, method, path, json=body)
    assert response.status_code == 404
    assert response.json()["message"] == "Tool not found: nope.tool"
    assert "not found" in response.json()["message"].lower()


def execute(server: LiveServer, name: str, **body: Any) -> httpx.Response:
    return call(server, "POST", f"/tools/{name}/execute", json=body)


def test_execute_allows_denies_and_confirms_like_a_precheck(live_server: LiveServer) -> None:
    register(
        live_server,
        {"name": "weather.get"},
        {"name": "shell.exec"},
        {"name": "payments.transfer", "description": "Move money"},
    )
    allowed = execute(live_server, "weather.get", args={"city": "Oslo"}, userId="dana")
    assert allowed.status_code == 200
    assert allowed.json()["decision"] == "allow"
    assert allowed.json()["tool"] == "weather.get" and allowed.json()["result"] is None

    denied = execute(live_server, "shell.exec", args={"cmd": "rm -rf /"}, userId="dana")
    assert denied.status_code == 200
    assert denied.json()["decision"] == "deny"
    assert denied.json()["reasons"] == ["precheck.tool_denied:shell.exec"]
    assert "rm -rf" not in denied.text

    confirm = execute(live_server, "payments.transfer", args={"amount": 10}, userId="dana")
    assert confirm.status_code == 200
    body = confirm.json()
    assert body["decision"] == "confirm" and body["requiresConfirmation"] is True
    assert body["reasons"] == ["precheck.tool_requires_confirmation:payments.transfer"]
    assert set(body) >= {"tool", "decision", "reasons", "result", "confirmationUrl"}

    # The same tool through the precheck decides the same.
    with live_server.client(live_server.app_key) as client:
        precheck = client.post(
            "/api/v1/precheck",
            json={
                "tool": "payments.transfer",
                "raw_text": "Tool call: payments.transfer",
                "payload": {"args": {"amount": 10}},
                "tags": ["tool_call"],
                "user_id": "dana",
            },
        ).json()
    assert precheck["decision"] == body["decision"] and precheck["reasons"] == body["reasons"]

    # Recorded as tool calls of the user.
    with live_server.client(live_server.app_key) as client:
        calls = client.get("/api/v1/toolcalls", params={"userId": "dana"}).json()
    tools = [record["tool"] for record in calls["toolCalls"]]
    assert tools.count("shell.exec") == 1 and tools.count("weather.get") == 1
    assert calls["stats"]["byTool"]["payments.transfer"] == 2


def test_a_body_that_is_not_an_object_is_refused(live_server: LiveServer) -> None:
    register(live_server, {"name": "exec.me"})
    response = call(live_server, "POST", "/tools/exec.me/execute", json={"args": [1, 2]})
    assert response.status_code == 422 and "args" in response.json()["message"]


def test_policies_summarise_the_bundle(live_server: LiveServer) -> None:
    response = call(live_server, "GET", "/api/v1/policies")
    assert response.status_code == 200
    policy = response.json()["policies"][0]
    assert policy["version"] == "v1" and policy["id"] == "development-1"
    assert policy["deny_tools"] == ["shell.exec"] and policy["confirm_tools"] == ["payments.*"]


def test_tools_are_per_organisation(live_server: LiveServer) -> None:
    register(live_server, {"name": "secret.tool", "description": "default org only"})
    other = live_server.other_app_key
    assert call(live_server, "GET", "/tools/secret.tool", other).status_code == 404
    listed = call(live_server, "GET", "/tools", other).json()["tools"]
    assert "secret.tool" not in [tool["name"] for tool in listed]
    assert call(live_server, "PUT", "/tools/secret.tool", other, json={}).status_code == 404
    assert call(live_server, "DELETE", "/tools/secret.tool", other).status_code == 404
    ran = call(live_server, "POST", "/tools/secret.tool/execute", other, json={"args": {}})
    assert ran.status_code == 404
    # The other organisation may register the same name without touching ours.
    assert register(live_server, {"name": "secret.tool"}, key=other).status_code == 200
    assert call(live_server, "DELETE", "/tools/secret.tool", other).status_code == 200
    mine = call(live_server, "GET", "/tools/secret.tool").json()
    assert mine["description"] == "default org only"


def test_tools_need_a_valid_key_and_the_app_role(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert client.get("/tools").status_code == 401
    assert call(live_server, "GET", "/tools", live_server.approver_key).status_code == 403
    assert call(live_server, "GET", "/tools", live_server.admin_key).status_code == 200
