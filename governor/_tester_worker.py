"""The process that runs Rego tests, and the parent's handle on it (`WorkerSession`).

Why a process: regorus evaluates while holding the GIL and offers no way to interrupt an
evaluation, and OPA's bindings offer no cancellation either. A test that loops for minutes can
only be stopped by stopping the process it runs in. So each `Runner.run` starts one worker
(`python -m governor._tester_worker`) that compiles the bundle once and runs the tests one at a
time; when a test outlives its timeout the parent kills the worker, records ERROR, and starts a
fresh worker for the remaining tests. Starting a worker costs 0.2-0.5 s, mostly imports.

A worker can be initialised again (another bundle, another engine), so idle workers are kept in
a small pool (`acquire`/`release`) for the next run in the same process.

Protocol: one JSON document per line. The parent writes to the worker's stdin, the worker
answers each request with exactly one line on its stdout (the worker's fd 1 is pointed at
stderr, so nothing else can write into the protocol stream).

    -> {"op": "init", "engine": "regorus"|"opa-lib", "modules": {path: source},
        "data": {...}, "coverage": bool}
    <- {"ok": true} | {"ok": false, "error": {"message": str, "location": str|null}}
    -> {"op": "run", "query": "data.pkg.test_x", "path": ["pkg", "test_x"]}
    <- {"defined": bool, "value": any, "duration_ns": int, "prints": [str],
        "error": null | {"code": str, "message": str, "location": str|null},
        "covered": {path: [line]}, "coverable": {path: [line]}}
    -> {"op": "exit"}

`covered`/`coverable` carry only lines not reported before by this worker: the parent unions
them, so coverage survives a worker that is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any

from governor.errors import EngineError

_PRINT_PREFIX = re.compile(r"^.+?:\d+: ", re.DOTALL)
_OPA_LOCATED = re.compile(r"^(?P<loc>.+?:\d+(?::\d+)?): (?P<code>[a-z_]+): (?P<msg>.*)$", re.DOTALL)
_VALUE_VAR = "__governor_value__"
_PATH_BUILTIN = "__governor_test_path"
_INIT_TIMEOUT = 120.0
_MAX_IDLE = 2  # a differential run uses two workers at once
_IDLE: list[WorkerSession] = []
_IDLE_LOCK = threading.Lock()


# --------------------------------------------------------------------------- parent side


def acquire() -> WorkerSession:
    """An idle worker from the pool, or a new one.

    A worker can be initialised again with another bundle (and engine), so a process that runs
    tests repeatedly (pytest, a watch loop) pays for a worker's start, about 0.2-0.5 s of
    imports, once rather than on every run.
    """
    with _IDLE_LOCK:
        while _IDLE:
            session = _IDLE.pop()
            if session.owner != os.getpid():
                continue  # inherited through fork(): the parent's, not ours to use or stop
            if session.alive:
                return session
    return WorkerSession()


def release(session: WorkerSession) -> None:
    """Return an idle, healthy worker to the pool (at most `_MAX_IDLE` are kept), else stop it.

    A worker that still owes an answer (the run was interrupted) is killed: its next answer
    would be read as the answer to someone else's request.
    """
    if session.busy:
        session.kill()
        return
    if session.alive:
        with _IDLE_LOCK:
            if len(_IDLE) < _MAX_IDLE:
                _IDLE.append(session)
                return
    session.close()


@atexit.register
def _close_idle() -> None:
    with _IDLE_LOCK:
        idle = [session for session in _IDLE if session.owner == os.getpid()]
        _IDLE.clear()
    for session in idle:
        session.close()


class WorkerDied(EngineError):
    """The worker process exited (or was killed) before answering."""


class WorkerTimeout(EngineError):
    """The worker did not answer within the deadline; it has been killed."""


class WorkerSession:
    """The parent's handle on one worker process: start it, send requests, await answers."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env.setdefault("RUST_LIB_BACKTRACE", "0")
        env.setdefault("RUST_BACKTRACE", "0")
        # The worker must import this very copy of governor, installed or not.
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "governor._tester_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            encoding="utf-8",
        )
        self.owner = os.getpid()
        self.busy = False  # a request was sent and its answer not yet read
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=40)
        assert self._proc.stdout is not None and self._proc.stderr is not None
        threading.Thread(target=self._pump, args=(self._proc.stdout,), daemon=True).start()
        threading.Thread(target=self._drain, args=(self._proc.stderr,), daemon=True).start()

    @property
    def alive(self) -> bool:
        """True while the worker process is running."""
        return self._proc.poll() is None

    def send(self, request: dict[str, Any]) -> None:
        """Write one request. Raises `WorkerDied` when the worker is gone."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise WorkerDied(self._death_note()) from None
        self.busy = request.get("op") != "exit"

    def receive(self, deadline: float) -> dict[str, Any]:
        """The next answer, waiting until `deadline` (`time.monotonic()`).

        Raises `WorkerTimeout` (after killing the worker) or `WorkerDied`.
        """
        try:
            line = self._answers.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.kill()
            raise WorkerTimeout("no answer before the deadline") from None
        if line is None:
            self._proc.wait()
            raise WorkerDied(self._death_note())
        self.busy = False
        answer: dict[str, Any] = json.loads(line)
        return answer

    def request(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """`send` then `receive` with `timeout` seconds to spare."""
        deadline = time.monotonic() + timeout
        self.send(request)
        return self.receive(deadline)

    def begin_init(self, engine: str, modules: dict[str, str], data: Any, coverage: bool) -> float:
        """Ask the worker to compile the bundle; returns the deadline for `end_init`."""
        deadline = time.monotonic() + _INIT_TIMEOUT
        self.send(
            {"op": "init", "engine": engine, "modules": modules, "data": data, "coverage": coverage}
        )
        return deadline

    def end_init(self, deadline: float) -> None:
        """Await the compilation. Raises `PolicyCompileError` when the bundle does not compile."""
        from governor.errors import PolicyCompileError

        try:
            answer = self.receive(deadline)
        except WorkerTimeout:
            raise EngineError(
                f"the test worker did not compile the policies within {_INIT_TIMEOUT:g}s"
            ) from None
        if not answer.get("ok"):
            error = answer.get("error") or {}
            raise PolicyCompileError(
                error.get("message", "does not compile"), error.get("location")
            )

    def close(self) -> None:
        """Ask the worker to exit; kill it if it does not within a second."""
        if self._proc.poll() is None:
            try:
                self.send({"op": "exit"})
                self._proc.wait(timeout=1.0)
            except (WorkerDied, subprocess.TimeoutExpired):
                self.kill()
        self._close_pipes()

    def kill(self) -> None:
        """Stop the worker now (the only way to stop a runaway evaluation)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._answers.put(line)
        except (OSError, ValueError):
            pass
        self._answers.put(None)

    def _drain(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._stderr.append(line.rstrip("\n"))
        except (OSError, ValueError):
            pass

    def _death_note(self) -> str:
        code = self._proc.poll()
        tail = "; ".join(line for line in self._stderr if line.strip())[-600:]
        status = f"exit status {code}" if code is not None else "still running"
        return f"the test worker stopped ({status})" + (f": {tail}" if tail else "")


# --------------------------------------------------------------------------- worker side


class _Regorus:
    """Runs test queries on regorus, gathering prints and (optionally) coverage."""

    def __init__(self, modules: dict[str, str], data: Any, coverage: bool) -> None:
        from governor.bundle import Bundle
        from governor.engine.regorus import compile_bundle

        self._bundle = Bundle(modules=modules, data=data)
        self._coverage = coverage
        self._engine = compile_bundle(self._bundle)
        self._setup()
        # Triggers regorus's static checks (safety, use before definition) over every module.
        self._engine.eval_query("data.__governor_tester__.__compile__")

    def _setup(self) -> None:
        self._engine.set_gather_prints(True)
        if self._coverage:
            self._engine.set_enable_coverage(True)

    def rebuild(self) -> None:
        """A fresh engine after a Rust panic, which may leave the old one inconsistent."""
        from governor.engine.regorus import compile_bundle

        self._engine = compile_bundle(self._bundle)
        self._setup()

    def run(self, query: str, path: list[str]) -> tuple[bool, Any]:
        rows = json.loads(self._engine.eval_query_as_json(query)).get("result") or []
        if not rows:
            return False, None
        return True, rows[0]["expressions"][0]["value"]

    def prints(self) -> list[str]:
        return [_PRINT_PREFIX.sub("", line, count=1) for line in self._engine.take_prints()]

    def coverage(self) -> dict[str, tuple[set[int], set[int]]]:
        """Per file: (covered lines, coverable lines) so far."""
        if not self._coverage:
            return {}
        report = json.loads(self._engine.get_coverage_report_as_json())
        out: dict[str, tuple[set[int], set[int]]] = {}
        for entry in report.get("files", []):
            covered = set(entry.get("covered", []))
            out[entry["path"]] = (covered, covered | set(entry.get("not_covered", [])))
        return out

    def error(self, exc: BaseException) -> dict[str, Any]:
        from governor._rego_ast import fix_location
        from governor.engine.regorus import compile_error

        err = fix_location(compile_error(exc), self._bundle.modules)
        message = err.message.splitlines()[0] if err.message else type(exc).__name__
        return {"code": "eval_error", "message": message, "location": err.location}


class _OpaLib:
    """Runs test queries on real OPA (opa-golib bindings), gathering prints and coverage.

    The bindings prepare, cache and keep every distinct query string, recompiling the bundle for
    each (0.4 s and ~17 MB per test on the standard library). So tests are not evaluated as
    `data.pkg.test_x` but through one query per path depth, `data[__k[0]][__k[1]]...`, whose
    keys come from a 0-arity builtin the worker registers: the reference is ground when it is
    evaluated, so only that test's rule is evaluated, and `input` stays undefined as in `opa test`.
    """

    def __init__(self, modules: dict[str, str], data: Any, coverage: bool) -> None:
        from governor.bundle import Bundle
        from governor.engine.opa_lib import compile_bundle

        self._coverage = coverage
        self._engine = compile_bundle(Bundle(modules=modules, data=data))
        self._prints: list[str] = []
        self._engine.print_handler = lambda message, _location: self._prints.append(message)
        self._covered: dict[str, set[int]] = {}
        self._coverable: dict[str, set[int]] = {}
        self._path: list[str] = []
        self._engine.register_function(_PATH_BUILTIN, lambda: self._path, arity=0)
        # Compiles every module (OPA compiles on first evaluation).
        self._engine.eval_query("data.__governor_tester__.__compile__")

    def rebuild(self) -> None:
        """OPA converts Go panics into errors; nothing to rebuild."""

    def run(self, query: str, path: list[str]) -> tuple[bool, Any]:
        self._path = list(path)
        keys = "".join(f"[__k[{i}]]" for i in range(len(path)))
        by_path = f"__k := {_PATH_BUILTIN}(); {_VALUE_VAR} = data{keys}"
        rows = self._engine.eval_query(by_path, coverage=self._coverage)
        if self._coverage:
            self._absorb(self._engine.last_coverage or {})
        if not rows:
            return False, None
        return True, rows[0][_VALUE_VAR]

    def _absorb(self, report: dict[str, Any]) -> None:
        for path, entry in (report.get("files") or {}).items():
            covered = _rows(entry.get("covered"))
            self._covered.setdefault(path, set()).update(covered)
            self._coverable.setdefault(path, set()).update(covered, _rows(entry.get("not_covered")))

    def prints(self) -> list[str]:
        out, self._prints = self._prints, []
        return out

    def coverage(self) -> dict[str, tuple[set[int], set[int]]]:
        return {path: (self._covered[path], self._coverable[path]) for path in self._covered}

    def error(self, exc: BaseException) -> dict[str, Any]:
        text = str(getattr(exc, "message", exc)).strip()
        match = _OPA_LOCATED.match(text.splitlines()[0] if text else "")
        if match:
            return {"code": match["code"], "message": match["msg"], "location": match["loc"]}
        return {"code": getattr(exc, "code", "eval_error"), "message": text, "location": None}


def _rows(ranges: Any) -> set[int]:
    """OPA's `[{start: {row}, end: {row}}]` ranges as a set of line numbers."""
    rows: set[int] = set()
    for item in ranges or []:
        rows.update(range(item["start"]["row"], item["end"]["row"] + 1))
    return rows


def _init_error(exc: BaseException, engine: str, modules: dict[str, str]) -> dict[str, Any]:
    """The first compile problem, located with a character column."""
    from governor._rego_ast import fix_location
    from governor.checker import opa_errors
    from governor.engine import regorus
    from governor.errors import GovernanceError, PolicyCompileError

    if isinstance(exc, PolicyCompileError):
        err = exc
    elif isinstance(exc, GovernanceError):
        return {"message": str(exc), "location": None}
    else:
        err = opa_errors(exc)[0] if engine == "opa-lib" else regorus.compile_error(exc)
    err = fix_location(err, modules)
    return {"message": err.message, "location": err.location}


def _serve(inbox: IO[str], outbox: IO[str]) -> None:
    runner: _Regorus | _OpaLib | None = None
    sent_covered: dict[str, set[int]] = {}
    sent_coverable: dict[str, set[int]] = {}

    def answer(message: dict[str, Any]) -> None:
        outbox.write(json.dumps(message, default=_jsonable) + "\n")
        outbox.flush()

    for line in inbox:
        request = json.loads(line)
        op = request.get("op")
        if op == "exit":
            return
        if op == "init":
            engine = request["engine"]
            runner = None
            sent_covered.clear()
            sent_coverable.clear()
            try:
                cls = _OpaLib if engine == "opa-lib" else _Regorus
                runner = cls(request["modules"], request["data"], bool(request["coverage"]))
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                answer({"ok": False, "error": _init_error(exc, engine, request["modules"])})
            else:
                answer({"ok": True})
            continue
        if op != "run" or runner is None:
            answer(
                {
                    "defined": False,
                    "value": None,
                    "duration_ns": 0,
                    "prints": [],
                    "error": {
                        "code": "internal_error",
                        "message": f"bad request {op!r}",
                        "location": None,
                    },
                    "covered": {},
                    "coverable": {},
                }
            )
            continue
        error = None
        defined, value = False, None
        started = time.perf_counter_ns()
        try:
            defined, value = runner.run(request["query"], request.get("path", []))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            error = runner.error(exc)
        except BaseException as exc:  # a Rust panic (pyo3 PanicException)
            error = {
                "code": "engine_panic",
                "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                "location": None,
            }
            runner.rebuild()
        duration = time.perf_counter_ns() - started
        covered: dict[str, list[int]] = {}
        coverable: dict[str, list[int]] = {}
        for path, (now_covered, now_coverable) in runner.coverage().items():
            new = now_covered - sent_covered.setdefault(path, set())
            if new:
                covered[path] = sorted(new)
                sent_covered[path] |= new
            new = now_coverable - sent_coverable.setdefault(path, set())
            if new:
                coverable[path] = sorted(new)
                sent_coverable[path] |= new
        answer(
            {
                "defined": defined,
                "value": value,
                "duration_ns": duration,
                "prints": runner.prints(),
                "error": error,
                "covered": covered,
                "coverable": coverable,
            }
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=lambda v: json.dumps(v, sort_keys=True, default=str))
    return str(value)


def main() -> None:
    """Serve requests on stdin; keep fd 1 for the protocol only."""
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray writes to fd 1 go to stderr
    sys.stdout = sys.stderr
    _serve(sys.stdin, protocol)


if __name__ == "__main__":
    main()
