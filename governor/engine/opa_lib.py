"""Real OPA in-process through `opa-golib-python-bindings` (OPA v1.20.2 as a Go shared library).

Opt-in (`engine="opa-lib"`) and the oracle the test suite compares the embedded engine against.
The package declares Requires-Python >= 3.14 but runs on 3.11; `make install` installs it with
`pip install --ignore-requires-python`.

An `OpaEngine` is thread-safe (evaluations are serialized by its own lock and the input is an
argument of the call), so `OpaLibEngine` keeps one per instance. Builtin errors are always strict
(the bindings hard-code it), which is what governor asks every engine for.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from governor.bundle import Bundle
from governor.engine.base import entrypoint_ref
from governor.errors import EngineError, EngineUndefined, PolicyCompileError

try:
    from opa_bindings import OpaEngine, OpaError, OpaUndefinedError
except ImportError:  # pragma: no cover - depends on the install
    OpaEngine = None  # type: ignore[assignment,misc]
    OpaError = Exception  # type: ignore[assignment,misc]
    OpaUndefinedError = Exception  # type: ignore[assignment,misc]

_LOCATION = re.compile(r"(?P<loc>[^\s:]+\.rego:\d+(?::\d+)?):\s*(?P<msg>.*)")


def available() -> bool:
    """True when the OPA bindings are installed."""
    return OpaEngine is not None


def compile_error(exc: BaseException) -> PolicyCompileError:
    """Turn an OPA error (`... file.rego:2: rego_parse_error: msg`) into `PolicyCompileError`."""
    text = getattr(exc, "message", str(exc))
    first = text.splitlines()[0] if text else ""
    match = _LOCATION.search(first)
    if match:
        return PolicyCompileError(match.group("msg").strip(), match.group("loc"))
    return PolicyCompileError(first.strip() or repr(exc))


def compile_bundle(bundle: Bundle) -> Any:
    """A new `opa_bindings.OpaEngine` holding the bundle's modules and data.

    Raises `EngineError` when the bindings are not installed and `PolicyCompileError` when a
    module does not parse or compile.
    """
    if OpaEngine is None:
        raise EngineError(
            "the opa-lib engine needs opa-golib-python-bindings: "
            "pip install --ignore-requires-python opa-golib-python-bindings==0.4.4"
        )
    engine = OpaEngine()
    try:
        for path, source in bundle.modules.items():
            engine.add_policy(path, source)
        engine.add_data(bundle.data)
    except OpaError as exc:
        engine.close()
        raise compile_error(exc) from None
    return engine


def eval_ref(engine: Any, ref: str, input: Any) -> Any:
    """The value of the document at `ref` (`data.a.b`, `data["a-b"]`) on an `OpaEngine`.

    `eval_document` takes the path after `data.`, so a first segment that needs brackets is
    evaluated as a query instead. Raises `OpaUndefinedError` when the document is undefined.
    """
    if ref == "data" or ref.startswith("data."):
        return engine.eval_document(ref[len("data.") :], input)
    rows = engine.eval_query(f"__value__ = {ref}", input)
    if not rows:
        raise OpaUndefinedError(ref)
    return rows[0]["__value__"]


class OpaLibEngine:
    """Real OPA in-process behind the `Engine` protocol; one thread-safe OPA engine per instance.

    Raises `PolicyCompileError` at construction when the bundle does not compile and
    `EngineError` when the bindings are not installed.
    """

    name = "opa-lib"

    def __init__(self, bundle: Bundle) -> None:
        # One attribute, so a reload swaps engine and bundle in a single assignment.
        self._current: tuple[Any, Bundle] | None = (compile_bundle(bundle), bundle)

    @property
    def revision(self) -> str | None:
        """The loaded bundle's manifest revision (None when it has none)."""
        current = self._current
        return (current[1].revision or None) if current else None

    @property
    def bundle(self) -> Bundle | None:
        """The bundle being evaluated (None once closed)."""
        current = self._current
        return current[1] if current else None

    def evaluate(self, entrypoint: str, input: Any) -> Any:
        """Return the value of the document at `entrypoint` for `input` (see `Engine.evaluate`)."""
        current = self._current
        try:
            if current is None:
                raise EngineError("the opa-lib engine is closed")
            return eval_ref(current[0], entrypoint_ref(entrypoint), input)
        except EngineError:
            raise
        except OpaUndefinedError:
            raise EngineUndefined(f"{entrypoint_ref(entrypoint)} is undefined") from None
        except OpaError as exc:
            raise EngineError(
                f"OPA could not evaluate {entrypoint}: {exc.code}: {exc.message}"
            ) from exc
        except Exception as exc:
            raise EngineError(f"OPA could not evaluate {entrypoint}: {exc}") from exc

    async def evaluate_async(self, entrypoint: str, input: Any) -> Any:
        """The async twin of `evaluate`, run in a worker thread.

        The Go call releases the GIL, so the loop keeps serving other coroutines meanwhile.
        """
        return await asyncio.to_thread(self.evaluate, entrypoint, input)

    def native(self) -> Any:
        """The underlying `opa_bindings.OpaEngine` (thread-safe, shared by every caller)."""
        current = self._current
        if current is None:
            raise EngineError("the opa-lib engine is closed")
        return current[0]

    def reload(self, bundle: Bundle) -> None:
        """Swap in a new bundle atomically.

        The new bundle is compiled first (`PolicyCompileError` keeps the current one serving).
        The old OPA engine is released when the last evaluation still using it returns.
        """
        self._current = (compile_bundle(bundle), bundle)

    def close(self) -> None:
        """Release the OPA engine; call it when no evaluation is in flight."""
        current, self._current = self._current, None
        if current is not None:
            current[0].close()
