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
