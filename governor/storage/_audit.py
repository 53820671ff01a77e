"""The audit hash chain, shared by every backend so that they seal and verify identically.

Each record is split into an *envelope* (seq, id, execution, time, action, decision, policy
revision, duration) and a *body* (actor, reasons, record: the parts that may hold personal
data). Then

    body_hash = sha256(canonical_json({"actor", "reasons", "record"}))
    hash      = sha256(prev_hash + canonical_json({"v": 1, envelope..., "body_hash": body_hash}))

with `prev_hash` the previous record's `hash` (64 zeros for the first record) and canonical JSON
as in `governor.storage._json.canonical_json`. Editing any envelope field, the body of an intact
record, or removing or reordering a record breaks the chain. Erasure (`redact_audit_records`)
replaces the body with `REDACTED_BODY` and keeps `body_hash`, so the chain still verifies and the
record shows *that* it was erased, not what it said. What the chain cannot show on its own is the
removal of the newest records; anchor the head hash elsewhere if that matters.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from governor.storage._json import canonical_json
from governor.storage.records import AuditRecord

GENESIS_HASH = "0" * 64
CHAIN_VERSION = 1
REDACTED_BODY: dict[str, Any] = {"actor": None, "reasons": [], "record": {"redacted": True}}

log = logging.getLogger("governor.storage.audit")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def body_of(record: AuditRecord) -> dict[str, Any]:
    """Return the erasable part of a record: actor, reasons and the JSON record."""
    return {"actor": record.actor, "reasons": record.reasons, "record": record.record}


def envelope_of(record: AuditRecord) -> dict[str, Any]:
    """Return the part of a record the chain hashes directly (the body enters as `body_hash`)."""
    assert record.timestamp is not None
    return {
        "v": CHAIN_VERSION,
        "seq": record.seq,
        "id": record.id,
        "execution_id": record.execution_id,
        "timestamp": record.timestamp.isoformat(timespec="microseconds"),
        "action": record.action,
        "decision": record.decision,
        "policy_revision": record.policy_revision,
        "duration_ms": record.duration_ms,
        "body_hash": record.body_hash,
    }


def chain_hash(prev_hash: str, record: AuditRecord) -> str:
    """Return `sha256(prev_hash + canonical_json(envelope))` for `record`."""
    return _sha256(prev_hash + canonical_json(envelope_of(record)))


def seal_in_place(record: AuditRecord, seq: int, prev_hash: str) -> None:
    """Place `record` itself at `seq` after `prev_hash` and fill in its hashes."""
    record.seq, record.prev_hash, record.redacted_at = seq, prev_hash, None
    record.body_hash = _sha256(canonical_json(body_of(record)))
    record.hash = chain_hash(prev_hash, record)


def find_break(
    records: Iterable[AuditRecord], *, anchored_at_genesis: bool = True
) -> AuditRecord | None:
    """Return the first record (in `seq` order) where the chain does not hold, or None.

    With `anchored_at_genesis=False` the first record's `seq` and `prev_hash` are trusted (the
    in-memory store may have evicted older records). The reason is logged at WARNING.
    """
    expected_seq: int | None = 1 if anchored_at_genesis else None
    expected_prev: str | None = GENESIS_HASH if anchored_at_genesis else None
    for record in records:
        problem = _problem(record, expected_seq, expected_prev)
        if problem is not None:
            log.warning("audit chain broken at seq %s (id %s): %s", record.seq, record.id, problem)
            return record
        expected_seq = (record.seq or 0) + 1
        expected_prev = record.hash
    return None


def _problem(
    record: AuditRecord, expected_seq: int | None, expected_prev: str | None
) -> str | None:
    if expected_seq is not None and record.seq != expected_seq:
        return f"expected seq {expected_seq}, found {record.seq}: a record was removed or inserted"
    if expected_prev is not None and record.prev_hash != expected_prev:
        return "prev_hash is not the previous record's hash: a record was removed or reordered"
    if record.prev_hash is None or record.hash != chain_hash(record.prev_hash, record):
        return (
            "hash does not match the record's fields: the record was altered after it was written"
        )
    if record.redacted_at is None:
        if _sha256(canonical_json(body_of(record))) != record.body_hash:
            return "actor, reasons or record differ from what was written: the body was altered"
    elif body_of(record) != REDACTED_BODY:
        return "the record is marked redacted but its body is not the redaction marker"
    return None
