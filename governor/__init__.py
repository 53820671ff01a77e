"""governor: policy-as-code governance for AI agents. Every rule is Rego; Python gathers facts.

The API of governor 0.2.0 is kept: `@govern` / `@govern_class`, the policy classes,
`load_policies_from_file`, events, storage and replay, with every decision made by the Rego
library (`rego/`) through one engine evaluation per phase of a call.
"""

from governor.context import governance_context, set_context
from governor.decorator import govern, govern_all, govern_class
from governor.errors import (
    ApprovalPending,
    ApprovalRejected,
    BundleError,
    BundleSignatureError,
    ConfigurationError,
    EngineError,
    EngineTimeout,
    EngineUndefined,
    GovernanceError,
    PolicyCompileError,
    PolicyViolation,
    RateLimitExceeded,
    StorageError,
)
from governor.events import Event, EventEmitter, EventType, get_default_emitter
from governor.executor import (
    ApprovalManager,
    ApprovalOutcome,
    ApprovalRequest,
    ExecutionContext,
    Executor,
)
from governor.policies import (
    ApprovalPolicy,
    ApprovalStage,
    AuditPolicy,
    AuthorizationPolicy,
    BudgetPolicy,
    Policy,
    PolicyPhase,
    PolicyResult,
    PrecheckPolicy,
    RateLimitPolicy,
    RegoPolicy,
    SequentialApprovalPolicy,
    ValidationPolicy,
    load_policies_from_dict,
    load_policies_from_file,
    usd,
)
from governor.replay import ReplayEngine
from governor.runtime import configure
from governor.storage import (
    ExecutionStatus,
    InMemoryStorage,
    SQLStorage,
    StorageBackend,
    get_default_storage,
    set_default_storage,
)

__version__ = "0.3.0.dev0"

__all__ = [
    "ApprovalManager",
    "ApprovalOutcome",
    "ApprovalPending",
    "ApprovalPolicy",
    "ApprovalRejected",
    "ApprovalRequest",
    "ApprovalStage",
    "AuditPolicy",
    "AuthorizationPolicy",
    "BudgetPolicy",
    "BundleError",
    "BundleSignatureError",
    "ConfigurationError",
    "EngineError",
    "EngineTimeout",
    "EngineUndefined",
    "Event",
    "EventEmitter",
    "EventType",
    "ExecutionContext",
    "ExecutionStatus",
    "Executor",
    "GovernanceError",
    "InMemoryStorage",
    "Policy",
    "PolicyCompileError",
    "PolicyPhase",
    "PolicyResult",
    "PolicyViolation",
    "PrecheckPolicy",
    "RateLimitExceeded",
    "RateLimitPolicy",
    "RegoPolicy",
    "ReplayEngine",
    "SQLStorage",
    "SequentialApprovalPolicy",
    "StorageBackend",
    "StorageError",
    "ValidationPolicy",
    "__version__",
    "configure",
    "get_default_emitter",
    "get_default_storage",
    "governance_context",
    "govern",
    "govern_all",
    "govern_class",
    "load_policies_from_dict",
    "load_policies_from_file",
    "set_context",
    "set_default_storage",
    "usd",
]
