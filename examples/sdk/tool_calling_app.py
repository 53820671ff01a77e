"""An agent's tool calls governed by GovernsAI: register the tools, check each call before
running it, skip what is denied, and wait for a human to approve what needs confirmation.

    make serve    # in another terminal: prints an app key
    GOVERNS_API_KEY=gk_... GOVERNS_ORG_ID=default .venv/bin/python examples/sdk/tool_calling_app.py

While it waits, approve the payment with an approver or admin key (the script prints the id):

    curl -X POST -H 'X-Governs-Key: gk_...' http://127.0.0.1:8000/confirmation/<id>/approve

Environment: `GOVERNS_API_KEY` and `GOVERNS_ORG_ID` (required), `GOVERNS_BASE_URL` (default
http://127.0.0.1:8000). `--poll-interval` and `--max-wait` (milliseconds; defaults 5000 and
300000) set how often and how long it polls for the approval. Exit codes: 0 done (denied,
rejected or unanswered calls are normal outcomes), 1 the server is unreachable or refused a
call, 2 the configuration is incomplete.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from governs_ai import (
    ConfirmationExpiredError,
    ConfirmationRejectedError,
    ConfirmationTimeoutError,
    GovernsAIClient,
    GovernsAIError,
)

LOCAL_SERVER = "http://127.0.0.1:8000"

TOOLS: list[dict[str, Any]] = [
    {
        "name": "weather.current",
        "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
    {
        "name": "payments.transfer",
        "description": "Send money to someone",
        "parameters": {
            "type": "object",
            "properties": {"amount": {"type": "number"}, "to": {"type": "string"}},
        },
    },
    {
        "name": "shell.exec",
        "description": "Run a shell command",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
    },
]

#: What the agent would run locally once a call is allowed (stand-ins, nothing real happens).
IMPLEMENTATIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "weather.current": lambda args: f"sunny, 21 C in {args['city']}",
    "payments.transfer": lambda args: f"sent {args['amount']} EUR to {args['to']}",
    "shell.exec": lambda args: f"ran {args['command']!r}",
}

#: The calls the "model" asks for, in order.
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("weather.current", {"city": "Paris"}),
    ("shell.exec", {"command": "rm -rf /tmp/cache"}),
    ("payments.transfer", {"amount": 25, "to": "bob"}),
]


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"tool_calling_app: {message}", file=sys.stderr)
    raise SystemExit(code)


def make_client() -> GovernsAIClient:
    try:
        return GovernsAIClient.from_env(base_url=os.environ.get("GOVERNS_BASE_URL") or LOCAL_SERVER)
    except ValueError as exc:
        fail(f"configuration: {exc}", 2)


async def governed_call(
    client: GovernsAIClient,
    tool: str,
    args: dict[str, Any],
    user_id: str,
    poll_interval: int,
    max_wait: int,
) -> None:
    """Check one tool call and run it only if the policy (or a human) allows it."""
    print(f"\n{tool} {args}")
    response = await client.precheck.check_tool_call(tool, args, user_id=user_id)
    reasons = ", ".join(response.reasons) or "(no reasons)"
    print(f"  precheck: {response.decision} {reasons}")
    if response.decision == "deny":
        print("  denied: not run")
        return
    if response.decision == "confirm":
        correlation_id = response.correlation_id
        if correlation_id is None:
            print("  needs confirmation, but the server sent no correlation id: not run")
            return
        print(f"  waiting for approval: {response.confirmation_url}")
        print(f"  correlation id: {correlation_id}")
        try:
            status = await client.confirmation.poll_confirmation(
                correlation_id, max_duration=max_wait, poll_interval=poll_interval
            )
        except ConfirmationRejectedError:
            print("  rejected by an approver: not run")
            return
        except ConfirmationExpiredError:
            print("  the confirmation expired: not run")
            return
        except ConfirmationTimeoutError:
            print(f"  no decision within {max_wait} ms: not run")
            return
        print(f"  approved at {status.approved_at}")
    print(f"  result: {IMPLEMENTATIONS[tool](args)}")


async def run(user_id: str, poll_interval: int, max_wait: int) -> int:
    async with make_client() as client:
        base_url = client.get_config().base_url
        if not await client.test_connection():
            fail(f"cannot reach the GovernsAI server at {base_url} (is `make serve` running?)")
        await client.tools.register_tools(TOOLS)
        registered = [tool["name"] for tool in await client.tools.list_tools()]
        print(f"registered tools: {', '.join(t['name'] for t in TOOLS if t['name'] in registered)}")
        for tool, args in CALLS:
            await governed_call(client, tool, args, user_id, poll_interval, max_wait)
    return 0


def main() -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # show progress while polling
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--user", default="alice", help="the end user (default: alice)")
    parser.add_argument("--poll-interval", type=int, default=5000, help="ms between polls")
    parser.add_argument("--max-wait", type=int, default=300000, help="ms to wait for approval")
    args = parser.parse_args()
    try:
        return asyncio.run(run(args.user, args.poll_interval, args.max_wait))
    except GovernsAIError as exc:
        status = f" (HTTP {exc.status_code})" if exc.status_code else ""
        fail(f"the server refused the call{status}: {exc.message}")


if __name__ == "__main__":
    sys.exit(main())
