"""Decisions: the contract's document becomes a `Decision`; engine trouble becomes a logged deny
(or, only when asked, a logged allow) and never an exception."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from governor.bundle import Bundle, Manifest
from governor.decision import DEFAULT_ENTRYPOINT, Decision, decide, decide_async
from governor.engine import OpaSidecarEngine, RegorusEngine
from governor.engine.regorus import compile_bundle
from governor.errors import EngineError, MalformedDecision
from tests.engine.opa_double import OpaDouble

DECISION = """package governor.decision

import rego.v1

default decision := "allow"

decision := "deny" if input.action.name == "drop_table"

decision := "redact" if input.action.name == "echo"

reasons contains "tool.blocked:drop_table" if decision == "deny"

violations contains {"policy": "tools", "type": "tool", "code": "blocked", "message": "no"} if {
    decision == "deny"
}

redactions contains r if {
    decision == "redact"
    r := {"path": "raw_text", "start": 0, "end": 3, "kind": "ssn", "replacement": "***"}
}

approval := {"required": false, "approvers": [], "stages": [], "timeout_seconds": 0, "quorum": 0}

audit := {"tags": ["gdpr"], "mask": []}
"""

MALFORMED = """package governor.decision

decision := input.value
"""


def bundle(source: str = DECISION, revision: str = "rev-7") -> Bundle:
    return Bundle(modules={"decision.rego": source}, data={}, manifest=Manifest(revision=revision))


def action(name: str) -> dict[str, Any]:
    return {"version": 1, "phase": "pre", "action": {"kind": "tool", "name": name}}


@pytest.fixture
def engine() -> Iterator[RegorusEngine]:
    engine = RegorusEngine(bundle())
    yield engine
    engine.close()


@pytest.fixture
def down_opa() -> Iterator[OpaSidecarEngine]:
    """A sidecar engine whose OPA has gone away."""
    opa = OpaDouble(bundle()).start()
    opa.stop()
    engine = OpaSidecarEngine(opa.url)
    yield engine
    engine.close()


# -- the happy path ---------------------------------------------------------------------------


def test_an_allow_decision(engine: RegorusEngine) -> None:
    decision = decide(engine, action("search"))
    assert decision.allowed
    assert decision.decision == "allow"
    assert (decision.revision, decision.engine) == ("rev-7", "regorus")
    assert decision.audit == {"tags": ["gdpr"], "mask": []}


def test_a_deny_decision_carries_reasons_and_violations(engine: RegorusEngine) -> None:
    decision = decide(engine, action("drop_table"))
    assert not decision.allowed
    assert decision.reasons == ("tool.blocked:drop_table",)
    assert decision.violations[0]["code"] == "blocked"


def test_redact_is_not_allowed_until_the_redactions_are_applied(engine: RegorusEngine) -> None:
    decision = decide(engine, action("echo"))
    assert decision.decision == "redact" and not decision.allowed
    assert decision.redactions[0]["replacement"] == "***"


def test_decide_async_is_the_twin_of_decide(engine: RegorusEngine) -> None:
    async def main() -> list[Decision]:
        return await asyncio.gather(*(decide_async(engine, action("search")) for _ in range(50)))

    assert {d.decision for d in asyncio.run(main())} == {"allow"}


def test_the_default_entrypoint_is_data_governor_decision() -> None:
    assert DEFAULT_ENTRYPOINT == "governor.decision"


# -- engine trouble is a decision ---------------------------------------------------------------


def test_an_unreachable_engine_fails_closed_and_is_logged(
    down_opa: OpaSidecarEngine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="governor.decision"):
        decision = decide(down_opa, action("search"))
    assert decision.decision == "deny" and not decision.allowed
    assert decision.reasons == ("engine.unavailable:error",)
    assert decision.engine == "opa"
    (record,) = caplog.records
    assert "DENIED the action (fail closed)" in record.getMessage()
    assert "cannot connect to OPA" in record.getMessage()
    assert record.cause == "error"  # type: ignore[attr-defined]


def test_fail_open_allows_only_when_asked_and_says_so(
    down_opa: OpaSidecarEngine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="governor.decision"):
        decision = decide(down_opa, action("search"), fail_open=True)
    assert decision.allowed
    assert decision.reasons == ("engine.unavailable:fail_open",)
    assert "ALLOWED the action without a policy decision" in caplog.records[0].getMessage()


def test_async_engine_trouble_fails_closed(down_opa: OpaSidecarEngine) -> None:
    async def main() -> Decision:
        try:
            return await decide_async(down_opa, action("search"))
        finally:
            await down_opa.aclose()

    assert asyncio.run(main()).reasons == ("engine.unavailable:error",)


def test_a_timeout_fails_closed_with_its_cause() -> None:
    with OpaDouble(bundle()) as opa:
        opa.delay = 5.0  # released when the double stops
        engine = OpaSidecarEngine(opa.url, timeout=0.05)
        assert decide(engine, action("search")).reasons == ("engine.unavailable:timeout",)
        engine.close()


def test_an_undefined_entrypoint_fails_closed(engine: RegorusEngine) -> None:
    decision = decide(engine, action("search"), entrypoint="governor.nothing_here")
    assert decision.reasons == ("engine.unavailable:undefined",)


def test_an_evaluation_error_fails_closed() -> None:
    engine = RegorusEngine(bundle("package governor.decision\n\ndecision := 1 / input.zero\n"))
    decision = decide(engine, {"zero": 0})
    assert (decision.decision, decision.reasons) == ("deny", ("engine.unavailable:error",))


@pytest.mark.parametrize(
    "value",
    ["maybe", 1, None, ["allow"], "ALLOW"],
)
def test_a_malformed_decision_fails_closed(value: Any, caplog: pytest.LogCaptureFixture) -> None:
    engine = RegorusEngine(bundle(MALFORMED))
    with caplog.at_level(logging.ERROR, logger="governor.decision"):
        decision = decide(engine, {"value": value})
    assert decision.reasons == ("engine.unavailable:malformed",)
    assert "'decision' must be one of allow, deny, confirm, redact" in caplog.text


def test_a_broken_engine_object_is_still_only_a_deny(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        name = "broken"
        revision = None

        def evaluate(self, entrypoint: str, input: Any) -> Any:
            raise ZeroDivisionError("a bug inside an engine")

    decision = decide(Broken(), {})  # type: ignore[arg-type]
    assert decision.reasons == ("engine.unavailable:error",)
    assert caplog.records[0].exc_info is not None  # a bug deserves its traceback


class SharedRegorus:
    """A hand-rolled engine making the classic mistake: one regorus engine for every thread."""

    name = "shared-regorus"
    revision = None

    def __init__(self) -> None:
        self.native = compile_bundle(bundle())  # belongs to the thread that built it

    def evaluate(self, entrypoint: str, input: Any) -> Any:
        self.native.set_input(input)
        return json.loads(self.native.eval_rule_as_json("data.governor.decision"))


def test_a_rust_panic_out_of_an_engine_is_still_only_a_deny(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = SharedRegorus()
    result: list[Decision] = []
    worker = threading.Thread(
        target=lambda: result.append(decide(engine, action("search")))  # type: ignore[arg-type]
    )
    worker.start()
    worker.join()
    assert [d.reasons for d in result] == [("engine.unavailable:error",)]
    assert "unsendable" in caplog.text


def test_an_interrupt_is_not_a_decision() -> None:
    class Interrupted:
        name = "interrupted"
        revision = None

        def evaluate(self, entrypoint: str, input: Any) -> Any:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        decide(Interrupted(), {})  # type: ignore[arg-type]


# -- validating the document --------------------------------------------------------------------


def test_from_document_fills_missing_optional_fields() -> None:
    decision = Decision.from_document({"decision": "allow"}, revision="r", engine="e")
    assert decision == Decision("allow", revision="r", engine="e")
    assert (decision.reasons, decision.approval, decision.audit) == ((), {}, {})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("allow", "the decision must be an object, got a string"),
        ({"decision": "allow", "reasons": "x"}, "'reasons' must be an array, got a string"),
        ({"decision": "deny", "reasons": [1]}, r"'reasons\[0\]' must be a string, got a number"),
        ({"decision": "deny", "violations": ["x"]}, r"'violations\[0\]' must be an object"),
        ({"decision": "allow", "approval": []}, "'approval' must be an object, got an array"),
        ({"decision": "allow", "audit": None}, "'audit' must be an object, got null"),
        ({"decision": "redact", "redactions": [{"start": 0, "end": 1}]}, "path' must be a string"),
        (
            {"decision": "redact", "redactions": [{"path": "a", "start": 3, "end": 1}]},
            "needs 0 <= start <= end",
        ),
        (
            {"decision": "redact", "redactions": [{"path": "a", "start": True, "end": 1}]},
            "start and end must be integers",
        ),
    ],
)
def test_from_document_rejects_what_breaks_the_contract(document: Any, message: str) -> None:
    with pytest.raises(MalformedDecision, match=message) as info:
        Decision.from_document(document)
    assert isinstance(info.value, EngineError)


def test_decision_is_immutable() -> None:
    decision = Decision("deny", reasons=["a"])  # type: ignore[arg-type]
    assert decision.reasons == ("a",)
    with pytest.raises(AttributeError):
        decision.decision = "allow"  # type: ignore[misc]
