"""The embedded regorus adapter: compile once per thread, correct under threads and asyncio,
every failure (a Rust panic included) an `EngineError`."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import regorus

import governor.engine.regorus as regorus_module
from governor.bundle import Bundle, Manifest
from governor.engine import Engine, RegorusEngine
from governor.errors import EngineError, EngineUndefined, PolicyCompileError

POLICY = """package p

double := input.n * 2
tag := sprintf("%s-%d", [input.who, input.n])
nothing := null
never if false
quotient := 1 / input.d
tags contains t if some t in input.tags
has_input if input
text := "<undefined>"
limit := data.cfg.limit
"""


def bundle(policy: str = POLICY, revision: str = "rev-1", limit: int = 10) -> Bundle:
    return Bundle(
        modules={"p.rego": policy},
        data={"cfg": {"limit": limit}},
        manifest=Manifest(revision=revision),
    )


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the thread of every `compile_bundle` call the adapter makes."""
    calls: list[int] = []
    real = regorus_module.compile_bundle

    def counting(b: Bundle) -> regorus.Engine:
        calls.append(threading.get_ident())
        return real(b)

    monkeypatch.setattr(regorus_module, "compile_bundle", counting)
    return calls


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a new thread; return its result or raise what it raised (BaseException too)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_implements_the_engine_protocol() -> None:
    engine = RegorusEngine(bundle())
    assert isinstance(engine, Engine)
    assert engine.name == "regorus"
    assert engine.revision == "rev-1"


def test_evaluates_rules_packages_and_data() -> None:
    engine = RegorusEngine(bundle())
    assert engine.evaluate("p.double", {"n": 21}) == 42
    assert engine.evaluate("data.p.tag", {"who": "ann", "n": 3}) == "ann-3"
    assert engine.evaluate("p/limit", {}) == 10
    assert engine.evaluate("cfg", {}) == {"limit": 10}
    assert engine.evaluate("p", {"n": 1, "d": 2})["quotient"] == 0.5


def test_sets_come_back_as_sorted_arrays_like_opa_json() -> None:
    engine = RegorusEngine(bundle())
    assert engine.evaluate("p.tags", {"tags": ["b", "a", "b"]}) == ["a", "b"]


def test_null_is_a_value_and_undefined_raises() -> None:
    engine = RegorusEngine(bundle())
    assert engine.evaluate("p.nothing", {}) is None
    with pytest.raises(EngineUndefined, match=r"data\.p\.never is undefined"):
        engine.evaluate("p.never", {})
    with pytest.raises(EngineUndefined):
        engine.evaluate("p.missing", {})
    with pytest.raises(EngineUndefined):
        engine.evaluate("nopkg.rule", {})


def test_a_rule_whose_value_is_the_undefined_marker_is_still_a_value() -> None:
    assert RegorusEngine(bundle()).evaluate("p.text", {}) == "<undefined>"


def test_no_input_means_undefined_input_even_after_a_call_with_input() -> None:
    engine = RegorusEngine(bundle())
    assert engine.evaluate("p.has_input", {"n": 1}) is True
    with pytest.raises(EngineUndefined):
        engine.evaluate("p.has_input", None)


def test_builtin_error_is_an_engine_error_and_the_engine_stays_usable() -> None:
    engine = RegorusEngine(bundle())
    with pytest.raises(EngineError, match=r"p\.rego:7:\d+: divide by zero") as info:
        engine.evaluate("p.quotient", {"d": 0})
    assert "backtrace" not in str(info.value).lower()
    assert engine.evaluate("p.quotient", {"d": 4}) == 0.25


def test_input_that_cannot_be_converted_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="could not evaluate p.double"):
        RegorusEngine(bundle()).evaluate("p.double", {"n": object()})


def test_bad_entrypoint_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="names no document"):
        RegorusEngine(bundle()).evaluate("", {})


def test_a_bundle_that_does_not_compile_fails_at_construction() -> None:
    with pytest.raises(PolicyCompileError) as info:
        RegorusEngine(bundle("package p\nx := "))
    assert info.value.location is not None and info.value.location.startswith("p.rego:")


def test_compiles_once_for_many_calls_in_one_thread(compiles: list[int]) -> None:
    engine = RegorusEngine(bundle())
    for n in range(300):
        assert engine.evaluate("p.double", {"n": n}) == 2 * n
    assert len(compiles) == 1


def test_eight_threads_compile_once_each_and_get_correct_results(compiles: list[int]) -> None:
    engine = RegorusEngine(bundle())
    start = threading.Barrier(8)
    wrong: list[tuple[int, int, Any]] = []
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(200):
                n = t * 1000 + i
                value = engine.evaluate("p.tag", {"who": f"t{t}", "n": n})
                if value != f"t{t}-{n}":
                    wrong.append((t, i, value))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and wrong == []
    per_thread = Counter(compiles)
    assert len(per_thread) == 9  # the constructing thread and the eight workers
    assert set(per_thread.values()) == {1}


def test_asyncio_gather_of_200_evaluations_is_correct(compiles: list[int]) -> None:
    engine = RegorusEngine(bundle())

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(engine.evaluate_async("p.double", {"n": n}) for n in range(200))
        )

    assert asyncio.run(main()) == [2 * n for n in range(200)]
    assert len(compiles) == 1


def test_asyncio_to_thread_uses_per_thread_engines() -> None:
    engine = RegorusEngine(bundle())

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(asyncio.to_thread(engine.evaluate, "p.double", {"n": n}) for n in range(200))
        )

    assert asyncio.run(main()) == [2 * n for n in range(200)]


def test_an_engine_shared_across_threads_panics_and_becomes_an_engine_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = RegorusEngine(bundle())
    shared = regorus_module.compile_bundle(bundle())  # built in this thread
    # The misuse the adapter exists to prevent: hand one thread's engine to another.
    monkeypatch.setattr(regorus_module, "compile_bundle", lambda b: shared)
    with pytest.raises(EngineError, match="panicked.*unsendable") as info:
        in_thread(lambda: engine.evaluate("p.double", {"n": 1}))
    assert "backtrace" not in str(info.value).lower()


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupts_are_never_swallowed(
    monkeypatch: pytest.MonkeyPatch, interrupt: type[BaseException]
) -> None:
    engine = RegorusEngine(bundle())

    def stop(b: Bundle) -> regorus.Engine:
        raise interrupt()

    monkeypatch.setattr(regorus_module, "compile_bundle", stop)
    with pytest.raises(interrupt):
        in_thread(lambda: engine.evaluate("p.double", {"n": 1}))


def test_reload_recompiles_in_every_thread_on_its_next_call(compiles: list[int]) -> None:
    engine = RegorusEngine(bundle(limit=10))
    assert in_thread(lambda: engine.evaluate("p.limit", {})) == 10
    assert len(compiles) == 2

    engine.reload(bundle(limit=20, revision="rev-2"))
    assert engine.revision == "rev-2"
    assert engine.evaluate("p.limit", {}) == 20
    assert in_thread(lambda: engine.evaluate("p.limit", {})) == 20
    assert len(compiles) == 4  # the reloading thread, then the new worker thread


def test_reload_with_the_same_digest_recompiles_nothing(compiles: list[int]) -> None:
    engine = RegorusEngine(bundle())
    engine.reload(bundle())
    engine.evaluate("p.limit", {})
    assert len(compiles) == 1


def test_reload_of_a_broken_bundle_keeps_the_current_one() -> None:
    engine = RegorusEngine(bundle(limit=10))
    with pytest.raises(PolicyCompileError):
        engine.reload(bundle("package p\nx := ", revision="broken"))
    assert engine.revision == "rev-1"
    assert engine.evaluate("p.limit", {}) == 10


def test_native_is_a_compiled_regorus_engine_owned_by_the_caller() -> None:
    engine = RegorusEngine(bundle())
    native = engine.native()
    assert isinstance(native, regorus.Engine)
    native.set_input({"n": 5})
    assert native.eval_rule("data.p.double") == 10
    assert engine.evaluate("p.has_input", {"n": 1}) is True  # the adapter's engines untouched


def test_closing_or_collecting_never_drops_a_thread_engine_on_another_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pyo3 reports such a drop through sys.unraisablehook ("unsendable, but is being dropped
    # on another thread") and leaks the engine.
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    engines = [RegorusEngine(bundle()), RegorusEngine(bundle())]
    ready, release = threading.Barrier(2), threading.Event()

    def work() -> None:
        for engine in engines:
            engine.evaluate("p.double", {"n": 1})
        ready.wait()
        release.wait()

    worker = threading.Thread(target=work)
    worker.start()
    ready.wait()
    engines[0].close()
    del engines[:]
    gc.collect()
    release.set()
    worker.join()
    gc.collect()
    assert unraisable == []


def test_closed_engine_raises_engine_error() -> None:
    engine = RegorusEngine(bundle())
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.evaluate("p.double", {"n": 1})
