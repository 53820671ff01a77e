"""The three engines give identical answers for the same bundle and inputs.

Values are compared as JSON (regorus computes in f64, OPA in decimals: the policy keeps to
integers and exact halves, as bundles must, see rego/README.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from governor.bundle import Bundle, Manifest
from governor.engine import Engine, OpaLibEngine, OpaSidecarEngine, RegorusEngine
from governor.errors import EngineError, EngineUndefined
from tests.engine.opa_double import OpaDouble

POLICY = """package agree

default decision := "allow"

decision := "deny" if count(deny) > 0

deny contains sprintf("role %s may not %s", [input.role, input.action]) if {
    not input.action in data.cfg.allowed[input.role]
}

deny contains "ssn" if regex.match(`\\d{3}-\\d{2}-\\d{4}`, input.text)

spend := {"total": sum(input.costs), "over": sum(input.costs) > data.cfg.budget}

half := input.n / 2

upper_words := [upper(w) | some w in split(input.text, " ")]

roles[r] := count(ps) if some r, ps in data.cfg.allowed

all_small if every c in input.costs { c < 100 }

nothing := null

never if false

boom := 1 / input.zero
"""

BUNDLE = Bundle(
    modules={"agree.rego": POLICY},
    data={"cfg": {"allowed": {"admin": ["read", "write"], "user": ["read"]}, "budget": 100}},
    manifest=Manifest(revision="agree-1"),
)

INPUTS = [
    {"role": "user", "action": "read", "text": "hello world", "costs": [1, 2], "n": 3, "zero": 0},
    {"role": "user", "action": "write", "text": "ssn 123-45-6789", "costs": [90, 20], "n": 4},
    {"role": "admin", "action": "write", "text": "", "costs": [], "n": -7, "zero": 0},
]

VALUES = ["decision", "deny", "spend", "half", "upper_words", "roles", "nothing", "cfg"]
UNDEFINED = ["never", "missing"]


@pytest.fixture(scope="module")
def engines() -> Iterator[dict[str, Engine]]:
    opa = OpaDouble(BUNDLE).start()
    built: dict[str, Engine] = {
        "regorus": RegorusEngine(BUNDLE),
        "opa-lib": OpaLibEngine(BUNDLE),
        "opa": OpaSidecarEngine(opa.url, timeout=10.0),
    }
    yield built
    for engine in built.values():
        engine.close()
    opa.stop()


def outcome(evaluate: Callable[[], Any]) -> Any:
    try:
        return ("value", evaluate())
    except EngineUndefined:
        return ("undefined",)
    except EngineError:
        return ("error",)


@pytest.mark.parametrize("index", range(len(INPUTS)))
@pytest.mark.parametrize("rule", VALUES + UNDEFINED + ["all_small", "boom"])
def test_the_three_engines_agree(engines: dict[str, Engine], rule: str, index: int) -> None:
    entrypoint = "cfg" if rule == "cfg" else f"agree.{rule}"
    results = {
        name: outcome(lambda e=engine: e.evaluate(entrypoint, INPUTS[index]))  # type: ignore[misc]
        for name, engine in engines.items()
    }
    assert results["regorus"] == results["opa-lib"] == results["opa"], results
    if rule in VALUES:
        assert results["regorus"][0] == "value"
    if rule in UNDEFINED:
        assert results["regorus"] == ("undefined",)


def test_a_builtin_error_is_an_error_on_every_engine(engines: dict[str, Engine]) -> None:
    for engine in engines.values():
        with pytest.raises(EngineError) as info:
            engine.evaluate("agree.boom", INPUTS[0])
        assert not isinstance(info.value, EngineUndefined)
        assert "divide by zero" in str(info.value)
