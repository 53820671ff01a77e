"""`governor keys create|list|revoke|approvers` against the live server's database: a revoked
key is refused at once; an approver key approves only while its identity is on the list."""

from __future__ import annotations

import pytest
from governor_cli.main import app
from typer.testing import CliRunner

from tests.e2e.conftest import LiveServer

runner = CliRunner()


def keys(server: LiveServer, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["keys", *args, "--database-url", server.database_url])
    return result.exit_code, result.stdout, result.stderr


def test_create_list_revoke_and_the_revoked_key_gets_401(live_server: LiveServer) -> None:
    code, out, err = keys(live_server, "create", "--org", "cli-org", "--role", "app")
    assert code == 0, err
    key = out.strip()
    prefix = key[:11]  # gk_ and 8 hex digits
    assert key.startswith("gk_") and prefix in err and "shown only now" in err

    with live_server.client(key) as client:
        assert (
            client.post("/api/v1/precheck", json={"tool": "t.x", "raw_text": ""}).status_code == 200
        )

    code, out, _ = keys(live_server, "list", "--org", "cli-org")
    assert code == 0
    assert prefix in out and "active" in out and key not in out

    code, out, _ = keys(live_server, "revoke", prefix)
    assert code == 0 and "revoked" in out
    code, out, _ = keys(live_server, "list", "--org", "cli-org")
    assert "revoked" in out

    with live_server.client(key) as client:
        response = client.post("/api/v1/precheck", json={"tool": "t.x", "raw_text": ""})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["create", "--org", "x", "--role", "root"], "unknown role 'root'"),
        (["revoke", "gk_ffffffff"], "no API key has the prefix"),
        (["create", "--org", "x", "--role", "approver"], "approver key needs --identity"),
        (["create", "--org", "x", "--identity", "a b"], "identity 'a b' must be"),
        (["approvers", "add", "--org", "x", "ok", "not/ok"], "identity 'not/ok' must be"),
        (["approvers", "list", "--org", "no-such-org"], "no organisation 'no-such-org'"),
        (["approvers", "remove", "--org", "default", "nobody"], "not on the approver list"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    live_server: LiveServer, args: list[str], expected: str
) -> None:
    code, _, err = keys(live_server, *args)
    assert code == 2
    assert expected in err


def test_an_approver_key_approves_only_while_listed(live_server: LiveServer) -> None:
    code, out, err = keys(
        live_server, "create", "--org", "default", "--role", "approver", "--identity", "erin"
    )
    assert code == 0, err
    key = out.strip()
    assert "(erin)" in err and "governor keys approvers add --org default erin" in err
    code, out, _ = keys(live_server, "list", "--org", "default")
    assert any(key[:11] in line and "erin" in line for line in out.splitlines())

    def approve() -> int:
        with live_server.client(live_server.app_key) as client:
            created = client.post(
                "/confirmation",
                json={
                    "requestType": "tool_call",
                    "requestDesc": "d",
                    "requestPayload": {},
                    "reasons": [],
                    "userId": "u",
                    "correlationId": None,
                },
            )
        with live_server.client(key) as client:
            path = f"/confirmation/{created.json()['correlationId']}/approve"
            return client.post(path).status_code

    assert approve() == 403
    code, out, err = keys(live_server, "approvers", "add", "--org", "default", "erin", "frank")
    assert code == 0, err
    assert "added erin" in out and "added frank" in out
    code, out, _ = keys(live_server, "approvers", "add", "--org", "default", "erin")
    assert code == 0 and "already on the list: erin" in out
    code, out, _ = keys(live_server, "approvers", "list", "--org", "default")
    assert code == 0 and "erin" in out and "frank" in out and "cli" in out
    assert approve() == 200

    code, out, err = keys(live_server, "approvers", "remove", "--org", "default", "erin")
    assert code == 0, err
    assert "removed erin" in out
    assert approve() == 403
