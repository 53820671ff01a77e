"""`governor.runtime`: the process's default engine (settings, bundles, fail-open) and running
user coroutines from sync code."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from governor import (
    ConfigurationError,
    PolicyViolation,
    RateLimitExceeded,
    RateLimitPolicy,
    configure,
    govern,
    runtime,
)
from governor.bundle import build_bundle
from governor.engine import OpaSidecarEngine, RegorusEngine
from governor.errors import BundleSignatureError
from governor.serialization import MASK
from governor.storage import InMemoryStorage

REPO = Path(__file__).resolve().parents[2]
DEVELOPMENT = REPO / "bundles" / "development"


def test_the_default_engine_is_built_once_and_shared_across_threads() -> None:
    engines: list[object] = []
    threads = [
        threading.Thread(target=lambda: engines.append(runtime.get_engine())) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(e) for e in engines}) == 1
    assert isinstance(engines[0], RegorusEngine)
    assert runtime.settings().engine == "regorus" and not runtime.fail_open()


def test_a_bundle_directory_gets_the_standard_library_and_its_data_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(runtime.ENV_BUNDLE, str(DEVELOPMENT))
    store = InMemoryStorage()

    @govern(storage=store)
    def login(user: str, password: str) -> str:
        return "ok"

    assert login("ann", "hunter2") == "ok"
    (record,) = store.list_audit_records()
    assert record.policy_revision == "development-1"
    assert record.record["inputs"] == {"args": ["ann", MASK], "kwargs": {}}  # always_mask


def test_a_signed_archive_loads_with_its_verification_key(tmp_path: Path) -> None:
    archive = tmp_path / "bundle.tar.gz"
    build_bundle([DEVELOPMENT], archive, signing_key="s3cret", signing_alg="HS256")
    configure(bundle=archive, verification_key="s3cret")
    assert runtime.get_engine().revision == "development-1"
    configure(verification_key="wrong")
    with pytest.raises(BundleSignatureError):
        runtime.get_engine()


def test_the_engine_is_chosen_by_setting_and_decides_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes: dict[str, list[str]] = {}
    for name in ("regorus", "opa-lib"):
        monkeypatch.setenv(runtime.ENV_ENGINE, name)
        runtime.reset()
        store = InMemoryStorage()

        @govern(policies=[RateLimitPolicy(max_calls=1, window_seconds=60)], storage=store)
        def act() -> int:
            return 1

        act()
        with pytest.raises(RateLimitExceeded):
            act()
        outcomes[name] = [r.decision for r in store.list_audit_records()]
        assert store.list_audit_records()[0].record["engine"] == name
    assert outcomes["regorus"] == outcomes["opa-lib"] == ["allow", "deny"]


def test_the_opa_sidecar_decides_sync_and_async_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.engine.opa_double import OpaDouble

    bundle = runtime.load_policy_bundle(runtime.RuntimeSettings())
    with OpaDouble(bundle) as opa:
        monkeypatch.setenv(runtime.ENV_ENGINE, "opa")
        monkeypatch.setenv(runtime.ENV_OPA_URL, opa.url)
        runtime.reset()
        store = InMemoryStorage()

        @govern(policies=[RateLimitPolicy(max_calls=1, window_seconds=60)], storage=store)
        async def remote() -> int:
            return 1

        @govern(storage=store)
        def local() -> int:
            return 2

        async def twice() -> None:
            assert await remote() == 1
            with pytest.raises(RateLimitExceeded):
                await remote()
            engine = runtime.get_engine()
            assert isinstance(engine, OpaSidecarEngine)
            await engine.aclose()  # its keep-alive connections, before the double stops

        assert local() == 2
        asyncio.run(twice())
        assert len(opa.requests) == 3
    assert {r.record["engine"] for r in store.list_audit_records()} == {"opa"}


def test_bad_settings_are_loud_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.ENV_ENGINE, "nope")
    with pytest.raises(ConfigurationError, match="GOVERNOR_ENGINE='nope'"):
        runtime.get_engine()
    monkeypatch.setenv(runtime.ENV_ENGINE, "opa")
    runtime.reset()  # settings are read once; reset() reads the environment again
    with pytest.raises(ConfigurationError, match="GOVERNOR_OPA_URL"):
        runtime.get_engine()
    monkeypatch.delenv(runtime.ENV_ENGINE)
    monkeypatch.setenv(runtime.ENV_BUNDLE, "/no/such/bundle")
    runtime.reset()
    with pytest.raises(ConfigurationError, match="no such bundle"):
        runtime.get_engine()
    monkeypatch.setenv(runtime.ENV_FAIL_OPEN, "maybe")
    runtime.reset()
    with pytest.raises(ConfigurationError, match="GOVERNOR_FAIL_OPEN"):
        runtime.settings()


class _BrokenEngine:
    """An engine whose evaluations fail, as an unreachable sidecar's would."""

    name = "broken"
    revision = None

    def evaluate(self, entrypoint: str, input: object) -> object:
        from governor.errors import EngineError

        raise EngineError("connection refused")

    async def evaluate_async(self, entrypoint: str, input: object) -> object:
        return self.evaluate(entrypoint, input)

    def close(self) -> None:
        pass


def test_engine_trouble_denies_unless_fail_open_is_configured() -> None:
    ran: list[int] = []
    configure(engine=_BrokenEngine())  # type: ignore[arg-type]
    store = InMemoryStorage()

    @govern(storage=store)
    def act() -> int:
        ran.append(1)
        return 1

    with pytest.raises(PolicyViolation, match="engine.unavailable:error"):
        act()
    assert ran == []
    configure(fail_open=True)
    assert act() == 1
    assert [r.reasons for r in store.list_audit_records()] == [
        ["engine.unavailable:error"],
        ["engine.unavailable:fail_open"],
    ]


def test_run_sync_runs_coroutines_with_and_without_a_running_loop() -> None:
    async def no_real_await() -> int:
        await asyncio.sleep(0)
        return 1

    async def needs_a_loop() -> int:
        await asyncio.sleep(0.01)
        return 2

    assert runtime.run_sync(no_real_await) == 1
    assert runtime.run_sync(needs_a_loop) == 2

    async def inside_a_loop() -> tuple[int, int]:
        return runtime.run_sync(no_real_await), runtime.run_sync(needs_a_loop)

    assert asyncio.run(inside_a_loop()) == (1, 2)


def test_run_sync_nests_when_a_coroutine_it_runs_calls_sync_code_that_needs_it() -> None:
    async def inner() -> int:
        await asyncio.sleep(0.001)
        return 3

    async def outer() -> int:
        await asyncio.sleep(0.001)
        return runtime.run_sync(inner) + 1

    assert runtime.run_sync(outer) == 4
