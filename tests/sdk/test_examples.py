"""The SDK examples (examples/sdk/) run as scripts against the real server and print what they
promise; an approver approves the tool call's confirmation from here while the script polls."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from governs_ai import SyncGovernsAIClient

from tests.sdk.conftest import ORG, LiveServer, closed_port_url

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sdk"
SCRIPTS = ["chat_app.py", "tool_calling_app.py", "dashboard.py"]


def environment(
    server: LiveServer, key: str | None = None, **changes: str | None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNS_")}
    env |= {
        "GOVERNS_API_KEY": key or server.app_key,
        "GOVERNS_BASE_URL": server.url,
        "GOVERNS_ORG_ID": ORG,
        "GOVERNS_RETRY_DELAY": "10",
        "PYTHONUNBUFFERED": "1",
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def run(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def test_the_chat_app_sends_the_redacted_text_records_usage_and_shows_the_budget(
    live_server: LiveServer,
) -> None:
    alice = user()
    done = run(
        "chat_app.py", environment(live_server), "Mail it to jane@example.com", "--user", alice
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "precheck: redact pii.redacted:email" in lines
    assert "sent to the model: Mail it to [REDACTED_EMAIL]" in lines
    assert "jane@example.com" not in "\n".join(lines[2:])  # only the user's own line has it
    assert "usage recorded: 4 + 6 tokens, 0.0200 USD" in lines
    assert any(line.startswith("budget: spent 0.0200 of ") for line in lines), done.stdout
    with SyncGovernsAIClient(
        api_key=live_server.app_key, base_url=live_server.url, org_id=ORG
    ) as c:
        assert c.get_budget_context(alice).current_spend == pytest.approx(0.02)


def test_the_tool_calling_app_skips_denied_calls_and_waits_for_the_approval(
    live_server: LiveServer,
) -> None:
    bob = user()
    script = [sys.executable, str(EXAMPLES / "tool_calling_app.py"), "--user", bob]
    with subprocess.Popen(
        [*script, "--poll-interval", "50", "--max-wait", "30000"],
        env=environment(live_server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        seen: list[str] = []
        for line in process.stdout:
            seen.append(line.rstrip("\n"))
            if line.strip().startswith("correlation id: "):
                correlation_id = line.split(": ", 1)[1].strip()
                with live_server.client(live_server.approver_key) as http:
                    approved = http.post(f"/confirmation/{correlation_id}/approve")
                assert approved.status_code == 200, approved.text
                break
        rest, errors = process.communicate(timeout=60)
    output = "\n".join(seen) + "\n" + rest
    assert process.returncode == 0, errors
    assert "registered tools: weather.current, payments.transfer, shell.exec" in output
    assert "  result: sunny, 21 C in Paris" in output
    assert "  precheck: deny " in output and "  denied: not run" in output
    assert "ran 'rm -rf" not in output
    assert "  precheck: confirm " in output and "  waiting for approval: http" in output
    assert "  approved at " in output and "  result: sent 25 EUR to bob" in output


def test_the_tool_calling_app_gives_up_after_max_wait_without_running_the_payment(
    live_server: LiveServer,
) -> None:
    args = ("--user", user(), "--poll-interval", "50", "--max-wait", "300")
    done = run("tool_calling_app.py", environment(live_server), *args)
    assert done.returncode == 0, done.stderr
    assert "  no decision within 300 ms: not run" in done.stdout
    assert "sent 25 EUR" not in done.stdout


def test_the_dashboard_shows_decisions_tool_calls_and_spend(live_server: LiveServer) -> None:
    carol = user()
    with SyncGovernsAIClient(
        api_key=live_server.app_key, base_url=live_server.url, org_id=ORG
    ) as c:
        c.precheck.check_chat_message([{"role": "user", "content": "hello"}], carol)
        c.precheck.check_tool_call("shell.exec", {"command": "ls"}, carol)
        c.precheck.check_tool_call("payments.transfer", {"amount": 5}, carol)
        c.record_usage({"user_id": carol, "provider": "openai", "model": "gpt-4o", "cost": 0.5})
    done = run("dashboard.py", environment(live_server), "--time-range", "24h", "--user", carol)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"GovernsAI dashboard: last 24h, {carol} (")
    assert "\nDecisions: 3\n" in out
    assert "  allow    1" in out and "  deny     1" in out and "  confirm  1" in out
    assert "\nTool calls: 2\n" in out
    assert "  payments.transfer  1" in out and "  shell.exec         1" in out
    assert "\nSpend: 0.5000 USD\n" in out and "  openai  0.5000" in out
    assert "Latest 3 decisions:" in out and "shell.exec  deny  " in out


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unreachable_server_is_a_clear_error_and_exit_code_1(
    live_server: LiveServer, script: str
) -> None:
    url = closed_port_url()
    done = run(script, environment(live_server, GOVERNS_BASE_URL=url))
    assert done.returncode == 1 and done.stdout == ""
    assert f"cannot reach the GovernsAI server at {url}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_missing_key_is_a_configuration_error_and_exit_code_2(
    live_server: LiveServer, script: str
) -> None:
    done = run(script, environment(live_server, GOVERNS_API_KEY=None))
    assert done.returncode == 2 and "GOVERNS_API_KEY is not set" in done.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_wrong_key_is_reported_with_its_status(live_server: LiveServer, script: str) -> None:
    done = run(script, environment(live_server, key="gk_wrong"))
    assert done.returncode == 1 and "(HTTP 401)" in done.stderr
    assert "Traceback" not in done.stderr
