"""The embedded engine: microsoft/regorus (PyPI `gordon-to-regorus`), the default.

A regorus `Engine` belongs to the thread that created it (pyo3 `unsendable`: touching it from
another thread raises `PanicException`, a BaseException). So a bundle is compiled once into a
template per thread that first needs it, never per call.
"""

from __future__ import annotations

import os
import re

os.environ.setdefault("RUST_BACKTRACE", "0")  # otherwise every error message carries a backtrace

import regorus  # noqa: E402

from governor.bundle import Bundle  # noqa: E402
from governor.errors import PolicyCompileError  # noqa: E402

_LOCATION = re.compile(r"-->\s*(?P<loc>\S+:\d+:\d+)")
_MESSAGE = re.compile(r"^error:\s*(?P<msg>.*)$", re.MULTILINE)


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
