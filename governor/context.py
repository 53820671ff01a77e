"""Who is calling, per call: the governance context that feeds `input.subject`.

A context is a plain mapping, in governor 0.2.0's shape: `{"user": {"id", "email", "roles",
"permissions", "org_id", ...}, ...}`. Top-level `user_id`, `org_id`, `roles`, `permissions` and
`attributes` keys are read too. It reaches a governed call two ways, merged key by key (the
per-call context wins):

1. the decorator's static `context=` (the only channel in 0.2.0);
2. the per-call context of this module, a `contextvars.ContextVar`, so it follows the request
   through `await`s and `asyncio` tasks and never leaks between concurrent requests::

       with governance_context(user={"id": "u-7", "roles": ["finance"]}):
           await pay(100, "ACC-1")

   A web framework's middleware sets it per request (`governor.integrations.fastapi`), from an
   identity it has authenticated.

`subject_from_context` turns a merged context into the decision input's `subject`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from governor.serialization import to_json

__all__ = [
    "current_context",
    "governance_context",
    "merge_contexts",
    "reset_context",
    "set_context",
    "subject_from_context",
]

_EMPTY: Mapping[str, Any] = {}
_current: ContextVar[Mapping[str, Any]] = ContextVar("governor_context", default=_EMPTY)

#: Keys of a user mapping that become fields of `input.subject` rather than attributes.
_SUBJECT_KEYS = frozenset({"id", "user_id", "org_id", "roles", "permissions", "attributes"})


def current_context() -> dict[str, Any]:
    """A copy of the per-call context in force here ({} when none is set)."""
    return dict(_current.get())


def set_context(context: Mapping[str, Any] | None = None, /, **values: Any) -> Token[Any]:
    """Replace the per-call context with `context` plus `values`; returns the token to reset it.

    Prefer `governance_context`, which resets for you. Use this where a `with` block does not
    fit (a middleware that sets the context and resets it in a `finally`).
    """
    merged = dict(context or {})
    merged.update(values)
    return _current.set(merged)


def reset_context(token: Token[Any]) -> None:
    """Restore the per-call context that was in force before `set_context` returned `token`."""
    _current.reset(token)


@contextmanager
def governance_context(
    context: Mapping[str, Any] | None = None, /, **values: Any
) -> Iterator[dict[str, Any]]:
    """Set the per-call context for the `with` block, on top of the one already in force.

    Keys given here replace the outer context's keys of the same name (a `user` replaces the
    whole outer `user`: identities are never mixed). Yields the context now in force.
    """
    merged = dict(_current.get())
    merged.update(context or {})
    merged.update(values)
    token = _current.set(merged)
    try:
        yield dict(merged)
    finally:
        _current.reset(token)


def merge_contexts(static: Mapping[str, Any] | None) -> dict[str, Any]:
    """The context of one call: the decorator's static context, then the per-call context."""
    current = _current.get()
    if not static:
        return dict(current)
    merged = dict(static)
    merged.update(current)
    return merged


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        items = list(value)
    except TypeError:
        return [str(value)]
    return sorted({str(item) for item in items})


def subject_from_context(context: Mapping[str, Any], user_key: str = "user") -> dict[str, Any]:
    """`input.subject` ({org_id, user_id, roles, permissions, attributes}) from a context.

    The user is `context[user_key]` (a dotted key reaches into nested mappings; the user is a
    mapping, or a plain string or number taken as the user id). Only the
    fields that are known are set, so an anonymous call has an empty subject.
    """
    if not context:
        return {}
    raw_user: Any = context
    for part in user_key.split("."):  # a dotted key reaches into nested mappings
        raw_user = raw_user.get(part) if isinstance(raw_user, Mapping) else None
    if isinstance(raw_user, Mapping):
        user: Mapping[str, Any] = raw_user
    elif isinstance(raw_user, str | int) and not isinstance(raw_user, bool):
        user = {"id": raw_user}
    else:
        user = _EMPTY
    subject: dict[str, Any] = {}
    user_id = user.get("id", user.get("user_id", context.get("user_id")))
    if user_id is not None and user_id != "":
        subject["user_id"] = user_id if isinstance(user_id, str | int) else str(user_id)
    org_id = user.get("org_id", context.get("org_id"))
    if org_id is not None and org_id != "":
        subject["org_id"] = str(org_id)
    roles = user.get("roles", context.get("roles"))
    if roles is not None:
        subject["roles"] = _strings(roles)
    permissions = user.get("permissions", context.get("permissions"))
    if permissions is not None:
        subject["permissions"] = _strings(permissions)
    attributes: dict[str, Any] = {}
    extra = context.get("attributes")
    if isinstance(extra, Mapping):
        attributes.update(extra)
    nested = user.get("attributes")
    if isinstance(nested, Mapping):
        attributes.update(nested)
    attributes.update({k: v for k, v in user.items() if k not in _SUBJECT_KEYS})
    if attributes:
        subject["attributes"] = to_json(attributes)
    return subject
