"""Rego engines behind one protocol: `evaluate(entrypoint, input) -> value` (plus async).

- `regorus` (default): embedded microsoft/regorus, compiled once per bundle, one engine per thread.
- `opa-lib`: real OPA in-process (opt-in; the oracle of the test suite).
- `opa`: an OPA sidecar over OPA's REST Data API.

`create_engine` builds one by name; the classes can also be used directly.
"""

from __future__ import annotations

from typing import Any

from governor.bundle import Bundle
from governor.engine.base import Engine, entrypoint_path, entrypoint_ref
from governor.engine.opa_lib import OpaLibEngine
from governor.engine.opa_sidecar import DEFAULT_TIMEOUT, Health, OpaSidecarEngine
from governor.engine.regorus import RegorusEngine
from governor.errors import ConfigurationError

ENGINE_NAMES = ("regorus", "opa-lib", "opa")

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENGINE_NAMES",
    "Engine",
    "Health",
    "OpaLibEngine",
    "OpaSidecarEngine",
    "RegorusEngine",
    "create_engine",
    "entrypoint_path",
    "entrypoint_ref",
]


def create_engine(
    name: str = "regorus",
    *,
    bundle: Bundle | None = None,
    url: str | None = None,
    timeout: float | None = None,
    **options: Any,
) -> Engine:
    """Build the engine called `name`: `regorus` or `opa-lib` over `bundle`, `opa` at `url`.

    `timeout` (seconds) and `options` (`token`, `headers`) apply to the `opa` sidecar only: the
    embedded engines cannot interrupt an evaluation, so they refuse a timeout rather than ignore
    it. Raises `ConfigurationError` naming the bad value; `PolicyCompileError` when the bundle
    does not compile.
    """
    if name not in ENGINE_NAMES:
        raise ConfigurationError(f"engine: unknown engine {name!r}; expected one of {_names()}")
    if name == "opa":
        if url is None:
            raise ConfigurationError(
                "engine 'opa' needs url= (OPA's address, e.g. http://127.0.0.1:8181)"
            )
        if bundle is not None:
            raise ConfigurationError(
                "engine 'opa' takes no bundle: the sidecar loads its bundles itself"
            )
        unknown = sorted(set(options) - {"token", "headers"})
        if unknown:
            raise ConfigurationError(
                f"engine 'opa': unknown options {unknown}; expected token, headers"
            )
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        return OpaSidecarEngine(url, timeout=timeout, **options)
    if bundle is None:
        raise ConfigurationError(f"engine {name!r} needs bundle= (a governor.bundle.Bundle)")
    if not isinstance(bundle, Bundle):
        raise ConfigurationError(
            f"engine {name!r}: bundle must be a Bundle, got {type(bundle).__name__}"
        )
    if url is not None:
        raise ConfigurationError(f"engine {name!r} evaluates in-process and takes no url")
    if timeout is not None:
        raise ConfigurationError(
            f"engine {name!r} cannot interrupt an evaluation, so it takes no timeout"
        )
    if options:
        raise ConfigurationError(f"engine {name!r}: unknown options {sorted(options)}")
    return RegorusEngine(bundle) if name == "regorus" else OpaLibEngine(bundle)


def _names() -> str:
    return ", ".join(ENGINE_NAMES)
