"""Approvals survive the death of the waiting process, and run exactly once.

Twenty processes each call a governed `transfer` that needs approval and wait (sync pattern);
all twenty are killed with SIGKILL while their approvals are pending. A NEW process approves
them, and TWO resume worker processes race to run them: every transfer runs exactly once, with
its original arguments (0 losses, 0 duplicates). Real processes, one SQLite file (and the
PostgreSQL test server too when GOVERNOR_TEST_POSTGRES_URL is set).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from governor.storage import ApprovalStatus, ExecutionStatus, SQLStorage
from tests.storage.conftest import POSTGRES_ENV, sqlite_url

ROOT = Path(__file__).resolve().parents[2]
CHILDREN = 20


def run_app(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.approvals.restart_app", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err.decode()[-2000:]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        url = os.environ.get(POSTGRES_ENV, "")
        if not url:
            pytest.skip(f"{POSTGRES_ENV} is not set")
    store = SQLStorage(url)  # migrated once, before the children race to use it
    store.clear()
    store.close()
    return url


def test_killed_waiters_are_approved_elsewhere_and_resumed_exactly_once(
    database: str, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.txt"
    env = {**os.environ, "GOVERNOR_TEST_RUNS": str(runs), "RUST_BACKTRACE": "0"}
    children = [
        run_app("call", database, f"{1000 + i}.50", f"acct-{i}", env=env) for i in range(CHILDREN)
    ]
    store = SQLStorage(database)
    try:
        deadline = time.monotonic() + 120
        while len(store.list_approvals(status="pending", limit=None)) < CHILDREN:
            assert time.monotonic() < deadline, "the children never stored their approvals"
            assert all(c.poll() is None for c in children), "a child exited before approval"
            time.sleep(0.05)
        for child in children:
            child.send_signal(signal.SIGKILL)
        for child in children:
            child.wait(timeout=30)
            assert child.returncode == -signal.SIGKILL
        assert not runs.exists()  # nothing ran before the approval

        finish(run_app("approve", database, "cfo", env=env))
        approved = store.list_approvals(status=ApprovalStatus.APPROVED, limit=None)
        assert len(approved) == CHILDREN and {r.decided_by for r in approved} == {"cfo"}

        workers = [run_app("resume", database, str(CHILDREN), env=env) for _ in range(2)]
        for worker in workers:
            finish(worker)

        lines = runs.read_text().splitlines()
        ran = Counter(tuple(line.split()[1:]) for line in lines)
        expected = {(f"{1000 + i}.50", f"acct-{i}") for i in range(CHILDREN)}
        assert set(ran) == expected  # 0 losses, original arguments
        assert max(ran.values()) == 1, f"duplicates: {ran.most_common(3)}"  # 0 duplicates
        runners = {line.split()[0] for line in lines}
        assert runners <= {str(w.pid) for w in workers}
        done = store.list_executions(status=ExecutionStatus.COMPLETED, limit=None)
        assert len(done) == CHILDREN
        for record in store.list_approvals(status=None, limit=None):
            assert record.arguments is None  # erased once the transfer ran
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        store.close()
