"""The exception hierarchy. Every error governor raises derives from `GovernanceError`."""

from __future__ import annotations


class GovernanceError(Exception):
    """Base class of every error raised by governor."""


class ConfigurationError(GovernanceError, ValueError):
    """A setting, policy file or argument is invalid; the message names the field and problem."""


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


class InvalidAmount(StorageError, ValueError):
    """A budget amount is not a whole, non-negative number of micro-units; names the field."""


# -- outcomes of governed calls (raised by `@govern`) ----------------------------------------------


class PolicyViolation(GovernanceError, PermissionError):
    """A policy denied a governed call: before it ran (phase "pre": the function did NOT run), or
    its result (phase "post": the result is withheld).

    `decision` is the `governor.decision.Decision`; `reasons` (stable codes such as
    `"rate_limit.exceeded:api_calls"`) and `violations` (`{policy, type, code, message}`) come from
    it; `execution_id` names the stored execution and its audit record.
    """

    def __init__(
        self,
        message: str,
        *,
        decision: object = None,
        execution_id: str | None = None,
        function_name: str | None = None,
        phase: str = "pre",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.decision = decision
        self.reasons: tuple[str, ...] = tuple(getattr(decision, "reasons", ()) or ())
        self.violations: tuple[object, ...] = tuple(getattr(decision, "violations", ()) or ())
        self.execution_id = execution_id
        self.function_name = function_name
        self.phase = phase

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


class RateLimitExceeded(PolicyViolation):
    """A `PolicyViolation` whose reasons include a rate limit (`rate_limit.*`): the call did not
    run and did not count; retry after the window has moved on."""


class ApprovalPending(GovernanceError, PermissionError, TimeoutError):
    """A person must approve the call before it runs, and no decision was available in time.

    The execution is stored as `awaiting_approval` with its arguments; `execution_id` identifies
    it for the approval (REST, CLI, dashboard) and for resuming it. `approval` holds the
    decision's approval block (`approvers`, `stages`, `timeout_seconds`, `quorum`). It is both a
    `PermissionError` and a `TimeoutError`, so either `except` of governor 0.2.0's README works.
    """

    def __init__(
        self,
        message: str,
        *,
        execution_id: str,
        approval: object = None,
        decision: object = None,
        function_name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.execution_id = execution_id
        self.approval = approval if approval is not None else {}
        self.decision = decision
        self.function_name = function_name

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


class ApprovalRejected(PolicyViolation):
    """An approver rejected the call, or its approval expired and the policy rejects on timeout;
    the function did not run. `approver` and `reason` say who and why, when known (a rejection
    decided in Rego, such as an `approval_callback` that returned False, has the decision's
    reasons instead)."""

    def __init__(
        self,
        message: str,
        *,
        decision: object = None,
        execution_id: str | None = None,
        function_name: str | None = None,
        phase: str = "pre",
        approver: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(
            message,
            decision=decision,
            execution_id=execution_id,
            function_name=function_name,
            phase=phase,
        )
        self.approver = approver
        self.reason = reason


class ApprovalError(GovernanceError):
    """An approval request could not be answered or resumed as asked (see the subclasses)."""


class ApprovalNotFound(ApprovalError, RecordNotFound):
    """No approval request exists for this execution id."""


class ApproverNotAllowed(ApprovalError, PermissionError):
    """The approver is not among those the request's current stage names, or already answered
    that stage."""


class ApprovalClosed(ApprovalError):
    """The request was already approved, rejected, expired or cancelled; nothing changed."""


class ApprovalExpired(ApprovalClosed):
    """The request timed out before enough approvals came in; it can no longer be approved."""


class ApprovalReasonRequired(ApprovalError, ValueError):
    """The policy requires a reason with every approval or rejection, and none was given."""


class ApprovalMismatch(ApprovalError):
    """A resume found arguments that are not the ones approved (their hash differs), or none:
    the function is not run."""


def _rebuild(cls: type[BaseException], message: str, state: dict[str, object]) -> BaseException:
    """Unpickle an outcome error (they cross process boundaries in worker pools)."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error
