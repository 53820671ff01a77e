"""`governor test`: run Rego unit tests (`test_*` rules) like `opa test`.

Exit codes: 0 every test passed (skipped ones allowed); 1 a test failed or errored, coverage is
below `--threshold`, or (`--differential`) the engines disagree; 2 the policies do not compile,
or a path or an argument is invalid.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from governor.errors import ConfigurationError, EngineError, PolicyCompileError
from governor.tester import DEFAULT_TIMEOUT, DifferentialReport, Report, Runner
from governor_cli import reporters
from governor_cli._output import EXIT_FAILED, EXIT_OK, compile_failure, fail, load


class Format(StrEnum):
    """Output formats of `governor test`."""

    pretty = "pretty"
    json = "json"
    junit = "junit"


class EngineName(StrEnum):
    """Engines that can run tests."""

    regorus = "regorus"
    opa_lib = "opa-lib"


def register(app: typer.Typer) -> None:
    """Add `governor test` to the app."""

    @app.command("test")
    def test(
        paths: Annotated[
            list[Path], typer.Argument(help="Rego files and directories (data.json/yaml too).")
        ],
        run: Annotated[
            str | None,
            typer.Option(
                "--run", "-r", help="Only tests whose data.<package>.<name> matches this regex."
            ),
        ] = None,
        verbose: Annotated[
            bool, typer.Option("--verbose", "-v", help="Show every test and what it printed.")
        ] = False,
        coverage: Annotated[
            bool, typer.Option("--coverage", "-c", help="Report line coverage of non-test files.")
        ] = False,
        threshold: Annotated[
            float | None,
            typer.Option(
                help="Fail when coverage is below this percentage (implies --coverage).",
                min=0,
                max=100,
            ),
        ] = None,
        output_format: Annotated[
            Format, typer.Option("--format", "-f", help="Output format.")
        ] = Format.pretty,
        timeout: Annotated[
            float, typer.Option(help="Seconds one test may run before it is an ERROR.")
        ] = DEFAULT_TIMEOUT,
        engine: Annotated[EngineName, typer.Option(help="Engine that runs the tests.")] = (
            EngineName.regorus
        ),
        differential: Annotated[
            bool,
            typer.Option(help="Also run every test on the other engine; fail on a disagreement."),
        ] = False,
    ) -> None:
        """Run Rego unit tests: every rule named test_* (todo_test_* are skipped)."""
        bundle = load(paths)
        measure = coverage or threshold is not None
        try:
            runner = Runner(engine=engine.value, run=run, timeout=timeout, coverage=measure)
            if differential:
                outcome: Report | DifferentialReport = runner.run_differential(bundle)
            else:
                outcome = runner.run(bundle)
        except PolicyCompileError as exc:
            compile_failure(bundle, exc)
        except (ConfigurationError, EngineError) as exc:
            fail(str(exc))
        report = outcome.primary if isinstance(outcome, DifferentialReport) else outcome
        code = _print(report, output_format, verbose, measure)
        if isinstance(outcome, DifferentialReport) and outcome.disagreements:
            text = reporters.disagreements(outcome)
            typer.echo(text, err=output_format is not Format.pretty)
            code = EXIT_FAILED
        if isinstance(outcome, DifferentialReport) and not all(
            r.ok for r in outcome.reports.values()
        ):
            code = EXIT_FAILED
        covered = report.coverage
        if threshold is not None and covered is not None and covered.percentage < threshold:
            typer.echo(
                f"Code coverage threshold not met: got {covered.percentage:.2f} "
                f"instead of {threshold:.2f}",
                err=True,
            )
            code = EXIT_FAILED
        raise typer.Exit(code)


def _print(report: Report, output_format: Format, verbose: bool, coverage: bool) -> int:
    """Print the report; returns the exit code the results alone call for."""
    if output_format is Format.json:
        if coverage and report.coverage is not None:
            # As `opa test --coverage --format=json`: the coverage report; failures on stderr.
            if not report.ok:
                typer.echo(reporters.pretty(report, verbose), err=True)
            typer.echo(json.dumps(report.coverage.to_json(), indent=2))
        else:
            typer.echo(json.dumps(reporters.json_results(report), indent=2))
    elif output_format is Format.junit:
        typer.echo(reporters.junit(report))
    else:
        typer.echo(reporters.pretty(report, verbose))
        if coverage and report.coverage is not None:
            reporters.coverage_table(
                report.coverage, Console(file=sys.stdout, width=_table_width(report))
            )
    return EXIT_OK if report.ok else EXIT_FAILED


def _table_width(report: Report) -> int:
    """Wide enough that no file path is cut: a person copies them into an editor."""
    files = report.coverage.files if report.coverage is not None else {}
    longest = max((len(path) for path in files), default=0)
    return max(120, longest + 70)
