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


class EngineServerError(EngineError):
    """The OPA server answered a request with an error object (`{code, message, errors}`).

    `status` is the HTTP status, `code` and `errors` are OPA's (`code` is `None` when the body was
    not an OPA error object, e.g. a proxy's HTML page).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        errors: list[dict[str, object]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.errors = errors or []


class MalformedDecision(EngineError):
    """The decision entrypoint returned a document that breaks the decision contract."""


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


class StorageError(GovernanceError):
    """The store could not read or write (database unreachable or locked, schema missing)."""


class RecordNotFound(StorageError, LookupError):
    """A record asked for by id (an execution to update, a snapshot's execution) does not exist."""


class NotJSONSafe(StorageError, TypeError):
    """A value handed to the store is not plain JSON; the message names the field that holds it."""
