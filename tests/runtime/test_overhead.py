"""The hot path does no more work than its guarantees need (engine evaluations, transactions)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from governor import (
    AuditPolicy,
    InMemoryStorage,
    RateLimitPolicy,
    SQLStorage,
    ValidationPolicy,
    govern,
)
from governor.errors import NotJSONSafe
from governor.events import Event
from governor.storage._json import copy_json, ensure_json


class _Counting(InMemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.transactions = 0

    @contextmanager
    def transaction(self, **kwargs: Any) -> Iterator[Any]:  # type: ignore[override]
        self.transactions += 1
        with super().transaction(**kwargs) as tx:
            yield tx

    def save_records(self, **kwargs: Any) -> Any:  # a unit of work of its own
        self.transactions += 1
        return super().save_records(**kwargs)


def _count_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import governor.executor as executor

    phases: list[str] = []
    real = executor.decide_async

    async def counting(engine: Any, document: Any, **kwargs: Any) -> Any:
        phases.append(document["phase"])
        return await real(engine, document, **kwargs)

    monkeypatch.setattr(executor, "decide_async", counting)
    return phases


def test_an_audit_policy_needs_one_evaluation_and_one_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    phases = _count_evaluations(monkeypatch)
    store = _Counting()

    @govern(
        policies=[AuditPolicy(sensitive_fields=["card"], compliance_tags=["PCI"])], storage=store
    )
    async def pay(amount: int, card: str) -> dict[str, Any]:
        return {"amount": amount, "card": card}

    assert asyncio.run(pay(5, "4111")) == {"amount": 5, "card": "4111"}
    assert phases == ["pre"]
    assert store.transactions == 1
    (audit,) = store.list_audit_records()
    assert audit.record["tags"] == ["PCI"]
    assert audit.record["inputs"]["args"][1] == "***REDACTED***"
    assert audit.record["output"]["card"] == "***REDACTED***"
    assert audit.record["post"]["decision"] == "allow"
    (execution,) = store.list_executions()
    assert [s.checkpoint for s in store.list_snapshots(execution.id)] == [
        "pre_execution",
        "post_execution",
    ]
    events = store.list_events(execution_id=execution.id)
    post = [Event.from_record(e) for e in events if e.event_type == "policy.evaluated"][1]
    assert post.data["phase"] == "post" and post.data["from_pre_decision"] is True


def test_output_validation_and_post_only_audit_still_evaluate_after_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    phases = _count_evaluations(monkeypatch)

    @govern(
        policies=[AuditPolicy(), ValidationPolicy(output_schema={"type": "object"})],
        storage=InMemoryStorage(),
    )
    async def checked() -> dict[str, Any]:
        return {}

    @govern(policies=[AuditPolicy(phase="post")], storage=InMemoryStorage())
    async def audited() -> int:
        return 1

    asyncio.run(checked())
    asyncio.run(audited())
    assert phases == ["pre", "post", "pre", "post"]


def test_a_rate_limit_commits_its_count_before_the_call_and_the_records_after() -> None:
    store = _Counting()
    seen: list[int] = []

    @govern(policies=[RateLimitPolicy(max_calls=5, window_seconds=60)], storage=store)
    async def work() -> None:
        # the count is committed (exactness); the execution is written with the final records
        seen.append(store.transactions)
        assert store.list_executions() == []

    asyncio.run(work())
    assert seen == [1] and store.transactions == 2
    assert len(store.list_audit_records()) == 1


def test_ensure_json_names_the_bad_field_and_copy_json_copies() -> None:
    with pytest.raises(NotJSONSafe, match=r"record\.a\[1\]\[\"b c\"\] is nan"):
        ensure_json({"a": [1, {"b c": float("nan")}]}, "record")
    with pytest.raises(NotJSONSafe, match=r"record\.x has the key 1"):
        ensure_json({"x": {1: 2}}, "record")
    value = {"a": [1, {"b": 2}]}
    copied = copy_json(value)
    assert copied == value and copied["a"] is not value["a"]


def test_an_async_callers_store_work_runs_on_the_loop_unless_the_store_is_remote(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import governor.executor as executor

    threads: set[str] = set()
    real = executor.Executor._locked_section

    def recording(self: Any, *args: Any) -> None:
        threads.add(threading.current_thread().name)
        real(self, *args)

    monkeypatch.setattr(executor.Executor, "_locked_section", recording)
    store = SQLStorage(f"sqlite:///{tmp_path / 'governor.db'}")

    @govern(policies=[RateLimitPolicy(max_calls=10, window_seconds=60)], storage=store)
    async def echo(x: int) -> int:
        return x

    async def calls() -> list[Any]:
        return list(await asyncio.gather(*(echo(i) for i in range(20)), return_exceptions=True))

    results = asyncio.run(calls())
    # exact as ever: ten admitted, ten refused, every one recorded
    assert sum(isinstance(r, int) for r in results) == 10
    assert threads == {threading.main_thread().name}
    assert len(store.list_audit_records(limit=None)) == 20
    # in process: inline; PostgreSQL (or any other store) goes to a worker thread
    assert not executor._is_blocking(store)
    assert not executor._is_blocking(SQLStorage("sqlite://"))
    assert not executor._is_blocking(InMemoryStorage())
    remote = SQLStorage.__new__(SQLStorage)
    remote.backend = "postgresql"
    assert executor._is_blocking(remote)


class _AskedEngine:
    """The real embedded engine, recording the entrypoints it is asked for."""

    name = "regorus"

    def __init__(self, inner: Any, *, has_bundle: bool = True) -> None:
        self.inner = inner
        self.asked: list[str] = []
        self.has_bundle = has_bundle

    @property
    def bundle(self) -> Any:
        # an engine without a bundle object stands for a sidecar, whose policy can change unseen
        return self.inner.bundle if self.has_bundle else None

    @property
    def revision(self) -> str | None:
        return self.inner.revision  # type: ignore[no-any-return]

    def evaluate(self, entrypoint: str, input: Any) -> Any:
        self.asked.append(entrypoint)
        return self.inner.evaluate(entrypoint, input)

    async def evaluate_async(self, entrypoint: str, input: Any) -> Any:
        return self.evaluate(entrypoint, input)

    def close(self) -> None:
        pass


def _with_config(bundle: Any, config: dict[str, Any]) -> Any:
    import dataclasses

    data = {**bundle.data, "governor": {**bundle.data.get("governor", {}), "config": config}}
    return dataclasses.replace(bundle, data=data)


def test_a_decision_rego_declares_constant_is_evaluated_once_per_bundle() -> None:
    from governor import runtime
    from governor.decision import CONSTANT_ENTRYPOINT, DEFAULT_ENTRYPOINT, decide

    engine = _AskedEngine(runtime.get_engine())
    store = InMemoryStorage()

    @govern(storage=store, engine=engine)  # type: ignore[arg-type]
    async def bare(x: Any) -> Any:
        return x

    @govern(
        policies=[AuditPolicy(sensitive_fields=["card"], compliance_tags=["PCI"])],
        storage=store,
        engine=engine,  # type: ignore[arg-type]
    )
    async def audited(card: str, user: str) -> str:
        return card

    async def calls() -> None:
        for i in range(10):
            await bare({"n": i, "to": f"user{i}@example.com"})
            await audited(f"4111-{i}", user=f"u{i}")

    asyncio.run(calls())
    # one decision and one `constant` question per function, for twenty calls
    assert sorted(engine.asked) == sorted([DEFAULT_ENTRYPOINT, CONSTANT_ENTRYPOINT] * 2)
    tags = [tuple(r.record["tags"]) for r in store.list_audit_records(limit=None)]
    assert tags == [(), ("PCI",)] * 10
    # the reused decision is the one Rego gives for a call it never saw
    fresh = decide(
        engine.inner,
        {
            "version": 1,
            "phase": "pre",
            "action": {"kind": "function", "name": "other", "scope": None, "tags": []},
            "subject": {"user_id": "someone"},
            "args": {"card": "5500"},
            "policies": [
                {
                    "type": "audit",
                    "name": "audit",
                    "params": {
                        "sensitive_fields": ["card"],
                        "compliance_tags": ["PCI"],
                        "log_inputs": True,
                        "log_outputs": True,
                    },
                }
            ],
            "facts": {"now": 1},
        },
    )
    assert fresh.audit == {"tags": ["PCI"], "mask": ["card"]}
    assert store.list_audit_records(limit=None)[-1].record["inputs"]["args"] == ["***REDACTED***"]

    # a new bundle is a new decision: evaluated again, once
    engine.inner.reload(_with_config(engine.inner.bundle, {"audit": {"always_tags": ["SOC2"]}}))
    engine.asked.clear()
    asyncio.run(calls())
    assert sorted(engine.asked) == sorted([DEFAULT_ENTRYPOINT, CONSTANT_ENTRYPOINT] * 2)
    tags = [tuple(r.record["tags"]) for r in store.list_audit_records(limit=None)[-20:]]
    assert tags == [("SOC2",), ("PCI", "SOC2")] * 10


def test_decisions_that_read_the_call_are_evaluated_on_every_call() -> None:
    from governor import runtime
    from governor.decision import CONSTANT_ENTRYPOINT, DEFAULT_ENTRYPOINT

    engine = _AskedEngine(runtime.get_engine())

    @govern(
        policies=[ValidationPolicy(input_schema={"type": "object"})],
        storage=InMemoryStorage(),
        engine=engine,  # type: ignore[arg-type]
    )
    async def checked(x: int) -> int:
        return x

    @govern(
        policies=[RateLimitPolicy(max_calls=3, window_seconds=60)],
        storage=InMemoryStorage(),
        engine=engine,  # type: ignore[arg-type]
    )
    async def limited() -> None:
        return None

    async def calls() -> None:
        for i in range(5):
            await checked(i)
        for _ in range(3):
            await limited()

    asyncio.run(calls())
    assert engine.asked.count(CONSTANT_ENTRYPOINT) == 1  # asked once, for `checked`
    assert engine.asked.count(DEFAULT_ENTRYPOINT) == 8

    # an engine without a bundle object (a sidecar) is asked every time, and never `constant`
    sidecar = _AskedEngine(runtime.get_engine(), has_bundle=False)

    @govern(storage=InMemoryStorage(), engine=sidecar)  # type: ignore[arg-type]
    async def bare() -> None:
        return None

    async def bare_calls() -> None:
        for _ in range(4):
            await bare()

    asyncio.run(bare_calls())
    assert sidecar.asked == [DEFAULT_ENTRYPOINT] * 4


def test_changed_entries_are_evaluated_as_they_are_not_from_the_memo() -> None:
    from governor import runtime
    from governor.decision import CONSTANT_ENTRYPOINT, DEFAULT_ENTRYPOINT

    engine = _AskedEngine(runtime.get_engine())
    store = InMemoryStorage()
    policy = AuditPolicy(compliance_tags=["A"])

    @govern(policies=[policy], storage=store, engine=engine)  # type: ignore[arg-type]
    async def audited() -> None:
        return None

    asyncio.run(audited())
    asyncio.run(audited())
    policy.compliance_tags = ["B"]
    asyncio.run(audited())
    asyncio.run(audited())
    assert [r.record["tags"] for r in store.list_audit_records()] == [["A"], ["A"], ["B"], ["B"]]
    # `constant` was asked once for this bundle; the new entries are evaluated every time
    assert engine.asked == [DEFAULT_ENTRYPOINT, CONSTANT_ENTRYPOINT] + [DEFAULT_ENTRYPOINT] * 2
