"""A governance dashboard in the terminal: decisions, tool calls and spend over a time range.

    GOVERNS_API_KEY=gk_... GOVERNS_ORG_ID=default \\
        .venv/bin/python examples/sdk/dashboard.py --time-range 7d

Environment: `GOVERNS_API_KEY` and `GOVERNS_ORG_ID` (required), `GOVERNS_BASE_URL` (default
http://127.0.0.1:8000). `--user` limits every figure to one end user. Exit codes: 0 done, 1 the
server is unreachable or refused a call, 2 the configuration is incomplete.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from typing import NoReturn

from governs_ai import GovernsAIClient, GovernsAIError

LOCAL_SERVER = "http://127.0.0.1:8000"


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"dashboard: {message}", file=sys.stderr)
    raise SystemExit(code)


def make_client() -> GovernsAIClient:
    try:
        return GovernsAIClient.from_env(base_url=os.environ.get("GOVERNS_BASE_URL") or LOCAL_SERVER)
    except ValueError as exc:
        fail(f"configuration: {exc}", 2)


def table(counts: Mapping[str, float], money: bool = False) -> None:
    if not counts:
        print("  (none)")
    width = max((len(name) for name in counts), default=0)
    for name, value in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {name:<{width}}  {value:.4f}" if money else f"  {name:<{width}}  {value}")


async def show(time_range: str, user_id: str | None, recent: int) -> int:
    async with make_client() as client:
        base_url = client.get_config().base_url
        if not await client.test_connection():
            fail(f"cannot reach the GovernsAI server at {base_url} (is `make serve` running?)")
        decisions = await client.analytics.get_decisions(
            time_range, include_stats=True, user_id=user_id, limit=recent
        )
        tool_calls = await client.analytics.get_tool_calls(time_range, user_id=user_id)
        spend = await client.analytics.get_spend_analytics(time_range, user_id=user_id)

    print(f"GovernsAI dashboard: last {time_range}, {user_id or 'all users'} ({base_url})")
    print(f"\nDecisions: {decisions.stats.total}")
    table(decisions.stats.by_decision)
    print(f"\nTool calls: {tool_calls.stats.total}")
    table(tool_calls.stats.by_tool)
    print(f"\nSpend: {spend.total_cost:.4f} {spend.currency}")
    print(" by provider:")
    table(spend.by_provider, money=True)
    print(" by user:")
    table(spend.by_user, money=True)
    print(f"\nLatest {len(decisions.decisions)} decisions:")
    for record in decisions.decisions:
        reasons = ", ".join(record.get("reasons") or [])
        print(
            f"  {record.get('timestamp')}  {record.get('userId')}  {record.get('tool')}  "
            f"{record.get('decision')}  {reasons}".rstrip()
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-range", default="7d", help="e.g. 24h, 7d, 30d (default: 7d)")
    parser.add_argument("--user", default=None, help="only this end user")
    parser.add_argument("--recent", type=int, default=5, help="how many decisions to list")
    args = parser.parse_args()
    try:
        return asyncio.run(show(args.time_range, args.user, args.recent))
    except GovernsAIError as exc:
        status = f" (HTTP {exc.status_code})" if exc.status_code else ""
        fail(f"the server refused the call{status}: {exc.message}")


if __name__ == "__main__":
    sys.exit(main())
