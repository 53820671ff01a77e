"""The exception hierarchy. Every error governor raises derives from `GovernanceError`."""

from __future__ import annotations


class GovernanceError(Exception):
    """Base class of every error raised by governor."""


class ConfigurationError(GovernanceError, ValueError):
    """A setting, policy file or argument is invalid; the message names the field and the problem."""


class EngineError(GovernanceError):
    """The Rego engine could not produce a result (not loaded, crashed, timed out, unreachable)."""


class EngineTimeout(EngineError, TimeoutError):
    """An evaluation did not finish within the configured timeout."""


class EngineUndefined(EngineError):
    """The entrypoint evaluated to undefined: the policy that should define it is not loaded."""


class PolicyCompileError(GovernanceError):
    """Rego source does not parse or compile. `location` is `file:row:col` when known."""

    def __init__(self, message: str, location: str | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.message = message
        self.location = location


class BundleError(GovernanceError):
    """A bundle is malformed: bad `.manifest`, data outside its roots, unreadable archive."""


class BundleSignatureError(BundleError):
    """A bundle's `.signatures.json` is missing, invalid, or does not match the bundle's files."""
