"""The process-wide runtime: which engine decides, over which bundle, and what happens without one.

Every `@govern` without `engine=` asks `get_engine()`, which builds one engine per process, lazily
and once (thread-safe), from these settings:

| setting | environment variable | default |
| --- | --- | --- |
| `engine` | `GOVERNOR_ENGINE` | `regorus` (embedded); `opa-lib` (OPA in-process); `opa` (sidecar) |
| `bundle` | `GOVERNOR_BUNDLE` | none: the standard library alone, with its built-in defaults |
| `verification_key` | `GOVERNOR_BUNDLE_VERIFICATION_KEY` | none (a file path or the key text) |
| `opa_url` | `GOVERNOR_OPA_URL` | none; required by `opa` |
| `fail_open` | `GOVERNOR_FAIL_OPEN` (`1`, `true`, `yes`, `on`) | false: engine trouble denies |

The bundle is a directory or a `.tar.gz` (OPA's bundle format). A bundle that does not carry the
standard library (a directory under `bundles/`: data and a manifest) gets it added. The `opa`
sidecar loads its own bundles, so it takes no `bundle`. `configure(...)` sets the same things in
code, before or after first use (the next call builds a new engine).

This module also runs user coroutines for **sync** governed functions (`run_sync`): a sync
function runs in its caller's thread, and a user's `async def` validator or hook is run there
without an `asyncio.run` inside a running loop. Async event handlers of sync calls made outside
any event loop go to one background loop thread (`submit_background`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from governor.bundle import Bundle, load_bundle, standard_library_modules
from governor.engine import ENGINE_NAMES, Engine, create_engine
from governor.errors import ConfigurationError

__all__ = [
    "ENV_BUNDLE",
    "ENV_ENGINE",
    "ENV_FAIL_OPEN",
    "ENV_OPA_URL",
    "ENV_VERIFICATION_KEY",
    "RuntimeSettings",
    "configure",
    "fail_open",
    "get_engine",
    "reset",
    "run_sync",
    "settings",
    "submit_background",
]

logger = logging.getLogger("governor.runtime")

ENV_ENGINE = "GOVERNOR_ENGINE"
ENV_BUNDLE = "GOVERNOR_BUNDLE"
ENV_VERIFICATION_KEY = "GOVERNOR_BUNDLE_VERIFICATION_KEY"
ENV_OPA_URL = "GOVERNOR_OPA_URL"
ENV_FAIL_OPEN = "GOVERNOR_FAIL_OPEN"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})

T = TypeVar("T")


@dataclass(frozen=True)
class RuntimeSettings:
    """What the default engine is built from (see the module docstring)."""

    engine: str = "regorus"
    bundle: str | None = None
    verification_key: str | None = None
    opa_url: str | None = None
    fail_open: bool = False

    @classmethod
    def from_env(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> RuntimeSettings:
        """Read the settings from the environment (`ConfigurationError` names a bad one)."""
        env = os.environ if environ is None else environ
        engine = env.get(ENV_ENGINE, "").strip() or "regorus"
        raw_fail_open = env.get(ENV_FAIL_OPEN, "").strip().lower()
        if raw_fail_open not in _TRUE | _FALSE:
            raise ConfigurationError(
                f"{ENV_FAIL_OPEN}={env.get(ENV_FAIL_OPEN)!r} is not a boolean; use 1/true/yes/on "
                "to let calls through when the engine fails, or unset it (fail closed)"
            )
        return cls(
            engine=engine,
            bundle=env.get(ENV_BUNDLE, "").strip() or None,
            verification_key=env.get(ENV_VERIFICATION_KEY, "").strip() or None,
            opa_url=env.get(ENV_OPA_URL, "").strip() or None,
            fail_open=raw_fail_open in _TRUE,
        )


_lock = threading.Lock()
_overrides: dict[str, Any] = {}
_engine: Engine | None = None
_engine_pid: int | None = None
_settings: RuntimeSettings | None = None
_UNSET: Any = object()


def configure(
    *,
    engine: str | Engine | None = _UNSET,
    bundle: str | Path | None = _UNSET,
    verification_key: str | Path | None = _UNSET,
    opa_url: str | None = _UNSET,
    fail_open: bool = _UNSET,
) -> None:
    """Set the runtime's settings in code; they win over the environment.

    Only the arguments given change (None sets a setting back to its default). `engine` may also be
    an `Engine` instance, used as it is. The engine is rebuilt on next use; nothing is loaded here.
    """
    global _engine, _settings
    changes = {
        "engine": engine,
        "bundle": bundle,
        "verification_key": verification_key,
        "opa_url": opa_url,
        "fail_open": fail_open,
    }
    if fail_open is not _UNSET and fail_open is not None and not isinstance(fail_open, bool):
        raise ConfigurationError(f"configure(fail_open=...) takes True or False, got {fail_open!r}")
    with _lock:
        for name, value in changes.items():
            if value is _UNSET:
                continue
            if value is None:
                _overrides.pop(name, None)
            elif isinstance(value, Path):
                _overrides[name] = str(value)
            else:
                _overrides[name] = value
        _engine = None
        _settings = None


def reset() -> None:
    """Forget `configure`'s settings and the built engine (the environment is read again)."""
    global _engine, _settings
    with _lock:
        _overrides.clear()
        _engine = None
        _settings = None


def settings() -> RuntimeSettings:
    """The settings in force: `configure`'s, then the environment's, then the defaults."""
    current = _settings
    if current is not None:
        return current
    with _lock:
        return _settings_unlocked()


def fail_open() -> bool:
    """Whether engine trouble lets calls through (explicit opt-in only)."""
    return settings().fail_open


def _is_engine(value: Any) -> bool:
    return value is not None and not isinstance(value, str) and hasattr(value, "evaluate")


def get_engine() -> Engine:
    """The process's default engine, built on first use from `settings()` (thread-safe).

    Raises `ConfigurationError`, `BundleError` or `PolicyCompileError` when the settings name an
    engine or bundle that cannot be used: a misconfiguration must be loud, not a silent deny.
    """
    global _engine, _engine_pid
    engine, pid = _engine, os.getpid()
    if engine is not None and _engine_pid == pid:
        return engine
    with _lock:
        if _engine is None or _engine_pid != pid:
            given = _overrides.get("engine")
            built: Engine = given if _is_engine(given) else build_engine(_settings_unlocked())  # type: ignore[assignment]
            _engine, _engine_pid = built, pid
            return built
        return _engine


def _settings_unlocked() -> RuntimeSettings:
    global _settings
    if _settings is None:
        values = {k: v for k, v in _overrides.items() if not _is_engine(v)}
        if _is_engine(_overrides.get("engine")):
            values["engine"] = str(getattr(_overrides["engine"], "name", "custom"))
        _settings = replace(RuntimeSettings.from_env(), **values)
    return _settings


def build_engine(config: RuntimeSettings) -> Engine:
    """Build the engine `config` describes (see the module docstring)."""
    if config.engine not in ENGINE_NAMES:
        raise ConfigurationError(
            f"{ENV_ENGINE}={config.engine!r} is not an engine; expected one of "
            f"{', '.join(ENGINE_NAMES)}"
        )
    if config.engine == "opa":
        if not config.opa_url:
            raise ConfigurationError(
                f"{ENV_ENGINE}=opa needs {ENV_OPA_URL} (the sidecar's address, e.g. "
                "http://127.0.0.1:8181)"
            )
        if config.bundle:
            logger.warning(
                "governor: %s=%s is ignored with the OPA sidecar, which loads its bundles itself",
                ENV_BUNDLE,
                config.bundle,
            )
        return create_engine("opa", url=config.opa_url)
    return create_engine(config.engine, bundle=load_policy_bundle(config))


def load_policy_bundle(config: RuntimeSettings) -> Bundle:
    """The bundle an embedded engine loads: the standard library, plus `config.bundle` if set."""
    if not config.bundle:
        if config.verification_key:
            raise ConfigurationError(
                f"{ENV_VERIFICATION_KEY} is set but {ENV_BUNDLE} is not: name the signed bundle"
            )
        modules = {str(path): path.read_text(encoding="utf-8") for path in _stdlib()}
        return Bundle(modules=modules, data={}, source="standard library")
    path = Path(config.bundle).expanduser()
    if not path.exists():
        raise ConfigurationError(
            f"{ENV_BUNDLE}={config.bundle!r}: no such bundle directory or .tar.gz file"
        )
    key: str | Path | None = None
    if config.verification_key:
        candidate = Path(config.verification_key).expanduser()
        key = (
            candidate
            if _looks_like_file(config.verification_key, candidate)
            else (config.verification_key)
        )
    bundle = load_bundle(path, verification_key=key)
    if not _carries_stdlib(bundle):
        bundle = load_bundle(path, verification_key=key, include_stdlib=True)
    return bundle


def _looks_like_file(raw: str, path: Path) -> bool:
    return "\n" not in raw and "-----BEGIN" not in raw and path.is_file()


def _stdlib() -> list[Path]:
    return list(standard_library_modules().values())


def _carries_stdlib(bundle: Bundle) -> bool:
    return any(
        name.replace("\\", "/").endswith("governor/decision.rego") for name in bundle.modules
    )


# -- running user coroutines from sync code --------------------------------------------------------


class _BackgroundLoop:
    """One daemon thread running an event loop, for coroutines that sync code has to run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        loop, pid = self._loop, os.getpid()
        if loop is not None and self._pid == pid:
            return loop
        with self._lock:
            if self._loop is None or self._pid != pid:
                new_loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=new_loop.run_forever, name="governor-background", daemon=True
                )
                thread.start()
                self._loop, self._pid = new_loop, pid
            return self._loop

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop())


_background = _BackgroundLoop()


def submit_background(coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Run `coroutine` on governor's background loop thread; returns a concurrent future."""
    return _background.submit(coroutine)


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run the awaitable `make()` returns to completion from sync code, in this thread.

    A sync governed function meets user coroutines (an `async def` validator, hook or handler).
    They run on a private event loop of the calling thread: the common coroutine that awaits
    nothing real finishes in one step, without the loop ever running; one that awaits I/O runs
    the loop until it is done. This works whether or not the thread is already running an event
    loop (a sync function called from async code): that loop is set aside meanwhile, and blocked,
    as any sync call blocks it (asyncio's `_get_running_loop`/`_set_running_loop`, the low-level
    hooks event-loop libraries use, do the setting aside).
    """
    awaitable = make()
    coroutine = awaitable if asyncio.iscoroutine(awaitable) else _as_coroutine(awaitable)
    loop = _thread_loop()
    nested = loop.is_running()  # run_sync inside a coroutine run_sync is running
    if nested:
        loop = asyncio.new_event_loop()
    outer = asyncio.events._get_running_loop()
    try:
        asyncio.events._set_running_loop(loop)
        try:
            yielded = coroutine.send(None)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            asyncio.events._set_running_loop(outer)
        asyncio.events._set_running_loop(None)
        try:
            return loop.run_until_complete(_resume(coroutine, yielded))
        finally:
            asyncio.events._set_running_loop(outer)
    finally:
        if nested:
            loop.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _resume(coroutine: Coroutine[Any, Any, T], yielded: Any) -> T:
    """Go on with a coroutine that suspended on `yielded` (a future of this loop, or None)."""
    loop = asyncio.get_running_loop()
    while True:
        if yielded is None:
            await asyncio.sleep(0)
        else:
            # What an asyncio Task does with a future its coroutine yields: clear the flag, wake
            # up when it is done; the coroutine reads the result (or exception) itself.
            yielded._asyncio_future_blocking = False
            waiter = loop.create_future()
            yielded.add_done_callback(functools.partial(_wake, waiter))
            await waiter
        try:
            yielded = coroutine.send(None)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def _wake(waiter: asyncio.Future[None], _: object) -> None:
    if not waiter.done():
        waiter.set_result(None)


_threads = threading.local()


def _thread_loop() -> asyncio.AbstractEventLoop:
    """This thread's private loop for `run_sync` (created on first use, one per thread)."""
    loop: asyncio.AbstractEventLoop | None = getattr(_threads, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _threads.loop = loop
    return loop
