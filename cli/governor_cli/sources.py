"""What every command needs to load policies: `-d PATH...`, optionally verified, and error output.

Commands call `load_policies(paths, verification_key=...)` and declare `--verification-key` with
the `VerificationKeyOption` / `KeyIdOption` / `ScopeOption` annotations, so every verb verifies
bundles the same way (see `governor.bundle.load_sources`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from governor.bundle import Bundle, load_sources, read_key

VerificationKeyOption = Annotated[
    str | None,
    typer.Option(
        "--verification-key",
        metavar="FILE",
        help="PEM public key (RS*/PS*/ES*) or the HMAC secret (a file, or the secret itself) "
        "to verify signed bundles; every -d path must then be a signed bundle.",
    ),
]
KeyIdOption = Annotated[
    str | None,
    typer.Option(
        "--verification-key-id", metavar="ID", help="Expected key id (the JWT's kid/keyid)."
    ),
]
ScopeOption = Annotated[
    str | None,
    typer.Option("--scope", metavar="SCOPE", help="Expected signature scope."),
]


def load_policies(
    paths: Iterable[str | Path],
    *,
    verification_key: str | None = None,
    key_id: str | None = None,
    scope: str | None = None,
) -> Bundle:
    """Load `-d` paths as one bundle; with `verification_key` (file or secret) verify each bundle.

    Raises `BundleError`/`BundleSignatureError`/`ConfigurationError` with a message to print.
    """
    key = read_key(verification_key) if verification_key is not None else None
    return load_sources(paths, verification_key=key, key_id=key_id, scope=scope)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (2: bad policies or arguments)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
