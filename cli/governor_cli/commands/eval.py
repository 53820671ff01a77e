"""`governor eval` (placeholder until its implementation lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def _eval() -> None:
        """Not implemented yet."""
        raise typer.Exit(2)
