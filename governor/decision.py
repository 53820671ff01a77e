"""The decision: one evaluation of `data.governor.decision`, and what happens when there is none.

`decide` asks an engine for the decision document and turns it into a `Decision`. Engine trouble
(an error, a timeout, an undefined entrypoint, a document that breaks the contract of
`rego/README.md`) is itself a decision: **deny**, with the reason `engine.unavailable:<cause>`,
or allow with `engine.unavailable:fail_open` only when the caller set `fail_open=True`. Either way
it is logged on the `governor.decision` logger, and `decide` never raises for engine trouble.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from governor.engine.base import Engine
from governor.engine.regorus import is_panic
from governor.errors import EngineError, EngineTimeout, EngineUndefined, MalformedDecision

logger = logging.getLogger("governor.decision")

DEFAULT_ENTRYPOINT = "governor.decision"
#: True when the decision depends on the input's policy entries and the bundle alone.
CONSTANT_ENTRYPOINT = "governor.lib.combine.constant"
DECISIONS = ("allow", "deny", "confirm", "redact")
UNAVAILABLE = "engine.unavailable"

_HINTS = {
    "timeout": "the engine did not answer in time: check that it is running and not overloaded, "
    "or raise its timeout",
    "undefined": "the entrypoint is undefined: the bundle that defines it is not loaded "
    "(for the OPA sidecar, check GET /health?bundles and its bundle configuration)",
    "malformed": "the policy's decision document breaks the decision contract in rego/README.md: "
    "fix the policy",
    "error": "read the cause in parentheses: if the engine is unreachable, check that it runs "
    "at the configured url; if the policy raised an error, fix the policy (or its input); "
    "otherwise see the engine's own logs",
}


@dataclass(frozen=True)
class Decision:
    """A governance decision, as `data.governor.decision` returned it (see rego/README.md).

    `revision` is the bundle revision that decided and `engine` the engine's name. Sequences are
    stored as tuples.
    """

    decision: str
    reasons: tuple[str, ...] = ()
    violations: tuple[Mapping[str, Any], ...] = ()
    approval: Mapping[str, Any] = field(default_factory=dict)
    redactions: tuple[Mapping[str, Any], ...] = ()
    audit: Mapping[str, Any] = field(default_factory=dict)
    revision: str | None = None
    engine: str = ""

    def __post_init__(self) -> None:
        for name in ("reasons", "violations", "redactions"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    @property
    def allowed(self) -> bool:
        """True only for `allow`: a `redact` decision must be applied before the action runs."""
        return self.decision == "allow"

    @classmethod
    def from_document(
        cls, document: Any, *, revision: str | None = None, engine: str = ""
    ) -> Decision:
        """Validate an engine's decision document and build the `Decision`.

        Raises `MalformedDecision` (an `EngineError`: a policy that answers nonsense is an engine
        failure) naming the field and the problem. Missing optional fields are empty; unknown
        fields are ignored.
        """
        if not isinstance(document, Mapping):
            raise MalformedDecision(f"the decision must be an object, got {_kind(document)}")
        decision = document.get("decision")
        if decision not in DECISIONS:
            # A short excerpt helps whoever fixes the policy; never more (it may be input).
            shown = repr(decision[:16]) if isinstance(decision, str) else _kind(decision)
            raise MalformedDecision(
                f"'decision' must be one of {', '.join(DECISIONS)}, got {shown}"
            )
        return cls(
            decision=decision,
            reasons=tuple(_list_of(document, "reasons", str)),
            violations=tuple(_list_of(document, "violations", Mapping)),
            approval=_object(document, "approval"),
            redactions=tuple(_redactions(document)),
            audit=_object(document, "audit"),
            revision=revision,
            engine=engine,
        )


def decide(
    engine: Engine,
    input: Any,
    *,
    entrypoint: str = DEFAULT_ENTRYPOINT,
    fail_open: bool = False,
) -> Decision:
    """Evaluate `entrypoint` over `input` once and return the decision; never raises for engine
    trouble (it becomes a deny, or an allow when `fail_open`, and is logged)."""
    try:
        document = engine.evaluate(entrypoint, input)
        return Decision.from_document(document, revision=_revision(engine), engine=_name(engine))
    except Exception as exc:
        return _unavailable(engine, entrypoint, exc, fail_open)
    except BaseException as exc:  # a Rust panic out of an engine that did not convert it
        if not is_panic(exc):
            raise
        return _unavailable(engine, entrypoint, exc, fail_open)


async def decide_async(
    engine: Engine,
    input: Any,
    *,
    entrypoint: str = DEFAULT_ENTRYPOINT,
    fail_open: bool = False,
) -> Decision:
    """The async twin of `decide`."""
    try:
        document = await engine.evaluate_async(entrypoint, input)
        return Decision.from_document(document, revision=_revision(engine), engine=_name(engine))
    except Exception as exc:
        return _unavailable(engine, entrypoint, exc, fail_open)
    except BaseException as exc:  # a Rust panic out of an engine that did not convert it
        if not is_panic(exc):
            raise
        return _unavailable(engine, entrypoint, exc, fail_open)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, EngineTimeout):
        return "timeout"
    if isinstance(exc, EngineUndefined):
        return "undefined"
    if isinstance(exc, MalformedDecision):
        return "malformed"
    return "error"


def _unavailable(engine: Engine, entrypoint: str, exc: BaseException, fail_open: bool) -> Decision:
    cause = _cause(exc)
    name = _name(engine)
    outcome = (
        "ALLOWED the action without a policy decision (fail_open=True)"
        if fail_open
        else "DENIED the action (fail closed)"
    )
    logger.error(
        "governor: no decision from engine %r for %s (%s: %s); %s. What to do: %s.",
        name,
        entrypoint,
        cause,
        exc,
        outcome,
        _HINTS[cause],
        # A bug in an engine (anything but an EngineError) deserves its traceback.
        exc_info=not isinstance(exc, EngineError),
        extra={"governor_engine": name, "entrypoint": entrypoint, "cause": cause},
    )
    return Decision(
        decision="allow" if fail_open else "deny",
        reasons=(f"{UNAVAILABLE}:{'fail_open' if fail_open else cause}",),
        revision=_revision(engine),
        engine=name,
    )


class DecisionMemo:
    """One function's decision, reused while Rego declares it constant.

    `data.governor.lib.combine.constant` is true when the decision depends on the input's policy
    entries and the bundle's data alone (plain audit entries, or none, as a bare `@govern()`
    sends). Such a decision is evaluated once per bundle, phase and entries, and then reused: the
    decision is still Rego's, folded into a constant as OPA's partial evaluation would. The first
    evaluation under a bundle also asks `constant` (one more evaluation, once per bundle and
    phase); later calls compare their entries with the ones asked about, and are evaluated as
    usual when they differ or the decision was not constant.

    Only engines that evaluate a bundle object in process (`engine.bundle`, replaced on reload)
    are memoised: a sidecar's policy can change without the client knowing. Engine trouble is
    never memoised.
    """

    __slots__ = ("_known",)

    def __init__(self) -> None:
        # (engine, bundle, phase, entries, decision or None), replaced whole: threads share it
        self._known: tuple[Engine, object, str, list[Any], Decision | None] | None = None

    def get(self, engine: Engine, phase: str, entries: list[dict[str, Any]]) -> Decision | None:
        """The remembered decision for these entries, or None (evaluate it)."""
        known = self._known
        if known is None or not _same(known, engine, phase, entries):
            return None
        return known[4]

    def learn(self, engine: Engine, document: Mapping[str, Any], decision: Decision) -> None:
        """Remember `decision`, just evaluated for `document`, if Rego says it is constant."""
        phase, entries = str(document.get("phase")), document.get("policies")
        bundle = getattr(engine, "bundle", None)
        known = self._known
        if bundle is None or not isinstance(entries, list):
            return  # not memoisable
        if known is not None and known[0] is engine and known[1] is bundle and known[2] == phase:
            return  # asked once per bundle: entries that vary by call are not asked about again
        try:
            constant = engine.evaluate(CONSTANT_ENTRYPOINT, document) is True
        except EngineUndefined:
            constant = False
        except EngineError:
            return
        if constant and any(r.startswith(UNAVAILABLE) for r in decision.reasons):
            return
        remembered = decision if constant else None
        self._known = (engine, bundle, phase, copy.deepcopy(entries), remembered)


def _same(known: tuple[Any, ...], engine: Engine, phase: str, entries: list[Any]) -> bool:
    bundle = getattr(engine, "bundle", None)
    return (
        known[0] is engine
        and bundle is not None
        and known[1] is bundle
        and known[2] == phase
        and known[3] == entries
    )


def _name(engine: Engine) -> str:
    return str(getattr(engine, "name", type(engine).__name__))


def _revision(engine: Engine) -> str | None:
    try:
        revision = engine.revision
    except Exception:
        return None
    return revision if isinstance(revision, str) else None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "an array"
    return type(value).__name__


def _list_of(document: Mapping[str, Any], key: str, kind: type) -> list[Any]:
    value = document.get(key, [])
    if not isinstance(value, list):
        raise MalformedDecision(f"'{key}' must be an array, got {_kind(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, kind):
            expected = "a string" if kind is str else "an object"
            raise MalformedDecision(f"'{key}[{i}]' must be {expected}, got {_kind(item)}")
    return value


def _object(document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = document.get(key, {})
    if not isinstance(value, Mapping):
        raise MalformedDecision(f"'{key}' must be an object, got {_kind(value)}")
    return value


def _redactions(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Redactions are applied to data, so their coordinates must be usable."""
    redactions = _list_of(document, "redactions", Mapping)
    for i, r in enumerate(redactions):
        if not isinstance(r.get("path"), str):
            raise MalformedDecision(f"'redactions[{i}].path' must be a string")
        start, end = r.get("start"), r.get("end")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise MalformedDecision(f"'redactions[{i}]' start and end must be integers")
        if not 0 <= start <= end:  # type: ignore[operator]
            raise MalformedDecision(f"'redactions[{i}]' needs 0 <= start <= end")
    return redactions
