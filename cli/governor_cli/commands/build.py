"""`governor build`: an OPA bundle `.tar.gz` from bundle directories, optionally signed.

    governor build bundles/production -o dist/production.tar.gz --revision "$GIT_SHA" \\
        --signing-key keys/bundle.pem --verification-key keys/bundle.pub.pem

The archive holds the directories' modules, their data merged into one `data.json`, a
`.manifest`, the standard library (unless `--no-stdlib`) and, with `--signing-key`, a
`.signatures.json` in OPA's format. Every module is parsed before the archive is written.
The same inputs give a byte-identical archive. Exit codes: 0 built, 2 invalid input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from governor.bundle import (
    SIGNING_ALGORITHMS,
    BuiltBundle,
    build_archive,
    load_bundle_bytes,
    read_key,
)
from governor.errors import GovernanceError
from governor_cli.sources import fail

_SHOWN_IGNORED = 5


def register(app: typer.Typer) -> None:
    """Add the `build` command to `app`."""

    @app.command("build")
    def _build(
        sources: Annotated[
            list[Path] | None,
            typer.Argument(
                metavar="DIR...",
                help="Bundle directories (or .tar.gz bundles) to include.",
                show_default=False,
            ),
        ] = None,
        output: Annotated[
            Path, typer.Option("--output", "-o", help="Where to write the archive.")
        ] = Path("bundle.tar.gz"),
        revision: Annotated[
            str | None,
            typer.Option("--revision", "-r", help="The bundle revision (default: the manifest's)."),
        ] = None,
        roots: Annotated[
            list[str] | None,
            typer.Option(
                "--root", help="A manifest root (repeatable; default: the manifests' roots)."
            ),
        ] = None,
        signing_key: Annotated[
            str | None,
            typer.Option(
                "--signing-key",
                metavar="FILE",
                help="PEM private key (RS*/PS*/ES*) or HMAC secret (HS*) to sign with.",
            ),
        ] = None,
        signing_alg: Annotated[
            str, typer.Option("--signing-alg", metavar="ALG", help="JWT signing algorithm.")
        ] = "RS256",
        key_id: Annotated[
            str | None,
            typer.Option("--key-id", metavar="ID", help="Key id written to the JWT (kid)."),
        ] = None,
        verification_key: Annotated[
            str | None,
            typer.Option(
                "--verification-key",
                metavar="FILE",
                help="Public key (or HMAC secret): verifies signed sources and the new signature.",
            ),
        ] = None,
        claims_file: Annotated[
            Path | None,
            typer.Option(
                "--claims-file",
                metavar="FILE",
                help="JSON object of extra JWT claims (scope, iss, iat, ...).",
            ),
        ] = None,
        no_stdlib: Annotated[
            bool,
            typer.Option("--no-stdlib", help="Leave the standard library out of the archive."),
        ] = False,
    ) -> None:
        """Build an OPA bundle (.tar.gz) with a .manifest, optionally signed."""
        if signing_alg not in SIGNING_ALGORITHMS:
            fail(
                f"unknown --signing-alg {signing_alg!r}; use one of {', '.join(SIGNING_ALGORITHMS)}"
            )
        try:
            built = build_archive(
                sources or [],
                revision=revision,
                roots=roots or None,
                signing_key=read_key(signing_key, algorithm=signing_alg) if signing_key else None,
                signing_alg=signing_alg,
                key_id=key_id,
                claims=_read_claims(claims_file) if claims_file else None,
                include_stdlib=not no_stdlib,
                verification_key=read_key(verification_key) if verification_key else None,
            )
            _check_compiles(built, output)
            built.write(output)
        except GovernanceError as exc:
            fail(str(exc))
        _report(built, output)


def _read_claims(path: Path) -> dict[str, Any]:
    try:
        claims = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"--claims-file {path}: cannot read a JSON object: {exc}")
    if not isinstance(claims, dict):
        fail(f"--claims-file {path}: must hold a JSON object, got {type(claims).__name__}")
    return claims


def _check_compiles(built: BuiltBundle, output: Path) -> None:
    """Parse every module of the archive with the embedded engine, as `opa build` does."""
    from governor.engine import create_engine

    bundle = load_bundle_bytes(built.archive, source=str(output))
    create_engine("regorus", bundle=bundle).close()


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def _report(built: BuiltBundle, output: Path) -> None:
    stdlib = len(built.stdlib)
    extra = f", {stdlib} from the standard library" if stdlib else ""
    typer.echo(f"built {output}")
    typer.echo(f"  files     {len(built.files)} ({len(built.modules)} modules{extra})")
    typer.echo(f"  revision  {built.manifest.revision or '(none)'}")
    typer.echo(f"  roots     {', '.join(repr(r) for r in built.manifest.roots)}")
    if built.signed:
        kid = f", key id {built.key_id!r}" if built.key_id else ""
        typer.echo(f"  signed    yes: {built.signing_algorithm}{kid}")
    else:
        typer.echo("  signed    no")
    typer.echo(f"  size      {_size(built.size)} (sha256 {built.sha256[:16]})")
    for name in built.ignored[:_SHOWN_IGNORED]:
        typer.echo(f"  ignored   {name} (not .rego, data.json/yaml or .manifest)")
    if len(built.ignored) > _SHOWN_IGNORED:
        typer.echo(f"  ignored   ... and {len(built.ignored) - _SHOWN_IGNORED} more files")
