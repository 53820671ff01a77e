"""The examples the README points at run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_govern_quickstart_prints_what_the_readme_promises() -> None:
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "govern_quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert lines[0] == "charged 1200 cents"
    assert "validation.check_failed" in lines[1]
    assert "rate_limit.exceeded" in lines[4]
    assert "4111" not in run.stdout  # the card number is masked in every audit record


def test_approvals_quickstart_walks_through_both_patterns() -> None:
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "approvals_quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = run.stdout.splitlines()
    assert lines[0] == "paid 950.00 to ACME"
    assert lines[1] == "rejected by cfo@example.com: duplicate invoice"
    assert any(line.startswith("pending: ") for line in lines)
    assert "resumed: wired 50000.00 to DE89..." in lines
    assert lines[-1].startswith("stored: completed")
    assert "DE89370400440532013000" not in run.stdout  # masked in the stored inputs
