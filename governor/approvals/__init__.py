"""Human approvals that survive restarts: requests in the store, handlers that notify, resume.

- `ApprovalManager` waits for decisions through the store (any process may decide);
- handlers (`governor.approvals.handlers`) tell people: callback, CLI, webhook, e-mail, Slack;
- `AutoResumeManager` / `BackgroundJobQueue` run approved executions later, exactly once.
"""

from governor.approvals.handlers import (
    ApprovalHandler,
    ApprovalNotificationError,
    CallbackApprovalHandler,
    CLIApprovalHandler,
    EmailApprovalHandler,
    SlackApprovalHandler,
    WebhookApprovalHandler,
    verify_webhook_signature,
)
from governor.approvals.manager import (
    ApprovalManager,
    ApprovalOutcome,
    ApprovalRequest,
    get_default_approval_manager,
    set_default_approval_manager,
)
from governor.approvals.request import ApprovalAnswer, ApprovalNotice, arguments_hash
from governor.approvals.resume import AutoResumeManager, BackgroundJobQueue, JobResult

__all__ = [
    "ApprovalAnswer",
    "ApprovalHandler",
    "ApprovalManager",
    "ApprovalNotificationError",
    "ApprovalNotice",
    "ApprovalOutcome",
    "ApprovalRequest",
    "AutoResumeManager",
    "BackgroundJobQueue",
    "CLIApprovalHandler",
    "CallbackApprovalHandler",
    "EmailApprovalHandler",
    "JobResult",
    "SlackApprovalHandler",
    "WebhookApprovalHandler",
    "arguments_hash",
    "get_default_approval_manager",
    "set_default_approval_manager",
    "verify_webhook_signature",
]
