"""Real OPA in-process through `opa-golib-python-bindings` (OPA v1.20.2 as a Go shared library).

Opt-in (`engine="opa-lib"`) and the oracle the test suite compares the embedded engine against.
The package declares Requires-Python >= 3.14 but runs on 3.11; `make install` installs it with
`pip install --ignore-requires-python`.
"""

from __future__ import annotations

import re
from typing import Any

from governor.bundle import Bundle
from governor.errors import EngineError, PolicyCompileError

try:
    from opa_bindings import OpaEngine, OpaError
except ImportError:  # pragma: no cover - depends on the install
    OpaEngine = None  # type: ignore[assignment,misc]
    OpaError = Exception  # type: ignore[assignment,misc]

_LOCATION = re.compile(r"(?P<loc>[^\s:]+\.rego:\d+(?::\d+)?):\s*(?P<msg>.*)")


def available() -> bool:
    """True when the OPA bindings are installed."""
    return OpaEngine is not None


def compile_error(exc: BaseException) -> PolicyCompileError:
    """Turn an OPA error (`... file.rego:2: rego_parse_error: message`) into `PolicyCompileError`."""
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
