"""Who may decide a confirmation (`governor_server.confirmations.decide_confirmation`) and the
approver list it reads (`governor_server.keys`), on a real SQLite store; tests/e2e drives the same
rules over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from governor_server.confirmations import (
    ApproverNotAllowed,
    Decider,
    create_confirmation,
    decide_confirmation,
)
from governor_server.keys import (
    add_approvers,
    authenticate,
    create_key,
    ensure_org,
    is_approver,
    list_approvers,
    list_keys,
    remove_approver,
)
from sqlalchemy import Engine

from governor.storage import SQLStorage


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    store = SQLStorage(f"sqlite:///{tmp_path / 'governor.db'}")
    yield store.engine
    store.close()


def pending(db: Engine, org_id: str, approvers: tuple[str, ...] = ()) -> str:
    entry = create_confirmation(
        db,
        org_id=org_id,
        user_id="u",
        created_by_key="gk_app",
        request_type="tool_call",
        request_desc="d",
        approvers=approvers,
    )
    return entry.correlation_id


def test_the_list_is_per_organisation_idempotent_and_validated(db: Engine) -> None:
    acme, _ = ensure_org(db, "acme")
    other, _ = ensure_org(db, "other")
    assert add_approvers(db, acme, ["alice", "bob", "alice"], "gk_admin") == ["alice", "bob"]
    assert add_approvers(db, acme, ["alice", "carol"], "cli") == ["carol"]
    assert [(a.identity, a.added_by) for a in list_approvers(db, acme)] == [
        ("alice", "gk_admin"),
        ("bob", "gk_admin"),
        ("carol", "cli"),
    ]
    assert is_approver(db, acme, "alice") and not is_approver(db, other, "alice")
    assert not is_approver(db, acme, None)
    with pytest.raises(ValueError, match="identity 'x y'"):
        add_approvers(db, acme, ["dave", "x y"], "cli")
    assert not is_approver(db, acme, "dave")  # all or nothing
    assert remove_approver(db, acme, "alice") and not remove_approver(db, acme, "alice")
    assert not is_approver(db, acme, "alice")


def test_keys_carry_their_identity_and_approver_keys_need_one(db: Engine) -> None:
    key, info = create_key(db, "acme", "approver", "alice@acme.example")
    assert info.identity == "alice@acme.example"
    principal = authenticate(db, key)
    assert principal is not None and principal.identity == "alice@acme.example"
    assert [k.identity for k in list_keys(db, "acme")] == ["alice@acme.example"]
    with pytest.raises(ValueError, match="approver key needs an identity"):
        create_key(db, "acme", "approver")
    app_key, app_info = create_key(db, "acme", "app")
    assert app_info.identity is None
    principal = authenticate(db, app_key)
    assert principal is not None and principal.identity is None


@pytest.mark.parametrize(
    ("decider", "approvers", "code"),
    [
        (Decider("gk_1", "approver", identity="mallory"), (), "approver_not_allowed"),
        (Decider("gk_1", "approver"), (), "approver_not_allowed"),
        (Decider("gk_1", "approver", identity="alice"), ("bob",), "approver_not_designated"),
        (Decider("gk_1", "app", identity="alice"), (), "forbidden"),
    ],
)
def test_who_may_not_decide(
    db: Engine, decider: Decider, approvers: tuple[str, ...], code: str
) -> None:
    org_id, _ = ensure_org(db, "acme")
    add_approvers(db, org_id, ["alice", "bob"], "cli")
    correlation_id = pending(db, org_id, approvers)
    with pytest.raises(ApproverNotAllowed) as refused:
        decide_confirmation(
            db, org_id, correlation_id, approve=True, decider=decider, org_name="acme"
        )
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("decider", "approvers"),
    [
        (Decider("gk_1", "approver", identity="alice"), ()),
        (Decider("gk_1", "approver", identity="bob"), ("bob", "carol")),
        (Decider("gk_1", "admin"), ("carol",)),  # admins always may; carol need not be listed
    ],
)
def test_who_may_decide(db: Engine, decider: Decider, approvers: tuple[str, ...]) -> None:
    org_id, _ = ensure_org(db, "acme")
    add_approvers(db, org_id, ["alice", "bob"], "cli")
    correlation_id = pending(db, org_id, approvers)
    entry = decide_confirmation(db, org_id, correlation_id, approve=False, decider=decider)
    assert entry.status_at() == "rejected"
    assert (entry.decided_by_role, entry.decided_by_identity) == (decider.role, decider.identity)
