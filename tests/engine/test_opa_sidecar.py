"""The OPA sidecar adapter against a double of OPA's REST API that evaluates with real OPA."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from governor.bundle import Bundle, Manifest
from governor.engine import Engine, Health, OpaSidecarEngine
from governor.errors import (
    ConfigurationError,
    EngineError,
    EngineServerError,
    EngineTimeout,
    EngineUndefined,
)
from tests.engine.opa_double import OpaDouble

POLICY = """package p

double := input.n * 2
nothing := null
never if false
quotient := 1 / input.d
tags contains t if some t in input.tags
has_input if input
"""

BUNDLE = Bundle(
    modules={"p.rego": POLICY},
    data={"odd-name": {"x": 1}},
    manifest=Manifest(revision="rev-1"),
)

Start = Callable[..., OpaDouble]
T = TypeVar("T")


@pytest.fixture
def opa(start_opa: Start) -> OpaDouble:
    return start_opa(BUNDLE)


@pytest.fixture
def engine(opa: OpaDouble) -> Iterator[OpaSidecarEngine]:
    engine = OpaSidecarEngine(opa.url)
    yield engine
    engine.close()


def data_requests(opa: OpaDouble) -> list[Any]:
    return [r for r in opa.requests if r.path.startswith("/v1/data")]


def run(engine: OpaSidecarEngine, coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` in a new event loop, then close the engine's connections (as an app would)."""

    async def main() -> T:
        try:
            return await coro
        finally:
            await engine.aclose()

    return asyncio.run(main())


# -- the wire -----------------------------------------------------------------------------------


def test_implements_the_engine_protocol(engine: OpaSidecarEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.name == "opa"


def test_posts_the_input_to_the_data_api_with_strict_builtin_errors(
    opa: OpaDouble, engine: OpaSidecarEngine
) -> None:
    assert engine.evaluate("data.p.double", {"n": 21}) == 42
    (request,) = data_requests(opa)
    assert (request.method, request.path) == ("POST", "/v1/data/p/double")
    assert request.query["strict-builtin-errors"] == ["true"]
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == {"input": {"n": 21}}


def test_path_segments_are_percent_encoded(opa: OpaDouble, engine: OpaSidecarEngine) -> None:
    assert engine.evaluate("odd-name/x", {}) == 1
    assert engine.evaluate("p", {"n": 1, "d": 2})["quotient"] == 0.5


def test_values_are_opas_including_null_and_sets(engine: OpaSidecarEngine) -> None:
    assert engine.evaluate("p.nothing", {}) is None
    assert engine.evaluate("p.tags", {"tags": ["b", "a", "b"]}) == ["a", "b"]


def test_a_200_without_result_is_undefined(opa: OpaDouble, engine: OpaSidecarEngine) -> None:
    with pytest.raises(EngineUndefined, match=r"data\.p\.never is undefined"):
        engine.evaluate("p.never", {})
    with pytest.raises(EngineUndefined):
        engine.evaluate("nopkg.rule", {})


def test_no_input_is_sent_as_null_and_leaves_input_undefined(
    opa: OpaDouble, engine: OpaSidecarEngine
) -> None:
    with pytest.raises(EngineUndefined):
        engine.evaluate("p.has_input", None)
    assert json.loads(data_requests(opa)[-1].body) == {"input": None}


def test_builtin_error_carries_opas_code_message_and_errors(engine: OpaSidecarEngine) -> None:
    with pytest.raises(EngineServerError) as info:
        engine.evaluate("p.quotient", {"d": 0})
    error = info.value
    assert (error.status, error.code) == (500, "internal_error")
    assert error.errors[0]["code"] == "eval_builtin_error"
    assert "div: divide by zero" in str(error) and "p.rego:6" in str(error)


def test_an_opa_error_object_on_4xx_becomes_an_engine_server_error(
    opa: OpaDouble, engine: OpaSidecarEngine
) -> None:
    opa.canned = (400, {"code": "invalid_parameter", "message": "body contains malformed input"})
    with pytest.raises(EngineServerError, match="HTTP 400 invalid_parameter: body contains") as i:
        engine.evaluate("p.double", {"n": 1})
    assert i.value.code == "invalid_parameter"


def test_a_non_opa_error_body_is_reported_with_its_status(
    opa: OpaDouble, engine: OpaSidecarEngine
) -> None:
    opa.canned = (502, b"<html>Bad Gateway</html>")
    with pytest.raises(EngineServerError, match="HTTP 502: <html>Bad Gateway") as info:
        engine.evaluate("p.double", {"n": 1})
    assert (info.value.status, info.value.code) == (502, None)


def test_the_double_answers_a_malformed_body_like_opa(opa: OpaDouble) -> None:
    response = httpx.post(f"{opa.url}/v1/data/p/double", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_parameter"
    assert response.json()["message"].startswith("body contains malformed input document")


def test_input_that_is_not_json_fails_before_any_request(
    opa: OpaDouble, engine: OpaSidecarEngine
) -> None:
    with pytest.raises(EngineError, match="cannot be sent to OPA as JSON"):
        engine.evaluate("p.double", {"n": float("nan")})
    with pytest.raises(EngineError, match="cannot be sent to OPA as JSON"):
        engine.evaluate("p.double", {"n": object()})
    assert data_requests(opa) == []


def test_revision_comes_from_provenance(engine: OpaSidecarEngine) -> None:
    assert engine.revision is None
    engine.evaluate("p.double", {"n": 1})
    assert engine.revision == "rev-1"


# -- authentication -----------------------------------------------------------------------------


def test_token_and_headers_are_sent(start_opa: Start) -> None:
    opa = start_opa(BUNDLE, token="s3cret")
    engine = OpaSidecarEngine(opa.url, token="s3cret", headers={"X-Request-Source": "governor"})
    assert engine.evaluate("p.double", {"n": 2}) == 4
    assert opa.requests[-1].headers["x-request-source"] == "governor"
    engine.close()


def test_a_rejected_token_is_opas_unauthorized_error(start_opa: Start) -> None:
    opa = start_opa(BUNDLE, token="s3cret")
    engine = OpaSidecarEngine(opa.url, token="wrong")
    with pytest.raises(EngineServerError) as info:
        engine.evaluate("p.double", {"n": 2})
    assert (info.value.status, info.value.code) == (401, "unauthorized")
    engine.close()


# -- connections, timeouts, outages ---------------------------------------------------------------


def test_sync_calls_reuse_one_connection(opa: OpaDouble, engine: OpaSidecarEngine) -> None:
    for n in range(20):
        assert engine.evaluate("p.double", {"n": n}) == 2 * n
    assert len({r.client_port for r in data_requests(opa)}) == 1


def test_async_calls_reuse_one_connection(opa: OpaDouble, engine: OpaSidecarEngine) -> None:
    async def main() -> list[Any]:
        return [await engine.evaluate_async("p.double", {"n": n}) for n in range(20)]

    assert run(engine, main()) == [2 * n for n in range(20)]
    assert len({r.client_port for r in data_requests(opa)}) == 1


def test_asyncio_gather_of_200_evaluations_is_correct(opa: OpaDouble) -> None:
    # A generous timeout: 200 requests queue for 100 pooled connections on a shared CI machine.
    engine = OpaSidecarEngine(opa.url, timeout=30.0)

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(engine.evaluate_async("p.double", {"n": n}) for n in range(200))
        )

    assert run(engine, main()) == [2 * n for n in range(200)]


def test_each_event_loop_gets_its_own_async_client(engine: OpaSidecarEngine) -> None:
    assert run(engine, engine.evaluate_async("p.double", {"n": 1})) == 2
    assert run(engine, engine.evaluate_async("p.double", {"n": 2})) == 4


def test_a_slow_opa_is_a_timeout(opa: OpaDouble) -> None:
    opa.delay = 5.0  # released when the double stops
    engine = OpaSidecarEngine(opa.url, timeout=0.05)
    with pytest.raises(EngineTimeout, match="did not answer within 0.05 s"):
        engine.evaluate("p.double", {"n": 1})
    with pytest.raises(EngineTimeout):
        run(engine, engine.evaluate_async("p.double", {"n": 1}))
    engine.close()


def test_opa_down_is_an_engine_error_not_a_timeout(
    opa: OpaDouble, engine: OpaSidecarEngine
) -> None:
    assert engine.evaluate("p.double", {"n": 1}) == 2  # a pooled connection is open
    opa.go_down()
    for attempt in (
        lambda: engine.evaluate("p.double", {"n": 1}),
        lambda: run(engine, engine.evaluate_async("p.double", {"n": 1})),
    ):
        with pytest.raises(EngineError) as info:
            attempt()
        assert not isinstance(info.value, EngineTimeout)
        assert opa.url in str(info.value)


def test_closed_engine_raises_engine_error(engine: OpaSidecarEngine) -> None:
    engine.close()
    with pytest.raises(EngineError, match="failed"):
        engine.evaluate("p.double", {"n": 1})


# -- health ---------------------------------------------------------------------------------------


def test_health_is_ok_when_bundles_are_activated(opa: OpaDouble, engine: OpaSidecarEngine) -> None:
    assert engine.health() == Health(True, "ok")
    assert run(engine, engine.health_async()) == Health(True, "ok")
    assert opa.requests[-1].path == "/health" and "bundles" in opa.requests[-1].query


def test_health_reports_bundles_not_yet_activated(opa: OpaDouble, engine: OpaSidecarEngine) -> None:
    opa.bundles_activated = False
    ok, reason = engine.health()
    assert not ok
    assert reason == "HTTP 500: not all configured bundles have been activated"


def test_health_reports_opa_down(opa: OpaDouble, engine: OpaSidecarEngine) -> None:
    opa.go_down()
    ok, reason = engine.health()
    assert not ok and "cannot connect to OPA" in reason
    assert run(engine, engine.health_async()).ok is False


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "options"),
    [("localhost:8181", {}), ("http://127.0.0.1:8181", {"timeout": 0})],
)
def test_bad_configuration_is_refused(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        OpaSidecarEngine(url, **options)
