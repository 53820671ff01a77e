"""Evaluate an ad-hoc Rego query over a bundle, with `opa eval`'s result shape (`governor eval`).

    result = evaluate_query(bundle, "data.governor.decision", input={...}, engine="regorus")
    result.to_json()  # {"result": [{"expressions": [{"value": ..., "text": ...}]}]}

Semantics follow OPA's `rego` package: each expression that is a term or a call has its value
captured and reported (`1 > 2` alone gives `false`, not undefined); assignments, `not`, `some`
and `every` report `true`. When the query has several expressions, or several solutions, a
captured `false` fails the solution, as in OPA. An undefined query yields no results (`to_json()`
is `{}`). Bindings of the query's own variables are reported; `_` and generated ones are not.

How: the query is parsed (by regorus, as the body of a rule) into its expressions; each captured
expression `E` is rewritten to `__governor_eN__ = E`, the rewritten query is evaluated, and the
results are read from the bindings alone. Both engines go through the same rewrite, so they report
the same shape (and regorus's own per-expression report, which repeats expressions across
solutions, is not relied on).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from governor._rego_ast import parse_module
from governor.bundle import Bundle
from governor.engine import opa_lib
from governor.engine import regorus as regorus_engine
from governor.errors import ConfigurationError, EngineError, PolicyCompileError

__all__ = ["QUERY_FILE", "QueryResult", "evaluate_query"]

QUERY_FILE = "<query>"
_PROBE = "data.__governor_query__.__compile__"
_HEADER_LINES = 3  # the lines `_wrap` puts before the query
_VOID = frozenset({"print"})  # calls with no value: capturing them does not compile in OPA


@dataclass(frozen=True)
class QueryResult:
    """OPA's result set: one entry per solution, each with `expressions` and `bindings`."""

    results: list[dict[str, Any]]

    @property
    def defined(self) -> bool:
        """False when the query has no solution (OPA prints `undefined` / `{}`)."""
        return bool(self.results)

    def to_json(self) -> dict[str, Any]:
        """`{"result": [...]}`, or `{}` when undefined, as `opa eval --format json` prints."""
        return {"result": self.results} if self.results else {}


@dataclass(frozen=True)
class _Expression:
    text: str
    row: int
    col: int
    capture: str | None  # the variable that receives its value


def evaluate_query(
    bundle: Bundle, query: str, input: Any = None, engine: str = "regorus"
) -> QueryResult:
    """Evaluate `query` over `bundle` with `input` (None: no input at all).

    Raises `PolicyCompileError` when the query does not parse (location `<query>:row:col`) or
    the bundle does not compile, `ConfigurationError` for an unknown engine and `EngineError`
    when evaluation fails (a builtin error, a conflict) or the engine is not installed.
    """
    expressions = _expressions(query)
    rewritten = "; ".join(f"{e.capture} = {e.text}" if e.capture else e.text for e in expressions)
    # How to map an engine's location in the rewritten query back (single expressions only).
    first = expressions[0]
    shift = None
    if len(expressions) == 1:
        prefix = len(f"{first.capture} = ") if first.capture else 0
        shift = (first.row, prefix - (first.col - 1))
    if engine == "regorus":
        rows = _regorus(bundle, rewritten, input, shift)
    elif engine == "opa-lib":
        rows = _opa(bundle, rewritten, input, shift)
    else:
        raise ConfigurationError(f"engine: expected regorus or opa-lib, got {engine!r}")
    check_captures = len(expressions) > 1 or len(rows) > 1
    results = []
    for bindings in rows:
        values = [bindings.get(e.capture) if e.capture else True for e in expressions]
        if check_captures and any(
            v is False for v, e in zip(values, expressions, strict=True) if e.capture
        ):
            continue
        shown = [
            {"value": value, "text": e.text, "location": {"row": e.row, "col": e.col}}
            for value, e in zip(values, expressions, strict=True)
        ]
        results.append(_entry(shown, bindings))
    return QueryResult(results)


def _expressions(query: str) -> list[_Expression]:
    """The query's expressions, parsed by regorus as the body of a rule."""
    if not query.strip():
        raise PolicyCompileError("the query is empty", QUERY_FILE)
    source = _wrap(query)
    try:
        module = parse_module(QUERY_FILE, source)
    except PolicyCompileError as exc:
        raise PolicyCompileError(exc.message, _query_location(exc.location, query)) from None
    rules = module.raw.get("rules", [])
    if len(rules) != 1 or "Spec" not in rules[0]:
        raise PolicyCompileError("expected one query (expressions separated by ; or newlines)")
    data = source.encode()
    out = []
    for i, stmt in enumerate(rules[0]["Spec"]["bodies"][0]["query"]["stmts"]):
        start, end = stmt["span"]["start"], stmt["span"]["end"]
        # String literals' spans exclude their quotes: widen to take them back.
        while data[start - 1 : start] in (b'"', b"`"):
            start -= 1
        while data[end : end + 1] in (b'"', b"`"):
            end += 1
        line_start = data.rfind(b"\n", 0, start) + 1
        out.append(
            _Expression(
                text=data[start:end].decode(errors="replace").strip(),
                row=stmt["span"]["line"] - _HEADER_LINES,
                col=len(data[line_start:start].decode(errors="replace")) + 1,
                capture=f"__governor_e{i}__" if _captured(stmt) else None,
            )
        )
    return out


def _wrap(query: str) -> str:
    return f"package __governor_query__\n__governor_query__ if {{\n\n{query}\n}}\n"


def _query_location(location: str | None, query: str) -> str:
    """`<query>:row:col` for a location in the wrapped query (the end, for errors past it)."""
    parts = (location or "").rsplit(":", 2)
    if len(parts) != 3 or not (parts[1].isdigit() and parts[2].isdigit()):
        return QUERY_FILE
    lines = query.split("\n")
    row, col = int(parts[1]) - _HEADER_LINES, int(parts[2])
    if row > len(lines):
        row, col = len(lines), len(lines[-1]) + 1
    return f"{QUERY_FILE}:{max(1, row)}:{col}"


def _captured(stmt: dict[str, Any]) -> bool:
    """Whether OPA reports this expression's own value: a term or a call, not `x := v` or `not`."""
    literal = stmt.get("literal", {})
    if "Expr" not in literal:
        return False
    expr = literal["Expr"].get("expr") or {}
    kind = next(iter(expr), "")
    if kind == "AssignExpr":
        return False
    if kind == "Call":
        fcn = expr["Call"].get("fcn", {}).get("Var", {})
        return fcn.get("value") not in _VOID
    return bool(kind)


def _entry(expressions: list[dict[str, Any]], bindings: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in bindings.items() if not k.startswith(("_", "$"))}
    return (
        {"expressions": expressions, "bindings": shown} if shown else {"expressions": expressions}
    )


def _regorus(
    bundle: Bundle, query: str, input: Any, shift: tuple[int, int] | None
) -> list[dict[str, Any]]:
    """Bindings of each solution. Errors are raised outside `except` blocks so no traceback
    keeps the (thread-bound) regorus engine alive."""
    try:
        engine = regorus_engine.compile_bundle(bundle)
    except PolicyCompileError as exc:
        outcome: list[dict[str, Any]] | Exception = PolicyCompileError(exc.message, exc.location)
    else:
        outcome = _regorus_eval(engine, query, input, shift)
        del engine
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _regorus_eval(
    engine: Any, query: str, input: Any, shift: tuple[int, int] | None
) -> list[dict[str, Any]] | Exception:
    try:
        engine.eval_query(_PROBE)
    except RuntimeError as exc:
        return regorus_engine.compile_error(exc)
    if input is not None:
        engine.set_input_json(json.dumps(input))
    try:
        rows = json.loads(engine.eval_query_as_json(query)).get("result", [])
    except RuntimeError as exc:
        err = regorus_engine.compile_error(exc)
        return EngineError(_located(err.message, err.location, shift))
    return [row.get("bindings", {}) for row in rows]


def _opa(
    bundle: Bundle, query: str, input: Any, shift: tuple[int, int] | None
) -> list[dict[str, Any]]:
    from governor.checker import opa_errors

    engine = opa_lib.compile_bundle(bundle)
    try:
        try:
            engine.eval_query(_PROBE)
        except opa_lib.OpaError as exc:
            raise opa_errors(exc)[0] from None
        try:
            rows: list[dict[str, Any]] = engine.eval_query(query, input)
        except opa_lib.OpaError as exc:
            first = opa_errors(exc)[0]
            raise EngineError(_located(first.message, first.location, shift)) from None
    finally:
        engine.close()
    return rows


def _located(message: str, location: str | None, shift: tuple[int, int] | None) -> str:
    """`<query>:row:col: message`, mapping an engine's location in the rewritten query back.

    regorus names the query `<query.rego>`, OPA gives `row:col` alone (or the expression text).
    Only a single expression's columns can be mapped back; other locations are left out.
    """
    if not location:
        return message
    parts = location.rsplit(":", 2)
    if len(parts) == 2:
        parts = ["", *parts]
    file, row, col = parts
    if not (row.isdigit() and col.isdigit()):
        return f"{location}: {message}"
    if file not in ("", "<query.rego>"):
        return f"{location}: {message}"
    if shift is None or row != "1":
        return f"{QUERY_FILE}: {message}"
    first_row, columns = shift
    return f"{QUERY_FILE}:{first_row}:{max(1, int(col) - columns)}: {message}"
