"""`governor check`: parse and compile every module, report every problem with its location.

What is checked, in order (a stage runs only when the one before found nothing, as `opa check`):

1. **Parse**, every module on its own with the embedded engine (regorus), so each file's first
   syntax error is reported, not only the first file's.
2. **Compile.** regorus compiles lazily, rule by rule, when a query first needs them; evaluating
   a reference to a document that does not exist runs its static checks (unsafe variables,
   variables used before their definition, ...) over every module without evaluating any rule.
   When OPA's bindings are installed, the modules are also compiled by real OPA (type checks,
   undefined functions, arity, shadowed `input`/`data`, recursion, ...), which sees far more;
   both engines' errors are reported (a problem only regorus has still stops the embedded
   engine), without repeating a line OPA already reported.
3. **Strict** (`strict=True`, like `opa check --strict`), from the AST, only what can be checked
   without false alarms: imports that are never used, the same path imported twice, and local
   variables assigned with `:=` and never used in their rule. (Rego v1 makes OPA's other strict
   checks, deprecated built-ins and `input`/`data` shadowing, compile errors of stage 2.)

Each problem is a `PolicyCompileError` whose `location` is `file:row:col` (`file:row` for OPA's
compile errors, which carry no column).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from governor._rego_ast import ModuleAst, column, fix_location, parse_module, var_uses, walk
from governor.bundle import Bundle
from governor.engine import opa_lib
from governor.engine import regorus as regorus_engine
from governor.errors import PolicyCompileError

__all__ = ["CheckReport", "check", "opa_errors"]

_PROBE = "data.__governor_check__.__compile__"
_OPA_ERROR = re.compile(r"^(?P<loc>.+?:\d+(?::\d+)?): (?P<msg>.+)$")
_OCCURRED = re.compile(r"^.*?\d+ errors? occurred:\s*", re.DOTALL)


@dataclass(frozen=True)
class CheckReport:
    """How many modules were checked and the problems found (empty when all is well)."""

    modules: int
    problems: list[PolicyCompileError] = field(default_factory=list)
    engines: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def check(bundle: Bundle, *, strict: bool = False, use_opa: bool = True) -> CheckReport:
    """Parse and compile every module of `bundle` (see the module docstring for the stages)."""
    engines = ("regorus", "opa") if use_opa and opa_lib.available() else ("regorus",)
    parsed: list[ModuleAst] = []
    problems: list[PolicyCompileError] = []
    for path in sorted(bundle.modules):
        try:
            parsed.append(parse_module(path, bundle.modules[path]))
        except PolicyCompileError as exc:
            problems.append(exc)
    if not problems:
        problems = _compile(bundle, engines)
    if not problems and strict:
        for module in parsed:
            problems.extend(strict_problems(module))
    problems.sort(key=_order)
    return CheckReport(modules=len(bundle.modules), problems=problems, engines=engines)


def _order(problem: PolicyCompileError) -> tuple[str, int, int]:
    """Sort key: file, row, column."""
    location = problem.location or ""
    parts = location.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    if len(parts) >= 2 and parts[-1].isdigit():
        return location.rsplit(":", 1)[0], int(parts[-1]), 0
    return location, 0, 0


def _compile(bundle: Bundle, engines: tuple[str, ...]) -> list[PolicyCompileError]:
    problems: list[PolicyCompileError] = []
    if "opa" in engines:
        problems.extend(_opa_compile(bundle))
    reported_lines = {_file_row(p.location) for p in problems}
    for problem in _regorus_compile(bundle):
        if _file_row(problem.location) not in reported_lines:
            problems.append(problem)
    return problems


def _regorus_compile(bundle: Bundle) -> list[PolicyCompileError]:
    try:
        engine = regorus_engine.compile_bundle(bundle)
        engine.eval_query(_PROBE)
    except PolicyCompileError as exc:
        return [fix_location(exc, bundle.modules)]
    except RuntimeError as exc:
        return [fix_location(regorus_engine.compile_error(exc), bundle.modules)]
    return []


def _opa_compile(bundle: Bundle) -> list[PolicyCompileError]:
    try:
        engine = opa_lib.compile_bundle(bundle)
    except PolicyCompileError as exc:
        return [exc]
    try:
        engine.eval_query(_PROBE)
    except opa_lib.OpaError as exc:
        return opa_errors(exc)
    finally:
        engine.close()
    return []


def opa_errors(exc: BaseException) -> list[PolicyCompileError]:
    """Every error in an OPA error message (`N errors occurred:` followed by one per line).

    Detail lines (OPA indents them with a tab) stay with their error; for a parse error they are
    the source line and a caret, from which the column is recovered.
    """
    text = str(getattr(exc, "message", exc))
    text = _OCCURRED.sub("", text, count=1).strip()
    problems: list[PolicyCompileError] = []
    for block in re.split(r"\n(?=\S)", text):
        head, *details = block.split("\n")
        match = _OPA_ERROR.match(head.strip())
        if not match:
            problems.append(PolicyCompileError(block.strip()))
            continue
        location, message = match["loc"], match["msg"]
        caret = next((d for d in details if d.strip() == "^"), None)
        if caret is not None and _file_row(location) and not _has_column(location):
            location += f":{len(caret.removeprefix(chr(9)).rstrip())}"
            details = []
        detail = "".join("\n  " + d.strip() for d in details if d.strip())
        problems.append(PolicyCompileError(message + detail, location))
    return problems or [PolicyCompileError(text or repr(exc))]


def strict_problems(module: ModuleAst) -> list[PolicyCompileError]:
    """Unused imports, duplicate imports and unused `:=` assignments in one module."""
    problems: list[PolicyCompileError] = []
    used = {name for name, _ in var_uses(module.raw.get("rules", []))}
    first_import: dict[tuple[str, ...], int] = {}
    for imp in module.imports:
        where = f"{module.path}:{imp.line}:{imp.col}"
        dotted = ".".join(imp.path)
        if imp.path[0] in ("rego", "future"):
            continue
        if imp.path in first_import:
            problems.append(
                PolicyCompileError(
                    f"duplicate import: {dotted} is already imported on line "
                    f"{first_import[imp.path]}",
                    where,
                )
            )
        first_import.setdefault(imp.path, imp.line)
        if imp.name not in used:
            alias = f" as {imp.name}" if imp.name != imp.path[-1] else ""
            problems.append(PolicyCompileError(f"unused import: {dotted}{alias}", where))
    for rule in module.rules:
        problems.extend(_unused_assignments(module, rule.node))
    return problems


def _unused_assignments(module: ModuleAst, rule: Any) -> list[PolicyCompileError]:
    """`x := ...` where `x` never appears anywhere else in the rule (head, bodies, else)."""
    occurrences: dict[str, int] = {}
    for name, _ in var_uses(rule):
        occurrences[name] = occurrences.get(name, 0) + 1
    problems = []
    data = module.source.encode()
    for node in walk(rule):
        assign = node.get("AssignExpr")
        if not isinstance(assign, dict) or assign.get("op") != "ColEq":
            continue
        for name, span in var_uses(assign.get("lhs")):
            if name.startswith("_") or occurrences.get(name, 0) > 1:
                continue
            where = f"{module.path}:{span['line']}:{column(data, span['start'])}"
            problems.append(
                PolicyCompileError(f"unused assignment: {name} is assigned but never used", where)
            )
    return problems


def _has_column(location: str) -> bool:
    parts = location.rsplit(":", 2)
    return len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit()


def _file_row(location: str | None) -> tuple[str, str] | None:
    if not location:
        return None
    parts = location.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return parts[0], parts[1]
    parts = location.rsplit(":", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else None
