"""`create_app`: what its lifespan does besides building the store, the engine and the workers."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from governor_server import Settings, create_app


def test_a_running_app_keeps_its_startup_objects_out_of_the_collector(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'g.db'}"))
    frozen: list[int] = []

    async def serve_once() -> None:
        async with app.router.lifespan_context(app):
            frozen.append(gc.get_freeze_count())

    asyncio.run(serve_once())
    assert frozen[0] > 0  # frozen while it ran
    assert gc.get_freeze_count() == 0  # and given back to the collector on shutdown
