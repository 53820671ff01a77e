"""`governor check`: parse and compile every module, like `opa check`.

Prints one `file:row:col: message` line per problem. Exit codes: 0 no problem, 2 problems (or a
path that cannot be read). What each stage checks is documented in `governor.checker`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from governor.checker import check as check_bundle
from governor_cli._output import EXIT_INVALID, EXIT_OK, load


def register(app: typer.Typer) -> None:
    """Add `governor check` to the app."""

    @app.command("check")
    def check(
        paths: Annotated[list[Path], typer.Argument(help="Rego files and directories.")],
        strict: Annotated[
            bool,
            typer.Option(
                "--strict",
                "-S",
                help="Also report unused imports, duplicate imports and unused assignments.",
            ),
        ] = False,
    ) -> None:
        """Parse and compile Rego modules; report every problem with its location."""
        bundle = load(paths)
        report = check_bundle(bundle, strict=strict)
        for problem in report.problems:
            typer.echo(str(problem))
        engines = " and ".join(report.engines)
        if report.problems:
            count = len(report.problems)
            noun = "problem" if count == 1 else "problems"
            modules = "module" if report.modules == 1 else "modules"
            typer.echo(
                f"{count} {noun} in {report.modules} {modules} (checked with {engines})", err=True
            )
            raise typer.Exit(EXIT_INVALID)
        if not report.modules:
            typer.echo("warning: no .rego files found", err=True)
        noun = "module" if report.modules == 1 else "modules"
        typer.echo(f"{report.modules} {noun} OK (checked with {engines})")
        raise typer.Exit(EXIT_OK)
