"""Rego unit tests: discover `test_*` rules, run them with a timeout, report results and coverage.

What `governor test` prints is what a `Runner` returns; the CLI only formats it.

    runner = Runner(engine="regorus", run=r"decision", timeout=5.0, coverage=True)
    report = runner.run(load_paths(["rego/"]))
    report.ok, report.counts, report.coverage.percentage

Semantics follow `opa test`:

- **Discovery.** Every rule whose reference has a segment starting with `test_` is a test, in
  any module (`test_x if ...`, `test_x := v if ...`, `a.b.test_y if ...`); `todo_test_*` rules
  are SKIPPED without being evaluated. Each definition is its own test: a second `test_x` in a
  package runs as `test_x#01`, as in OPA (governor renames it in the source it compiles).
  `--run` is a regular expression searched (`re.search`) in `data.<package>.<name>`.
- **Outcome.** PASS when the rule's value is `true`; FAIL when it is undefined or anything else;
  ERROR when evaluation fails (a builtin error, a conflict, a timeout). Builtin errors are
  errors on both engines, like `opa test` with strict builtin errors. A parameterised test
  (`test_x[note] if ...`) passes when every case's value is `true`; `test_x contains v` rules
  are evaluated like any other test (a set is not `true`, so they FAIL, as in OPA).
- **Timeout.** Per test, 5 s by default. Neither engine can interrupt an evaluation in-process,
  so tests run in a worker process that is killed when a test outlives its timeout (the test is
  an ERROR with code `timeout`) and restarted for the remaining tests. See `_tester_worker`.
- **Coverage.** Lines covered by the whole run, per file, as each engine's tracer reports them
  (regorus marks the lines of evaluated expressions, OPA also rule heads). Test files
  (`*_test.rego`) are left out of the report, unlike OPA which lists every file: the figure
  worth a threshold is how much of the policy the tests exercise. A file no test touched counts
  as entirely uncovered; for regorus its lines are estimated from the AST (the lines on which an
  expression starts), because regorus only reports files it has evaluated.
- **Differential mode.** `run_differential` runs every test on both engines (in parallel, one
  worker each) and reports each test whose status or value differs. Coverage, when asked for,
  is measured on the runner's own engine only.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from governor._rego_ast import ModuleAst, Segment, expression_lines, parse_module, render_ref
from governor._tester_worker import WorkerDied, WorkerSession, WorkerTimeout, acquire, release
from governor.bundle import Bundle
from governor.errors import ConfigurationError, EngineError

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENGINES",
    "Coverage",
    "DifferentialReport",
    "Disagreement",
    "FileCoverage",
    "Report",
    "Result",
    "Runner",
    "Status",
    "TestCase",
    "discover",
]

DEFAULT_TIMEOUT = 5.0
ENGINES = ("regorus", "opa-lib")
TEST_PREFIX = "test_"
SKIP_PREFIX = "todo_test_"


class Status(StrEnum):
    """The outcome of one test."""

    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class TestCase:
    """A discovered test: where it is and the query that evaluates it."""

    __test__ = False  # not a pytest test class

    package: str
    name: str
    query: str
    file: str
    row: int
    col: int
    skip: bool = False
    parameterised: bool = False
    path: tuple[str, ...] = ()  # the data path the query names: ("pkg", "test_x")

    @property
    def full_name(self) -> str:
        """`data.<package>.<name>`, what `--run` is matched against."""
        return f"{self.package}.{self.name}"

    @property
    def location(self) -> str:
        """`file:row` of the rule."""
        return f"{self.file}:{self.row}"


@dataclass(frozen=True)
class Result:
    """The outcome of one test on one engine.

    `output` holds the lines the test printed (`print(...)`), without their location prefix.
    `error` is the message of an ERROR (`error_code` names its kind: `eval_error`, `timeout`,
    ...). `defined` and `value` are the test rule's value, compared in differential mode.
    """

    package: str
    name: str
    location: str
    status: Status
    duration_ns: int = 0
    output: tuple[str, ...] = ()
    error: str | None = None
    error_code: str | None = None
    error_location: str | None = None
    file: str = ""
    row: int = 0
    col: int = 0
    defined: bool = False
    value: Any = None

    @property
    def full_name(self) -> str:
        """`data.<package>.<name>`."""
        return f"{self.package}.{self.name}"


@dataclass(frozen=True)
class FileCoverage:
    """Covered and uncovered lines of one file."""

    path: str
    covered: tuple[int, ...]
    not_covered: tuple[int, ...]

    @property
    def percentage(self) -> float:
        """covered / (covered + not covered) * 100; 100.0 for a file with nothing to cover."""
        total = len(self.covered) + len(self.not_covered)
        return 100.0 * len(self.covered) / total if total else 100.0


@dataclass(frozen=True)
class Coverage:
    """Line coverage of a test run over the bundle's non-test files."""

    files: dict[str, FileCoverage]

    @property
    def covered_lines(self) -> int:
        """Covered lines over all files."""
        return sum(len(f.covered) for f in self.files.values())

    @property
    def not_covered_lines(self) -> int:
        """Uncovered lines over all files."""
        return sum(len(f.not_covered) for f in self.files.values())

    @property
    def percentage(self) -> float:
        """Covered lines / all coverable lines * 100 (100.0 when there is nothing to cover)."""
        total = self.covered_lines + self.not_covered_lines
        return 100.0 * self.covered_lines / total if total else 100.0

    def to_json(self) -> dict[str, Any]:
        """OPA's coverage report shape: per file `covered`/`not_covered` row ranges and totals."""
        files = {
            path: {
                "covered": _ranges(f.covered),
                "not_covered": _ranges(f.not_covered),
                "covered_lines": len(f.covered),
                "not_covered_lines": len(f.not_covered),
                "coverage": round(f.percentage, 2),
            }
            for path, f in self.files.items()
        }
        return {
            "files": files,
            "covered_lines": self.covered_lines,
            "not_covered_lines": self.not_covered_lines,
            "coverage": round(self.percentage, 2),
        }


@dataclass(frozen=True)
class Report:
    """What a run produced: one `Result` per test, in file order, and coverage when asked for."""

    engine: str
    results: list[Result]
    coverage: Coverage | None = None

    @property
    def counts(self) -> Counter[Status]:
        """How many tests ended in each status."""
        return Counter(r.status for r in self.results)

    @property
    def ok(self) -> bool:
        """True when no test failed or errored (skipped tests are fine)."""
        return all(r.status in (Status.PASS, Status.SKIPPED) for r in self.results)


@dataclass(frozen=True)
class Disagreement:
    """A test whose status or value differs between two engines."""

    test: str
    location: str
    reason: str
    results: dict[str, Result]


@dataclass(frozen=True)
class DifferentialReport:
    """Both engines' reports and the tests on which they disagree."""

    reports: dict[str, Report]
    disagreements: list[Disagreement] = field(default_factory=list)

    @property
    def primary(self) -> Report:
        """The report of the engine the runner was created for."""
        return next(iter(self.reports.values()))

    @property
    def ok(self) -> bool:
        """True when every test passed on both engines and they agree on every value."""
        return not self.disagreements and all(r.ok for r in self.reports.values())


def discover(bundle: Bundle) -> tuple[list[TestCase], dict[str, str]]:
    """The tests of a bundle, in file order, and the modules to compile for running them.

    The modules are the bundle's, except that second and later definitions of the same test
    are renamed (`test_x` -> `test_x__governor_01`) so each can be evaluated on its own, as OPA
    does. Raises `PolicyCompileError` when a module does not parse.
    """
    tests: list[TestCase] = []
    modules = dict(bundle.modules)
    seen: Counter[str] = Counter()
    for path in sorted(bundle.modules):
        module = parse_module(path, bundle.modules[path])
        renames: list[tuple[Segment, str]] = []
        for case, segment, parts in _module_tests(module):
            count = seen[case.full_name]
            seen[case.full_name] += 1
            if count:
                new = f"{segment.value}__governor_{count:02d}"
                renames.append((segment, new))
                renamed = (*module.package, *parts[:-1], new)
                case = replace(
                    case,
                    name=f"{case.name}#{count:02d}",
                    query=render_ref(["data", *renamed]),
                    path=renamed,
                )
            tests.append(case)
        if renames:
            modules[path] = _rename(module.source, renames)
    return tests, modules


class Runner:
    """Runs the tests of a bundle on one engine (or two, in differential mode).

    `engine` is `regorus` (default) or `opa-lib`; `run` a regular expression selecting tests by
    `data.<package>.<name>`; `timeout` the seconds one test may take; `coverage` whether to
    measure line coverage. Raises `ConfigurationError` for a bad argument.
    """

    def __init__(
        self,
        engine: str = "regorus",
        run: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        coverage: bool = False,
    ) -> None:
        if engine not in ENGINES:
            raise ConfigurationError(
                f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}"
            )
        if not timeout > 0:
            raise ConfigurationError(
                f"timeout: must be a positive number of seconds, got {timeout}"
            )
        try:
            self._filter = re.compile(run) if run else None
        except re.error as exc:
            raise ConfigurationError(
                f"run: {run!r} is not a valid regular expression: {exc}"
            ) from None
        self.engine = engine
        self.timeout = float(timeout)
        self.coverage = coverage

    def select(self, tests: Iterable[TestCase]) -> list[TestCase]:
        """The tests the `run` filter selects."""
        return [t for t in tests if self._filter is None or self._filter.search(t.full_name)]

    def run(self, bundle: Bundle) -> Report:
        """Run the selected tests. Raises `PolicyCompileError` when the bundle does not compile."""
        return self._run(bundle, (self.engine,))[self.engine]

    def run_differential(self, bundle: Bundle) -> DifferentialReport:
        """Run every selected test on both engines and report where they disagree."""
        other = next(name for name in ENGINES if name != self.engine)
        reports = self._run(bundle, (self.engine, other))
        disagreements = []
        for mine, theirs in zip(reports[self.engine].results, reports[other].results, strict=True):
            reason = _disagreement(mine, theirs, self.engine, other)
            if reason:
                disagreements.append(
                    Disagreement(
                        test=mine.full_name,
                        location=mine.location,
                        reason=reason,
                        results={self.engine: mine, other: theirs},
                    )
                )
        return DifferentialReport(reports=reports, disagreements=disagreements)

    def _run(self, bundle: Bundle, engines: tuple[str, ...]) -> dict[str, Report]:
        tests, modules = discover(bundle)
        selected = self.select(tests)
        # Coverage is measured on the first engine only: that is the report that shows it.
        executions = [
            _Execution(name, modules, bundle.data, self.coverage and name == engines[0])
            for name in engines
        ]
        try:
            for execution in executions:  # the engines compile in parallel
                execution.begin_start()
            for execution in executions:
                execution.end_start()
            results: dict[str, list[Result]] = {name: [] for name in engines}
            for test in selected:
                if test.skip:
                    for name in engines:
                        results[name].append(_result(test, Status.SKIPPED))
                    continue
                deadlines = [execution.send(test, self.timeout) for execution in executions]
                for execution, deadline in zip(executions, deadlines, strict=True):
                    results[execution.engine].append(
                        execution.receive(test, deadline, self.timeout)
                    )
        finally:
            for execution in executions:
                execution.close()
        return {
            execution.engine: Report(
                engine=execution.engine,
                results=results[execution.engine],
                coverage=execution.coverage_report(bundle) if execution.measures else None,
            )
            for execution in executions
        }


class _Execution:
    """One engine's worker across a run: restarted after a timeout or a crash."""

    def __init__(self, engine: str, modules: dict[str, str], data: Any, coverage: bool) -> None:
        self.engine = engine
        self._modules = modules
        self._data = data
        self.measures = coverage
        self._session: WorkerSession | None = None
        self._lost: str | None = None  # why the last request got no answer
        self._init_deadline = 0.0
        self.covered: dict[str, set[int]] = {}
        self.coverable: dict[str, set[int]] = {}

    def begin_start(self) -> None:
        """Start a worker and have it compile the bundle (without waiting for it)."""
        if self.engine == "opa-lib":
            from governor.engine import opa_lib

            if not opa_lib.available():
                raise EngineError(
                    "the opa-lib engine needs opa-golib-python-bindings: "
                    "pip install --ignore-requires-python opa-golib-python-bindings==0.4.4"
                )
        self._session = acquire()
        self._init_deadline = self._session.begin_init(
            self.engine, self._modules, self._data, self.measures
        )

    def end_start(self) -> None:
        """Wait until the worker has compiled the bundle (`PolicyCompileError` if it cannot)."""
        assert self._session is not None
        try:
            self._session.end_init(self._init_deadline)
        except BaseException:
            self._session.kill()
            self._session = None
            raise

    def start(self) -> None:
        """Start a worker and wait until it is ready."""
        self.begin_start()
        self.end_start()

    def send(self, test: TestCase, timeout: float) -> float:
        """Start `test`; returns its deadline."""
        self._lost = None
        try:
            if self._session is None:
                self.start()
            assert self._session is not None
            self._session.send({"op": "run", "query": test.query, "path": list(test.path)})
        except WorkerDied as exc:
            self._drop(str(exc))
        return time.monotonic() + timeout

    def receive(self, test: TestCase, deadline: float, timeout: float) -> Result:
        if self._session is None:
            return _result(test, Status.ERROR, error=self._lost, code="engine_crash")
        try:
            answer = self._session.receive(deadline)
        except WorkerTimeout:
            self._drop("timeout")
            timed_out = _result(
                test, Status.ERROR, error=f"timed out after {timeout:g}s", code="timeout"
            )
            return replace(timed_out, duration_ns=int(timeout * 1e9))
        except WorkerDied as exc:
            self._drop(str(exc))
            return _result(test, Status.ERROR, error=str(exc), code="engine_crash")
        for path, lines in answer.get("covered", {}).items():
            self.covered.setdefault(path, set()).update(lines)
        for path, lines in answer.get("coverable", {}).items():
            self.coverable.setdefault(path, set()).update(lines)
        return _outcome(test, answer)

    def _drop(self, why: str) -> None:
        if self._session is not None:
            self._session.kill()
        self._session = None
        self._lost = why

    def close(self) -> None:
        if self._session is not None:
            release(self._session)
            self._session = None

    def coverage_report(self, bundle: Bundle) -> Coverage:
        files = {}
        for path in sorted(bundle.modules):
            if path.endswith("_test.rego"):
                continue
            coverable = self.coverable.get(path)
            if coverable is None:  # never evaluated: estimate its lines from the AST
                coverable = expression_lines(parse_module(path, bundle.modules[path]))
            covered = self.covered.get(path, set()) & coverable
            files[path] = FileCoverage(
                path=path,
                covered=tuple(sorted(covered)),
                not_covered=tuple(sorted(coverable - covered)),
            )
        return Coverage(files=files)


def _module_tests(module: ModuleAst) -> Iterable[tuple[TestCase, Segment, list[str]]]:
    """The test rules of one module, each with the segment that names it and its path."""
    for rule in module.rules:
        if rule.kind != "Spec" or rule.head_kind == "Func":
            continue
        for i, segment in enumerate(rule.ref):
            if not segment.ground:
                break
            name = segment.value or ""
            if name.startswith((TEST_PREFIX, SKIP_PREFIX)):
                parts = [seg.value or "" for seg in rule.ref[: i + 1]]
                yield (
                    TestCase(
                        package=module.package_ref,
                        name=render_ref(parts),
                        query=render_ref(["data", *module.package, *parts]),
                        path=(*module.package, *parts),
                        file=module.path,
                        row=rule.line,
                        col=rule.col,
                        skip=name.startswith(SKIP_PREFIX),
                        parameterised=len(rule.ref) > i + 1,
                    ),
                    segment,
                    parts,
                )
                break


def _rename(source: str, renames: list[tuple[Segment, str]]) -> str:
    data = source.encode()
    for segment, new in sorted(renames, key=lambda item: item[0].start, reverse=True):
        data = data[: segment.start] + new.encode() + data[segment.end :]
    return data.decode()


def _result(
    test: TestCase, status: Status, *, error: str | None = None, code: str | None = None
) -> Result:
    return Result(
        package=test.package,
        name=test.name,
        location=test.location,
        status=status,
        error=error,
        error_code=code,
        file=test.file,
        row=test.row,
        col=test.col,
    )


def _outcome(test: TestCase, answer: dict[str, Any]) -> Result:
    error = answer.get("error")
    defined, value = bool(answer.get("defined")), answer.get("value")
    if error:
        status = Status.ERROR
    elif not defined:
        status = Status.FAIL
    elif test.parameterised:
        status = Status.PASS if _all_cases_pass(value) else Status.FAIL
    else:
        status = Status.PASS if value is True else Status.FAIL
    return Result(
        package=test.package,
        name=test.name,
        location=test.location,
        status=status,
        duration_ns=int(answer.get("duration_ns", 0)),
        output=tuple(answer.get("prints", [])),
        error=error["message"] if error else None,
        error_code=error.get("code") if error else None,
        error_location=error.get("location") if error else None,
        file=test.file,
        row=test.row,
        col=test.col,
        defined=defined,
        value=value,
    )


def _all_cases_pass(value: Any) -> bool:
    """A parameterised test's value: an object whose leaves are all `true` (nested cases too)."""
    if isinstance(value, dict):
        return bool(value) and all(_all_cases_pass(v) for v in value.values())
    return value is True


def _disagreement(mine: Result, theirs: Result, a: str, b: str) -> str | None:
    if mine.status != theirs.status:
        detail = ""
        for engine, result in ((a, mine), (b, theirs)):
            if result.status is Status.ERROR:
                detail += f"; {engine}: {result.error}"
        return f"{a} {mine.status.value}, {b} {theirs.status.value}{detail}"
    if mine.status in (Status.ERROR, Status.SKIPPED):
        return None
    if mine.defined != theirs.defined or not _same(mine.value, theirs.value):
        return (
            f"both {mine.status.value} but the values differ: "
            f"{a} {_show(mine)}, {b} {_show(theirs)}"
        )
    return None


def _same(x: Any, y: Any) -> bool:
    """JSON equality where 1 == 1.0 but True != 1."""
    if isinstance(x, bool) or isinstance(y, bool):
        return type(x) is type(y) and x == y
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_same(i, j) for i, j in zip(x, y, strict=True))
    return bool(x == y)


def _show(result: Result) -> str:
    import json

    if not result.defined:
        return "undefined"
    text = json.dumps(result.value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _ranges(lines: tuple[int, ...]) -> list[dict[str, dict[str, int]]]:
    """Consecutive lines as OPA's `{start: {row}, end: {row}}` ranges."""
    out: list[dict[str, dict[str, int]]] = []
    for line in lines:
        if out and out[-1]["end"]["row"] == line - 1:
            out[-1]["end"]["row"] = line
        else:
            out.append({"start": {"row": line}, "end": {"row": line}})
    return out
