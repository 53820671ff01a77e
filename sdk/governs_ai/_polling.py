"""How `poll_confirmation` reads one status (shared by the async and the sync client)."""

from __future__ import annotations

from governs_ai.exceptions import (
    ConfirmationError,
    ConfirmationExpiredError,
    ConfirmationRejectedError,
    ConfirmationTimeoutError,
)
from governs_ai.models import ConfirmationStatus

__all__ = ["settle"]


def settle(status: ConfirmationStatus, remaining: float, max_duration: int) -> bool:
    """True when approved; raise when rejected, expired, cancelled or out of time (`remaining`
    seconds left); False to poll again."""
    if status.approved:
        return True
    if status.status == "rejected":
        raise ConfirmationRejectedError(f"Confirmation {status.correlation_id} was rejected")
    if status.status == "expired":
        raise ConfirmationExpiredError(f"Confirmation {status.correlation_id} expired")
    if status.status == "cancelled":
        raise ConfirmationError(f"Confirmation {status.correlation_id} was cancelled")
    if remaining <= 0:
        raise ConfirmationTimeoutError(
            f"Confirmation {status.correlation_id} still {status.status} after {max_duration} ms"
        )
    return False
