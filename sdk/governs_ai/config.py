"""`GovernsAIConfig`: where the server is, which key to send, and how patient to be.

Times are in milliseconds, as documented: `timeout=30000` is 30 s per request (connect, send and
each read), `retry_delay=1000` is the first back-off (doubled after each retry).

| field | environment variable | default |
| --- | --- | --- |
| `api_key` | `GOVERNS_API_KEY` | required |
| `base_url` | `GOVERNS_BASE_URL` | `https://api.governsai.com` |
| `org_id` | `GOVERNS_ORG_ID` | required |
| `timeout` | `GOVERNS_TIMEOUT` | 30000 (ms) |
| `retries` | `GOVERNS_RETRIES` | 3 (retries after the first attempt) |
| `retry_delay` | `GOVERNS_RETRY_DELAY` | 1000 (ms) |
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_BASE_URL", "GovernsAIConfig"]

DEFAULT_BASE_URL = "https://api.governsai.com"

_ENV = {
    "api_key": "GOVERNS_API_KEY",
    "base_url": "GOVERNS_BASE_URL",
    "org_id": "GOVERNS_ORG_ID",
    "timeout": "GOVERNS_TIMEOUT",
    "retries": "GOVERNS_RETRIES",
    "retry_delay": "GOVERNS_RETRY_DELAY",
}
_INTEGERS = ("timeout", "retries", "retry_delay")


@dataclass
class GovernsAIConfig:
    """The client's settings; validated on creation and on every `update`."""

    api_key: str
    base_url: str = DEFAULT_BASE_URL
    org_id: str = ""
    timeout: int = 30000
    retries: int = 3
    retry_delay: int = 1000
    logger: logging.Logger | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `ValueError` naming the first bad field."""
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            raise ValueError("api_key is required (the X-Governs-Key of your organisation)")
        if not isinstance(self.org_id, str) or not self.org_id.strip():
            raise ValueError("org_id is required (your organisation id, GOVERNS_ORG_ID)")
        if not isinstance(self.base_url, str) or not self.base_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        for name in _INTEGERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive (milliseconds), got {self.timeout}")
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries}")
        if self.retry_delay < 0:
            raise ValueError(
                f"retry_delay must be 0 or more (milliseconds), got {self.retry_delay}"
            )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> GovernsAIConfig:
        """Read `GOVERNS_*` variables; `overrides` (not None) win; errors name the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field, variable in _ENV.items():
            raw = env.get(variable, "").strip()
            if not raw:
                continue
            if field in _INTEGERS:
                try:
                    values[field] = int(raw)
                except ValueError:
                    raise ValueError(
                        f"{variable}={raw!r} is not a whole number"
                        + (" of milliseconds" if field != "retries" else "")
                    ) from None
                if values[field] < (1 if field == "timeout" else 0):
                    raise ValueError(f"{variable}={raw!r} must be positive")
            else:
                values[field] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "api_key" not in values:
            raise ValueError("GOVERNS_API_KEY is not set (the API key of your organisation)")
        if "org_id" not in values:
            raise ValueError("GOVERNS_ORG_ID is not set (your organisation id)")
        return cls(**values)

    def updated(self, changes: Mapping[str, Any]) -> GovernsAIConfig:
        """A validated copy with `changes` applied; unknown keys raise `ValueError`."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **dict(changes))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a dict (the API key included: do not log it)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __repr__(self) -> str:
        return (
            f"GovernsAIConfig(api_key='***', base_url={self.base_url!r}, org_id={self.org_id!r}, "
            f"timeout={self.timeout}, retries={self.retries}, retry_delay={self.retry_delay})"
        )
