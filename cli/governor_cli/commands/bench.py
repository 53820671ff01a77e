"""`governor bench`: decision latency of a bundle on one engine.

    governor bench -d rego -d bundles/development -i inputs.jsonl --engine regorus --count 5000

INPUTS is a JSON file holding one input or an array of inputs, or a JSON Lines file; inputs are
cycled. Prints compile time, the first decision, p50/p90/p99 µs per decision and decisions/s
(`--format json` for the same figures as JSON). Method: see `governor.benchmark`. Exit codes:
0 measured, 2 invalid policies, inputs or arguments, or an evaluation failed.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from governor.benchmark import Measurement, load_inputs, measure
from governor.engine.base import entrypoint_ref
from governor.errors import GovernanceError
from governor_cli.sources import (
    KeyIdOption,
    ScopeOption,
    VerificationKeyOption,
    fail,
    load_policies,
)


class EngineName(StrEnum):
    """The embedded engines a benchmark can run on."""

    regorus = "regorus"
    opa_lib = "opa-lib"


class OutputFormat(StrEnum):
    """How the figures are printed."""

    text = "text"
    json = "json"


def register(app: typer.Typer) -> None:
    """Add the `bench` command to `app`."""

    @app.command("bench")
    def _bench(
        paths: Annotated[
            list[Path],
            typer.Option(
                "--data", "-d", metavar="PATH", help="Policy and data files, directories, bundles."
            ),
        ],
        inputs_file: Annotated[
            Path,
            typer.Option(
                "--input",
                "-i",
                metavar="INPUTS",
                help="JSON (one input or an array of inputs) or JSON Lines file.",
            ),
        ],
        engine: Annotated[
            EngineName, typer.Option("--engine", "-e", help="Engine to measure.")
        ] = EngineName.regorus,
        count: Annotated[int, typer.Option("--count", "-n", min=1, help="Timed decisions.")] = 1000,
        warmup: Annotated[
            int, typer.Option("--warmup", min=0, help="Untimed decisions first.")
        ] = 100,
        entrypoint: Annotated[
            str, typer.Option("--entrypoint", help="The document to evaluate.")
        ] = "governor.decision",
        output_format: Annotated[
            OutputFormat, typer.Option("--format", "-f", help="Output format.")
        ] = OutputFormat.text,
        verification_key: VerificationKeyOption = None,
        key_id: KeyIdOption = None,
        scope: ScopeOption = None,
    ) -> None:
        """Measure decision latency: p50/p90/p99 µs, decisions/s and compile time."""
        from governor.engine import create_engine

        try:
            ref = entrypoint_ref(entrypoint)
        except ValueError as exc:
            fail(f"--entrypoint: {exc}")
        try:
            bundle = load_policies(
                paths, verification_key=verification_key, key_id=key_id, scope=scope
            )
            inputs = load_inputs(inputs_file)
            start = time.perf_counter()
            evaluator = create_engine(engine.value, bundle=bundle)
            compile_seconds = time.perf_counter() - start
        except GovernanceError as exc:
            fail(str(exc))
        try:
            result = measure(
                lambda item: evaluator.evaluate(entrypoint, item),
                inputs,
                count=count,
                warmup=warmup,
                label=engine.value,
                compile_seconds=compile_seconds,
            )
        except GovernanceError as exc:
            fail(f"evaluating {ref} failed: {exc}")
        finally:
            evaluator.close()
        if output_format is OutputFormat.json:
            figures = result.as_dict()
            figures.update(
                entrypoint=ref,
                inputs=len(inputs),
                warmup=warmup,
                revision=bundle.revision or None,
                modules=len(bundle.modules),
            )
            typer.echo(json.dumps(figures, indent=2))
            return
        _report(result, ref, bundle.revision, len(bundle.modules), len(inputs), inputs_file, warmup)


def _report(
    result: Measurement,
    ref: str,
    revision: str,
    modules: int,
    inputs: int,
    inputs_file: Path,
    warmup: int,
) -> None:
    compile_ms = (result.compile_seconds or 0) * 1000
    first_ms = (result.first_call_seconds or 0) * 1000
    typer.echo(f"engine      {result.label} ({modules} modules, revision {revision or '(none)'})")
    typer.echo(f"entrypoint  {ref}")
    typer.echo(
        f"inputs      {inputs} from {inputs_file}, cycled: {result.count} timed decisions "
        f"after {warmup} warm-up"
    )
    typer.echo(f"compile     {compile_ms:.1f} ms (first decision {first_ms:.1f} ms)")
    typer.echo(
        f"latency     p50 {result.p50_us:.1f} µs  p90 {result.p90_us:.1f} µs  "
        f"p99 {result.p99_us:.1f} µs  mean {result.mean_us:.1f} µs"
    )
    typer.echo(f"throughput  {result.per_second:,.0f} decisions/s (one thread)")
