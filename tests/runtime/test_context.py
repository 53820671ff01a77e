"""`governor.context`: the per-call identity that feeds `input.subject`."""

from __future__ import annotations

import asyncio

from governor.context import (
    current_context,
    governance_context,
    merge_contexts,
    reset_context,
    set_context,
    subject_from_context,
)


def test_governance_context_nests_and_restores_the_outer_context() -> None:
    assert current_context() == {}
    with governance_context(user={"id": "u1"}, tenant="a") as outer:
        assert outer == {"user": {"id": "u1"}, "tenant": "a"}
        with governance_context({"user": {"id": "u2"}}):
            assert current_context() == {"user": {"id": "u2"}, "tenant": "a"}
        assert current_context()["user"] == {"id": "u1"}
    assert current_context() == {}


def test_set_context_returns_a_token_that_resets_it() -> None:
    token = set_context(user={"id": "u9"})
    assert current_context() == {"user": {"id": "u9"}}
    reset_context(token)
    assert current_context() == {}


def test_concurrent_tasks_each_see_their_own_context() -> None:
    async def as_user(user: str) -> str:
        with governance_context(user={"id": user}):
            await asyncio.sleep(0.01)
            return str(subject_from_context(merge_contexts(None))["user_id"])

    async def main() -> list[str]:
        return list(await asyncio.gather(*(as_user(f"u{i}") for i in range(20))))

    assert asyncio.run(main()) == [f"u{i}" for i in range(20)]


def test_the_per_call_context_wins_over_the_static_one_key_by_key() -> None:
    with governance_context(user={"id": "caller"}):
        merged = merge_contexts({"user": {"id": "static", "roles": ["admin"]}, "scope": "x"})
    assert merged == {"user": {"id": "caller"}, "scope": "x"}


def test_subject_from_context_reads_the_0_2_0_user_shape_and_top_level_keys() -> None:
    subject = subject_from_context(
        {
            "user": {
                "id": 7,
                "email": "a@x",
                "roles": {"admin", "finance"},
                "permissions": ["write"],
                "org_id": "acme",
            },
            "attributes": {"region": "eu"},
        }
    )
    assert subject == {
        "user_id": 7,
        "org_id": "acme",
        "roles": ["admin", "finance"],
        "permissions": ["write"],
        "attributes": {"region": "eu", "email": "a@x"},
    }
    assert subject_from_context({"user_id": "u", "roles": "admin"}) == {
        "user_id": "u",
        "roles": ["admin"],
    }
    assert subject_from_context({"principal": "bob"}, user_key="principal") == {"user_id": "bob"}
    assert subject_from_context({}) == {}
