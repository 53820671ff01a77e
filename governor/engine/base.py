"""The engine protocol: one evaluation of a Rego document over one input.

Every engine (embedded regorus, in-process OPA, OPA sidecar) implements `Engine`. Entrypoints are
written as data paths, with or without the leading `data.` and with dots or slashes:
`governor.decision`, `data.governor.decision` and `governor/decision` are the same document.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = frozenset(
    {"as", "contains", "default", "else", "every", "false", "if", "import", "in", "not", "null"}
    | {"package", "some", "true", "with"}
)


def entrypoint_path(entrypoint: str) -> list[str]:
    """Split an entrypoint into path segments: `data.governor.decision` -> [governor, decision]."""
    path = entrypoint.strip().replace("/", ".")
    if path == "data":
        return []
    if path.startswith("data."):
        path = path[len("data.") :]
    parts = [p for p in path.split(".") if p]
    if not parts:
        raise ValueError(f"entrypoint {entrypoint!r} names no document")
    return parts


@lru_cache(maxsize=256)
def entrypoint_ref(entrypoint: str) -> str:
    """The Rego reference of an entrypoint: `governor/decision` -> `data.governor.decision`.

    Segments that are not plain identifiers (or are keywords) are written in brackets, so
    `acme/cost-centre` becomes `data.acme["cost-centre"]`. Cached: engines call it on every
    evaluation. Raises `ValueError` when the entrypoint names no document.
    """
    ref = "data"
    for part in entrypoint_path(entrypoint):
        if _IDENTIFIER.fullmatch(part) and part not in _KEYWORDS:
            ref += "." + part
        else:
            ref += "[" + json.dumps(part) + "]"
    return ref


@runtime_checkable
class Engine(Protocol):
    """Evaluates Rego documents. Implementations raise `governor.errors.EngineError` on failure."""

    name: str

    @property
    def revision(self) -> str | None:
        """The loaded bundle's revision, if known."""
        ...

    def evaluate(self, entrypoint: str, input: Any) -> Any:
        """Return the value of the document at `entrypoint` for `input`.

        Raises `EngineUndefined` when the document is undefined, `EngineTimeout` on a timeout and
        `EngineError` for every other failure. Never raises anything else.
        """
        ...

    async def evaluate_async(self, entrypoint: str, input: Any) -> Any:
        """The async twin of `evaluate`."""
        ...

    def close(self) -> None:
        """Release connections and native resources."""
        ...
