"""A test double of OPA's REST API, evaluating with real OPA (opa-golib-python-bindings).

It stands in for the OPA binary, which cannot be installed on our build machines. It serves, on
127.0.0.1 and a free port, exactly the part of OPA's REST API governor uses, with OPA's wire
format (OPA v1 `server/server.go`, `server/types`, `server/writer`):

- `POST /v1/data/{path}`: body `{"input": ...}`; 200 `{"result": ...}`, or 200 `{}` when the
  document is undefined (plus OPA's `warning` when the request had no input, and `provenance`
  when `?provenance` asked for it); 400 `{"code": "invalid_parameter", "message": "body contains
  malformed input document: ..."}` for a body that is not JSON; 500 `{"code": "internal_error",
  "message": "error(s) occurred while evaluating query", "errors": [{code, message, location}]}`
  for an evaluation error such as a builtin error. `{path}` segments are percent-decoded and
  integer segments index arrays, as in OPA.
- `GET /health` (and `?bundles`): 200 `{}`, or 500 `{"error": "not all configured bundles have
  been activated"}` while `bundles_activated` is False.
- with `token` set, a request without `Authorization: Bearer <token>` gets 401
  `{"code": "unauthorized", "message": "request rejected by administrative policy"}`.

Values are OPA's own, because the bindings embed OPA v1.20.2. Two limits: the bindings always
evaluate with strict builtin errors (governor always asks for them, and `requests` records what
the client asked), and their error messages carry a row but no column, so `location` has
`file` and `row` only.

The test controls: `delay` (seconds before a data request is answered, for timeouts),
`bundles_activated`, `canned` (answer data requests with a fixed status and body, bytes as they
are and anything else as JSON: a proxy's 502 page, an OPA 400), `go_down()` (stop listening and
drop open connections) and `requests` (what was asked).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from opa_bindings import OpaEngine, OpaError, OpaUndefinedError

from governor.bundle import Bundle

OPA_VERSION = "1.20.2"
_ERROR = re.compile(r"^(?P<file>[^\s:]+):(?P<row>\d+): (?P<code>[a-z_]+): (?P<message>.*)$", re.S)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Recorded:
    """One request as the double received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_port: int


def data_ref(path: str) -> str:
    """OPA's `stringPathToDataRef`: `/a/b-c/0` -> `data.a["b-c"][0]`."""
    ref = "data"
    for raw in (p for p in path.split("/") if p):
        part = unquote(raw)
        if part.isdigit():
            ref += f"[{int(part)}]"
        elif _IDENTIFIER.fullmatch(part):
            ref += f".{part}"
        else:
            ref += f"[{json.dumps(part)}]"
    return ref


class OpaDouble:
    """An OPA REST API on 127.0.0.1 serving one bundle, evaluated by real OPA."""

    def __init__(
        self, bundle: Bundle, *, bundle_name: str = "governor", token: str | None = None
    ) -> None:
        self.bundle = bundle
        self.bundle_name = bundle_name
        self.token = token
        self.delay = 0.0
        self.bundles_activated = True
        self.canned: tuple[int, Any] | None = None
        self.requests: list[Recorded] = []
        self._opa = OpaEngine()
        for path, source in bundle.modules.items():
            self._opa.add_policy(path, source)
        self._opa.add_data(bundle.data)
        self._release = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.double = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> OpaDouble:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def go_down(self) -> None:
        """Stop answering: close the listening socket and every open connection."""
        self._release.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Go down and release OPA."""
        self.go_down()
        self._opa.close()

    def __enter__(self) -> OpaDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling, called from the handler threads -------------------------------------

    def data(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        if self.delay:
            self._release.wait(self.delay)
        if self.canned is not None:
            return self.canned
        try:
            request = json.loads(body) if body.strip() else {}
            if not isinstance(request, dict):
                raise ValueError(f"cannot unmarshal {type(request).__name__} into DataRequestV1")
        except ValueError as exc:
            return 400, {
                "code": "invalid_parameter",
                "message": f"body contains malformed input document: {exc}",
            }
        input = request.get("input")
        response: dict[str, Any] = {}
        if input is None:
            response["warning"] = {
                "code": "api_usage_warning",
                "message": "'input' key missing from the request",
            }
        if _flag(query, "provenance"):
            response["provenance"] = {
                "version": OPA_VERSION,
                "build_commit": "",
                "build_timestamp": "",
                "build_hostname": "",
                "bundles": {self.bundle_name: {"revision": self.bundle.revision}},
            }
        try:
            response["result"] = _evaluate(self._opa, data_ref(path), input)
        except OpaUndefinedError:
            pass
        except OpaError as exc:
            return 500, _eval_error(exc)
        return 200, response

    def health(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        if "bundles" in query and not self.bundles_activated:
            return 500, {"error": "not all configured bundles have been activated"}
        return 200, {}

    def authorized(self, headers: dict[str, str]) -> bool:
        return self.token is None or headers.get("authorization") == f"Bearer {self.token}"

    def track(self, conn: socket.socket, open: bool) -> None:
        with self._lock:
            (self._connections.add if open else self._connections.discard)(conn)


def _evaluate(opa: OpaEngine, ref: str, input: Any) -> Any:
    if ref == "data" or ref.startswith("data."):
        return opa.eval_document(ref[len("data.") :], input)
    rows = opa.eval_query(f"__value__ = {ref}", input)  # eval_document needs `data.<ident>`
    if not rows:
        raise OpaUndefinedError(ref)
    return rows[0]["__value__"]


def _flag(query: dict[str, list[str]], name: str) -> bool:
    """OPA's `getBoolParam`: present without a value, or `true` (any case)."""
    values = query.get(name)
    if values is None:
        return False
    if values == [""]:
        return True
    return any(v.lower() == "true" for v in values)


def _eval_error(exc: OpaError) -> dict[str, Any]:
    """OPA's `writer.ErrorAuto`: a topdown error is 500 internal_error with the error attached."""
    match = _ERROR.match(exc.message) if exc.code == "eval_error" else None
    if match is None:
        return {"code": "internal_error", "message": exc.message}
    return {
        "code": "internal_error",
        "message": "error(s) occurred while evaluating query",
        "errors": [
            {
                "code": match.group("code"),
                "message": match.group("message"),
                "location": {"file": match.group("file"), "row": int(match.group("row"))},
            }
        ],
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # listen backlog: Go's is the system's, Python's default is 5

    def server_activate(self) -> None:
        super().server_activate()
        # A client may reset its connection between select() and accept(); a blocking accept()
        # would then hang serve_forever, and shutdown() with it. Non-blocking, accept() fails
        # with BlockingIOError instead, which socketserver ignores.
        self.socket.setblocking(False)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setblocking(True)  # handlers read with ordinary blocking I/O
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout, go_down) is routine here, not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a client can reuse its connection
    server: ThreadingHTTPServer

    def setup(self) -> None:
        super().setup()
        # Go's net/http sets TCP_NODELAY; without it Nagle + delayed ACK add 40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._double().track(self.connection, True)

    def finish(self) -> None:
        self._double().track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def _double(self) -> OpaDouble:
        return self.server.double  # type: ignore[attr-defined,no-any-return]

    def _serve(self, method: str) -> None:
        double = self._double()
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        double.requests.append(
            Recorded(method, parts.path, query, headers, body, self.client_address[1])
        )
        status: int
        payload: Any
        if not double.authorized(headers):
            status = 401
            payload = {
                "code": "unauthorized",
                "message": "request rejected by administrative policy",
            }
        elif method == "POST" and (parts.path == "/v1/data" or parts.path.startswith("/v1/data/")):
            status, payload = double.data(parts.path[len("/v1/data") :], query, body)
        elif method == "GET" and parts.path == "/health":
            status, payload = double.health(query)
        else:
            status, payload = 404, b"404 page not found\n"
        self._send(status, payload)

    def _send(self, status: int, payload: Any) -> None:
        if isinstance(payload, bytes):
            data, kind = payload, "text/plain; charset=utf-8"
        else:
            data, kind = json.dumps(payload).encode() + b"\n", "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
