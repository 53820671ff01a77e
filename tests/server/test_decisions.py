"""`record_decision`: in the store transaction that decided it (one commit with the budget hold),
or in a transaction of its own on an engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from governor_server.decisions import DecisionEntry, list_decisions, record_decision

from governor.storage import SQLStorage, month_period


def _entry(decision: str = "allow") -> DecisionEntry:
    return DecisionEntry(
        org_id="org-1", user_id="u", phase="pre", tool="model.chat", decision=decision
    )


def test_a_decision_and_a_hold_written_in_one_transaction_commit_together(tmp_path: Path) -> None:
    store = SQLStorage(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        with store.transaction(budget_keys=["budget:org-1:u"]) as tx:
            tx.reserve("budget:org-1:u", 5, 60)
            record_decision(tx, _entry())
        assert [d.decision for d in list_decisions(store.engine, "org-1")] == ["allow"]
        start, end = month_period()
        assert store.usage_totals("budget:org-1:u", start, end)["reserved"] == 5
    finally:
        store.close()


def test_a_transaction_that_fails_records_neither_the_decision_nor_the_hold(
    tmp_path: Path,
) -> None:
    store = SQLStorage(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        with pytest.raises(RuntimeError), store.transaction(budget_keys=["budget:org-1:u"]) as tx:
            tx.reserve("budget:org-1:u", 5, 60)
            record_decision(tx, _entry())
            raise RuntimeError("the answer could not be built")
        assert list_decisions(store.engine, "org-1") == []
        start, end = month_period()
        assert store.usage_totals("budget:org-1:u", start, end)["reserved"] == 0
    finally:
        store.close()


def test_a_decision_recorded_on_an_engine_commits_on_its_own(tmp_path: Path) -> None:
    store = SQLStorage(f"sqlite:///{tmp_path / 'g.db'}")
    try:
        record_decision(store.engine, _entry("deny"))
        assert [d.decision for d in list_decisions(store.engine, "org-1")] == ["deny"]
    finally:
        store.close()
