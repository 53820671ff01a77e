"""Confirmations: requests that wait for a person's approval (wire protocol §4.11-§4.13a).

A confirmation is created by `POST /confirmation` or by a precheck whose decision is `confirm`.
It is `pending` until an approver (or admin) key approves or rejects it, the requester cancels it,
or its `expires_at` passes; `expired` is computed on read, never stored, so nothing has to sweep
the table. Every change is one conditional UPDATE (`WHERE status = 'pending' AND expires_at >
now`), so two deciders racing on one confirmation cannot both win.

Every function is scoped to one organisation: another organisation's confirmation is not found.
Who decided is the API key (its prefix, role and identity), never a name sent by the caller.

Who may approve or reject (`decide_confirmation`):
- an admin key of the organisation, always (admins keep the approver list, so they could list
  themselves anyway);
- an approver key of the organisation whose identity is on the organisation's approver list
  (`governor_server.keys.add_approvers`), and, when the confirmation names approvers (the
  `approval.approvers` of the policy that asked for it, or `approvers` given at creation), is one
  of them. Otherwise `ApproverNotAllowed` (HTTP 403) and nothing changes.

These functions take the store's SQLAlchemy engine (`SQLStorage.engine`); each is one short
transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Row, Table, insert, select, update
from sqlalchemy import exc as sa_exc

from governor_server.keys import is_approver
from governor_server.models import ConfirmationRow

__all__ = [
    "CORRELATION_ID_PATTERN",
    "DEFAULT_TTL_SECONDS",
    "MAX_TTL_SECONDS",
    "ApproverNotAllowed",
    "Confirmation",
    "ConfirmationConflict",
    "ConfirmationNotFound",
    "Decider",
    "cancel_confirmation",
    "confirmation_url",
    "create_confirmation",
    "decide_confirmation",
    "get_confirmation",
    "iso",
]

#: How long a confirmation waits when neither the caller nor the policy says (one hour, like the
#: development bundle's `approval.timeout_seconds`).
DEFAULT_TTL_SECONDS = 3600.0
#: The longest a confirmation may wait (seven days).
MAX_TTL_SECONDS = 7 * 24 * 3600.0
#: What a correlation id may contain (wire protocol §2.1: it is put into paths unescaped).
CORRELATION_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"

_CONFIRMATIONS = cast(Table, ConfirmationRow.__table__)


class ConfirmationNotFound(LookupError):
    """No confirmation with that correlation id in the caller's organisation."""

    def __init__(self, correlation_id: str) -> None:
        super().__init__(f"Confirmation not found: {correlation_id}")
        self.correlation_id = correlation_id


class ConfirmationConflict(Exception):
    """The confirmation exists but the change is not possible (already decided, or a duplicate)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ApproverNotAllowed(PermissionError):
    """The deciding key may not decide this confirmation (`code` says why: not on the
    organisation's approver list, or not one of the approvers the confirmation names)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Decider:
    """Who approves, rejects or cancels: the API key (prefix, role, identity) and a reason."""

    key_prefix: str
    role: str
    reason: str | None = None
    identity: str | None = None


@dataclass(frozen=True)
class Confirmation:
    """One confirmation as stored; `status_at(now)` is its status with expiry applied."""

    org_id: str
    correlation_id: str
    stored_status: str
    source: str
    request_type: str
    request_desc: str
    request_payload: Mapping[str, Any]
    reasons: Sequence[str]
    approvers: Sequence[str]
    user_id: str
    created_by_key: str
    created_at: datetime
    expires_at: datetime
    decision_id: str | None = None
    decided_at: datetime | None = None
    decided_by_key: str | None = None
    decided_by_role: str | None = None
    decision_reason: str | None = None
    decided_by_identity: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def status_at(self, now: datetime | None = None) -> str:
        """`pending|approved|rejected|cancelled`, or `expired` once a pending one's time passed."""
        now = now or _now()
        if self.stored_status == "pending" and now >= self.expires_at:
            return "expired"
        return self.stored_status

    def to_wire(self, url: str, now: datetime | None = None) -> dict[str, Any]:
        """The §4.12 status object (which also carries everything §4.11's answer needs)."""
        status = self.status_at(now)
        decided = self.decided_at if status in ("approved", "rejected", "cancelled") else None
        return {
            "correlationId": self.correlation_id,
            "status": status,
            "approved": status == "approved",
            "approvedAt": iso(decided) if status == "approved" else None,
            "rejectedAt": iso(decided) if status == "rejected" else None,
            "cancelledAt": iso(decided) if status == "cancelled" else None,
            "expiresAt": iso(self.expires_at),
            "createdAt": iso(self.created_at),
            "confirmationUrl": url,
            "requestType": self.request_type,
            "requestDesc": self.request_desc,
            "requestPayload": dict(self.request_payload),
            "reasons": list(self.reasons),
            "approvers": list(self.approvers),
            "userId": self.user_id,
            "decisionId": self.decision_id,
            "decidedBy": (
                {
                    "keyPrefix": self.decided_by_key,
                    "role": self.decided_by_role,
                    "identity": self.decided_by_identity,
                }
                if decided is not None
                else None
            ),
            "decisionReason": self.decision_reason if decided is not None else None,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z` suffix, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def confirmation_url(base_url: str | None, correlation_id: str) -> str:
    """Where the confirmation's status is read: `<base>/confirmation/<id>` (relative without a
    base). The base is the request's own base URL, so a server mounted under a prefix or behind
    a proxy (with forwarded headers) still hands out a URL that resolves."""
    return f"{(base_url or '').rstrip('/')}/confirmation/{correlation_id}"


def _from_row(row: Row[Any]) -> Confirmation:
    return Confirmation(
        id=row.id,
        org_id=row.org_id,
        correlation_id=row.correlation_id,
        stored_status=row.status,
        source=row.source,
        request_type=row.request_type,
        request_desc=row.request_desc,
        request_payload=row.request_payload,
        reasons=tuple(row.reasons),
        approvers=tuple(row.approvers),
        user_id=row.user_id,
        decision_id=row.decision_id,
        created_by_key=row.created_by_key,
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_at=row.decided_at,
        decided_by_key=row.decided_by_key,
        decided_by_role=row.decided_by_role,
        decision_reason=row.decision_reason,
        decided_by_identity=row.decided_by_identity,
    )


def create_confirmation(
    db: Engine,
    *,
    org_id: str,
    user_id: str,
    created_by_key: str,
    request_type: str,
    request_desc: str,
    request_payload: Mapping[str, Any] | None = None,
    reasons: Sequence[str] = (),
    approvers: Sequence[str] = (),
    correlation_id: str | None = None,
    ttl_seconds: float | None = None,
    source: str = "api",
    decision_id: str | None = None,
    now: datetime | None = None,
) -> Confirmation:
    """Store a new pending confirmation; its correlation id is generated unless given.

    `ttl_seconds` defaults to `DEFAULT_TTL_SECONDS` and is capped at `MAX_TTL_SECONDS`. Raises
    `ConfirmationConflict` when the organisation already has `correlation_id`.
    """
    created = now or _now()
    ttl = DEFAULT_TTL_SECONDS if ttl_seconds is None else min(float(ttl_seconds), MAX_TTL_SECONDS)
    entry = Confirmation(
        org_id=org_id,
        correlation_id=correlation_id or f"cf_{uuid.uuid4().hex}",
        stored_status="pending",
        source=source,
        request_type=request_type,
        request_desc=request_desc,
        request_payload=dict(request_payload or {}),
        reasons=tuple(reasons),
        approvers=tuple(approvers),
        user_id=user_id,
        decision_id=decision_id,
        created_by_key=created_by_key,
        created_at=created,
        expires_at=created + timedelta(seconds=ttl),
    )
    try:
        with db.begin() as conn:
            conn.execute(
                insert(_CONFIRMATIONS).values(
                    id=entry.id,
                    org_id=entry.org_id,
                    correlation_id=entry.correlation_id,
                    status=entry.stored_status,
                    source=entry.source,
                    request_type=entry.request_type,
                    request_desc=entry.request_desc,
                    request_payload=dict(entry.request_payload),
                    reasons=list(entry.reasons),
                    approvers=list(entry.approvers),
                    user_id=entry.user_id,
                    decision_id=entry.decision_id,
                    created_by_key=entry.created_by_key,
                    created_at=entry.created_at,
                    expires_at=entry.expires_at,
                )
            )
    except sa_exc.IntegrityError as error:
        raise ConfirmationConflict(
            "confirmation_exists",
            f"confirmation {entry.correlation_id} already exists: choose another correlationId, "
            "or send null to have one generated",
        ) from error
    return entry


def _select(org_id: str, correlation_id: str) -> Any:
    return select(_CONFIRMATIONS).where(
        _CONFIRMATIONS.c.org_id == org_id, _CONFIRMATIONS.c.correlation_id == correlation_id
    )


def get_confirmation(db: Engine, org_id: str, correlation_id: str) -> Confirmation:
    """The organisation's confirmation `correlation_id`; `ConfirmationNotFound` otherwise."""
    with db.connect() as conn:
        row = conn.execute(_select(org_id, correlation_id)).first()
    if row is None:
        raise ConfirmationNotFound(correlation_id)
    return _from_row(row)


def _resolve(
    db: Engine,
    org_id: str,
    correlation_id: str,
    status: str,
    decider: Decider,
    now: datetime | None,
) -> Confirmation:
    """Move a pending, unexpired confirmation to `status`, atomically; else explain why not."""
    moment = now or _now()
    with db.begin() as conn:
        changed = conn.execute(
            update(_CONFIRMATIONS)
            .where(
                _CONFIRMATIONS.c.org_id == org_id,
                _CONFIRMATIONS.c.correlation_id == correlation_id,
                _CONFIRMATIONS.c.status == "pending",
                _CONFIRMATIONS.c.expires_at > moment,
            )
            .values(
                status=status,
                decided_at=moment,
                decided_by_key=decider.key_prefix,
                decided_by_role=decider.role,
                decided_by_identity=decider.identity,
                decision_reason=decider.reason,
            )
        ).rowcount
        row = conn.execute(_select(org_id, correlation_id)).first()
    if row is None:
        raise ConfirmationNotFound(correlation_id)
    entry = _from_row(row)
    if changed != 1:
        current = entry.status_at(moment)
        verb = {"approved": "approve", "rejected": "reject", "cancelled": "cancel"}[status]
        if current == "expired":
            detail = f"it expired at {iso(entry.expires_at)}"
        else:
            by = f" by key {entry.decided_by_key}" if entry.decided_by_key else ""
            detail = f"it was {current}{by} at {iso(entry.decided_at)}"
        raise ConfirmationConflict(
            "confirmation_not_pending",
            f"confirmation {correlation_id} is {current}, not pending: cannot {verb} it ({detail})",
        )
    return entry


def decide_confirmation(
    db: Engine,
    org_id: str,
    correlation_id: str,
    *,
    approve: bool,
    decider: Decider,
    org_name: str = "ORG",
    now: datetime | None = None,
) -> Confirmation:
    """Approve or reject a pending confirmation as `decider` (the key, never a claimed name).

    `ApproverNotAllowed` when the decider may not (see the module docstring); checked first for
    the organisation's list, so an unlisted approver learns nothing of any confirmation.
    `ConfirmationNotFound` for another organisation's or an unknown id; `ConfirmationConflict`
    when it is no longer pending (decided, cancelled or expired). `org_name` is only for the
    messages (how an admin lists the approver).
    """
    if decider.role not in ("approver", "admin"):
        raise ApproverNotAllowed(
            "forbidden",
            f"forbidden: key {decider.key_prefix} has role {decider.role}; only approver and "
            "admin keys decide confirmations",
        )
    if decider.role == "approver":
        _check_listed(db, org_id, org_name, decider)
        entry = get_confirmation(db, org_id, correlation_id)
        if entry.approvers and decider.identity not in entry.approvers:
            raise ApproverNotAllowed(
                "approver_not_designated",
                f"forbidden: confirmation {correlation_id} may be decided only by "
                f"{', '.join(entry.approvers)} (or an admin key); approver "
                f"{decider.identity!r} (key {decider.key_prefix}) is not one of them",
            )
    status = "approved" if approve else "rejected"
    return _resolve(db, org_id, correlation_id, status, decider, now)


def _check_listed(db: Engine, org_id: str, org_name: str, decider: Decider) -> None:
    """`ApproverNotAllowed` unless the decider's identity is on the organisation's list."""
    if decider.identity is None:
        raise ApproverNotAllowed(
            "approver_not_allowed",
            f"forbidden: key {decider.key_prefix} has no identity, so it cannot be on the "
            "organisation's approver list; create an approver key with "
            f"`governor keys create --org {org_name} --role approver --identity NAME`",
        )
    if not is_approver(db, org_id, decider.identity):
        raise ApproverNotAllowed(
            "approver_not_allowed",
            f"forbidden: approver {decider.identity!r} (key {decider.key_prefix}) is not on the "
            f"approver list of organisation {org_name!r}; an admin adds it with `governor keys "
            f"approvers add --org {org_name} {decider.identity}` or "
            f"PUT /api/v1/approvers/{decider.identity}",
        )


def cancel_confirmation(
    db: Engine,
    org_id: str,
    correlation_id: str,
    *,
    decider: Decider,
    now: datetime | None = None,
) -> Confirmation:
    """Cancel a pending confirmation (its requester withdrew it).

    Errors as in `decide_confirmation`.
    """
    return _resolve(db, org_id, correlation_id, "cancelled", decider, now)
