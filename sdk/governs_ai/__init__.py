"""governs_ai: the Python SDK of the GovernsAI precheck protocol, served by `governor serve`.

    from governs_ai import GovernsAIClient

    async with GovernsAIClient(
        api_key="gk_...", org_id="default", base_url="http://127.0.0.1:8000"
    ) as client:
        response = await client.precheck_request(
            tool="model.chat", scope="net.external", raw_text="Hello", payload={}, tags=["chat"],
            user_id="alice",
        )
        if response.decision == "deny": ...

`SyncGovernsAIClient` is the blocking twin with the same methods. Errors are in
`governs_ai.exceptions`, retry helpers in `governs_ai.utils`.
"""

from governs_ai._version import __version__
from governs_ai.client import (
    AnalyticsClient,
    BudgetClient,
    ConfirmationClient,
    GovernsAIClient,
    PrecheckClient,
    ToolClient,
)
from governs_ai.config import GovernsAIConfig
from governs_ai.exceptions import (
    AnalyticsError,
    AuthenticationError,
    AuthorizationError,
    BudgetError,
    ConfirmationError,
    ConfirmationExpiredError,
    ConfirmationRejectedError,
    ConfirmationTimeoutError,
    GovernsAIError,
    NetworkError,
    PrecheckError,
    RateLimitError,
    ToolError,
    ToolExecutionError,
    ToolNotFoundError,
)
from governs_ai.models import (
    AnalyticsStats,
    BudgetContext,
    BudgetStatus,
    ConfirmationRequest,
    ConfirmationResponse,
    ConfirmationStatus,
    Decision,
    DecisionAnalytics,
    HealthStatus,
    PrecheckRequest,
    PrecheckResponse,
    SpendAnalytics,
    ToolCallAnalytics,
    UsageRecord,
)
from governs_ai.sync import SyncGovernsAIClient
from governs_ai.utils import RetryConfig, with_retry

__all__ = [
    "AnalyticsClient",
    "AnalyticsError",
    "AnalyticsStats",
    "AuthenticationError",
    "AuthorizationError",
    "BudgetClient",
    "BudgetContext",
    "BudgetError",
    "BudgetStatus",
    "ConfirmationClient",
    "ConfirmationError",
    "ConfirmationExpiredError",
    "ConfirmationRejectedError",
    "ConfirmationRequest",
    "ConfirmationResponse",
    "ConfirmationStatus",
    "ConfirmationTimeoutError",
    "Decision",
    "DecisionAnalytics",
    "GovernsAIClient",
    "GovernsAIConfig",
    "GovernsAIError",
    "HealthStatus",
    "NetworkError",
    "PrecheckClient",
    "PrecheckError",
    "PrecheckRequest",
    "PrecheckResponse",
    "RateLimitError",
    "RetryConfig",
    "SpendAnalytics",
    "SyncGovernsAIClient",
    "ToolCallAnalytics",
    "ToolClient",
    "ToolError",
    "ToolExecutionError",
    "ToolNotFoundError",
    "UsageRecord",
    "__version__",
    "with_retry",
]
