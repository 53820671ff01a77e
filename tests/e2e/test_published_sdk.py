"""The published `governs-ai-sdk==1.0.0`, unchanged, against our server (issue 5's promise).

It installs the same module name as our SDK, so `make install` puts it in a venv of its own
(`.venv-sdk10`) and the calls run there in a subprocess, over a real socket: every client family
(the full async client and its sub-clients, `SyncClient`, `AsyncClient`, `governs_ai.precheck`),
every endpoint the 1.0.0 package calls, and the exceptions it raises on our error answers. Where
1.0.0 itself cannot work (a bool query value, wire protocol §2.3), the test pins that down too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-sdk10" / "bin" / "python"


@pytest.fixture(scope="module")
def results(live_server: LiveServer) -> dict[str, Any]:
    if not PYTHON.exists():
        pytest.fail(f"{PYTHON} is missing: run `make install` (it installs governs-ai-sdk==1.0.0)")
    run = subprocess.run(
        [
            str(PYTHON),
            str(Path(__file__).with_name("published_sdk_calls.py")),
            live_server.url,
            live_server.app_key,
            live_server.approver_key,
            live_server.admin_key,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    out: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return out


def error(result: Any) -> str:
    """The `"<class>: <message>"` of a call that raised (fails the test if it did not)."""
    assert isinstance(result, dict) and "error" in result, result
    message: str = result["error"]
    return message


# -- health, connection, precheck ---------------------------------------------------------------


def test_connection_and_health(results: dict[str, Any]) -> None:
    assert results["connection"] is True
    assert results["health"] == ["healthy", ["database", "engine"]]
    assert results["wrong_key_connection"] is True  # health is public (§2.2)


def test_chat_precheck_is_redacted_and_names_only_the_kind(results: dict[str, Any]) -> None:
    assert results["chat"]["decision"] == "redact"
    assert results["chat"]["reasons"] == ["pii.redacted:email"]
    assert results["chat_message"]["decision"] == "redact"
    assert results["chat_message"]["reasons"] == ["pii.redacted:us_ssn"]
    assert "No user message found in chat" in error(results["chat_without_user_message"])


def test_tool_calls_are_denied_or_sent_for_confirmation(results: dict[str, Any]) -> None:
    assert results["denied_tool"]["decision"] == "deny"
    assert results["denied_tool"]["reasons"] == ["precheck.tool_denied:shell.exec"]
    payment = results["payment"]
    assert payment["decision"] == "confirm" and payment["requires_confirmation"] is True
    assert payment["url"].endswith(f"/confirmation/{payment['correlation_id']}")


def test_file_uploads_and_request_objects_are_allowed(results: dict[str, Any]) -> None:
    for name in ("file_upload", "request_object"):
        assert results[name]["decision"] == "allow" and results[name]["reasons"] == []


def test_key_errors_reach_the_caller_as_the_sdk_documents(results: dict[str, Any]) -> None:
    assert error(results["wrong_key_precheck"]).startswith("PrecheckError:")
    assert "Invalid API key (Status: 401)" in error(results["wrong_key_precheck"])
    assert "Insufficient permissions (Status: 403)" in error(results["approver_key_precheck"])


def test_the_simple_clients(results: dict[str, Any]) -> None:
    sync = results["sync_client"]
    assert sync["precheck"]["decision"] == "redact"
    assert sync["precheck"]["raw_text_out"] == "card [REDACTED_CREDIT_CARD]"
    assert sync["postcheck"]["raw_text_out"] == "reach me at [REDACTED_EMAIL]"
    assert sync["health"] == "healthy"
    assert sync["one_shot"] == {
        "decision": "allow",
        "reasons": [],
        "raw_text_out": "hello",
        "allowed": True,
        "denied": False,
    }
    # a 4xx is not retried: GovernsAPIError with our JSON body, `error` code and `message`
    wrong = error(results["sync_wrong_key"])
    assert wrong.startswith("GovernsAPIError: GovernsAI API error 401")
    assert "invalid_api_key" in wrong
    simple_async = results["async_client"]
    assert simple_async["precheck"]["denied"] is True
    assert simple_async["precheck"]["raw_text_out"] == ""
    assert simple_async["postcheck"]["raw_text_out"] == "fine text"
    assert simple_async["health"] == "healthy"


# -- budget and usage ---------------------------------------------------------------------------


def test_recorded_usage_shows_in_the_budget(results: dict[str, Any]) -> None:
    assert results["usage"] == "ok" and results["usage_record"] == "ok"
    assert results["budget"] == {
        "limit": 100.0,
        "spend": 0.25,
        "remaining": 99.75,
        "currency": "USD",
        "period": [True, True],
    }
    assert "Insufficient permissions (Status: 403)" in error(results["usage_other_org"])


def test_check_budget_reads_the_status_endpoint(results: dict[str, Any]) -> None:
    assert results["check_budget_small"] == [True, 99.75, 0.5]
    allowed, reason = results["check_budget_large"]
    assert allowed is False and "budget" in reason


def test_usage_history_and_records_name_the_organisation_as_the_client_knows_it(
    results: dict[str, Any],
) -> None:
    assert results["usage_history"] == [["bob", "default", "anthropic", 1.5]]
    assert results["usage_records"] == [
        ["alice", "default", "openai", "gpt-4o", 10, 0.25, "external"]
    ]


def test_only_an_admin_key_changes_a_limit(results: dict[str, Any]) -> None:
    assert "Insufficient permissions (Status: 403)" in error(results["limit_by_app_key"])
    assert results["limit_by_admin_key"] is True
    assert results["carol_budget"] == [5.0, 5.0]
    assert results["carol_over_budget"] is False


# -- confirmations ------------------------------------------------------------------------------


def test_a_confirmation_is_created_read_and_polled_until_approved(results: dict[str, Any]) -> None:
    created = results["confirmation_created"]
    correlation_id = created["correlation_id"]
    assert created["status"] == "pending" and created["expires_at"].endswith("Z")
    assert created["url"].endswith(f"/confirmation/{correlation_id}")
    status = results["confirmation_status"]
    assert (status["correlation_id"], status["status"], status["approved"]) == (
        correlation_id,
        "pending",
        False,
    )
    assert results[f"approve:{correlation_id}"] == 200
    approved = results["confirmation_approved"]
    assert (approved["status"], approved["approved"]) == ("approved", True)
    assert approved["approved_at"] is not None and approved["rejected_at"] is None


def test_a_given_id_is_kept_a_duplicate_refused_and_a_rejection_raised(
    results: dict[str, Any],
) -> None:
    assert results["confirmation_with_id"] == ["sdk-order-1", "pending"]
    duplicate = error(results["confirmation_duplicate_id"])
    assert duplicate.startswith("ConfirmationError:") and "(Status: 409)" in duplicate
    assert results["reject:sdk-order-1"] == 200
    assert error(results["confirmation_rejected"]).startswith("ConfirmationRejectedError:")


def test_expiry_cancel_and_unknown_ids(results: dict[str, Any]) -> None:
    assert error(results["confirmation_expired"]).startswith("ConfirmationExpiredError:")
    cancelled = results["confirmation_cancelled"]
    assert cancelled["cancelled"] is True
    assert (cancelled["status"]["status"], cancelled["status"]["approved"]) == ("cancelled", False)
    # 1.0.0 polls a cancelled confirmation until its own deadline (§4.12)
    assert cancelled["poll"] == "ConfirmationTimeoutError"
    assert cancelled["again"].startswith("ConfirmationError:") and "409" in cancelled["again"]
    unknown = error(results["confirmation_unknown"])
    assert "Confirmation not found: cf_nope (Status: 404)" in unknown


def test_a_precheck_confirmation_is_polled_until_its_approver_approves(
    results: dict[str, Any],
) -> None:
    correlation_id = results["payment"]["correlation_id"]
    assert results[f"approve:{correlation_id}"] == 200
    approved = results["payment_approved"]
    assert approved["correlation_id"] == correlation_id and approved["approved"] is True


# -- tools --------------------------------------------------------------------------------------


def test_tools_are_registered_listed_read_and_updated(results: dict[str, Any]) -> None:
    assert results["tools_registered"] is True
    assert results["tools_listed"] == ["payments.transfer", "shell.exec", "weather.current"]
    assert results["tool_metadata"] == {
        "name": "weather.current",
        "description": "Current weather",
        "meta": True,
    }
    assert results["tool_updated"] is True
    assert results["tool_after_update"] == ["Weather now", {"city": "str"}]


def test_executing_a_tool_decides_like_a_precheck(results: dict[str, Any]) -> None:
    assert results["execute:weather.current"] == {
        "tool": "weather.current",
        "decision": "allow",
        "url": None,
    }
    payment = results["execute:payments.transfer"]
    assert payment["decision"] == "confirm" and "/confirmation/cf_" in payment["url"]
    assert results["execute:shell.exec"]["decision"] == "deny"
    assert results["tool_precheck_enriched"]["decision"] == "allow"


def test_unknown_tools_raise_tool_not_found(results: dict[str, Any]) -> None:
    assert results["tool_unregistered"] is True
    assert error(results["tool_missing"]).startswith("ToolNotFoundError:")
    assert error(results["execute_missing"]).startswith("ToolNotFoundError:")
    missing = error(results["unregister_missing"])
    assert missing.startswith("ToolError:") and "Tool not found: shell.exec" in missing


# -- analytics ----------------------------------------------------------------------------------


def test_decision_analytics_count_what_was_decided(results: dict[str, Any]) -> None:
    decisions = results["decisions"]
    assert decisions["time_range"] == "7d"
    assert decisions["total"] == decisions["count"] == sum(decisions["by_decision"].values())
    assert set(decisions["by_decision"]) == {"allow", "confirm", "deny", "redact"}
    assert decisions["by_tool"]["shell.exec"] == 2  # a precheck and an execute, for alice
    assert decisions["first"]["userId"] == "alice"
    assert set(decisions["first"]) >= {"id", "tool", "decision", "reasons", "timestamp"}
    no_stats = results["decisions_no_stats"]
    assert no_stats["count"] == 2 and no_stats["total"] > decisions["total"]
    assert "timeRange 'forever'" in error(results["decisions_bad_range"])


def test_a_bool_include_stats_fails_inside_1_0_0_before_any_request(
    results: dict[str, Any],
) -> None:
    for name in ("decisions_with_bool", "dashboard"):
        assert "Invalid variable type" in error(results[name])


def test_tool_call_and_spend_analytics(results: dict[str, Any]) -> None:
    tool_calls = results["tool_calls"]
    assert tool_calls["tools"] == ["shell.exec"]
    assert tool_calls["by_tool"] == {"shell.exec": tool_calls["total"]}
    assert tool_calls["by_decision"] == {"deny": tool_calls["total"]}
    assert results["spend"] == {
        "total": 1.75,
        "by_provider": {"anthropic": 1.5, "openai": 0.25},
        "by_user": {"bob": 1.5, "alice": 0.25},
        "by_cost_type": {"internal": 1.5, "external": 0.25},
        "currency": "USD",
        "time_range": "30d",
    }
    assert results["spend_of_bob"] == 1.5
