"""`governor build` (placeholder until its implementation lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("build")
    def _build() -> None:
        """Not implemented yet."""
        raise typer.Exit(2)
