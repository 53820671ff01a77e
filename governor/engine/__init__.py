"""Rego engines behind one protocol: `evaluate(entrypoint, input) -> value` (plus async).

- `regorus` (default): embedded microsoft/regorus, compiled once per bundle, one engine per thread.
- `opa-lib`: real OPA in-process (opt-in; the oracle of the test suite).
- `opa`: an OPA sidecar over OPA's REST Data API.
"""

from __future__ import annotations

from governor.engine.base import Engine, entrypoint_path

ENGINE_NAMES = ("regorus", "opa-lib", "opa")

__all__ = ["ENGINE_NAMES", "Engine", "entrypoint_path"]
