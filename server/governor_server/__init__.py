"""The governor precheck server: FastAPI over the GovernsAI wire protocol.

`create_app(Settings.from_env())` builds the app; `governor serve` runs it under uvicorn.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("governor")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

from governor_server.app import create_app  # noqa: E402
from governor_server.settings import Settings  # noqa: E402

__all__ = ["Settings", "__version__", "create_app"]
