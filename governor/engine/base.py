"""The engine protocol: one evaluation of a Rego document over one input.

Every engine (embedded regorus, in-process OPA, OPA sidecar) implements `Engine`. Entrypoints are
written as data paths, with or without the leading `data.` and with dots or slashes:
`governor.decision`, `data.governor.decision` and `governor/decision` are the same document.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


def entrypoint_path(entrypoint: str) -> list[str]:
    """Split an entrypoint into its path segments: `data.governor.decision` -> [governor, decision]."""
    path = entrypoint.strip().replace("/", ".")
    if path == "data":
        return []
    if path.startswith("data."):
        path = path[len("data.") :]
    parts = [p for p in path.split(".") if p]
    if not parts:
        raise ValueError(f"entrypoint {entrypoint!r} names no document")
    return parts


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
