"""The in-process OPA adapter: OPA's values, OPA's errors mapped onto governor's."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from governor.bundle import Bundle, Manifest
from governor.engine import Engine, OpaLibEngine
from governor.errors import EngineError, EngineUndefined, PolicyCompileError

POLICY = """package p

double := input.n * 2
nothing := null
never if false
quotient := 1 / input.d
tags contains t if some t in input.tags
has_input if input
limit := data.cfg.limit
"""


def bundle(policy: str = POLICY, revision: str = "rev-1", limit: int = 10) -> Bundle:
    return Bundle(
        modules={"p.rego": policy},
        data={"cfg": {"limit": limit}, "odd-name": {"x": 1}},
        manifest=Manifest(revision=revision),
    )


@pytest.fixture
def engine() -> Any:
    engine = OpaLibEngine(bundle())
    yield engine
    engine.close()


def test_implements_the_engine_protocol(engine: OpaLibEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.name == "opa-lib"
    assert engine.revision == "rev-1"


def test_evaluates_rules_packages_and_data(engine: OpaLibEngine) -> None:
    assert engine.evaluate("p.double", {"n": 21}) == 42
    assert engine.evaluate("data.p.limit", {}) == 10
    assert engine.evaluate("p", {"n": 1, "d": 2})["quotient"] == 0.5
    assert engine.evaluate("odd-name/x", {}) == 1
    assert engine.evaluate("p.tags", {"tags": ["b", "a"]}) == ["a", "b"]


def test_null_is_a_value_and_undefined_raises(engine: OpaLibEngine) -> None:
    assert engine.evaluate("p.nothing", {}) is None
    with pytest.raises(EngineUndefined, match=r"data\.p\.never is undefined"):
        engine.evaluate("p.never", {})
    with pytest.raises(EngineUndefined):
        engine.evaluate("nopkg.rule", {})
    with pytest.raises(EngineUndefined):
        engine.evaluate("p.has_input", None)


def test_builtin_error_is_an_engine_error_naming_it(engine: OpaLibEngine) -> None:
    with pytest.raises(EngineError, match="eval_builtin_error: div: divide by zero"):
        engine.evaluate("p.quotient", {"d": 0})
    assert engine.evaluate("p.quotient", {"d": 4}) == 0.25


def test_input_that_is_not_json_is_an_engine_error(engine: OpaLibEngine) -> None:
    with pytest.raises(EngineError, match="not JSON serializable"):
        engine.evaluate("p.double", {"n": object()})


def test_a_bundle_that_does_not_compile_fails_at_construction() -> None:
    with pytest.raises(PolicyCompileError):
        OpaLibEngine(bundle("package p\nx := "))


def test_one_engine_serves_eight_threads(engine: OpaLibEngine) -> None:
    wrong: list[Any] = []

    def work(t: int) -> None:
        for i in range(50):
            n = t * 100 + i
            try:
                if engine.evaluate("p.double", {"n": n}) != 2 * n:
                    wrong.append(n)
            except Exception as exc:  # noqa: BLE001 - reported below
                wrong.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_asyncio_gather_of_200_evaluations_is_correct(engine: OpaLibEngine) -> None:
    async def main() -> list[Any]:
        return await asyncio.gather(
            *(engine.evaluate_async("p.double", {"n": n}) for n in range(200))
        )

    assert asyncio.run(main()) == [2 * n for n in range(200)]


def test_reload_swaps_the_bundle_and_a_broken_one_is_refused(engine: OpaLibEngine) -> None:
    engine.reload(bundle(limit=20, revision="rev-2"))
    assert (engine.revision, engine.evaluate("p.limit", {})) == ("rev-2", 20)
    with pytest.raises(PolicyCompileError):
        engine.reload(bundle("package p\nx := "))
    assert (engine.revision, engine.evaluate("p.limit", {})) == ("rev-2", 20)


def test_native_is_the_opa_engine(engine: OpaLibEngine) -> None:
    assert engine.native().eval_document("p.double", {"n": 2}) == 4


def test_closed_engine_raises_engine_error() -> None:
    engine = OpaLibEngine(bundle())
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.evaluate("p.double", {"n": 1})
