"""Every error the SDK raises, as one tree rooted at `GovernsAIError`.

Each error keeps the real HTTP status (`status_code`, None when no response arrived) and says
whether trying again may help (`retryable`: network errors, 429 and 5xx). Two families meet:

- *what failed* (the domain): `PrecheckError`, `ConfirmationError`, `BudgetError`, `ToolError`,
  `AnalyticsError` — one per sub-client, so ``except PrecheckError`` catches every failure of a
  precheck;
- *why it failed* (the kind): `AuthenticationError` (401), `AuthorizationError` (403),
  `RateLimitError` (429), `NetworkError` (no response).

An error raised by a sub-client is an instance of both: a precheck with a bad key raises an error
that is a `PrecheckError` *and* an `AuthenticationError`, with ``status_code == 401``. Other
non-2xx answers raise the domain class alone, with the status and the server's ``message``.

    GovernsAIError
    ├── AuthenticationError          401: the API key is missing, unknown or revoked
    ├── AuthorizationError           403: the key lacks the permission
    ├── RateLimitError               429: too many requests (`retry_after` in seconds)
    ├── NetworkError                 no response: connection refused or reset, timeout
    ├── PrecheckError
    ├── ConfirmationError
    │   ├── ConfirmationRejectedError    the approver rejected it (poll_confirmation)
    │   ├── ConfirmationExpiredError     it expired before a decision (poll_confirmation)
    │   └── ConfirmationTimeoutError     poll_confirmation's own deadline passed
    ├── BudgetError
    ├── ToolError
    │   ├── ToolNotFoundError            404: no tool of that name is registered
    │   └── ToolExecutionError           execute_tool failed
    └── AnalyticsError
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AnalyticsError",
    "AuthenticationError",
    "AuthorizationError",
    "BudgetError",
    "ConfirmationError",
    "ConfirmationExpiredError",
    "ConfirmationRejectedError",
    "ConfirmationTimeoutError",
    "GovernsAIError",
    "NetworkError",
    "PrecheckError",
    "RateLimitError",
    "ToolError",
    "ToolExecutionError",
    "ToolNotFoundError",
]


class GovernsAIError(Exception):
    """The base of every SDK error: a message, the HTTP status if any, and whether to retry."""

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        retryable: bool = False,
        response_data: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retryable = retryable
        self.response_data = response_data

    def __str__(self) -> str:
        if self.status_code is None:
            return self.message
        return f"{self.message} (status {self.status_code})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r}, "
            f"retryable={self.retryable!r})"
        )


# --- why it failed -------------------------------------------------------------------------


class AuthenticationError(GovernsAIError):
    """401: the API key (`X-Governs-Key`) is missing, unknown or revoked. Not retryable."""


class AuthorizationError(GovernsAIError):
    """403: the API key is valid but lacks the permission for this call. Not retryable."""


class RateLimitError(GovernsAIError):
    """429: too many requests. Retryable; `retry_after` is the server's `Retry-After` (s)."""

    def __init__(
        self,
        message: str,
        status_code: int | None = 429,
        retryable: bool = True,
        response_data: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code, retryable, response_data)
        self.retry_after = retry_after


class NetworkError(GovernsAIError):
    """No response: the connection failed or was reset, or the request timed out. Retryable."""

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        retryable: bool = True,
        response_data: Any = None,
    ) -> None:
        super().__init__(message, status_code, retryable, response_data)


# --- what failed ---------------------------------------------------------------------------


class PrecheckError(GovernsAIError):
    """A precheck (`precheck_request`, `client.precheck.*`) failed; a deny is NOT an error."""


class ConfirmationError(GovernsAIError):
    """A confirmation call (`create_confirmation`, `client.confirmation.*`) failed."""


class ConfirmationRejectedError(ConfirmationError):
    """`poll_confirmation`: the approver rejected the request."""


class ConfirmationExpiredError(ConfirmationError):
    """`poll_confirmation`: the confirmation expired before anyone decided."""


class ConfirmationTimeoutError(ConfirmationError):
    """`poll_confirmation`: `max_duration` passed while the confirmation was still pending."""


class BudgetError(GovernsAIError):
    """A budget or usage call (`get_budget_context`, `record_usage`, `client.budget.*`) failed."""


class ToolError(GovernsAIError):
    """A tool registry call (`client.tools.*`) failed."""


class ToolNotFoundError(ToolError):
    """404: no tool of that name is registered for the organisation."""


class ToolExecutionError(ToolError):
    """`client.tools.execute_tool` failed (other than an unknown tool)."""


class AnalyticsError(GovernsAIError):
    """An analytics query (`client.analytics.*`) failed."""


_COMBINED: dict[tuple[type[GovernsAIError], type[GovernsAIError]], type[GovernsAIError]] = {}


def combined(domain: type[GovernsAIError], kind: type[GovernsAIError]) -> type[GovernsAIError]:
    """The class of an error that is both `domain` and `kind` (e.g. a precheck's 401).

    Built once per pair and named after both (`PrecheckAuthenticationError`), so that
    ``except PrecheckError`` and ``except AuthenticationError`` both catch it.
    """
    if issubclass(domain, kind):
        return domain
    if issubclass(kind, domain):
        return kind
    cls = _COMBINED.get((domain, kind))
    if cls is None:
        name = domain.__name__.removesuffix("Error") + kind.__name__
        doc = f"A {domain.__name__} that is also a {kind.__name__}."
        cls = type(name, (domain, kind), {"__doc__": doc, "__module__": __name__})
        _COMBINED[(domain, kind)] = cls
    return cls
