"""Run by the published `governs-ai-sdk==1.0.0` (in `.venv-sdk10`), never by our own venv.

Usage: python published_sdk_calls.py BASE_URL APP_KEY. Prints one JSON object: for each call, the
values the test checks, or the exception the 1.0.0 client raised.
"""

import asyncio
import json
import sys

from governs_ai import GovernsAIClient


async def main(base_url: str, key: str) -> dict:
    client = GovernsAIClient(api_key=key, base_url=base_url, org_id="default")
    out: dict = {}

    async def call(name, make, pick):
        try:
            out[name] = pick(await make())
        except Exception as exc:  # the test reports what 1.0.0 raised
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}

    try:
        await call("connection", client.test_connection, lambda r: r)
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
            lambda r: {"decision": str(r.decision.value), "reasons": r.reasons},
        )
        await call(
            "denied_tool",
            lambda: client.precheck.check_tool_call(
                tool="shell.exec", args={"cmd": "ls"}, scope="tools", user_id="alice"
            ),
            lambda r: {"decision": str(r.decision.value)},
        )
        await call(
            "payment",
            lambda: client.precheck.check_tool_call(
                tool="payments.transfer", args={"amount": 5}, scope="tools", user_id="alice"
            ),
            lambda r: {"decision": str(r.decision.value), "url": r.confirmation_url},
        )
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
            "budget",
            lambda: client.get_budget_context("alice"),
            lambda r: {"limit": r.monthly_limit, "spend": r.current_spend},
        )
        await call("health", client.get_health_status, lambda r: r.status)
    finally:
        await client.close()
    return out


print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
