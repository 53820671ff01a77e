"""`governor bench` (placeholder until its implementation lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def _bench() -> None:
        """Not implemented yet."""
        raise typer.Exit(2)
