"""`governor`: test, check, evaluate, build and benchmark Rego policies.

Exit codes: 0 success, 1 the thing checked failed (tests, a threshold), 2 the policies or the
arguments are invalid (compile errors name `file:row:col`).
"""

from __future__ import annotations

import os

os.environ.setdefault("RUST_BACKTRACE", "0")

import typer  # noqa: E402

from governor_cli.commands import (  # noqa: E402
    approvals,
    bench,
    build,
    check,
    eval,
    keys,
    serve,
    test,
)

app = typer.Typer(
    name="governor",
    help=(
        "Policy-as-code governance for AI agents: test, check, evaluate and build Rego bundles; "
        "serve the precheck server, manage its API keys and decide approval requests."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for command in (test, check, eval, build, bench, serve, keys, approvals):
    command.register(app)


if __name__ == "__main__":
    app()
