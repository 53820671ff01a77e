"""The embedded engine: microsoft/regorus (PyPI `gordon-to-regorus`), the default.

A regorus `Engine` belongs to the thread that created it (pyo3 `unsendable`: touching it from
another thread raises `PanicException`, a BaseException). So `RegorusEngine` compiles the bundle
once per thread that needs it, keyed by the bundle's digest, and never per call:

- the thread that constructs the engine (or calls `reload`) compiles immediately, so a bundle that
  does not compile raises `PolicyCompileError` there and then;
- every other thread compiles on its first evaluation, then reuses its engine until the bundle's
  digest changes.

An evaluation is `set_input` + `eval_rule_as_json` in one synchronous step (no `await` between
them), which is why it is safe on an asyncio loop thread. The JSON path is the fastest of the
binding's result conversions and yields exactly OPA's JSON shape (sets become sorted arrays).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any

# Otherwise every error message carries a Rust backtrace (and the error path is 5x slower).
# RUST_LIB_BACKTRACE governs the backtraces captured into errors and takes precedence over
# RUST_BACKTRACE, which a developer may have set for their own Rust code.
os.environ.setdefault("RUST_LIB_BACKTRACE", "0")
os.environ.setdefault("RUST_BACKTRACE", "0")

import regorus  # noqa: E402

from governor.bundle import Bundle  # noqa: E402
from governor.engine.base import entrypoint_ref  # noqa: E402
from governor.errors import EngineError, EngineUndefined, PolicyCompileError  # noqa: E402

_LOCATION = re.compile(r"-->\s*(?P<loc>\S+:\d+:\d+)")
_MESSAGE = re.compile(r"^error:\s*(?P<msg>.*)$", re.MULTILINE)

# What `eval_rule_as_json` returns for an undefined rule (also the JSON of that very string).
_UNDEFINED_JSON = '"<undefined>"'
# What `eval_rule*` raise for a path that is not a rule (a package, a missing rule, a sub-path).
_NOT_A_RULE = "not a valid rule path"


def compile_error(exc: BaseException) -> PolicyCompileError:
    """Turn a regorus error (`--> file:row:col ... error: message`) into a `PolicyCompileError`."""
    text = str(exc)
    loc = _LOCATION.search(text)
    msg = _MESSAGE.search(text)
    return PolicyCompileError(
        msg.group("msg").strip() if msg else text.strip(), loc.group("loc") if loc else None
    )


def compile_bundle(bundle: Bundle) -> regorus.Engine:
    """A new regorus engine holding the bundle's modules and data (Rego v1).

    Raises `PolicyCompileError` (with `file:row:col`) when a module does not parse.
    """
    engine = regorus.Engine()
    engine.set_rego_v0(False)
    for path, source in bundle.modules.items():
        try:
            engine.add_policy(path, source)
        except RuntimeError as exc:
            raise compile_error(exc) from None
    engine.add_data(bundle.data)
    return engine


def is_panic(exc: BaseException) -> bool:
    """True for pyo3's `PanicException`, raised when Rust code panics (a BaseException)."""
    return any(
        cls.__name__ == "PanicException" and cls.__module__ == "pyo3_runtime"
        for cls in type(exc).__mro__
    )


def describe(exc: BaseException) -> str:
    """A one-line account of a regorus error or panic: `file:row:col: message` when located."""
    text = _without_backtrace(str(exc))
    loc = _LOCATION.search(text)
    msg = _MESSAGE.search(text)
    if msg:
        return f"{loc.group('loc')}: {msg.group('msg').strip()}" if loc else msg.group("msg")
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first or type(exc).__name__


def _without_backtrace(text: str) -> str:
    """Drop the `Stack backtrace:` a message carries when RUST_LIB_BACKTRACE=1 is set anyway."""
    cut = text.find("\nStack backtrace:")
    return text if cut < 0 else text[:cut].rstrip()


@dataclass(frozen=True)
class _Loaded:
    """The bundle every thread should be evaluating, with its digest computed once."""

    bundle: Bundle
    digest: str


class _ThreadEngine:
    """One thread's compiled engines for one `RegorusEngine` and one bundle digest."""

    __slots__ = ("digest", "engine", "owner", "rule_misses", "template")

    def __init__(
        self, owner: weakref.ref[RegorusEngine], digest: str, template: regorus.Engine
    ) -> None:
        self.owner = owner
        self.digest = digest
        # Never given an input: evaluates calls without input and is the source of clones.
        self.template = template
        self.engine = template.clone()
        # Entrypoints that are not rules (packages, sub-paths): evaluated as queries.
        self.rule_misses: set[str] = set()


# Every thread's engines live in this module-level thread-local, keyed by the owning
# RegorusEngine's token, so that only that thread ever drops them: when it exits, or when it
# next compiles and prunes the engines of RegorusEngines that no longer exist. pyo3 refuses to
# drop an unsendable object on another thread (it leaks it and reports an unraisable error), which
# is what a per-instance threading.local would do when the instance is closed or collected.
_threads = threading.local()
_tokens = itertools.count()


def _thread_engines() -> dict[int, _ThreadEngine]:
    try:
        engines: dict[int, _ThreadEngine] = _threads.engines
    except AttributeError:
        engines = _threads.engines = {}
    return engines


class RegorusEngine:
    """The embedded regorus engine behind the `Engine` protocol, one compiled engine per thread.

    `evaluate` returns the document's value as OPA's JSON would (sets become arrays), raises
    `EngineUndefined` when it is undefined and `EngineError` for every failure, including a Rust
    panic. A call with `input=None` evaluates with no input at all, as OPA does.
    """

    name = "regorus"

    def __init__(self, bundle: Bundle) -> None:
        self._token = next(_tokens)
        self._loaded: _Loaded | None = None
        self._loaded = self._compile_here(bundle)

    @property
    def revision(self) -> str | None:
        """The loaded bundle's manifest revision (None when it has none)."""
        loaded = self._loaded
        return (loaded.bundle.revision or None) if loaded else None

    @property
    def bundle(self) -> Bundle | None:
        """The bundle being evaluated (None once closed)."""
        loaded = self._loaded
        return loaded.bundle if loaded else None

    def evaluate(self, entrypoint: str, input: Any) -> Any:
        """Return the value of the document at `entrypoint` for `input` (see `Engine.evaluate`)."""
        try:
            state = self._state()
            ref = entrypoint_ref(entrypoint)
            if input is None:
                engine = state.template
            else:
                engine = state.engine
                engine.set_input(input)
            if ref not in state.rule_misses:
                try:
                    text = engine.eval_rule_as_json(ref)
                except RuntimeError as exc:
                    if not str(exc).startswith(_NOT_A_RULE):
                        raise
                    state.rule_misses.add(ref)
                else:
                    if text != _UNDEFINED_JSON:
                        return json.loads(text)
                    # Undefined, or a rule whose value is the string "<undefined>": ask a query.
            return _eval_query(engine, ref)
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"regorus could not evaluate {entrypoint}: {describe(exc)}") from exc
        except BaseException as exc:
            if not is_panic(exc):
                raise
            raise EngineError(f"regorus panicked evaluating {entrypoint}: {describe(exc)}") from exc

    async def evaluate_async(self, entrypoint: str, input: Any) -> Any:
        """The async twin of `evaluate`, run directly on the loop thread.

        regorus holds the GIL while it evaluates, so a worker thread would only add a hop: the
        loop could not run meanwhile anyway. (`asyncio.to_thread(engine.evaluate, ...)` is safe
        too: every thread gets its own engine.)
        """
        return self.evaluate(entrypoint, input)

    def native(self) -> regorus.Engine:
        """A compiled `regorus.Engine` of this thread's bundle, for the test runner.

        It is a fresh clone that the caller owns (set input, coverage, prints, add modules) and
        must use only in the calling thread; the adapter's own engines are never handed out.
        """
        try:
            return self._state().template.clone()
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"regorus could not provide an engine: {describe(exc)}") from exc
        except BaseException as exc:
            if not is_panic(exc):
                raise
            raise EngineError(f"regorus panicked providing an engine: {describe(exc)}") from exc

    def reload(self, bundle: Bundle) -> None:
        """Swap in a new bundle atomically; every thread recompiles on its next call.

        The bundle is compiled in the calling thread first, so a bundle that does not compile
        raises `PolicyCompileError` and the current one keeps serving. A bundle with the same
        digest as the current one causes no recompilation anywhere.
        """
        loaded = self._loaded
        if loaded is not None and loaded.digest == bundle.digest:
            return
        self._loaded = self._compile_here(bundle)

    def close(self) -> None:
        """Stop evaluating; later evaluations raise `EngineError`.

        This thread's engines are dropped now; another thread's when it next touches this
        engine or compiles another one, or when it exits (only the owning thread may drop them).
        """
        self._loaded = None
        _thread_engines().pop(self._token, None)

    def _compile_here(self, bundle: Bundle) -> _Loaded:
        loaded = _Loaded(bundle, bundle.digest)
        self._build(loaded)
        return loaded

    def _build(self, loaded: _Loaded) -> _ThreadEngine:
        engines = _thread_engines()
        for token in [t for t, s in engines.items() if s.owner() is None]:
            del engines[token]
        state = _ThreadEngine(weakref.ref(self), loaded.digest, compile_bundle(loaded.bundle))
        engines[self._token] = state
        return state

    def _state(self) -> _ThreadEngine:
        loaded = self._loaded
        if loaded is None:
            _thread_engines().pop(self._token, None)
            raise EngineError("the regorus engine is closed")
        state = _thread_engines().get(self._token)
        if state is None or state.digest != loaded.digest:
            state = self._build(loaded)
        return state


def _eval_query(engine: regorus.Engine, ref: str) -> Any:
    result = json.loads(engine.eval_query_as_json(ref)).get("result")
    if not result:
        raise EngineUndefined(f"{ref} is undefined")
    return result[0]["expressions"][0]["value"]
