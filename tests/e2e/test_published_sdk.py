"""The published `governs-ai-sdk==1.0.0`, unchanged, against our server (issue 5's promise).

It installs the same module name as our SDK, so `make install` puts it in a venv of its own
(`.venv-sdk10`) and the calls run there in a subprocess, over a real socket.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-sdk10" / "bin" / "python"


@pytest.fixture(scope="module")
def results(live_server: LiveServer) -> dict:
    if not PYTHON.exists():
        pytest.fail(f"{PYTHON} is missing: run `make install` (it installs governs-ai-sdk==1.0.0)")
    run = subprocess.run(
        [
            str(PYTHON),
            str(Path(__file__).with_name("published_sdk_calls.py")),
            live_server.url,
            live_server.app_key,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_connection_and_health(results: dict) -> None:
    assert results["connection"] is True
    assert results["health"] == "healthy"


def test_chat_precheck_is_redacted_and_names_only_the_kind(results: dict) -> None:
    assert results["chat"]["decision"] == "redact"
    assert not any("alice@example.com" in reason for reason in results["chat"]["reasons"])


def test_tool_calls_are_denied_or_sent_for_confirmation(results: dict) -> None:
    assert results["denied_tool"] == {"decision": "deny"}
    assert results["payment"]["decision"] == "confirm"
    assert "/confirmation/" in results["payment"]["url"]


def test_recorded_usage_shows_in_the_budget(results: dict) -> None:
    assert results["usage"] == "ok"
    assert results["budget"] == {"limit": 100.0, "spend": 0.25}
