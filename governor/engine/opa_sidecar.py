"""An OPA sidecar over OPA's REST API, through httpx.

Wire format (OPA's published REST API, nothing else):

- decision: `POST {url}/v1/data/<path>?strict-builtin-errors=true&provenance=true` with body
  `{"input": ...}`. HTTP 200 with `{"result": ...}` is the value; HTTP 200 **without** `result`
  (`{}`) means the document is undefined (`EngineUndefined`). Any other status carries OPA's error
  object `{code, message, errors: [{code, message, location}]}` (`EngineServerError`): 400
  `invalid_parameter` for a bad request, 500 `internal_error` for an evaluation error such as a
  builtin error (strict builtin errors make `1/0` an error instead of a silently undefined rule).
- health: `GET {url}/health?bundles`: 200 once every configured bundle has been activated, 500
  with `{"error": "..."}` otherwise.
- revision: every decision asks for `provenance`; `revision` is the bundle revision reported by
  the last answer (`name=revision,...` when OPA serves several bundles), None before the first.

A timeout is `EngineTimeout`; a refused or broken connection is `EngineError`. One `httpx.Client`
and one `httpx.AsyncClient` (per event loop) keep connections alive between decisions.

Why httpx and not `opa-python-client` (the design's first choice): its `query_rule` calls
`raise_for_status()` and discards OPA's error body, so an evaluation error could not be told from
a crash; it retries HTTP 500, which is how OPA reports strict builtin errors, so one failing
decision would be evaluated several times; and it pulls in aiohttp, requests and aiofiles next
to the httpx we already depend on.
"""

from __future__ import annotations

import asyncio
import json
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx

from governor.engine.base import entrypoint_path, entrypoint_ref
from governor.errors import (
    ConfigurationError,
    EngineError,
    EngineServerError,
    EngineTimeout,
    EngineUndefined,
)

DEFAULT_TIMEOUT = 1.0
"""Seconds to wait for OPA (connect, write and read each); a sidecar answers in about a ms."""

_DATA_QUERY = "?strict-builtin-errors=true&provenance=true"


class Health(NamedTuple):
    """The answer of OPA's health API: `ok`, and in `reason` what is wrong when it is not."""

    ok: bool
    reason: str


@lru_cache(maxsize=256)
def _data_url(entrypoint: str) -> str:
    """`data.governor.decision` -> `/v1/data/governor/decision?...` (segments percent-encoded)."""
    path = "/".join(quote(part, safe="") for part in entrypoint_path(entrypoint))
    return f"/v1/data/{path}{_DATA_QUERY}" if path else f"/v1/data{_DATA_QUERY}"


def _body(input: Any) -> bytes:
    try:
        return json.dumps({"input": input}, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise EngineError(f"the input cannot be sent to OPA as JSON: {exc}") from None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class OpaSidecarEngine:
    """Evaluates on an OPA server (sidecar) through its REST Data API.

    `url` is OPA's base address (`http://127.0.0.1:8181`); `token` is sent as a Bearer token
    (OPA's `--authentication=token`); `headers` are added to every request. Proxy environment
    variables are ignored: a sidecar is reached directly.
    """

    name = "opa"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"opa url: expected http(s)://host:port, got {url!r}")
        if timeout <= 0:
            raise ConfigurationError(f"opa timeout: must be a positive number, got {timeout!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        self._headers.update(headers or {})
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(**self._client_options())
        self._async: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        self._revision: str | None = None

    @property
    def revision(self) -> str | None:
        """The bundle revision OPA reported with its last decision (None before the first)."""
        return self._revision

    # -- decisions ---------------------------------------------------------------------------

    def evaluate(self, entrypoint: str, input: Any) -> Any:
        """Return the value of the document at `entrypoint` for `input` (see `Engine.evaluate`)."""
        try:
            url, body = _data_url(entrypoint), _body(input)
            response = self._client.post(url, content=body)
        except EngineError:
            raise
        except Exception as exc:
            raise self._transport_error(exc) from exc
        return self._result(entrypoint, response)

    async def evaluate_async(self, entrypoint: str, input: Any) -> Any:
        """The async twin of `evaluate` (one `httpx.AsyncClient` per event loop)."""
        try:
            url, body = _data_url(entrypoint), _body(input)
            response = await self._async_client().post(url, content=body)
        except EngineError:
            raise
        except Exception as exc:
            raise self._transport_error(exc) from exc
        return self._result(entrypoint, response)

    # -- health ------------------------------------------------------------------------------

    def health(self) -> Health:
        """Ask `GET /health?bundles`: ok once OPA is up and has activated every bundle."""
        try:
            response = self._client.get("/health?bundles")
        except Exception as exc:
            return Health(False, str(self._transport_error(exc)))
        return _health(response)

    async def health_async(self) -> Health:
        """The async twin of `health`."""
        try:
            response = await self._async_client().get("/health?bundles")
        except Exception as exc:
            return Health(False, str(self._transport_error(exc)))
        return _health(response)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections of the sync client (use `aclose` in async code)."""
        self._client.close()
        self._async = None

    async def aclose(self) -> None:
        """Close the connections of both clients."""
        self._client.close()
        current, self._async = self._async, None
        if current is not None and current[0] is asyncio.get_running_loop():
            await current[1].aclose()

    # -- shared by the sync and async twins --------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        return {
            "base_url": self.url,
            "timeout": self.timeout,
            "headers": self._headers,
            "trust_env": False,
        }

    def _async_client(self) -> httpx.AsyncClient:
        """This loop's client: an AsyncClient's connections belong to the loop that opened them."""
        loop = asyncio.get_running_loop()
        current = self._async
        if current is None or current[0] is not loop:
            current = (loop, httpx.AsyncClient(**self._client_options()))
            self._async = current
        return current[1]

    def _result(self, entrypoint: str, response: httpx.Response) -> Any:
        body = _json(response)
        if response.status_code != 200:
            raise self._server_error(response, body)
        if not isinstance(body, dict):
            raise EngineError(f"OPA at {self.url} answered HTTP 200 without a JSON object")
        self._note_provenance(body.get("provenance"))
        if "result" not in body:
            raise EngineUndefined(
                f"{entrypoint_ref(entrypoint)} is undefined on OPA at {self.url}: is the bundle "
                "that defines it loaded? (GET /health?bundles)"
            )
        return body["result"]

    def _server_error(self, response: httpx.Response, body: Any) -> EngineServerError:
        status = response.status_code
        if not (isinstance(body, dict) and isinstance(body.get("code"), str)):
            text = " ".join(response.text.split())[:200]
            return EngineServerError(
                f"OPA at {self.url} answered HTTP {status}: {text or '(empty body)'}",
                status=status,
            )
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        message = f"OPA at {self.url} answered HTTP {status} {body['code']}: {body.get('message')}"
        details = [_error_detail(e) for e in errors]
        if details:
            message += " (" + "; ".join(details) + ")"
        return EngineServerError(message, status=status, code=body["code"], errors=errors)

    def _transport_error(self, exc: BaseException) -> EngineError:
        if isinstance(exc, httpx.TimeoutException):
            return EngineTimeout(
                f"OPA at {self.url} did not answer within {self.timeout} s ({type(exc).__name__})"
            )
        if isinstance(exc, httpx.ConnectError):
            return EngineError(f"cannot connect to OPA at {self.url}: {exc}")
        return EngineError(f"request to OPA at {self.url} failed: {type(exc).__name__}: {exc}")

    def _note_provenance(self, provenance: Any) -> None:
        if not isinstance(provenance, dict):
            return
        bundles = provenance.get("bundles")
        if isinstance(bundles, dict) and bundles:
            revisions = {
                str(name): str(info.get("revision", ""))
                for name, info in bundles.items()
                if isinstance(info, dict)
            }
            if len(revisions) == 1:
                self._revision = next(iter(revisions.values())) or None
            else:
                self._revision = ",".join(f"{n}={r}" for n, r in sorted(revisions.items()))
        elif isinstance(provenance.get("revision"), str):
            self._revision = provenance["revision"] or None


def _error_detail(error: dict[str, Any]) -> str:
    """`eval_builtin_error: div: divide by zero at policy.rego:3:7` from one of OPA's errors."""
    text = f"{error.get('code', 'error')}: {error.get('message', '')}"
    location = error.get("location")
    if isinstance(location, dict) and location.get("file"):
        where = ":".join(str(location[k]) for k in ("file", "row", "col") if k in location)
        text += f" at {where}"
    return text


def _health(response: httpx.Response) -> Health:
    if response.status_code == 200:
        return Health(True, "ok")
    body = _json(response)
    if isinstance(body, dict) and body.get("error"):
        return Health(False, f"HTTP {response.status_code}: {body['error']}")
    text = " ".join(response.text.split())[:200]
    return Health(False, f"HTTP {response.status_code}: {text or '(empty body)'}")
