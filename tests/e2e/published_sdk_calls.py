"""Run by the published `governs-ai-sdk==1.0.0` (in `.venv-sdk10`), never by our own venv.

Usage: python published_sdk_calls.py BASE_URL APP_KEY APPROVER_KEY ADMIN_KEY. Prints one JSON
object: for each call, the values the test checks, or the exception the 1.0.0 client raised
(`{"error": "<class>: <message>"}`). Approving and rejecting are not in the SDK (wire protocol
§4.13a): the script does them over plain aiohttp with the approver key, while the SDK polls.
"""

import asyncio
import json
import sys
import time

import aiohttp
import governs_ai
from governs_ai import (
    AsyncClient,
    ConfirmationRequest,
    GovernsAIClient,
    PrecheckRequest,
    SyncClient,
    UsageRecord,
)

#: Fast polling, so that a poll that waits for an approval takes a fraction of a second.
POLL = {"max_duration": 10_000, "poll_interval": 50}


def decision(response):
    """A full-client `PrecheckResponse` as JSON (1.0.0's `Decision` is a plain Enum)."""
    value = response.decision
    return {
        "decision": getattr(value, "value", value),
        "reasons": response.reasons,
        "requires_confirmation": response.requires_confirmation,
        "url": response.confirmation_url,
        "correlation_id": (response.metadata or {}).get("correlationId"),
    }


def simple(response):
    """A simple-client `PrecheckDecision` as JSON."""
    return {
        "decision": response.decision,
        "reasons": response.reasons,
        "raw_text_out": response.raw_text_out,
        "allowed": response.allowed,
        "denied": response.denied,
    }


def status(response):
    return {
        "correlation_id": response.correlation_id,
        "status": response.status,
        "approved": response.approved,
        "approved_at": response.approved_at,
        "rejected_at": response.rejected_at,
        "expires_at": response.expires_at,
    }


async def main(base_url: str, app_key: str, approver_key: str, admin_key: str) -> dict:
    client = GovernsAIClient(api_key=app_key, base_url=base_url, org_id="default")
    admin = GovernsAIClient(api_key=admin_key, base_url=base_url, org_id="default")
    wrong_key = GovernsAIClient(api_key="gk_00000000_nope", base_url=base_url, org_id="default")
    approver = GovernsAIClient(api_key=approver_key, base_url=base_url, org_id="default")
    raw_session = aiohttp.ClientSession()
    out: dict = {}

    async def call(name, make, pick=lambda r: r):
        try:
            out[name] = pick(await make())
        except Exception as exc:  # the test reports what 1.0.0 raised
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}

    async def raw(method, path, key, body=None):
        """A plain HTTP call (what the SDK cannot do): `(status, json body)`."""
        async with raw_session.request(
            method, base_url + path, json=body, headers={"X-Governs-Key": key}
        ) as response:
            return response.status, await response.json()

    async def poll_while(correlation_id, action):
        """Poll with the SDK while an approver key approves or rejects after a moment."""
        poll = asyncio.ensure_future(client.confirmation.poll_confirmation(correlation_id, **POLL))
        await asyncio.sleep(0.2)
        path = f"/confirmation/{correlation_id}/{action}"
        out[f"{action}:{correlation_id}"] = (await raw("POST", path, approver_key))[0]
        return await poll

    def confirmation_request(**overrides):
        fields = {
            "request_type": "tool_call",
            "request_desc": "Transfer 10 USD to ACME",
            "request_payload": {"tool": "payments.transfer", "amount": 10},
            "reasons": ["tool.requires_confirmation:payments.transfer"],
            "user_id": "alice",
        }
        fields.update(overrides)
        return ConfirmationRequest(**fields)

    try:
        # -- health and connection --
        await call("connection", client.test_connection)
        await call("health", client.get_health_status, lambda r: [r.status, sorted(r.services)])
        await call("wrong_key_connection", wrong_key.test_connection)  # health is public

        # -- precheck: the full client and its helpers --
        await call(
            "chat",
            lambda: client.precheck_request(
                tool="model.chat",
                scope="net.external",
                raw_text="Mail me at alice@example.com",
                payload={},
                tags=[],
                user_id="alice",
            ),
            decision,
        )
        await call(
            "chat_message",
            lambda: client.precheck.check_chat_message(
                [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "My SSN is 123-45-6789"},
                ],
                provider="openai",
                user_id="alice",
            ),
            decision,
        )
        await call(
            "chat_without_user_message",
            lambda: client.precheck.check_chat_message(
                [{"role": "system", "content": "x"}], provider="openai", user_id="alice"
            ),
        )
        await call(
            "denied_tool",
            lambda: client.precheck.check_tool_call(
                tool="shell.exec", args={"cmd": "ls"}, scope="tools", user_id="alice"
            ),
            decision,
        )
        await call(
            "payment",
            lambda: client.precheck.check_tool_call(
                tool="payments.transfer", args={"amount": 5}, scope="tools", user_id="alice"
            ),
            decision,
        )
        await call(
            "file_upload",
            lambda: client.precheck.check_file_upload(
                "report.pdf", 1024, "application/pdf", user_id="alice"
            ),
            decision,
        )
        await call(
            "request_object",
            lambda: client.precheck.check_request(
                PrecheckRequest(
                    tool="model.chat",
                    scope="net.external",
                    raw_text="What is the capital of France?",
                    payload={"messages": []},
                    tags=["chat"],
                    user_id="alice",
                    corr_id="trace-1",
                )
            ),
            decision,
        )
        await call(
            "wrong_key_precheck",
            lambda: wrong_key.precheck_request(
                tool="model.chat", scope="s", raw_text="hi", payload={}, tags=[], user_id="a"
            ),
        )
        await call(
            "approver_key_precheck",
            lambda: approver.precheck_request(
                tool="model.chat", scope="s", raw_text="hi", payload={}, tags=[], user_id="a"
            ),
        )

        # -- the simple clients --
        async def sync_calls():
            def run():
                with SyncClient(api_key=app_key, base_url=base_url) as sync:
                    return {
                        "precheck": simple(
                            sync.precheck(tool="model.chat", raw_text="card 4111 1111 1111 1111")
                        ),
                        "postcheck": simple(
                            sync.postcheck(
                                tool="model.chat", raw_text="reach me at bob@example.com"
                            )
                        ),
                        "health": sync.health()["status"],
                        "one_shot": simple(
                            governs_ai.precheck(
                                api_key=app_key,
                                base_url=base_url,
                                tool="model.chat",
                                raw_text="hello",
                                user_id="alice",
                            )
                        ),
                    }

            return await asyncio.to_thread(run)

        await call("sync_client", sync_calls)

        async def sync_wrong_key():
            def run():
                with SyncClient(api_key="gk_00000000_nope", base_url=base_url, retries=0) as sync:
                    sync.precheck(tool="model.chat", raw_text="hi")

            return await asyncio.to_thread(run)

        await call("sync_wrong_key", sync_wrong_key)

        async def async_calls():
            async with AsyncClient(api_key=app_key, base_url=base_url) as simple_async:
                return {
                    "precheck": simple(
                        await simple_async.precheck(tool="shell.exec", raw_text="Tool call")
                    ),
                    "postcheck": simple(
                        await simple_async.postcheck(tool="model.chat", raw_text="fine text")
                    ),
                    "health": (await simple_async.health())["status"],
                }

        await call("async_client", async_calls)

        # -- budget and usage --
        await call(
            "usage",
            lambda: client.record_usage(
                {
                    "userId": "alice",
                    "orgId": "default",
                    "provider": "openai",
                    "model": "gpt-4o",
                    "inputTokens": 10,
                    "outputTokens": 5,
                    "cost": 0.25,
                    "costType": "external",
                }
            ),
            lambda r: "ok",
        )
        await call(
            "usage_record",
            lambda: client.budget.record_usage(
                UsageRecord(
                    user_id="bob",
                    org_id="default",
                    provider="anthropic",
                    model="claude",
                    input_tokens=100,
                    output_tokens=50,
                    cost=1.5,
                    cost_type="internal",
                )
            ),
            lambda r: "ok",
        )
        await call(
            "usage_other_org",
            lambda: client.record_usage(
                {"userId": "alice", "orgId": "acme", "provider": "p", "model": "m", "cost": 1}
            ),
        )
        await call(
            "budget",
            lambda: client.get_budget_context("alice"),
            lambda r: {
                "limit": r.monthly_limit,
                "spend": r.current_spend,
                "remaining": r.remaining_budget,
                "currency": r.currency,
                "period": [r.period_start is not None, r.period_end is not None],
            },
        )
        await call(
            "check_budget_small",
            lambda: client.budget.check_budget(0.5, "alice"),
            lambda r: [r.allowed, r.remaining_budget, r.estimated_cost],
        )
        await call(
            "check_budget_large",
            lambda: client.budget.check_budget(1e9, "alice"),
            lambda r: [r.allowed, r.reason],
        )
        await call(
            "usage_history",
            lambda: client.budget.get_usage_history("bob", limit=10, offset=0),
            lambda records: [[r["userId"], r["orgId"], r["provider"], r["cost"]] for r in records],
        )
        await call(
            "usage_records",
            lambda: client.analytics.get_usage_records("7d", user_id="alice"),
            lambda records: [
                [r.user_id, r.org_id, r.provider, r.model, r.input_tokens, r.cost, r.cost_type]
                for r in records
            ],
        )
        await call("limit_by_app_key", lambda: client.budget.update_budget_limit("carol", 5.0))
        await call("limit_by_admin_key", lambda: admin.budget.update_budget_limit("carol", 5.0))
        await call(
            "carol_budget",
            lambda: client.get_budget_context("carol"),
            lambda r: [r.monthly_limit, r.remaining_budget],
        )
        await call(
            "carol_over_budget",
            lambda: client.budget.check_budget(6.0, "carol"),
            lambda r: r.allowed,
        )

        # -- confirmations --
        await call(
            "confirmation_created",
            lambda: client.create_confirmation(
                request_type="tool_call",
                request_desc="Transfer 10 USD to ACME",
                request_payload={"amount": 10},
                reasons=["tool.requires_confirmation:payments.transfer"],
                user_id="alice",
            ),
            lambda r: {
                "correlation_id": r.correlation_id,
                "url": r.confirmation_url,
                "status": r.status,
                "expires_at": r.expires_at,
            },
        )
        approved_id = out["confirmation_created"].get("correlation_id")
        await call(
            "confirmation_status",
            lambda: client.confirmation.get_confirmation_status(approved_id),
            status,
        )
        await call("confirmation_approved", lambda: poll_while(approved_id, "approve"), status)

        await call(
            "confirmation_with_id",
            lambda: client.confirmation.create_confirmation(
                confirmation_request(correlation_id="sdk-order-1")
            ),
            lambda r: [r.correlation_id, r.status],
        )
        await call(
            "confirmation_duplicate_id",
            lambda: client.confirmation.create_confirmation(
                confirmation_request(correlation_id="sdk-order-1")
            ),
        )
        await call("confirmation_rejected", lambda: poll_while("sdk-order-1", "reject"), status)

        async def expiring():
            code, body = await raw(
                "POST",
                "/confirmation",
                app_key,
                {
                    "requestType": "tool_call",
                    "requestDesc": "d",
                    "requestPayload": {},
                    "reasons": [],
                    "userId": "alice",
                    "correlationId": None,
                    "expiresInSeconds": 0.3,
                },
            )
            assert code == 201, body
            return await client.confirmation.poll_confirmation(body["correlationId"], **POLL)

        await call("confirmation_expired", expiring)

        async def cancelled():
            created = await client.confirmation.create_confirmation(confirmation_request())
            cancelled = await client.confirmation.cancel_confirmation(created.correlation_id)
            after = await client.confirmation.get_confirmation_status(created.correlation_id)
            started = time.monotonic()
            try:  # 1.0.0 keeps polling a cancelled confirmation until its own deadline
                await client.confirmation.poll_confirmation(
                    created.correlation_id, max_duration=300, poll_interval=50
                )
                polled = "returned"
            except Exception as exc:
                polled = type(exc).__name__
            try:
                await client.confirmation.cancel_confirmation(created.correlation_id)
                again = "cancelled twice"
            except Exception as exc:
                again = f"{type(exc).__name__}: {exc}"
            return {
                "cancelled": cancelled,
                "status": status(after),
                "poll": polled,
                "poll_seconds": time.monotonic() - started,
                "again": again,
            }

        await call("confirmation_cancelled", cancelled)
        await call(
            "confirmation_unknown",
            lambda: client.confirmation.get_confirmation_status("cf_nope"),
        )
        payment_id = out["payment"].get("correlation_id") if "payment" in out else None
        await call(
            "payment_approved",
            lambda: poll_while(payment_id, "approve") if payment_id else asyncio.sleep(0),
            status,
        )

        # -- tools --
        definitions = [
            {"name": "weather.current", "description": "Current weather", "parameters": {}},
            {"name": "payments.transfer", "description": "Move money", "scope": "net.external"},
            {"name": "shell.exec", "description": "Run a command"},
        ]
        await call("tools_registered", lambda: client.tools.register_tools(definitions))
        await call(
            "tools_listed",
            client.tools.list_tools,
            lambda tools: sorted(t["name"] for t in tools),
        )
        await call(
            "tool_metadata",
            lambda: client.tools.get_tool_metadata("weather.current"),
            lambda r: {"name": r["name"], "description": r["description"], "meta": "metadata" in r},
        )
        await call(
            "tool_updated",
            lambda: client.tools.update_tool(
                "weather.current", {"description": "Weather now", "parameters": {"city": "str"}}
            ),
        )
        await call(
            "tool_after_update",
            lambda: client.tools.get_tool_metadata("weather.current"),
            lambda r: [r["description"], r["parameters"]],
        )
        for name in ("weather.current", "payments.transfer", "shell.exec"):
            await call(
                f"execute:{name}",
                lambda name=name: client.tools.execute_tool(name, {"x": 1}, user_id="alice"),
                lambda r: {
                    "tool": r["tool"],
                    "decision": r["decision"],
                    "url": r.get("confirmationUrl"),
                },
            )
        await call(
            "tool_precheck_enriched",  # the precheck reads /api/v1/tools/{tool}/metadata first
            lambda: client.precheck.check_tool_call(
                tool="weather.current", args={"city": "Paris"}, scope="tools", user_id="alice"
            ),
            decision,
        )
        await call("tool_unregistered", lambda: client.tools.unregister_tool("shell.exec"))
        await call("tool_missing", lambda: client.tools.get_tool_metadata("shell.exec"))
        await call(
            "execute_missing", lambda: client.tools.execute_tool("shell.exec", {}, user_id="a")
        )
        await call("unregister_missing", lambda: client.tools.unregister_tool("shell.exec"))

        # -- analytics --
        def stats(r):
            return {
                "total": r.stats.total,
                "by_decision": r.stats.by_decision,
                "by_tool": r.stats.by_tool,
                "time_range": r.time_range,
            }

        await call(
            "decisions",
            lambda: client.analytics.get_decisions("7d", include_stats="true", user_id="alice"),
            lambda r: {**stats(r), "count": len(r.decisions), "first": r.decisions[0]},
        )
        await call(
            "decisions_no_stats",
            lambda: client.analytics.get_decisions("30d", include_stats="false", limit=2),
            lambda r: {"total": r.stats.total, "count": len(r.decisions)},
        )
        await call(
            "decisions_with_bool",  # 1.0.0 cannot send a bool query value (spec §2.3)
            lambda: client.analytics.get_decisions("7d", include_stats=True),
        )
        await call(
            "decisions_bad_range",
            lambda: client.analytics.get_decisions("forever", include_stats="true"),
        )
        await call(
            "tool_calls",
            lambda: client.analytics.get_tool_calls(
                "7d", include_stats="true", tool_name="shell.exec"
            ),
            lambda r: {**stats(r), "tools": sorted({c["tool"] for c in r.tool_calls})},
        )
        await call(
            "spend",
            lambda: client.analytics.get_spend_analytics("30d"),
            lambda r: {
                "total": r.total_cost,
                "by_provider": r.by_provider,
                "by_user": r.by_user,
                "by_cost_type": r.by_cost_type,
                "currency": r.currency,
                "time_range": r.time_range,
            },
        )
        await call(
            "spend_of_bob",
            lambda: client.analytics.get_spend_analytics("7d", user_id="bob", provider="anthropic"),
            lambda r: r.total_cost,
        )
        await call(
            "dashboard",  # gathers get_decisions(include_stats=True): fails in 1.0.0 (§2.3)
            lambda: client.analytics.get_dashboard_summary("7d"),
        )
    finally:
        for each in (client, admin, wrong_key, approver):
            await each.close()
        await raw_session.close()
    return out


print(json.dumps(asyncio.run(main(*sys.argv[1:5]))))
