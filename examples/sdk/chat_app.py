"""A chat app governed by GovernsAI: precheck the user's message, send the (redacted) text to the
model, record what the call cost, and show the user's budget.

    make serve    # in another terminal: prints an app key
    GOVERNS_API_KEY=gk_... GOVERNS_ORG_ID=default \\
        .venv/bin/python examples/sdk/chat_app.py "Mail the report to jane.doe@example.com"

Environment: `GOVERNS_API_KEY` and `GOVERNS_ORG_ID` (required), `GOVERNS_BASE_URL` (default
http://127.0.0.1:8000, where `make serve` listens). The model is a stand-in (it echoes), so the
script needs no LLM account. Exit codes: 0 done (a denied message is a normal outcome), 1 the
server is unreachable or refused a call, 2 the configuration is incomplete.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import NoReturn

from governs_ai import GovernsAIClient, GovernsAIError, UsageRecord

LOCAL_SERVER = "http://127.0.0.1:8000"
PRICE_PER_TOKEN = 0.002  # USD, the stand-in model's price


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"chat_app: {message}", file=sys.stderr)
    raise SystemExit(code)


def make_client() -> GovernsAIClient:
    try:
        return GovernsAIClient.from_env(base_url=os.environ.get("GOVERNS_BASE_URL") or LOCAL_SERVER)
    except ValueError as exc:
        fail(f"configuration: {exc}", 2)


def call_model(text: str) -> str:
    """The LLM call of a real app (here an echo, so that the example runs anywhere)."""
    return f"I received: {text!r}"


def money(value: float | None) -> str:
    return "?" if value is None else f"{value:.4f}"


async def chat(message: str, user_id: str) -> int:
    async with make_client() as client:
        base_url = client.get_config().base_url
        if not await client.test_connection():
            fail(f"cannot reach the GovernsAI server at {base_url} (is `make serve` running?)")
        print(f"user {user_id}: {message}")

        messages = [{"role": "user", "content": message}]
        response = await client.precheck.check_chat_message(messages, user_id=user_id)
        print(f"precheck: {response.decision} {', '.join(response.reasons) or '(no reasons)'}")
        if response.decision == "deny":
            print("blocked: the message was not sent to the model")
            return 0
        if response.decision == "confirm":
            print(f"needs approval first: {response.confirmation_url}")
            return 0

        text = message
        if response.decision == "redact" and response.raw_text_out is not None:
            text = response.raw_text_out
        print(f"sent to the model: {text}")
        reply = call_model(text)
        print(f"model: {reply}")

        input_tokens, output_tokens = len(text.split()), len(reply.split())
        cost = (input_tokens + output_tokens) * PRICE_PER_TOKEN
        await client.record_usage(
            UsageRecord(
                user_id=user_id,
                org_id=client.get_config().org_id,
                provider="echo",
                model="echo-1",
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost=cost,
            )
        )
        print(f"usage recorded: {input_tokens} + {output_tokens} tokens, {cost:.4f} USD")

        budget = await client.get_budget_context(user_id)
        print(
            f"budget: spent {money(budget.current_spend)} of {money(budget.monthly_limit)} "
            f"{budget.currency}, {money(budget.remaining_budget)} left "
            f"(period {budget.period_start} to {budget.period_end})"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "message", nargs="?", default="Please mail the summary to jane.doe@example.com"
    )
    parser.add_argument("--user", default="alice", help="the end user (default: alice)")
    args = parser.parse_args()
    try:
        return asyncio.run(chat(args.message, args.user))
    except GovernsAIError as exc:
        status = f" (HTTP {exc.status_code})" if exc.status_code else ""
        fail(f"the server refused the call{status}: {exc.message}")


if __name__ == "__main__":
    sys.exit(main())
