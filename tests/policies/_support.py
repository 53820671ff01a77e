"""What the policy tests share: a call built the way the executor builds one, and a decision
through a real engine from a list of policies (their entries and facts, as the executor merges
them)."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from governor.decision import Decision, decide
from governor.engine.base import Engine
from governor.policies import CallInfo, Policy


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def make_call(
    func: Callable[..., Any],
    *args: Any,
    phase: str = "pre",
    subject: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    output: Any = None,
    **kwargs: Any,
) -> CallInfo:
    """The `CallInfo` of `func(*args, **kwargs)`: bound arguments by name plus the documented
    {"args", "kwargs"} shape, JSON-safe, and the real objects beside them."""
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    raw_bound = dict(bound.arguments)
    inputs = _json({"args": list(args), "kwargs": kwargs})
    by_name = _json(raw_bound)
    for key in ("args", "kwargs"):
        by_name.setdefault(key, inputs[key])
    return CallInfo(
        execution_id="exec-1",
        function_name=func.__name__,
        phase=phase,
        args=by_name,
        inputs=inputs,
        raw_args=tuple(args),
        raw_kwargs=dict(kwargs),
        subject=dict(subject or {}),
        context=dict(context or {}),
        output=_json(output),
        raw_output=output,
        raw_bound=raw_bound,
    )


def merge_facts(*parts: Mapping[str, Any]) -> dict[str, Any]:
    """Merge partial `input.facts` documents two levels deep (later parts win)."""
    out: dict[str, Any] = {}
    for part in parts:
        for kind, value in part.items():
            if isinstance(value, Mapping) and isinstance(out.get(kind), Mapping):
                merged = dict(out[kind])
                for name, item in value.items():
                    if isinstance(item, Mapping) and isinstance(merged.get(name), Mapping):
                        merged[name] = {**merged[name], **item}
                    else:
                        merged[name] = item
                out[kind] = merged
            else:
                out[kind] = value
    return out


async def contribution(
    policies: Iterable[Policy], call: CallInfo
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The entries and merged facts of the policies that apply in the call's phase."""
    entries: list[dict[str, Any]] = []
    facts: list[dict[str, Any]] = []
    for policy in policies:
        if not policy.applies(call.phase):
            continue
        gathered = await policy.gather_facts(call)
        facts.append(gathered)
        entries.extend(policy.entries(gathered))
    return entries, merge_facts(*facts)


def build_input(
    policies: Iterable[Policy], call: CallInfo, facts: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The decision input for the call (`facts` are the executor's, merged last)."""
    entries, gathered = asyncio.run(contribution(policies, call))
    document: dict[str, Any] = {
        "version": 1,
        "phase": call.phase,
        "action": {"kind": "function", "name": call.function_name, "scope": "", "tags": []},
        "subject": call.subject,
        "args": call.args,
        "policies": entries,
        "facts": merge_facts(gathered, facts or {}),
    }
    if call.phase == "post":
        document["output"] = call.output
    return document


def decision(
    engine: Engine,
    policies: Iterable[Policy],
    call: CallInfo,
    facts: Mapping[str, Any] | None = None,
) -> Decision:
    """The decision of a real engine on the call."""
    return decide(engine, build_input(list(policies), call, facts))


def minimal_input(entry: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """The smallest decision input around one entry."""
    document: dict[str, Any] = {
        "version": 1,
        "phase": "pre",
        "action": {"kind": "function", "name": "f", "scope": "", "tags": []},
        "subject": {},
        "args": {},
        "policies": [dict(entry)],
        "facts": {},
    }
    document.update(fields)
    return document
