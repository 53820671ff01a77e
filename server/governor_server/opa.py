"""The OPA control plane: a bundle service and decision-log intake for OPA sidecars.

An OPA sidecar can take its policy from this server and send its decisions back:

- `GET /bundles/{name}.tar.gz`: the bundles the server serves, built once at startup with
  `governor.bundle.build_archive` from `GOVERNOR_OPA_BUNDLES` (comma-separated `name=path` or
  `path`; default: `GOVERNOR_BUNDLE`). A bundle directory is built with the standard library
  (like `governor build`); a `.tar.gz` (for example one signed by `governor build --signing-key`)
  is checked and served byte for byte, signature included. The ETag is the archive's SHA-256
  (strong; builds are reproducible, so it only changes when the policy does); a request whose
  `If-None-Match` matches gets `304 Not Modified` and no body, so polling costs nothing.
  `Content-Type: application/gzip`: OPA falls back from long polling to ordinary polling, so
  configure `polling.min_delay_seconds`/`max_delay_seconds`, not `long_polling_timeout_seconds`.
- `POST /logs`: OPA's decision-log batches (a JSON array of events, gzip-compressed with
  `Content-Encoding: gzip`, as OPA sends them; plain JSON is accepted too). Each event becomes a
  decision record of the key's organisation (phase `opa`): `decision_id` (kept as `corr_id`;
  resending a batch does not duplicate it), the decision (`result.decision` of a governor
  decision document; `allow`/`deny` for a boolean result; `undefined` without a result), the
  action and user of a governor input (else the `path` and `opa:<labels.id>`), the bundle
  revision from `bundles`, the event's `timestamp`, and `path` and `labels` as tags
  (`opa.path:<path>`, `opa.label:<key>=<value>`). The input and the raw result are never stored:
  reasons are the policy's reason codes and redacted kinds, never values. A body that is not
  gzip or JSON, or not an array of objects, is refused with 400 (OPA re-queues any non-2xx batch,
  so nothing else is refused).

Both authenticate with an API key, sent as OPA's bearer credentials send it
(`Authorization: Bearer <key>`) or in `X-Governs-Key`. Any role may download a bundle; logs need
an `app` (or `admin`) key, whose organisation owns the stored decisions.

The OPA configuration (`opa run --server --config-file opa.yaml`) of a sidecar pointed at a
server on `http://127.0.0.1:8000` serving the development bundle::

    services:
      governor:
        url: http://127.0.0.1:8000
        credentials:
          bearer:
            token: "${GOVERNOR_KEY}"   # an app key: governor keys create --org NAME --role app
    bundles:
      governor:
        service: governor
        resource: bundles/development.tar.gz
        persist: true                  # start from the last bundle while the server is down
        polling:
          min_delay_seconds: 10
          max_delay_seconds: 30
        # signing: {keyid: governor}   # with a signed .tar.gz and keys.governor.key set
    decision_logs:
      service: governor                # resource defaults to /logs
      reporting:
        min_delay_seconds: 5
        max_delay_seconds: 10

(OPA expands `${VAR}` from its environment in the config file.) Then run the server on the
sidecar with `GOVERNOR_ENGINE=opa GOVERNOR_OPA_URL=http://127.0.0.1:8181`, or keep the embedded
engine and use OPA only for other services.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import Depends, Header
from sqlalchemy import Engine, Table, select
from sqlalchemy.exc import IntegrityError

from governor.bundle import build_archive, load_bundle_bytes
from governor.decision import Decision
from governor.errors import ConfigurationError, GovernanceError
from governor_server.decisions import DecisionEntry, record_decision
from governor_server.errors import ApiError
from governor_server.keys import Principal, authenticate
from governor_server.models import DecisionRow
from governor_server.observability import annotate
from governor_server.policy import reasons_of
from governor_server.settings import Settings
from governor_server.state import ServerState, get_state

__all__ = [
    "BUNDLE_CONTENT_TYPE",
    "MAX_LOG_BATCH_BYTES",
    "BadBatch",
    "BundleService",
    "ServedBundle",
    "etag_matches",
    "opa_principal",
    "parse_batch",
    "store_events",
]

BUNDLE_CONTENT_TYPE = "application/gzip"
#: The largest decompressed decision-log batch accepted (OPA's default upload limit is 32 KiB).
MAX_LOG_BATCH_BYTES = 16 * 1024 * 1024

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DECISIONS = cast(Table, DecisionRow.__table__)


# ---------------------------------------------------------------------------------------------
# Bundles
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedBundle:
    """One bundle archive as served: its bytes, strong ETag and revision."""

    name: str
    archive: bytes
    revision: str
    source: str

    @property
    def etag(self) -> str:
        """`"<sha256 of the archive>"` (quoted: a strong entity tag)."""
        return f'"{hashlib.sha256(self.archive).hexdigest()}"'


def _name_of(path: str) -> str:
    base = Path(path.rstrip("/")).name
    for suffix in (".tar.gz", ".tgz"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _entries(settings: Settings) -> list[tuple[str, str]]:
    raw: Sequence[str] = settings.opa_bundles or ((settings.bundle,) if settings.bundle else ())
    entries: list[tuple[str, str]] = []
    for item in raw:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = _name_of(item), item
        name, path = name.strip(), path.strip()
        if not _NAME.fullmatch(name):
            raise ConfigurationError(
                f"GOVERNOR_OPA_BUNDLES: bundle name {name!r} must be letters, digits, '.', '_' "
                "or '-' (it is served at /bundles/<name>.tar.gz)"
            )
        if any(name == seen for seen, _ in entries):
            raise ConfigurationError(f"GOVERNOR_OPA_BUNDLES: bundle name {name!r} is repeated")
        entries.append((name, path))
    return entries


def _build(name: str, path: str, settings: Settings) -> ServedBundle:
    source = Path(path)
    try:
        if source.is_file():
            archive = source.read_bytes()
            bundle = load_bundle_bytes(
                archive, source=str(source), verification_key=settings.verification_key
            )
            return ServedBundle(name, archive, bundle.revision, str(source))
        if not source.is_dir():
            raise ConfigurationError(
                f"GOVERNOR_OPA_BUNDLES: {path!r} (bundle {name!r}) is neither a bundle "
                "directory nor a .tar.gz"
            )
        built = build_archive([source], verification_key=settings.verification_key)
    except OSError as exc:
        raise ConfigurationError(f"bundle {name!r}: cannot read {path!r}: {exc}") from None
    return ServedBundle(name, built.archive, built.manifest.revision, str(source))


class BundleService:
    """The bundles served at `/bundles/{name}.tar.gz`, built once."""

    def __init__(self, bundles: Iterable[ServedBundle]) -> None:
        self._bundles = {b.name: b for b in bundles}

    @classmethod
    def from_settings(cls, settings: Settings) -> BundleService:
        """Build every configured bundle; `GovernanceError` names the one that fails."""
        return cls(_build(name, path, settings) for name, path in _entries(settings))

    def get(self, name: str) -> ServedBundle | None:
        return self._bundles.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._bundles)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """`If-None-Match` (RFC 9110 §13.1.2, weak comparison): `*` or any listed tag equal to ours."""
    if not if_none_match:
        return False
    ours = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == ours:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Authentication: OPA's bearer credentials or X-Governs-Key
# ---------------------------------------------------------------------------------------------


def opa_principal(
    state: Annotated[ServerState, Depends(get_state)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_governs_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """Dependency: the caller of a control-plane endpoint, by bearer token or `X-Governs-Key`."""
    key = (x_governs_key or "").strip()
    if not key and authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            key = token.strip()
    challenge = {"WWW-Authenticate": 'Bearer realm="governor"'}
    if not key:
        raise ApiError(
            401,
            "missing_api_key",
            "missing API key: send it as `Authorization: Bearer <key>` (OPA's "
            "services.<name>.credentials.bearer.token) or in the X-Governs-Key header",
            headers=challenge,
        )
    principal = authenticate(state.store.engine, key)
    if principal is None:
        raise ApiError(
            401,
            "invalid_api_key",
            "invalid API key: it is unknown or was revoked; `governor keys list` shows the "
            "valid keys by prefix, `governor keys create` makes a new one",
            headers=challenge,
        )
    annotate(org_id=principal.org_id)
    return principal


# ---------------------------------------------------------------------------------------------
# Decision logs
# ---------------------------------------------------------------------------------------------


class BadBatch(ValueError):
    """A decision-log batch that can never be stored (the message says why)."""


def parse_batch(body: bytes, content_encoding: str | None) -> list[dict[str, Any]]:
    """The events of a `POST /logs` body: gzip (by header or magic number) or plain JSON array."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip") or body[:2] == b"\x1f\x8b":
        try:
            inflater = zlib.decompressobj(wbits=31)
            raw = inflater.decompress(body, MAX_LOG_BATCH_BYTES)
            if inflater.unconsumed_tail:
                raise BadBatch(
                    f"the decompressed batch is larger than {MAX_LOG_BATCH_BYTES} bytes: "
                    "lower decision_logs.reporting.upload_size_limit_bytes"
                )
            if not inflater.eof:
                raise BadBatch("the gzip stream is truncated")
        except zlib.error as exc:
            raise BadBatch(f"the body is not valid gzip: {exc}") from None
    elif encoding in ("", "identity"):
        raw = body
    else:
        raise BadBatch(f"unsupported Content-Encoding {content_encoding!r}: send gzip or none")
    try:
        events = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBatch(f"the batch is not valid JSON: {exc}") from None
    if not isinstance(events, list):
        raise BadBatch(
            f"the batch must be a JSON array of decision events, got {type(events).__name__}"
        )
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise BadBatch(f"event [{index}] must be an object, got {type(event).__name__}")
    return events


def _timestamp(value: Any) -> datetime:
    """OPA's RFC 3339 timestamp (nanoseconds, `Z`); now when missing or unreadable."""
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)", text)
        if match:
            fraction = (match.group(2) or "")[:7]  # Python reads at most microseconds
            text = match.group(1) + fraction + match.group(3)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return datetime.now(UTC)


def _revision(bundles: Any) -> str | None:
    """`bundles: {name: {revision}}` -> the revision, or `name=rev,...` for several."""
    if not isinstance(bundles, Mapping):
        return None
    revisions = {
        str(name): str(info.get("revision"))
        for name, info in bundles.items()
        if isinstance(info, Mapping) and info.get("revision") is not None
    }
    if len(revisions) == 1:
        return next(iter(revisions.values()))
    return ",".join(f"{n}={r}" for n, r in sorted(revisions.items())) or None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _clip(value: Any, size: int) -> str | None:
    return value[:size] if isinstance(value, str) and value else None


def _outcome(event: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The decision and reasons of an event's result (never the result's values)."""
    if "result" not in event:
        return "undefined", []
    result = event["result"]
    if isinstance(result, bool):
        return ("allow" if result else "deny"), []
    try:
        decision = Decision.from_document(result)
    except GovernanceError:
        return "unknown", []
    return decision.decision, reasons_of(decision)


def _entry(org_id: str, event: Mapping[str, Any]) -> DecisionEntry:
    decision_id = _clip(event.get("decision_id"), 255) or uuid.uuid4().hex
    path = _clip(event.get("path"), 200) or ""
    input_ = _mapping(event.get("input"))
    action = _mapping(input_.get("action"))
    subject = _mapping(input_.get("subject"))
    labels = _mapping(event.get("labels"))
    decision, reasons = _outcome(event)
    user = _clip(subject.get("user_id"), 255) or f"opa:{_clip(labels.get('id'), 200) or '-'}"
    tags = [f"opa.path:{path}"] + [
        f"opa.label:{key}={value}"[:255] for key, value in sorted(labels.items())
    ]
    digest = hashlib.sha256(f"{org_id}\0{decision_id}".encode()).hexdigest()
    return DecisionEntry(
        id=f"opa_{digest[:40]}",  # one record per (organisation, OPA decision_id)
        org_id=org_id,
        user_id=user,
        phase="opa",
        tool=_clip(action.get("name"), 255) or path or "-",
        scope=_clip(action.get("scope"), 255),
        decision=decision[:16],
        reasons=reasons,
        tags=tags,
        corr_id=decision_id,
        policy_revision=_clip(_revision(event.get("bundles")) or event.get("revision"), 255),
        created_at=_timestamp(event.get("timestamp")),
    )


def store_events(db: Engine, org_id: str, events: Sequence[Mapping[str, Any]]) -> int:
    """Record `events` as decisions of `org_id`; returns how many were new.

    Each goes through `record_decision`, like every other decision (it keeps whatever analytics
    derive from the records in step). An event already stored (same organisation and
    `decision_id`: OPA resent a batch whose answer it did not get) is skipped.
    """
    entries: dict[str, DecisionEntry] = {}
    for event in events:
        entry = _entry(org_id, event)
        entries.setdefault(entry.id, entry)
    keys = list(entries)
    existing: set[str] = set()
    with db.connect() as conn:
        for start in range(0, len(keys), 500):  # stay under every database's parameter limit
            chunk = keys[start : start + 500]
            existing.update(
                conn.execute(select(_DECISIONS.c.id).where(_DECISIONS.c.id.in_(chunk))).scalars()
            )
    stored = 0
    for key, entry in entries.items():
        if key in existing:
            continue
        try:
            record_decision(db, entry)
        except IntegrityError:  # the same batch, resent concurrently, got there first
            continue
        stored += 1
    # These decisions were made by the sidecar, not by this request: keep them out of the
    # request's log line and the server's decision counters.
    annotate(decision=None, reasons=None)
    return stored
