"""Policy files: `load_policies_from_file(path)` (YAML or JSON) and `load_policies_from_dict(d)`.

The schema:

```yaml
policies:                      # the only top-level key
  - type: rate_limit           # validation | authorization | rate_limit | audit | approval |
    name: api_calls            #   budget | rego | precheck (any case); name: optional
    enabled: true              # optional, default true; false skips the entry
    phase: pre                 # optional: pre | post | both (validation, audit, rego, precheck;
    max_calls: 100             #   the other types apply before the call only)
    window_seconds: 60         # ...and the keys of the type, below
```

| type          | keys                                                                          |
| ------------- | ----------------------------------------------------------------------------- |
| validation    | input_schema, output_schema (JSON Schema objects), strict                     |
| authorization | required_roles, required_permissions, conditions, context_key,                |
|               | require_approval_on_failure, approvers, approval_timeout_seconds              |
| rate_limit    | max_calls, window_seconds, per_user, burst_size, user_key                     |
| audit         | log_inputs, log_outputs, sensitive_fields, compliance_tags                    |
| approval      | approvers, timeout_seconds, on_timeout, quorum, stages, when, require_reason, |
|               | expires_after_seconds                                                         |
| budget        | limit, estimated_cost (micro-units), per_user, currency, warn_ratio_percent,  |
|               | reservation_ttl_seconds                                                       |
| rego          | package, entry_type, params                                                   |
| precheck      | tools, scopes, pii, approval, audit_tags                                      |

Python callables (validators, conditions, authorizers, cost functions, loggers) cannot be written
in a file; attach them in code. Unknown keys, wrong types and bad values are errors
(`ConfigurationError`) whose message names the file, the entry (index and name) and the field,
and suggests the closest valid key for a typo (`max_call` -> `max_calls`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from governor.errors import ConfigurationError
from governor.policies._checks import unknown_key
from governor.policies.approval import ApprovalPolicy
from governor.policies.audit import AuditPolicy
from governor.policies.authorization import AuthorizationPolicy
from governor.policies.base import Policy, PolicyPhase
from governor.policies.budget import BudgetPolicy
from governor.policies.precheck import SETTINGS as PRECHECK_SETTINGS
from governor.policies.precheck import PrecheckPolicy
from governor.policies.rate_limit import RateLimitPolicy
from governor.policies.rego import RegoPolicy
from governor.policies.validation import ValidationPolicy

COMMON_KEYS = ("type", "name", "enabled", "phase")

# type -> its keys; how to build a policy of that type from the checked keys
_Builder = Callable[[dict[str, Any]], Policy]
TYPE_KEYS: dict[str, tuple[str, ...]] = {
    "validation": ("input_schema", "output_schema", "strict"),
    "authorization": (
        "required_roles",
        "required_permissions",
        "conditions",
        "context_key",
        "require_approval_on_failure",
        "approvers",
        "approval_timeout_seconds",
    ),
    "rate_limit": ("max_calls", "window_seconds", "per_user", "burst_size", "user_key"),
    "audit": ("log_inputs", "log_outputs", "sensitive_fields", "compliance_tags"),
    "approval": (
        "approvers",
        "timeout_seconds",
        "on_timeout",
        "quorum",
        "stages",
        "when",
        "require_reason",
        "expires_after_seconds",
    ),
    "budget": (
        "limit",
        "estimated_cost",
        "per_user",
        "currency",
        "warn_ratio_percent",
        "reservation_ttl_seconds",
    ),
    "rego": ("package", "entry_type", "params"),
    "precheck": PRECHECK_SETTINGS,
}
_PHASED = {"validation", "audit", "rego", "precheck"}
_REQUIRED = {"rego": ("package",)}


def _rego(kwargs: dict[str, Any]) -> Policy:
    return RegoPolicy(**{("type" if k == "entry_type" else k): v for k, v in kwargs.items()})


_BUILDERS: dict[str, _Builder] = {
    "validation": lambda kw: ValidationPolicy(**kw),
    "authorization": lambda kw: AuthorizationPolicy(**kw),
    "rate_limit": lambda kw: RateLimitPolicy(**kw),
    "audit": lambda kw: AuditPolicy(**kw),
    "approval": lambda kw: ApprovalPolicy(**kw),
    "budget": lambda kw: BudgetPolicy(**kw),
    "rego": _rego,
    "precheck": lambda kw: PrecheckPolicy(**kw),
}
# "PolicyName(name='x'): " at the start of a constructor's message (the loader names the entry).
_OWNER = re.compile(r"^[A-Za-z]+(\(name=.*?\))?: ")


def load_policies_from_file(path: str | Path) -> list[Policy]:
    """The enabled policies of a YAML (`.yaml`, `.yml`) or JSON (`.json`) policy file.

    Raises `ConfigurationError` naming the file (and the entry and field) for anything wrong.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ConfigurationError(
            f"{file}: a policy file must be YAML (.yaml, .yml) or JSON (.json), got {suffix!r}"
        )
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{file}: no such policy file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{file}: cannot read the policy file: {exc}") from None
    document = _parse_json(text, file) if suffix == ".json" else _parse_yaml(text, file)
    return load_policies_from_dict(document, source=str(file))


def load_policies_from_dict(data: Any, *, source: str = "<dict>") -> list[Policy]:
    """The enabled policies of a document `{"policies": [...]}` (see the module docstring).

    `source` names the document in error messages (the file name when loading a file).
    """
    if data is None:
        raise ConfigurationError(f"{source}: the document is empty; expected {{policies: [...]}}")
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"{source}: the top level must be a mapping with a 'policies' list, "
            f"got {type(data).__name__}"
        )
    for key in data:
        if key != "policies":
            raise unknown_key(source, str(key), ["policies"], "top-level key")
    if "policies" not in data:
        raise ConfigurationError(f"{source}: the 'policies' list is missing")
    entries = data["policies"]
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ConfigurationError(
            f"{source}: 'policies' must be a list of entries, got {type(entries).__name__}"
        )
    policies: list[Policy] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(entries):
        policy = _entry(source, index, raw)
        if policy is None:
            continue
        if policy.name in seen:
            raise ConfigurationError(
                f"{_where(source, index, policy.name)}: field name: {policy.name!r} is already "
                f"the name of policies[{seen[policy.name]}]; names must be unique in a file"
            )
        seen[policy.name] = index
        policies.append(policy)
    return policies


def _where(source: str, index: int, name: Any) -> str:
    label = f" ({name!r})" if isinstance(name, str) and name else ""
    return f"{source}: policies[{index}]{label}"


def _entry(source: str, index: int, raw: Any) -> Policy | None:
    at = _where(source, index, raw.get("name") if isinstance(raw, Mapping) else None)
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{at}: an entry must be a mapping, got {type(raw).__name__}")
    if "type" not in raw:
        raise ConfigurationError(f"{at}: field type is required ({', '.join(TYPE_KEYS)})")
    kind = raw["type"]
    if not isinstance(kind, str):
        raise ConfigurationError(f"{at}: field type must be a string, got {kind!r}")
    kind = kind.strip().lower()
    if kind not in TYPE_KEYS:
        raise unknown_key(at, kind, TYPE_KEYS, "policy type")
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigurationError(f"{at}: field name must be a non-empty string, got {name!r}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigurationError(f"{at}: field enabled must be true or false, got {enabled!r}")
    allowed = set(COMMON_KEYS) | set(TYPE_KEYS[kind])
    for key in raw:
        if key not in allowed:
            raise unknown_key(f"{at}, type {kind}", str(key), allowed, "field")
    for key in _REQUIRED.get(kind, ()):
        if key not in raw:
            raise ConfigurationError(f"{at}, type {kind}: field {key} is required")
    kwargs: dict[str, Any] = {k: v for k, v in raw.items() if k in TYPE_KEYS[kind]}
    if name is not None:
        kwargs["name"] = name
    if "phase" in raw:
        phase = _phase(at, raw["phase"])
        if kind in _PHASED:
            kwargs["phase"] = phase
        elif phase is not PolicyPhase.PRE_EXECUTION:
            raise ConfigurationError(
                f"{at}: field phase: {kind} policies apply before the call only, got "
                f"{raw['phase']!r}"
            )
    if not enabled:
        return None
    try:
        return _BUILDERS[kind](kwargs)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{at}, type {kind}: {_OWNER.sub('', str(exc))}") from None


def _phase(at: str, value: Any) -> PolicyPhase:
    try:
        return PolicyPhase(value)
    except ValueError:
        raise ConfigurationError(
            f"{at}: field phase must be pre, post or both, got {value!r}"
        ) from None


def _parse_json(text: str, file: Path) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise ConfigurationError(f"{file}: duplicate key {key!r}")
            out[key] = value
        return out

    if not text.strip():
        return None
    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{file}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
        ) from None


class _StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            mark = key_node.start_mark
            raise ConfigurationError(
                f"{mark.name}:{mark.line + 1}:{mark.column + 1}: duplicate key {key!r}"
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_yaml(text: str, file: Path) -> Any:
    try:
        loader = _StrictLoader(text)
        loader.name = str(file)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{file}: not valid YAML: {exc}") from None
