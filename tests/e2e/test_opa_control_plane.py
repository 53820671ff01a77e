"""The OPA control plane over HTTP: the bundle service (ETag, 304, 404, keys), the archive in real
OPA, decision-log intake per organisation, and the server evaluating through an OPA sidecar."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from governor_server import Settings
from governor_server.decisions import DecisionEntry, list_decisions
from governor_server.keys import authenticate
from governor_server.policy import decision_input

from governor.bundle import load_bundle_bytes
from governor.decision import decide
from governor.engine import OpaLibEngine, RegorusEngine
from governor.storage import SQLStorage
from tests.e2e.conftest import LiveServer
from tests.e2e.servers import running
from tests.engine.opa_double import OpaDouble

BUNDLE = "/bundles/development.tar.gz"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def fetch_bundle(server: LiveServer, **headers: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        return client.get(BUNDLE, headers={**bearer(server.app_key), **headers})


def org_of(server: LiveServer, key: str) -> str:
    store = SQLStorage(server.database_url)
    try:
        principal = authenticate(store.engine, key)
        assert principal is not None
        return principal.org_id
    finally:
        store.close()


def decisions_of(server: LiveServer, org_id: str) -> list[DecisionEntry]:
    store = SQLStorage(server.database_url)
    try:
        return list_decisions(store.engine, org_id, limit=10_000)
    finally:
        store.close()


# -- bundles -----------------------------------------------------------------------------------


def test_bundle_has_a_strong_etag_and_304_when_unchanged(live_server: LiveServer) -> None:
    first = fetch_bundle(live_server)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/gzip"
    etag = first.headers["etag"]
    assert etag == f'"{hashlib.sha256(first.content).hexdigest()}"'
    assert first.content[:2] == b"\x1f\x8b"

    again = fetch_bundle(live_server, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag

    # OPA sends back the ETag it got; weak form, lists and `*` match too (RFC 9110).
    for header in (f"W/{etag}", f'"other", {etag}', "*"):
        assert fetch_bundle(live_server, **{"If-None-Match": header}).status_code == 304
    changed = fetch_bundle(live_server, **{"If-None-Match": '"an-older-revision"'})
    assert changed.status_code == 200 and changed.content == first.content

    # Built once: the same bytes every time, and with X-Governs-Key as well as a bearer token.
    with live_server.client(live_server.approver_key) as client:
        by_header = client.get(BUNDLE)
    assert by_header.status_code == 200 and by_header.content == first.content


def test_bundle_needs_a_valid_key(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        missing = client.get(BUNDLE)
        wrong = client.get(BUNDLE, headers=bearer("gk_00000000_not-a-key"))
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "message" in response.json()
    assert "Authorization: Bearer" in missing.json()["message"]


def test_unknown_bundle_is_404_with_message(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        response = client.get("/bundles/nope.tar.gz", headers=bearer(live_server.app_key))
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "unknown_bundle"
    assert "'nope'" in body["message"] and "development" in body["message"]


def test_served_archive_loads_and_decides_in_real_opa(live_server: LiveServer) -> None:
    archive = fetch_bundle(live_server).content
    bundle = load_bundle_bytes(archive, source="development.tar.gz")
    assert bundle.revision == "development-1"
    assert bundle.manifest.roots == ["governor"]
    assert any(path.endswith(".rego") for path in bundle.modules)

    document = decision_input(
        phase="pre",
        org_id="org",
        user_id="alice",
        tool="shell.exec",
        scope=None,
        raw_text="Tool call: shell.exec",
    )
    opa = OpaLibEngine(bundle)
    regorus = RegorusEngine(bundle)
    try:
        by_opa = decide(opa, document)
        assert by_opa.decision == "deny"
        assert "precheck.tool_denied:shell.exec" in by_opa.reasons
        assert by_opa.revision == "development-1"
        by_regorus = decide(regorus, document)
        assert (by_regorus.decision, by_regorus.reasons) == (by_opa.decision, by_opa.reasons)
    finally:
        opa.close()
        regorus.close()


# -- the server evaluating through an OPA sidecar ----------------------------------------------

PRECHECKS: list[dict[str, Any]] = [
    {"tool": "model.chat", "raw_text": "Summarise my last invoice, please.", "user_id": "alice"},
    {"tool": "model.chat", "raw_text": "Mail alice@example.com, SSN 123-45-6789."},
    {"tool": "payments.transfer", "raw_text": "Tool call: payments.transfer", "tags": ["payments"]},
    {"tool": "shell.exec", "raw_text": "Tool call: shell.exec"},
]


def _outcome(response: httpx.Response) -> tuple[str, list[str], str]:
    assert response.status_code == 200, response.text
    body = response.json()
    return body["decision"], body["reasons"], body["raw_text_out"]


def test_governor_engine_opa_decides_like_regorus(live_server: LiveServer) -> None:
    # The sidecar loads the very archive our bundle service serves.
    bundle = load_bundle_bytes(fetch_bundle(live_server).content, source="development.tar.gz")
    double = OpaDouble(bundle, bundle_name="development").start()
    try:
        settings = Settings(
            database_url=live_server.database_url, engine="opa", bundle=None, opa_url=double.url
        )
        with running(settings) as url, httpx.Client(base_url=url, timeout=10) as client:
            client.headers["X-Governs-Key"] = live_server.app_key
            via_opa = [_outcome(client.post("/api/v1/precheck", json=b)) for b in PRECHECKS]
            health = client.get("/api/v1/health").json()
            served = client.get(BUNDLE)
        with live_server.client(live_server.app_key) as client:
            via_regorus = [_outcome(client.post("/api/v1/precheck", json=b)) for b in PRECHECKS]
    finally:
        double.stop()

    assert via_opa == via_regorus
    assert [d for d, _, _ in via_opa] == ["allow", "redact", "confirm", "deny"]
    assert health["engine"] == "opa" and health["bundle_revision"] == "development-1"
    asked = [r for r in double.requests if r.path == "/v1/data/governor/decision"]
    assert len(asked) == len(PRECHECKS)
    # With GOVERNOR_ENGINE=opa and no bundle configured there is nothing to serve.
    assert served.status_code == 404 and "GOVERNOR_OPA_BUNDLES" in served.json()["message"]


# -- decision logs -----------------------------------------------------------------------------


def _event(result: Any = None, *, tool: str = "shell.exec", **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "labels": {"id": "f6a0-opa-instance", "version": "1.20.2", "app": "billing"},
        "decision_id": str(uuid.uuid4()),
        "bundles": {"governor": {"revision": "development-1"}},
        "path": "governor/decision",
        "input": {
            "version": 1,
            "phase": "pre",
            "action": {"kind": "tool", "name": tool, "scope": "net.external", "tags": []},
            "subject": {"org_id": "someone-else", "user_id": "bob"},
            "raw_text": "secret: 123-45-6789",
        },
        "requested_by": "127.0.0.1:50000",
        "timestamp": "2026-11-21T10:11:12.123456789Z",
        "metrics": {"timer_rego_query_eval_ns": 48425},
        "req_id": 1,
    }
    if result is not None:
        event["result"] = result
    event.update(extra)
    return event


def post_logs(
    server: LiveServer, key: str, body: bytes, *, gzipped: bool = True, path: str = "/logs"
) -> httpx.Response:
    headers = {**bearer(key), "Content-Type": "application/json"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    with httpx.Client(base_url=server.url, timeout=10) as client:
        return client.post(path, content=body, headers=headers)


def test_gzip_decision_log_batch_is_stored_for_the_keys_org_only(live_server: LiveServer) -> None:
    deny = _event({"decision": "deny", "reasons": ["precheck.tool_denied:shell.exec"]})
    redact = _event(
        {
            "decision": "redact",
            "reasons": [],
            "redactions": [
                {"path": "raw_text", "kind": "us_ssn", "start": 8, "end": 19, "value": "x"}
            ],
        },
        tool="model.chat",
    )
    boolean = _event(True, path="authz/allow", input={"method": "GET"})
    undefined = _event(None, bundles={"a": {"revision": "1"}, "b": {"revision": "2"}})
    batch = [deny, redact, boolean, undefined]
    body = gzip.compress(json.dumps(batch).encode())

    response = post_logs(live_server, live_server.app_key, body)
    assert response.status_code == 200, response.text
    assert response.json() == {"received": 4, "stored": 4}

    org = org_of(live_server, live_server.app_key)
    other = org_of(live_server, live_server.other_app_key)
    stored = {d.corr_id: d for d in decisions_of(live_server, org) if d.phase == "opa"}
    assert {e["decision_id"] for e in batch} <= set(stored)

    d = stored[deny["decision_id"]]
    assert (d.decision, d.tool, d.scope, d.user_id) == ("deny", "shell.exec", "net.external", "bob")
    assert d.reasons == ("precheck.tool_denied:shell.exec",)
    assert d.policy_revision == "development-1"
    assert d.created_at == datetime(2026, 11, 21, 10, 11, 12, 123456, tzinfo=UTC)
    assert "opa.path:governor/decision" in d.tags
    assert {"opa.label:id=f6a0-opa-instance", "opa.label:app=billing"} <= set(d.tags)

    r = stored[redact["decision_id"]]
    assert (r.decision, r.tool, r.reasons) == ("redact", "model.chat", ("pii.redacted:us_ssn",))
    b = stored[boolean["decision_id"]]
    assert (b.decision, b.tool, b.user_id) == ("allow", "authz/allow", "opa:f6a0-opa-instance")
    u = stored[undefined["decision_id"]]
    assert (u.decision, u.policy_revision) == ("undefined", "a=1,b=2")
    # Neither the input nor the values the policy found are kept.
    assert "123-45-6789" not in repr(list(stored.values()))

    # Nothing of it is visible to the other organisation.
    assert not {e["decision_id"] for e in batch} & {
        x.corr_id for x in decisions_of(live_server, other)
    }

    # OPA resends a batch whose answer it missed: nothing is stored twice.
    again = post_logs(live_server, live_server.app_key, body)
    assert again.json() == {"received": 4, "stored": 0}
    assert len([x for x in decisions_of(live_server, org) if x.corr_id == deny["decision_id"]]) == 1

    # The same decision ids from another organisation's sidecar are that organisation's own.
    theirs = post_logs(live_server, live_server.other_app_key, body, path="/logs/partition-1")
    assert theirs.json() == {"received": 4, "stored": 4}
    assert deny["decision_id"] in {x.corr_id for x in decisions_of(live_server, other)}


def test_plain_json_and_empty_batches_are_accepted(live_server: LiveServer) -> None:
    event = _event({"decision": "allow"})
    plain = post_logs(live_server, live_server.app_key, json.dumps([event]).encode(), gzipped=False)
    assert plain.status_code == 200 and plain.json() == {"received": 1, "stored": 1}
    empty = post_logs(live_server, live_server.app_key, gzip.compress(b"[]"))
    assert empty.status_code == 200 and empty.json() == {"received": 0, "stored": 0}


@pytest.mark.parametrize(
    ("body", "gzipped", "says"),
    [
        (b"this is not gzip", True, "not valid gzip"),
        (gzip.compress(b"[1, 2")[:-6], True, "gzip"),
        (gzip.compress(b"{not json"), True, "not valid JSON"),
        (gzip.compress(b'{"decision_id": "x"}'), True, "JSON array"),
        (gzip.compress(b'[{"decision_id": "x"}, 3]'), True, "event [1]"),
        (b"[{", False, "not valid JSON"),
    ],
)
def test_malformed_batches_are_400_with_message(
    live_server: LiveServer, body: bytes, gzipped: bool, says: str
) -> None:
    response = post_logs(live_server, live_server.app_key, body, gzipped=gzipped)
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "bad_decision_log"
    assert says in payload["message"]


def test_decision_logs_need_an_app_key(live_server: LiveServer) -> None:
    body = gzip.compress(json.dumps([_event({"decision": "allow"})]).encode())
    assert post_logs(live_server, live_server.approver_key, body).status_code == 403
    assert post_logs(live_server, "gk_00000000_nope", body).status_code == 401
