"""Rego modules as data: the regorus parser's AST, and the few questions governor asks of it.

`parse_module` parses one module with regorus (`Engine.get_ast_as_json`) and returns a
`ModuleAst`. The JSON is regorus's own and undocumented; what this module relies on:

- every node is a one-key dict naming its kind (`{"Var": {...}}`, `{"RefDot": {...}}`, ...);
- nodes carry a `span` `{line, col, start, end}` whose `start`/`end` are *byte* offsets into the
  source (string literals' spans exclude their quotes);
- a module is `{package, imports, rules}`; a rule is `{"Spec": {head, bodies}}` or
  `{"Default": {...}}`; a head is `Compr` (`x := v`, `x if`), `Set` (`x contains v`) or `Func`;
- a reference is `Var`, `RefDot {refr, field: [span, name]}` or `RefBrack {refr, index}`.

Everything here is pure: the tester, `governor check` and `governor eval` build on it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("RUST_LIB_BACKTRACE", "0")
os.environ.setdefault("RUST_BACKTRACE", "0")

import regorus  # noqa: E402

from governor.engine.regorus import compile_error  # noqa: E402
from governor.errors import PolicyCompileError  # noqa: E402

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = frozenset(
    {"as", "contains", "default", "else", "every", "false", "if", "import", "in", "not", "null"}
    | {"package", "some", "true", "with"}
)

Node = dict[str, Any]


@dataclass(frozen=True)
class Segment:
    """One segment of a reference: `kind` is `var`, `field`, `string` or `dynamic`."""

    kind: str
    value: str | None
    line: int
    col: int
    start: int
    end: int

    @property
    def ground(self) -> bool:
        """True for a segment known without evaluation (anything but `x[expr]`)."""
        return self.kind != "dynamic"


@dataclass(frozen=True)
class Import:
    """`import data.a.b as c`: the imported path, the name it binds, and where it is."""

    path: tuple[str, ...]
    name: str
    line: int
    col: int


@dataclass(frozen=True)
class Rule:
    """One rule definition: its kind (`Spec` or `Default`), head kind, head reference, node."""

    kind: str
    head_kind: str
    ref: tuple[Segment, ...]
    line: int
    col: int
    node: Node = field(repr=False)


@dataclass(frozen=True)
class ModuleAst:
    """A parsed module: its path, source, package path, imports and rules."""

    path: str
    source: str
    package: tuple[str, ...]
    imports: tuple[Import, ...]
    rules: tuple[Rule, ...]
    raw: Node = field(repr=False)

    @property
    def package_ref(self) -> str:
        """The package as a Rego reference: `data.governor.policies`."""
        return render_ref(("data", *self.package))

    def text(self, start: int, end: int) -> str:
        """The source between two byte offsets (what the AST's spans hold)."""
        return self.source.encode()[start:end].decode(errors="replace")


def parse_module(path: str, source: str) -> ModuleAst:
    """Parse one Rego v1 module with regorus. Raises `PolicyCompileError` with `file:row:col`."""
    engine = regorus.Engine()
    engine.set_rego_v0(False)
    error = None
    try:
        engine.add_policy(path, source)
    except RuntimeError as exc:
        error = fix_location(compile_error(exc), {path: source})
    if error is not None:
        # Raised here, not in the `except`, so no traceback keeps this thread's engine alive
        # (pyo3 objects are unsendable: another thread's garbage collector must not drop it).
        del engine
        raise error
    entries = json.loads(engine.get_ast_as_json())
    raw: Node = entries[0]["ast"]
    data = source.encode()
    return ModuleAst(
        path=path,
        source=source,
        package=tuple(seg.value or "" for seg in ref_segments(raw["package"]["refr"])),
        imports=tuple(_imports(raw, data)),
        rules=tuple(_rule(node, data) for node in raw.get("rules", [])),
        raw=raw,
    )


def column(data: bytes, start: int) -> int:
    """The 1-based character column of byte offset `start` in `data` (a tab is one character).

    regorus's own `col` counts a tab as four columns; editors and OPA count characters.
    """
    line_start = data.rfind(b"\n", 0, start) + 1
    return len(data[line_start:start].decode(errors="replace")) + 1


def fix_location(error: PolicyCompileError, sources: dict[str, str]) -> PolicyCompileError:
    """A copy of `error` with regorus's column (a tab counts four) made a character column.

    Always a new exception, with no `__context__`: the original's traceback may hold a regorus
    engine, which must not outlive its thread's frames.
    """
    parts = (error.location or "").rsplit(":", 2)
    unchanged = PolicyCompileError(error.message, error.location)
    if len(parts) != 3 or parts[0] not in sources:
        return unchanged
    if not (parts[1].isdigit() and parts[2].isdigit()):
        return unchanged
    lines = sources[parts[0]].split("\n")
    row, width = int(parts[1]), int(parts[2]) - 1
    if not 0 < row <= len(lines):
        return unchanged
    col, seen = 1, 0
    for char in lines[row - 1]:
        if seen >= width:
            break
        seen += 4 if char == "\t" else 1
        col += 1
    return PolicyCompileError(error.message, f"{parts[0]}:{row}:{col}")


def ref_segments(node: Node, data: bytes = b"") -> list[Segment]:
    """Flatten a reference node (`a.b["c"][x]`) into its segments, left to right.

    Given the module's source as `data`, segments' columns count characters (see `column`).
    """
    kind, body = _kind(node)
    if kind == "Var":
        return [_segment("var", body["value"], body["span"], data)]
    if kind == "RefDot":
        span, name = body["field"]
        return [*ref_segments(body["refr"], data), _segment("field", name, span, data)]
    if kind == "RefBrack":
        index_kind, index = _kind(body["index"])
        if index_kind == "String":
            segment = _segment("string", index["value"], index["span"], data)
        else:
            segment = _segment("dynamic", None, index.get("span", {}), data)
        return [*ref_segments(body["refr"], data), segment]
    return [_segment("dynamic", None, body.get("span", {}) if body else {}, data)]


def render_ref(parts: tuple[str, ...] | list[str]) -> str:
    """Write path segments as a Rego reference: identifiers dotted, anything else in brackets."""
    out = ""
    for i, part in enumerate(parts):
        if _IDENTIFIER.fullmatch(part) and part not in _KEYWORDS:
            out += part if i == 0 else "." + part
        else:
            out += "[" + json.dumps(part) + "]"
    return out


def walk(node: Any) -> Iterator[Node]:
    """Every dict in a JSON tree, depth first (parents before children)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def var_uses(node: Any) -> Iterator[tuple[str, Node]]:
    """Every variable occurrence below `node` as `(name, span)`."""
    for item in walk(node):
        var = item.get("Var")
        if isinstance(var, dict) and "value" in var:
            yield var["value"], var["span"]


def expression_lines(module: ModuleAst) -> set[int]:
    """Lines on which an expression of a rule starts (heads' names excluded).

    An estimate of the lines a coverage tracer can mark, used for files no test touched.
    """
    lines: set[int] = set()
    for rule in module.rules:
        body = rule.node[rule.kind]
        parts: list[Any] = [body.get("bodies", [])]
        if rule.kind == "Default":
            parts.append(body.get("value"))
        else:
            _, head = _kind(body["head"])
            parts.extend(head.get(key) for key in ("assign", "key", "args"))
        for item in walk(parts):
            if "eidx" in item and "span" in item:
                lines.add(item["span"]["line"])
    return lines


def _imports(raw: Node, data: bytes) -> Iterator[Import]:
    for node in raw.get("imports", []):
        path = tuple(seg.value or "" for seg in ref_segments(node["refr"]))
        alias = node.get("as")
        if isinstance(alias, dict) and "start" in alias:
            name = data[alias["start"] : alias["end"]].decode(errors="replace")
        else:
            name = path[-1]
        span = node["span"]
        yield Import(path=path, name=name, line=span["line"], col=column(data, span["start"]))


def _rule(node: Node, data: bytes) -> Rule:
    kind, body = _kind(node)
    span = body["span"]
    line, col = span["line"], column(data, span["start"])
    if kind == "Default":
        return Rule(kind, "Default", tuple(ref_segments(body["refr"], data)), line, col, node)
    head_kind, head = _kind(body["head"])
    return Rule(kind, head_kind, tuple(ref_segments(head["refr"], data)), line, col, node)


def _kind(node: Node) -> tuple[str, Node]:
    """The single key of an AST node and its body."""
    if not isinstance(node, dict) or len(node) != 1:
        return "", node if isinstance(node, dict) else {}
    ((kind, body),) = node.items()
    return kind, body if isinstance(body, dict) else {}


def _segment(kind: str, value: str | None, span: Node, data: bytes) -> Segment:
    start = span.get("start", 0)
    return Segment(
        kind=kind,
        value=value,
        line=span.get("line", 0),
        col=column(data, start) if data else span.get("col", 0),
        start=start,
        end=span.get("end", 0),
    )
