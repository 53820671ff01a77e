"""What `test`, `check` and `eval` share: loading policies and reporting user errors.

Exit codes: 0 success, 1 the thing checked failed, 2 the policies or the arguments are invalid.
No user error prints a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import typer

from governor.bundle import Bundle
from governor.errors import BundleError, ConfigurationError, PolicyCompileError
from governor_cli.sources import fail, load_policies

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_OK", "compile_failure", "fail", "load"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2


def load(paths: Iterable[Path], verification_key: str | None = None) -> Bundle:
    """Load policy files, directories and bundles; exits 2 naming the path on failure."""
    try:
        return load_policies(paths, verification_key=verification_key)
    except (BundleError, ConfigurationError) as exc:
        fail(str(exc))
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read policies: {exc}")


def compile_failure(bundle: Bundle, exc: PolicyCompileError) -> NoReturn:
    """Print every compile problem of `bundle` as `file:row:col: message` and exit 2.

    The engine that failed reports its first problem; `governor check`'s stages list them all.
    """
    from governor.checker import check

    problems = check(bundle).problems or [exc]
    for problem in problems:
        typer.echo(str(problem), err=True)
    noun = "problem" if len(problems) == 1 else "problems"
    typer.echo(f"{len(problems)} compile {noun}: the policies do not compile", err=True)
    raise typer.Exit(EXIT_INVALID)
