"""Organisations and `X-Governs-Key` API keys: create, list, revoke, authenticate.

A key is `gk_<8 hex>_<43 url-safe chars>` (256 random bits after the prefix). Only its SHA-256 is
stored, with its prefix (`gk_<8 hex>`) for display and revocation, so a database leak does not leak
usable keys, and a key is shown exactly once: when it is created. Each key belongs to one
organisation and has one role (`app`, `approver`, `admin`), and may name the identity it acts for
(a person or a service: `alice@acme.example`, `security-oncall`); approver keys must.

Each organisation also has an approver list, kept by its admins (`governor keys approvers`, or
`/api/v1/approvers` with an admin key): an approver key may decide the organisation's
confirmations only while its identity is on that list (see `governor_server.confirmations`).

These functions take the store's SQLAlchemy engine (`SQLStorage.engine`); each is one short
transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Connection, Engine, Table, bindparam, delete, insert, select, update
from sqlalchemy import exc as sa_exc

from governor_server.models import ROLES, ApiKeyRow, OrgApproverRow, OrgRow
from governor_server.statements import fetch

__all__ = [
    "DEFAULT_ORG",
    "IDENTITY_PATTERN",
    "ApproverEntry",
    "Bootstrap",
    "KeyInfo",
    "Principal",
    "UnknownKey",
    "add_approvers",
    "authenticate",
    "bootstrap",
    "check_identity",
    "create_key",
    "ensure_org",
    "find_org",
    "hash_key",
    "is_approver",
    "list_approvers",
    "list_keys",
    "remove_approver",
    "revoke_key",
]

#: The organisation `governor serve` creates on first start.
DEFAULT_ORG = "default"

#: What an identity may be: letters, digits and `. _ : @ + -` (an e-mail address fits), so that it
#: travels in a URL path (`/api/v1/approvers/{identity}`) unescaped.
IDENTITY_PATTERN = r"^[A-Za-z0-9._:@+-]{1,255}$"
_IDENTITY = re.compile(IDENTITY_PATTERN)

_ORGS = cast(Table, OrgRow.__table__)
_KEYS = cast(Table, ApiKeyRow.__table__)
_APPROVERS = cast(Table, OrgApproverRow.__table__)


class UnknownKey(LookupError):
    """Raised by `revoke_key` when no key has the given prefix."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the organisation, role and identity (if any) of a valid API key."""

    org_id: str
    org_name: str
    role: str
    key_prefix: str
    identity: str | None = None

    @property
    def default_user(self) -> str:
        """The user a request without `user_id` is recorded under: the key itself."""
        return f"key:{self.key_prefix}"


@dataclass(frozen=True)
class KeyInfo:
    """What is shown of a key (never the key itself)."""

    prefix: str
    org_name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    identity: str | None = None


@dataclass(frozen=True)
class ApproverEntry:
    """One identity on an organisation's approver list: when and by whom it was added."""

    identity: str
    added_at: datetime
    added_by: str


@dataclass(frozen=True)
class Bootstrap:
    """The keys `bootstrap` created for the default organisation (shown once, never stored)."""

    org_name: str
    admin_key: str
    app_key: str


def hash_key(key: str) -> str:
    """The stored form of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")


def _check_org_name(name: str) -> None:
    if not name or len(name) > 255 or name != name.strip():
        raise ValueError(
            f"organisation name {name!r} must be 1 to 255 characters without surrounding spaces"
        )


def check_identity(identity: str) -> str:
    """`identity` if it is a valid identity; `ValueError` saying what one may contain otherwise."""
    if not isinstance(identity, str) or _IDENTITY.fullmatch(identity) is None:
        raise ValueError(
            f"identity {identity!r} must be 1 to 255 letters, digits and . _ : @ + - "
            "(e.g. alice@acme.example or security-oncall)"
        )
    return identity


def _new_key() -> tuple[str, str]:
    prefix = f"gk_{secrets.token_hex(4)}"
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def ensure_org(db: Engine, name: str) -> tuple[str, bool]:
    """Return `(org id, created)` of the organisation called `name`, creating it if needed."""
    _check_org_name(name)
    with db.connect() as conn:
        org_id = conn.execute(select(_ORGS.c.id).where(_ORGS.c.name == name)).scalar()
    if org_id is not None:
        return org_id, False
    new_id = uuid.uuid4().hex
    try:
        with db.begin() as conn:
            conn.execute(insert(_ORGS).values(id=new_id, name=name, created_at=_now()))
    except sa_exc.IntegrityError:  # created meanwhile by another process
        with db.connect() as conn:
            return conn.execute(select(_ORGS.c.id).where(_ORGS.c.name == name)).scalar_one(), False
    return new_id, True


def create_key(
    db: Engine, org_name: str, role: str, identity: str | None = None
) -> tuple[str, KeyInfo]:
    """Create a key for `org_name` (created if missing) with `role`; return `(key, info)`.

    `identity` is who the key acts for; approver keys need one (their identity is what the
    organisation's approver list names). The key is returned only here: store it now, it cannot
    be shown again.
    """
    _check_role(role)
    if identity is not None:
        check_identity(identity)
    elif role == "approver":
        raise ValueError(
            "an approver key needs an identity (who approves, e.g. alice@acme.example): "
            "it is what the organisation's approver list names"
        )
    org_id, _ = ensure_org(db, org_name)
    with db.begin() as conn:
        prefix, key, created = _insert_key(conn, org_id, role, identity)
    return key, KeyInfo(prefix, org_name, role, created, None, identity)


def _insert_key(
    conn: Connection, org_id: str, role: str, identity: str | None = None
) -> tuple[str, str, datetime]:
    prefix, key = _new_key()
    created = _now()
    conn.execute(
        insert(_KEYS).values(
            id=uuid.uuid4().hex,
            org_id=org_id,
            prefix=prefix,
            key_hash=hash_key(key),
            role=role,
            created_at=created,
            revoked_at=None,
            identity=identity,
        )
    )
    return prefix, key, created


def list_keys(db: Engine, org_name: str | None = None) -> list[KeyInfo]:
    """Every key (of `org_name` when given), oldest first, revoked ones included."""
    stmt = (
        select(
            _KEYS.c.prefix,
            _ORGS.c.name,
            _KEYS.c.role,
            _KEYS.c.created_at,
            _KEYS.c.revoked_at,
            _KEYS.c.identity,
        )
        .join(_ORGS, _ORGS.c.id == _KEYS.c.org_id)
        .order_by(_KEYS.c.created_at, _KEYS.c.prefix)
    )
    if org_name is not None:
        stmt = stmt.where(_ORGS.c.name == org_name)
    with db.connect() as conn:
        return [KeyInfo(*row) for row in conn.execute(stmt)]


def revoke_key(db: Engine, prefix: str) -> KeyInfo:
    """Revoke the key with `prefix` (at once: its next request gets 401); idempotent.

    Raises `UnknownKey` when no key has that prefix.
    """
    with db.begin() as conn:
        conn.execute(
            update(_KEYS)
            .where(_KEYS.c.prefix == prefix, _KEYS.c.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
    found = [k for k in list_keys(db) if k.prefix == prefix]
    if not found:
        raise UnknownKey(
            f"no API key has the prefix {prefix!r}: `governor keys list` shows every key's prefix"
        )
    return found[0]


# Built once: every request authenticates (a statement per call costs more than running it).
_AUTHENTICATE = (
    select(_KEYS.c.org_id, _ORGS.c.name, _KEYS.c.role, _KEYS.c.prefix, _KEYS.c.identity)
    .join(_ORGS, _ORGS.c.id == _KEYS.c.org_id)
    .where(_KEYS.c.key_hash == bindparam("key_hash"), _KEYS.c.revoked_at.is_(None))
)


def authenticate(db: Engine, key: str) -> Principal | None:
    """The principal of a valid key; None for an unknown or revoked one."""
    rows = fetch(db, _AUTHENTICATE, {"key_hash": hash_key(key)})
    return Principal(*rows[0]) if rows else None


def bootstrap(db: Engine, org_name: str = DEFAULT_ORG) -> Bootstrap | None:
    """On a database without `org_name`: create it with an admin key and an app key.

    Returns the keys (to show once), or None when the organisation already existed (a later
    start, or another process won the race).
    """
    new_id = uuid.uuid4().hex
    try:
        with db.begin() as conn:
            conn.execute(insert(_ORGS).values(id=new_id, name=org_name, created_at=_now()))
            _, admin_key, _ = _insert_key(conn, new_id, "admin")
            _, app_key, _ = _insert_key(conn, new_id, "app")
    except sa_exc.IntegrityError:
        return None
    return Bootstrap(org_name, admin_key, app_key)


# -- the approver list --------------------------------------------------------------------------


def find_org(db: Engine, name: str) -> str | None:
    """The id of the organisation called `name`, or None."""
    with db.connect() as conn:
        org_id: str | None = conn.execute(select(_ORGS.c.id).where(_ORGS.c.name == name)).scalar()
    return org_id


def list_approvers(db: Engine, org_id: str) -> list[ApproverEntry]:
    """The organisation's approver list, by identity."""
    stmt = (
        select(_APPROVERS.c.identity, _APPROVERS.c.added_at, _APPROVERS.c.added_by)
        .where(_APPROVERS.c.org_id == org_id)
        .order_by(_APPROVERS.c.identity)
    )
    with db.connect() as conn:
        return [ApproverEntry(*row) for row in conn.execute(stmt)]


def is_approver(db: Engine, org_id: str, identity: str | None) -> bool:
    """Whether `identity` is on the organisation's approver list (None never is)."""
    if identity is None:
        return False
    stmt = select(_APPROVERS.c.identity).where(
        _APPROVERS.c.org_id == org_id, _APPROVERS.c.identity == identity
    )
    with db.connect() as conn:
        return conn.execute(stmt).first() is not None


def add_approvers(db: Engine, org_id: str, identities: list[str], added_by: str) -> list[str]:
    """Put `identities` on the organisation's approver list; returns those not yet on it.

    Idempotent: an identity already listed keeps its entry. `ValueError` for an invalid one
    (nothing is added then).
    """
    wanted = list(dict.fromkeys(check_identity(i) for i in identities))
    for _ in range(3):  # another admin may add the same identity meanwhile: read again
        with db.connect() as conn:
            listed = set(
                conn.execute(
                    select(_APPROVERS.c.identity).where(
                        _APPROVERS.c.org_id == org_id, _APPROVERS.c.identity.in_(wanted)
                    )
                ).scalars()
            )
        new = [i for i in wanted if i not in listed]
        if not new:
            return []
        now = _now()
        try:
            with db.begin() as conn:
                conn.execute(
                    insert(_APPROVERS),
                    [
                        {"org_id": org_id, "identity": i, "added_at": now, "added_by": added_by}
                        for i in new
                    ],
                )
        except sa_exc.IntegrityError:
            continue
        return new
    raise RuntimeError("the approver list kept changing while it was updated: try again")


def remove_approver(db: Engine, org_id: str, identity: str) -> bool:
    """Take `identity` off the organisation's approver list; False when it was not on it.

    Its keys can no longer decide confirmations from their next request on.
    """
    with db.begin() as conn:
        removed = conn.execute(
            delete(_APPROVERS).where(
                _APPROVERS.c.org_id == org_id, _APPROVERS.c.identity == identity
            )
        ).rowcount
    return bool(removed)
