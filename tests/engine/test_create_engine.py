"""`create_engine`: the engine by name, and a clear `ConfigurationError` for everything else."""

from __future__ import annotations

from typing import Any

import pytest

from governor.bundle import Bundle
from governor.engine import (
    ENGINE_NAMES,
    OpaLibEngine,
    OpaSidecarEngine,
    RegorusEngine,
    create_engine,
)
from governor.errors import ConfigurationError

BUNDLE = Bundle(modules={"p.rego": "package p\nx := input.n"}, data={})


def test_default_is_regorus() -> None:
    engine = create_engine(bundle=BUNDLE)
    assert isinstance(engine, RegorusEngine)
    assert engine.evaluate("p.x", {"n": 3}) == 3


def test_builds_each_engine_by_name() -> None:
    assert isinstance(create_engine("opa-lib", bundle=BUNDLE), OpaLibEngine)
    opa = create_engine("opa", url="http://127.0.0.1:8181", timeout=0.5, token="t")
    assert isinstance(opa, OpaSidecarEngine) and opa.timeout == 0.5
    opa.close()
    assert ENGINE_NAMES == ("regorus", "opa-lib", "opa")


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("rego", {"bundle": BUNDLE}, r"unknown engine 'rego'; expected one of regorus, opa-lib"),
        ("regorus", {}, r"'regorus' needs bundle="),
        ("opa-lib", {"bundle": {"p.rego": ""}}, r"bundle must be a Bundle, got dict"),
        ("regorus", {"bundle": BUNDLE, "timeout": 1.0}, r"takes no timeout"),
        ("regorus", {"bundle": BUNDLE, "url": "http://x"}, r"takes no url"),
        ("regorus", {"bundle": BUNDLE, "token": "t"}, r"unknown options \['token'\]"),
        ("opa", {}, r"'opa' needs url="),
        ("opa", {"url": "http://x", "bundle": BUNDLE}, r"takes no bundle"),
        ("opa", {"url": "http://x", "retries": 3}, r"unknown options \['retries'\]"),
        ("opa", {"url": "x:8181"}, r"opa url: expected http"),
    ],
)
def test_bad_configuration_names_the_problem(
    name: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        create_engine(name, **kwargs)
