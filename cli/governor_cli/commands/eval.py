"""`governor eval`: evaluate a Rego query over policies and data, like `opa eval`.

`--format json` (the default) prints OPA's result set, `{"result": [{"expressions": [...],
"bindings": {...}}]}`, or `{}` when the query is undefined; `--format pretty` prints the value
(a table of bindings when the query binds variables) or `undefined`.

Exit codes: 0 evaluated (undefined included, as OPA); 1 with `--fail` and an undefined result or
`--fail-defined` and a defined one; 2 a missing file, invalid input, a query or policy that does
not compile, or an evaluation error.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from governor.bundle import Bundle
from governor.errors import ConfigurationError, EngineError, PolicyCompileError
from governor.query import QueryResult, evaluate_query
from governor_cli._output import EXIT_FAILED, EXIT_OK, compile_failure, fail, load
from governor_cli.sources import VerificationKeyOption


class Format(StrEnum):
    """Output formats of `governor eval`."""

    json = "json"
    pretty = "pretty"


class EngineName(StrEnum):
    """Engines that can evaluate a query."""

    regorus = "regorus"
    opa_lib = "opa-lib"


def register(app: typer.Typer) -> None:
    """Add `governor eval` to the app."""

    @app.command("eval")
    def eval_(
        query: Annotated[str, typer.Argument(help="The query, e.g. data.governor.decision.")],
        data: Annotated[
            list[Path] | None,
            typer.Option("--data", "-d", help="Rego files, data files or directories (repeat)."),
        ] = None,
        input: Annotated[
            Path | None, typer.Option("--input", "-i", help="The input document (JSON or YAML).")
        ] = None,
        engine: Annotated[EngineName, typer.Option(help="Engine that evaluates the query.")] = (
            EngineName.regorus
        ),
        output_format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = (
            Format.json
        ),
        fail_undefined: Annotated[
            bool, typer.Option("--fail", help="Exit 1 when the result is undefined.")
        ] = False,
        fail_defined: Annotated[
            bool, typer.Option("--fail-defined", help="Exit 1 when the result is defined.")
        ] = False,
        verification_key: VerificationKeyOption = None,
    ) -> None:
        """Evaluate a Rego query over policies, data and an input document."""
        bundle = load(data, verification_key) if data else Bundle(modules={}, data={})
        document = _read_input(input) if input is not None else None
        try:
            result = evaluate_query(bundle, query, document, engine.value)
        except PolicyCompileError as exc:
            if exc.location and exc.location.startswith("<query>"):
                fail(f"the query does not parse: {exc}")
            compile_failure(bundle, exc)
        except (ConfigurationError, EngineError) as exc:
            fail(str(exc))
        if output_format is Format.json:
            typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        else:
            _pretty(result)
        if (fail_undefined and not result.defined) or (fail_defined and result.defined):
            raise typer.Exit(EXIT_FAILED)
        raise typer.Exit(EXIT_OK)


def _read_input(path: Path) -> Any:
    """The input document; exits 2 naming the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot read the input: {exc}")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            fail(f"{path}: invalid YAML: {exc}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{path}: invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")


def _pretty(result: QueryResult) -> None:
    if not result.defined:
        typer.echo("undefined")
        return
    names = sorted({name for row in result.results for name in row.get("bindings", {})})
    if not names:
        for row in result.results:
            for expression in row["expressions"]:
                typer.echo(json.dumps(expression["value"], indent=2, ensure_ascii=False))
        return
    table = Table()
    for name in names:
        table.add_column(name, overflow="fold")
    for row in result.results:
        bindings = row.get("bindings", {})
        table.add_row(*(json.dumps(bindings.get(n), ensure_ascii=False) for n in names))
    Console(file=sys.stdout, width=120).print(table)
