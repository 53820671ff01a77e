"""Analytics over HTTP (wire protocol §4.20-§4.22): decisions, tool calls and spend after real
prechecks, `timeRange` and `includeStats` parsing, and organisation isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from governor_server.keys import authenticate
from governor_server.policy import budget_key

from governor.storage import SQLStorage, UsageRecord
from tests.e2e.conftest import LiveServer

PRECHECKS = [
    {"tool": "model.chat", "raw_text": "hello", "tags": ["chat", "model"], "user_id": "ana"},
    {"tool": "model.chat", "raw_text": "mail ana@example.com", "user_id": "ana"},
    {"tool": "shell.exec", "raw_text": "Tool call: shell.exec", "user_id": "ben"},
    {
        "tool": "payments.transfer",
        "raw_text": "Tool call: payments.transfer",
        "tags": ["tool_call"],
        "user_id": "ben",
    },
    {"tool": "weather.get", "raw_text": "Tool call: weather.get", "user_id": "ana"},
]


def get(server: LiveServer, path: str, key: str | None = None, **params: Any) -> httpx.Response:
    with server.client(key or server.app_key) as client:
        return client.get(path, params=params)


@pytest.fixture(scope="module")
def prechecked(live_server: LiveServer) -> LiveServer:
    with live_server.client(live_server.app_key) as client:
        for body in PRECHECKS:
            assert client.post("/api/v1/precheck", json=body).status_code == 200
    return live_server


def test_decisions_with_stats_count_every_precheck(prechecked: LiveServer) -> None:
    response = get(prechecked, "/api/v1/decisions", timeRange="7d", includeStats="true")
    assert response.status_code == 200
    body = response.json()
    assert body["timeRange"] == "7d"
    stats = body["stats"]
    assert stats["total"] == 5
    assert stats["byDecision"] == {"allow": 2, "redact": 1, "deny": 1, "confirm": 1}
    assert stats["byTool"] == {
        "model.chat": 2,
        "payments.transfer": 1,
        "shell.exec": 1,
        "weather.get": 1,
    }
    assert stats["byUser"] == {"ana": 3, "ben": 2}
    records = body["decisions"]
    assert len(records) == 5
    assert [r["tool"] for r in records][0] == "weather.get"  # newest first
    assert set(records[0]) >= {
        "id",
        "userId",
        "tool",
        "scope",
        "decision",
        "reasons",
        "tags",
        "corrId",
        "policyId",
        "timestamp",
    }
    assert "ana@example.com" not in response.text


@pytest.mark.parametrize("value", [None, "true", "TRUE", "1", "True"])
def test_include_stats_true_or_absent_gives_the_breakdowns(
    prechecked: LiveServer, value: str | None
) -> None:
    params = {} if value is None else {"includeStats": value}
    stats = get(prechecked, "/api/v1/decisions", **params).json()["stats"]
    assert stats["total"] == 5 and "byDecision" in stats


@pytest.mark.parametrize("value", ["false", "FALSE", "0", "False"])
def test_include_stats_false_still_gives_the_total(prechecked: LiveServer, value: str) -> None:
    body = get(prechecked, "/api/v1/decisions", includeStats=value).json()
    assert body["stats"] == {"total": 5}
    assert body["timeRange"] == "30d"


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"includeStats": "yes"}, "includeStats"),
        ({"timeRange": "30x"}, "timeRange"),
        ({"timeRange": "0d"}, "timeRange"),
        ({"timeRange": "month"}, "timeRange"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
    ],
)
def test_bad_query_values_are_refused_naming_the_parameter(
    prechecked: LiveServer, params: dict[str, str], word: str
) -> None:
    response = get(prechecked, "/api/v1/decisions", **params)
    assert response.status_code in (400, 422)
    assert word in response.json()["message"]


def test_decisions_filter_by_user_and_page(prechecked: LiveServer) -> None:
    body = get(prechecked, "/api/v1/decisions", userId="ben", timeRange="24h").json()
    assert body["stats"]["total"] == 2
    assert body["stats"]["byUser"] == {"ben": 2}
    assert {r["userId"] for r in body["decisions"]} == {"ben"}
    page = get(prechecked, "/api/v1/decisions", limit=2, offset=1).json()
    assert len(page["decisions"]) == 2 and page["stats"]["total"] == 5


def test_tool_calls_are_the_prechecks_of_tools(prechecked: LiveServer) -> None:
    response = get(prechecked, "/api/v1/toolcalls", timeRange="1w")
    assert response.status_code == 200
    body = response.json()
    assert body["timeRange"] == "1w"
    assert body["stats"]["total"] == 3
    assert body["stats"]["byTool"] == {"payments.transfer": 1, "shell.exec": 1, "weather.get": 1}
    assert {r["tool"] for r in body["toolCalls"]} == {
        "payments.transfer",
        "shell.exec",
        "weather.get",
    }
    one = get(prechecked, "/api/v1/toolcalls", toolName="shell.exec").json()
    assert one["stats"]["total"] == 1 and one["stats"]["byDecision"] == {"deny": 1}


def test_spend_totals_by_provider_model_user_and_cost_type(prechecked: LiveServer) -> None:
    store = SQLStorage(prechecked.database_url)
    try:
        principal = authenticate(store.engine, prechecked.app_key)
        assert principal is not None
        org = principal.org_id
        for user, provider, model, cost_type, micro in [
            ("ana", "openai", "gpt-4o", "external", 1_500_000),
            ("ana", "openai", "gpt-4o-mini", "external", 250_000),
            ("ben", "anthropic", "claude", "internal", 2_000_000),
        ]:
            store.record_usage(
                UsageRecord(
                    key=budget_key(org, user),
                    amount=micro,
                    org_id=org,
                    user_id=user,
                    provider=provider,
                    model=model,
                    cost_type=cost_type,
                    input_tokens=100,
                    output_tokens=10,
                )
            )
        # Older than the range: not counted.
        store.record_usage(
            UsageRecord(
                key=budget_key(org, "ana"),
                amount=9_000_000,
                org_id=org,
                user_id="ana",
                provider="openai",
                created_at=datetime.now(UTC) - timedelta(days=40),
            )
        )
    finally:
        store.close()

    response = get(prechecked, "/api/v1/spend", timeRange="30d")
    assert response.status_code == 200
    body = response.json()
    assert body["totalCost"] == pytest.approx(3.75)
    assert body["currency"] == "USD" and body["timeRange"] == "30d"
    assert body["byProvider"] == {"anthropic": 2.0, "openai": 1.75}
    assert body["byModel"] == {"claude": 2.0, "gpt-4o": 1.5, "gpt-4o-mini": 0.25}
    assert body["byUser"] == {"ben": 2.0, "ana": 1.75}
    assert body["byCostType"] == {"internal": 2.0, "external": 1.75}
    assert body["inputTokens"] == 300 and body["outputTokens"] == 30

    only = get(prechecked, "/api/v1/spend", provider="openai", userId="ana").json()
    assert only["totalCost"] == pytest.approx(1.75) and only["byUser"] == {"ana": 1.75}
    assert get(prechecked, "/api/v1/spend", costType="internal").json()["totalCost"] == 2.0
    everything = get(prechecked, "/api/v1/spend", timeRange="90d").json()
    assert everything["totalCost"] == pytest.approx(12.75)


def test_another_organisation_sees_nothing(prechecked: LiveServer) -> None:
    other = prechecked.other_app_key
    decisions = get(prechecked, "/api/v1/decisions", other).json()
    assert decisions["decisions"] == [] and decisions["stats"]["total"] == 0
    assert decisions["stats"]["byUser"] == {}
    assert get(prechecked, "/api/v1/decisions", other, userId="ana").json()["stats"]["total"] == 0
    tool_calls = get(prechecked, "/api/v1/toolcalls", other).json()
    assert tool_calls["toolCalls"] == [] and tool_calls["stats"]["total"] == 0
    spend = get(prechecked, "/api/v1/spend", other).json()
    assert spend["totalCost"] == 0 and spend["byProvider"] == {}


def test_analytics_need_a_valid_key(prechecked: LiveServer) -> None:
    with prechecked.client() as client:
        assert client.get("/api/v1/decisions").status_code == 401
    assert get(prechecked, "/api/v1/spend", prechecked.approver_key).status_code == 403
