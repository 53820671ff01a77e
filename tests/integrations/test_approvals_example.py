"""examples/approvals_fastapi.py runs as its docstring says: under uvicorn, driven like curl."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from governor.storage import get_default_storage, set_default_storage
from tests.integrations._live import serve

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "approvals_fastapi.py"
CARD = "4111 1111 1111 1111"


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The example module, its state in a SQLite file of tmp_path (GOVERNOR_DATABASE_URL)."""
    monkeypatch.setenv("GOVERNOR_DATABASE_URL", f"sqlite:///{tmp_path / 'governor.db'}")
    set_default_storage(None)
    spec = importlib.util.spec_from_file_location("approvals_fastapi_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        get_default_storage().close()
        set_default_storage(None)


def test_the_example_pays_small_refuses_bob_and_waits_for_the_cfo(example: ModuleType) -> None:
    with serve(example.app) as url:

        def client(token: str) -> httpx.Client:
            return httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )

        with client("alice-token") as alice, client("bob-token") as bob, client("cfo-token") as cfo:
            small = alice.post("/payments", json={"amount": 250, "card_number": CARD})
            assert (small.status_code, small.json()) == (200, {"charged": 250})
            refused = bob.post("/payments", json={"amount": 250, "card_number": CARD})
            assert refused.status_code == 403
            assert refused.json()["error"] == "policy_violation"

            big = alice.post("/payments", json={"amount": 5000, "card_number": CARD})
            assert big.status_code == 202, big.text
            execution_id = big.json()["execution_id"]
            assert big.headers["Location"] == f"/govern/approvals/{execution_id}"

            pending = cfo.get("/govern/approvals/pending")
            assert [a["execution_id"] for a in pending.json()["approvals"]] == [execution_id]
            assert CARD not in pending.text
            forged = alice.post(
                f"/govern/approvals/{execution_id}/approve", json={"approver": "cfo"}
            )
            assert forged.status_code == 403
            approved = cfo.post(
                f"/govern/approvals/{execution_id}/approve", json={"reason": "invoice checked"}
            )
            assert approved.status_code == 200 and approved.json()["status"] == "approved"

            deadline = time.monotonic() + 10  # the resumer polls every 5 s; wake() is at once
            while True:
                detail = cfo.get(f"/govern/executions/{execution_id}").json()
                if detail["execution"]["status"] == "completed" or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert detail["execution"]["status"] == "completed"
            assert detail["execution"]["outputs"] == {"charged": 5000}
            assert CARD not in str(detail)
