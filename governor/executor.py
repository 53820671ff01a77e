"""The lifecycle of one governed call: facts, one decision, enforcement, records.

For a call of a function governed by `@govern` (`governor.decorator`), in order:

1. **pre-actions** (`pre=`), each with the call's `ExecutionContext`;
2. **facts**: the arguments bound by parameter name (defaults applied), the subject (from the
   decorator's `context=` merged with `governor.context`), every pre-phase policy's
   `gather_facts` and `entries`;
3. **one decision** (`data.governor.decision`) for the whole pre phase. When a policy needs the
   store's counts (`RateLimitPolicy`, `BudgetPolicy`) the evaluation happens inside ONE store
   transaction that locks their keys: count -> evaluate -> record the call (unless denied) /
   reserve the estimate (on allow) -> commit. Only that section holds the locks: the
   `pre_execution` snapshot is captured after it. Async callers run store work where the
   store's work is done (`_is_blocking`): on the event loop for the in-memory and SQLite
   stores, in the loop's default pool for stores across a network. The execution, its
   `awaiting_approval` snapshot and its first events are written before the function runs only
   when there is an approval to wait for; otherwise everything (the execution, the
   `pre_execution` snapshot captured at this point when `capture_state=True`, the events and
   the audit record) is written in ONE transaction after the call, and an async caller on a
   blocking store makes no worker-thread hop before the function runs unless there is a
   locked section or an approval;
4. **enforcement**: `deny` raises `PolicyViolation` (`RateLimitExceeded` for rate limits) and the
   function never runs; `confirm` goes to the `ApprovalManager` (the execution and its arguments
   are stored as `awaiting_approval` first); `redact` rewrites the named string arguments (and
   the records hold the redacted text); `allow` runs the function;
5. **post phase**, only when a policy applies after the call: a second evaluation over the result
   (a deny withholds the result). Policies whose Rego reads no output (`AuditPolicy`,
   `reads_output = False`) are not evaluated again when they also applied before the call:
   their answer (masks, tags) is the pre decision's (`_post_mode`);
6. **post-actions** (`post=`), then the final records: the budget hold settled with the actual
   cost (released if the function failed), the execution, the `post_execution` snapshot,
   events, and exactly one audit record per call (also for denied, failed and pending calls).
   They are built in the caller's thread (`_final_records`) and written as one batch
   (`StorageBackend.save_records`) in one transaction, committed before the caller gets
   the result.

Everything stored or emitted is made JSON-safe (`governor.serialization.to_json`) and masked with
the decision's `audit.mask` plus the `AuditPolicy` `sensitive_fields`, positional arguments
included (they are mapped to their parameter names first). Events are stored with the records
of their step and handed to the emitter's handlers as the call goes (a denied call's after its
records are stored).

Sync functions run the same lifecycle in their caller's thread (`Executor.run_sync`); user
coroutines they meet (an async validator or hook) run without a nested `asyncio.run`
(`runtime.run_sync`).
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from governor import runtime
from governor.approvals.manager import (
    ApprovalManager,
    ApprovalOutcome,
    ApprovalRequest,
    get_default_approval_manager,
)
from governor.approvals.request import arguments_hash, build_request
from governor.context import merge_contexts, subject_from_context
from governor.decision import Decision, DecisionMemo, decide, decide_async
from governor.engine.base import Engine
from governor.errors import (
    ApprovalClosed,
    ApprovalMismatch,
    ApprovalNotFound,
    ApprovalPending,
    ApprovalRejected,
    GovernanceError,
    PolicyViolation,
    RateLimitExceeded,
)
from governor.events.base import Event, EventType
from governor.events.emitter import EventEmitter, get_default_emitter
from governor.policies.base import CallInfo, Policy
from governor.serialization import MASK, decode, encode, mask, to_json
from governor.storage import (
    InMemoryStorage,
    SQLStorage,
    StorageBackend,
    get_default_storage,
    month_period,
)
from governor.storage.base import Transaction
from governor.storage.records import (
    ApprovalRecord,
    ApprovalStatus,
    AuditRecord,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    SnapshotRecord,
    new_id,
    utcnow,
)

__all__ = [
    "ApprovalManager",
    "ApprovalOutcome",
    "ApprovalRequest",
    "ExecutionContext",
    "Executor",
    "StateCallback",
]

logger = logging.getLogger("governor.executor")

#: A pre- or post-action: `action(ctx)`, sync or async.
Action = Callable[["ExecutionContext"], Any]
#: `on_state_saved(execution_id, state)`, sync or async.
StateCallback = Callable[[str, dict[str, Any]], Any]

_INSTANCE_NAMES = ("self", "cls")


# -- what actions and approval managers see --------------------------------------------------------


@dataclass
class ExecutionContext:
    """One governed call as pre-/post-actions see it (governor 0.2.0's `ExecutionContext`).

    `inputs` is `{"args": [...], "kwargs": {...}}` in JSON-safe form; `args`/`kwargs` are the real
    objects. `metadata` is the call's merged context. `decision` is set once the engine decided,
    `outputs` after the function returned.
    """

    execution_id: str
    function_name: str
    function_module: str
    function_qualname: str
    inputs: dict[str, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    metadata: dict[str, Any]
    status: ExecutionStatus = ExecutionStatus.PENDING
    started_at: datetime = field(default_factory=utcnow)
    decision: Decision | None = None
    outputs: Any = None
    error: str | None = None
    current_checkpoint: str | None = None
    checkpoint_history: list[str] = field(default_factory=list)

    def add_checkpoint(self, name: str) -> None:
        """Record that the call reached checkpoint `name`."""
        self.current_checkpoint = name
        self.checkpoint_history.append(name)


# -- binding arguments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    """Where one positional argument goes: parameter `name`, element `index` of a `*name`."""

    name: str
    index: int | None = None


class _Binder:
    """A function's signature, analysed once: binds calls and maps arguments to names."""

    def __init__(self, func: Callable[..., Any], *, method: bool | None = None) -> None:
        self.signature = inspect.signature(func)
        params = list(self.signature.parameters.values())
        if method is None:
            qualname = getattr(func, "__qualname__", "")
            method = bool(
                params
                and params[0].name in _INSTANCE_NAMES
                and params[0].kind
                in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                and "." in qualname.replace(".<locals>.", "")
            )
        self.instance_name = params[0].name if method and params else None
        self.var_positional = next(
            (p.name for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL), None
        )
        self.var_keyword = next(
            (p.name for p in params if p.kind is inspect.Parameter.VAR_KEYWORD), None
        )
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.positional_names = [p.name for p in params if p.kind in positional]
        # Plain `def f(a, b=1)` signatures (the usual case) are bound without inspect's binder.
        self.simple = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
        self.defaults = {p.name: p.default for p in params if p.default is not p.empty}

    def _bind_simple(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """`{name: value}` for a simple signature, or None to let inspect bind (and raise)."""
        names = self.positional_names
        if len(args) > len(names):
            return None
        arguments = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key in arguments or key not in names:
                return None
            arguments[key] = value
        if len(arguments) < len(names):
            for name in names:
                if name not in arguments:
                    if name not in self.defaults:
                        return None
                    arguments[name] = self.defaults[name]
            arguments = {name: arguments[name] for name in names}
        return arguments

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Bound:
        """Bind one call (raises `TypeError` like the function would for a bad call)."""
        arguments = self._bind_simple(args, kwargs) if self.simple else None
        if arguments is None:
            bound = self.signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = bound.arguments
        named: dict[str, Any] = {}
        instance: Any = None
        for name, value in arguments.items():
            if name == self.instance_name:
                instance = value
            elif name == self.var_keyword:
                named.update(value)
            else:
                named[name] = value
        slots: list[_Slot] = []
        positional_names = self.positional_names
        for i in range(len(args)):
            if i < len(positional_names):
                slots.append(_Slot(positional_names[i]))
            elif self.var_positional is not None:
                slots.append(_Slot(self.var_positional, i - len(positional_names)))
        if self.instance_name is not None and slots and slots[0].name == self.instance_name:
            slots = slots[1:]
            args = args[1:]
        return _Bound(
            binder=self,
            named=named,
            slots=tuple(slots),
            keywords=tuple(kwargs),
            args=args,
            kwargs=dict(kwargs),
            instance=instance,
        )


@dataclass
class _Bound:
    """One bound call: arguments by name (defaults applied, `**kwargs` extras by their own
    names, no `self`), and how to put them back into a call."""

    binder: _Binder
    named: dict[str, Any]
    slots: tuple[_Slot, ...]
    keywords: tuple[str, ...]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    instance: Any

    def positional(self, named: Mapping[str, Any]) -> list[Any]:
        """The positional arguments as passed, read from `named` (a plain, encoded or masked
        copy of `self.named`)."""
        out: list[Any] = []
        for slot in self.slots:
            value = named.get(slot.name, MASK)
            if slot.index is not None:
                value = value[slot.index] if isinstance(value, list | tuple) else MASK
            out.append(value)
        return out

    def passed_keywords(self, named: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments as passed, read from `named`."""
        return {k: named.get(k, MASK) for k in self.keywords}

    def inputs(self, named: Any) -> Any:
        """0.2.0's `{"args": [...], "kwargs": {...}}` as passed, from `named` (MASK stays MASK)."""
        if not isinstance(named, Mapping):
            return named
        return {"args": self.positional(named), "kwargs": self.passed_keywords(named)}

    def call_args(self, named: Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """`(args, kwargs)` to call the function with, from real objects by name."""
        args = list(self.positional(named))
        if self.instance is not None and self.binder.instance_name is not None:
            args.insert(0, self.instance)
        return tuple(args), self.passed_keywords(named)


def _shape(bound: _Bound, plain: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`input.args` (by name, plus "args"/"kwargs" when free) and `inputs` for the policies.

    "args" holds the positional arguments as passed and "kwargs" EVERY argument by name, as
    `governor.policies._checks.call_arguments` shows them to user callables.
    """
    shape = {"args": bound.positional(plain), "kwargs": dict(plain)}
    doc = dict(plain)
    for key in ("args", "kwargs"):
        doc.setdefault(key, shape[key])
    return doc, shape


# -- redactions ------------------------------------------------------------------------------------


class _RedactionError(GovernanceError):
    """A redaction the decision asks for cannot be applied to this call."""


def _redact_text(text: str, spans: list[Mapping[str, Any]], path: str) -> str:
    """`text` with each span replaced; overlapping spans are merged (the first's replacement)."""
    merged: list[list[Any]] = []
    for span in sorted(spans, key=lambda s: (int(s["start"]), -int(s["end"]))):
        start, end = int(span["start"]), int(span["end"])
        if end > len(text):
            raise _RedactionError(f"the redaction of {path} does not fit its text")
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, str(span.get("replacement", ""))])
    for start, end, replacement in reversed(merged):
        text = text[:start] + replacement + text[end:]
    return text


def _apply_at(value: Any, parts: list[str], spans: list[Mapping[str, Any]], path: str) -> Any:
    """`value` with the text at `parts` redacted; containers along the path are copied."""
    if not parts:
        if not isinstance(value, str):
            raise _RedactionError(f"{path} is not text ({type(value).__name__})")
        return _redact_text(value, spans, path)
    head, rest = parts[0], parts[1:]
    if isinstance(value, Mapping) and head in value:
        copied = dict(value)
        copied[head] = _apply_at(value[head], rest, spans, path)
        return copied
    if isinstance(value, list | tuple) and head.isdigit() and int(head) < len(value):
        items = list(value)
        items[int(head)] = _apply_at(items[int(head)], rest, spans, path)
        return type(value)(items) if isinstance(value, tuple) else items
    raise _RedactionError(f"{path} does not name a value of this call")


def _redaction_groups(
    redactions: Iterable[Mapping[str, Any]],
    normalize: Callable[[str], list[str]] = lambda path: path.split("."),
) -> dict[tuple[str, ...], list[Mapping[str, Any]]]:
    """Redactions by the value they apply to, each span once.

    The same text can be reported under several paths (`args.message`, and `args.args.0` and
    `args.kwargs.message` of the documented shape); `normalize` maps each path to one.
    """
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    seen: set[tuple[tuple[str, ...], int, int]] = set()
    for r in redactions:
        key = tuple(normalize(str(r["path"])))
        span = (key, int(r["start"]), int(r["end"]))
        if span not in seen:
            seen.add(span)
            groups.setdefault(key, []).append(r)
    return groups


def _argument_path(bound: _Bound, named: Mapping[str, Any], path: str) -> list[str]:
    """`args.<name>...` for a redaction path, the shape's `args.args.<i>` and
    `args.kwargs.<name>` mapped to the parameter they are."""
    parts = path.split(".")
    if parts[0] != "args" or len(parts) < 2:
        raise _RedactionError(
            f"{path} is not an argument of this call (a governed function has no raw_text)"
        )
    rest = parts[1:]
    if rest[0] == "args" and "args" not in named and len(rest) > 1 and rest[1].isdigit():
        index = int(rest[1])
        if index >= len(bound.slots):
            raise _RedactionError(f"{path} does not name a positional argument")
        slot = bound.slots[index]
        rest = [slot.name] + ([str(slot.index)] if slot.index is not None else []) + rest[2:]
    elif rest[0] == "kwargs" and "kwargs" not in named and len(rest) > 1:
        rest = rest[1:]
    if rest[0] not in named:
        raise _RedactionError(f"{path} does not name an argument of this call")
    return rest


def _redact_arguments(bound: _Bound, redactions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The call's real arguments by name with the decision's redactions applied."""
    named = dict(bound.named)
    groups = _redaction_groups(redactions, lambda path: _argument_path(bound, named, path))
    for key, spans in groups.items():
        path = "args." + ".".join(key)
        named[key[0]] = _apply_at(named[key[0]], list(key[1:]), spans, path)
    return named


def _redact_output(output: Any, redactions: Sequence[Mapping[str, Any]]) -> Any:
    for key, spans in _redaction_groups(redactions).items():
        path = ".".join(key)
        if key[0] != "output":
            raise _RedactionError(f"{path} is not part of the result")
        output = _apply_at(output, list(key[1:]), spans, path)
    return output


# -- one call --------------------------------------------------------------------------------------


def _is_blocking(store: StorageBackend) -> bool:
    """Whether async callers hand the store's work to a worker thread (else: run it inline).

    Inline, on the event loop, for the stores that work in process: in memory, and SQLite,
    whose statements are microseconds of in-process work like the evaluation in the locked
    section (that holds the GIL wherever it runs). A thread hop each way cost more than the
    work: ~0.5 ms per call on a 2-vCPU VM (bench/decorator.py), the precheck server's finding
    too (server/governor_server/workers.py). What can make the loop wait is a write waiting
    for the file's write lock: another thread of this process inside a transaction (short), or
    another process writing the same file; several processes sharing a store is PostgreSQL's
    job (ARCHITECTURE §5). PostgreSQL and stores of other kinds go to the loop's default pool.
    """
    if isinstance(store, InMemoryStorage):
        return False
    return not (isinstance(store, SQLStorage) and store.backend == "sqlite")


@dataclass
class _Call:
    """The state of one governed call while it goes through the lifecycle."""

    spec: _Spec
    bound: _Bound
    ctx: ExecutionContext
    context: dict[str, Any]
    subject: dict[str, Any]
    plain: dict[str, Any]
    started: float
    # Events as the store keeps them; handlers get `Event`s made from them, only when they exist.
    events: list[EventRecord] = field(default_factory=list)  # not yet handed to handlers
    unsaved: list[EventRecord] = field(default_factory=list)  # not yet in the store
    decision: Decision | None = None
    post_decision: Decision | None = None
    mask_fields: set[str] = field(default_factory=set)
    reservation: tuple[StorageBackend, str] | None = None
    budget_policy: Any = None
    call_info: CallInfo | None = None
    recorded: bool = False  # the execution is in the store
    started_event: bool = False  # execution.started was queued
    saved_states: list[dict[str, Any]] = field(default_factory=list)
    pending_snapshots: list[SnapshotRecord] = field(default_factory=list)  # not yet stored
    audit: AuditRecord | None = None
    masked_cache: tuple[frozenset[str], Any] | None = None
    arguments_cache: tuple[frozenset[str], dict[str, Any]] | None = None
    returned: bool = False  # the function returned (its cost was incurred)
    result: Any = None
    approval_stored: bool = False  # an ApprovalRecord holds the call's arguments

    @property
    def execution_id(self) -> str:
        return self.ctx.execution_id


@dataclass
class _Spec:
    """Everything fixed for one decorated function."""

    func: Callable[..., Any]
    binder: _Binder
    name: str
    module: str
    qualname: str
    policies: tuple[Policy, ...]
    pre_actions: tuple[Action, ...]
    post_actions: tuple[Action, ...]
    capture_state: bool
    static_context: dict[str, Any]
    user_key: str
    static_mask: frozenset[str]
    #: The pre-phase policies that need the store's counts (fixed per function).
    rate_limits: tuple[Policy, ...] = ()
    budgets: tuple[Policy, ...] = ()
    #: How the post phase is decided: "none" (no policy applies after the call), "pre" (only
    #: policies whose post answer is their pre answer: taken from the pre decision) or
    #: "evaluate" (a second evaluation over the result).
    post: str = "none"
    #: The pre decision, while Rego declares it constant (`DecisionMemo`).
    memo: DecisionMemo = field(default_factory=DecisionMemo)

    @property
    def full_name(self) -> str:
        return f"{self.module}.{self.qualname}" if self.module else self.qualname


@dataclass
class _FinalRecords:
    """What the final transaction of a call writes (`Executor._final_records`)."""

    execution: ExecutionRecord
    snapshots: list[SnapshotRecord]
    events: list[EventRecord]
    audit: AuditRecord


class _Mode(ABC):
    """How the lifecycle meets the outside world: async (await) or sync (caller's thread)."""

    is_async = True

    @abstractmethod
    async def io(self, store: StorageBackend, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a store call."""

    @abstractmethod
    async def user(self, make: Callable[[], Any]) -> Any:
        """Run user code (the function, actions, handlers)."""

    @abstractmethod
    async def emit(self, emitter: EventEmitter, events: list[EventRecord]) -> None:
        """Deliver events (`_handed_out`)."""

    @abstractmethod
    async def decide(self, engine: Engine, document: Any, fail_open: bool) -> Decision:
        """Evaluate the decision."""


class _AsyncMode(_Mode):
    async def io(self, store: StorageBackend, fn: Callable[..., Any], *args: Any) -> Any:
        if not _is_blocking(store):
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def user(self, make: Callable[[], Any]) -> Any:
        result = make()
        if inspect.isawaitable(result):
            return await result
        return result

    async def emit(self, emitter: EventEmitter, events: list[EventRecord]) -> None:
        if emitter.has_handlers():
            for record in events:
                await emitter.emit(_handed_out(record))

    async def decide(self, engine: Engine, document: Any, fail_open: bool) -> Decision:
        # the engine's async form: an OPA sidecar's request does not block the event loop
        return await decide_async(engine, document, fail_open=fail_open)


class _SyncMode(_Mode):
    is_async = False

    async def io(self, store: StorageBackend, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    async def user(self, make: Callable[[], Any]) -> Any:
        result = make()
        if not inspect.isawaitable(result):
            return result
        return runtime.run_sync(lambda: result)

    async def emit(self, emitter: EventEmitter, events: list[EventRecord]) -> None:
        if emitter.has_handlers():
            for record in events:
                emitter.emit_sync(_handed_out(record))

    async def decide(self, engine: Engine, document: Any, fail_open: bool) -> Decision:
        return decide(engine, document, fail_open=fail_open)


_ASYNC = _AsyncMode()
_SYNC = _SyncMode()


def _drive(coroutine: Any) -> Any:
    """Run a lifecycle coroutine in sync mode: it never suspends, so one `send` finishes it."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("governor: the sync lifecycle suspended; this is a bug in governor")


class Executor:
    """Runs governed calls. One per decorated function (cheap); shares the process's store,
    emitter and engine unless given others.

    `storage`, `emitter` and `engine` default to `get_default_storage()`,
    `get_default_emitter()` and `runtime.get_engine()`, looked up at call time.
    """

    def __init__(
        self,
        storage: StorageBackend | None = None,
        emitter: EventEmitter | None = None,
        approval_manager: ApprovalManager | None = None,
        approval_handler: Any = None,
        on_state_saved: StateCallback | None = None,
        engine: Engine | None = None,
    ) -> None:
        self._storage = storage
        self._emitter = emitter
        self._engine = engine
        self.approval_handler = approval_handler
        self._approval_manager = approval_manager
        self.on_state_saved = on_state_saved

    @property
    def approval_manager(self) -> ApprovalManager:
        """Who waits for people's decisions (any object with `request_approval` and
        `request_approval_sync`; default: the process's shared `ApprovalManager`)."""
        if self._approval_manager is not None:
            return self._approval_manager
        return get_default_approval_manager()

    @property
    def storage(self) -> StorageBackend:
        """The store records go to."""
        return self._storage if self._storage is not None else get_default_storage()

    @property
    def emitter(self) -> EventEmitter:
        """The emitter events go to."""
        return self._emitter if self._emitter is not None else get_default_emitter()

    @property
    def engine(self) -> Engine:
        """The engine that decides."""
        return self._engine if self._engine is not None else runtime.get_engine()

    # -- entry points ----------------------------------------------------------------------------

    def spec(
        self,
        func: Callable[..., Any],
        *,
        policies: Sequence[Policy] = (),
        pre_actions: Sequence[Action] = (),
        post_actions: Sequence[Action] = (),
        capture_state: bool = True,
        context: Mapping[str, Any] | None = None,
        method: bool | None = None,
    ) -> _Spec:
        """Analyse a function once for `run`/`run_sync` (the decorator does this)."""
        user_key = "user"
        static_mask: set[str] = set()
        for policy in policies:
            if getattr(policy, "policy_type", "") == "authorization":
                user_key = str(getattr(policy, "context_key", user_key))
            for name in getattr(policy, "sensitive_fields", None) or ():
                static_mask.add(str(name))
        target = inspect.unwrap(func)
        policies = tuple(policies)
        return _Spec(
            func=func,
            binder=_Binder(target, method=method),
            name=getattr(target, "__name__", type(target).__name__),
            module=getattr(target, "__module__", "") or "",
            qualname=getattr(target, "__qualname__", getattr(target, "__name__", "")),
            policies=policies,
            pre_actions=tuple(pre_actions),
            post_actions=tuple(post_actions),
            capture_state=capture_state,
            static_context=dict(context or {}),
            user_key=user_key,
            static_mask=frozenset(static_mask),
            rate_limits=tuple(
                p for p in policies if p.policy_type == "rate_limit" and p.applies("pre")
            ),
            budgets=tuple(p for p in policies if p.policy_type == "budget" and p.applies("pre")),
            post=_post_mode(policies),
        )

    async def execute(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        pre_actions: Sequence[Action] = (),
        post_actions: Sequence[Action] = (),
        policies: Sequence[Policy] = (),
        capture_state: bool = True,
        context_data: Mapping[str, Any] | None = None,
    ) -> Any:
        """Govern one call of `func` (governor 0.2.0's signature); async or sync `func`."""
        spec = self.spec(
            func,
            policies=policies,
            pre_actions=pre_actions,
            post_actions=post_actions,
            capture_state=capture_state,
            context=context_data,
        )
        return await self.run(spec, args, kwargs)

    async def run(self, spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Govern one call of an async (or sync) function from async code."""
        return await self._lifecycle(_ASYNC, spec, args, kwargs)

    def run_sync(self, spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Govern one call of a sync function in the caller's thread."""
        return _drive(self._lifecycle(_SYNC, spec, args, kwargs))

    # -- the lifecycle ---------------------------------------------------------------------------

    async def _lifecycle(
        self, mode: _Mode, spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = self._start(spec, args, kwargs)
        store, emitter = self.storage, self.emitter
        try:
            for action in spec.pre_actions:
                await self._action(mode, call, action, "pre")
            call.ctx.add_checkpoint("pre_policies")
            await self._decide_pre(mode, call, store)
        except BaseException as exc:
            await self._finish_failed(mode, call, store, emitter, exc, ran=False)
            raise
        decision = call.decision
        assert decision is not None
        if decision.decision != "deny":  # a denied call's events go out with its outcome
            await mode.emit(emitter, self._take_events(call))
        try:
            if decision.decision == "deny":
                raise self._violation(call, decision, "pre")
            if decision.decision == "confirm":
                await self._approve(mode, call, store, emitter)
        except BaseException as exc:
            await self._finish_failed(mode, call, store, emitter, exc, ran=False)
            raise
        return await self._execute_call(mode, call, store, emitter)

    async def _execute_call(
        self, mode: _Mode, call: _Call, store: StorageBackend, emitter: EventEmitter
    ) -> Any:
        """Run the function of an allowed (or approved) call, then the post phase and records."""
        call_args, call_kwargs = call.bound.call_args(call.bound.named)
        call.ctx.status = ExecutionStatus.RUNNING
        call.ctx.add_checkpoint("execution")
        try:
            result = call.spec.func(*call_args, **call_kwargs)
            if mode.is_async and inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            await self._finish_failed(mode, call, store, emitter, exc, ran=True)
            raise
        call.returned, call.result = True, result
        try:
            result = await self._after(mode, call, result)
        except BaseException as exc:
            await self._finish_failed(mode, call, store, emitter, exc, ran=True)
            raise
        await self._finish_completed(mode, call, store, emitter, result)
        return result

    # -- resuming an approved call -----------------------------------------------------------------

    async def resume(self, spec: _Spec, execution_id: str) -> Any:
        """Run an approved execution with its stored arguments, exactly once (async callers).

        Claims the execution `approved -> running` (a second resumer gets `ApprovalClosed`),
        checks the arguments against the hash the approval was given for, runs the undecorated
        function, then the post phase and the final records, as a call that was never paused.
        Raises `ApprovalPending` while the request waits, `ApprovalRejected` once it was
        refused or expired, `ApprovalMismatch` when the stored arguments are gone or altered.
        """
        return await self._resume(_ASYNC, spec, execution_id)

    def resume_sync(self, spec: _Spec, execution_id: str) -> Any:
        """`resume` in the caller's thread (for sync functions)."""
        return _drive(self._resume(_SYNC, spec, execution_id))

    async def _resume(self, mode: _Mode, spec: _Spec, execution_id: str) -> Any:
        store, emitter = self.storage, self.emitter
        record = await mode.io(store, store.get_approval, execution_id)
        if record is None:
            raise ApprovalNotFound(f"no approval request for execution {execution_id}")
        _check_resumable(record, spec)
        claimed = await mode.io(
            store,
            store.claim_execution,
            execution_id,
            ExecutionStatus.APPROVED,
            ExecutionStatus.RUNNING,
        )
        if not claimed:
            raise ApprovalClosed(
                f"execution {execution_id} ({record.function_name}) is already running or done: "
                "another worker resumed it"
            )
        try:
            args, kwargs = _restore_arguments(record, spec)
        except GovernanceError as exc:
            await mode.io(store, _record_unresumable, store, record, spec, exc)
            raise
        call = self._start(spec, tuple(args), kwargs)
        call.ctx.execution_id = execution_id
        call.subject = dict(record.subject)
        call.recorded = call.started_event = call.approval_stored = True
        call.decision = Decision(**record.decision)
        call.ctx.decision = call.decision
        call.mask_fields.update(str(m) for m in call.decision.audit.get("mask", ()) or ())
        call.ctx.add_checkpoint("resume")
        self._event(
            call,
            EventType.STATE_RESTORED,
            {
                "approved_by": record.decided_by,
                "votes": [
                    {"stage": v.stage, "approver": v.approver, "approved": v.approved}
                    for v in record.votes
                ],
            },
        )
        return await self._execute_call(mode, call, store, emitter)

    def _start(self, spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
        bound = spec.binder.bind(args, kwargs)
        context = merge_contexts(spec.static_context)
        subject = subject_from_context(context, spec.user_key)
        plain = {k: to_json(v) for k, v in bound.named.items()}
        ctx = ExecutionContext(
            execution_id=new_id(),
            function_name=spec.name,
            function_module=spec.module,
            function_qualname=spec.qualname,
            inputs=bound.inputs(plain),
            args=bound.args,
            kwargs=bound.kwargs,
            metadata=context,
        )
        return _Call(
            spec=spec,
            bound=bound,
            ctx=ctx,
            context=context,
            subject=subject,
            plain=plain,
            started=time.perf_counter(),
            mask_fields=set(spec.static_mask),
        )

    async def _action(self, mode: _Mode, call: _Call, action: Action, kind: str) -> None:
        started, completed, failed = (
            (
                EventType.PRE_ACTION_STARTED,
                EventType.PRE_ACTION_COMPLETED,
                EventType.PRE_ACTION_FAILED,
            )
            if kind == "pre"
            else (
                EventType.POST_ACTION_STARTED,
                EventType.POST_ACTION_COMPLETED,
                EventType.POST_ACTION_FAILED,
            )
        )
        name = str(getattr(action, "__qualname__", None) or repr(action))
        call.ctx.add_checkpoint(f"{kind}_actions")
        self._event(call, started, {"action": name})
        try:
            await mode.user(lambda: action(call.ctx))
        except Exception as exc:
            self._event(call, failed, {"action": name, "error_type": type(exc).__name__})
            raise
        self._event(call, completed, {"action": name})

    # -- facts and the pre decision ---------------------------------------------------------------

    def _call_info(
        self, call: _Call, phase: str, output: Any = None, raw_output: Any = None
    ) -> CallInfo:
        args_doc, shape = _shape(call.bound, call.plain)
        return CallInfo(
            execution_id=call.execution_id,
            function_name=call.spec.full_name,
            phase=phase,
            args=args_doc,
            inputs=shape,
            raw_args=call.bound.args,
            raw_kwargs=call.bound.kwargs,
            subject=call.subject,
            context=call.context,
            output=output,
            raw_output=raw_output,
            raw_bound=call.bound.named,
        )

    async def _gather(
        self, mode: _Mode, call: _Call, info: CallInfo, phase: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        facts: dict[str, Any] = {}
        for policy in call.spec.policies:
            if not policy.applies(phase):
                continue
            if _gathers_nothing(policy):
                found: Any = {}
            else:
                found = await mode.user(lambda p=policy: p.gather_facts(info))  # type: ignore[misc]
                found = found if isinstance(found, Mapping) else {}
            entries.extend(policy.entries(found))
            _merge_facts(facts, found)
        return entries, facts

    def _input(
        self,
        call: _Call,
        info: CallInfo,
        phase: str,
        entries: list[dict[str, Any]],
        facts: dict[str, Any],
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            "version": 1,
            "phase": phase,
            "action": {
                "kind": "function",
                "name": call.spec.qualname,
                "scope": call.context.get("scope"),
                "tags": [str(t) for t in call.context.get("tags", ()) or ()],
            },
            "subject": call.subject,
            "args": info.args,
            "policies": entries,
            "facts": {"now": time.time_ns(), **facts},
        }
        if phase == "post":
            document["output"] = info.output
        return document

    async def _decide_pre(self, mode: _Mode, call: _Call, store: StorageBackend) -> None:
        info = self._call_info(call, "pre")
        call.call_info = info
        self._subject_for_rate_limits(call, info)
        entries, facts = await self._gather(mode, call, info, "pre")
        spec = call.spec
        engine = self.engine
        fail_open = runtime.fail_open()
        if spec.rate_limits or spec.budgets:
            budgets = list(spec.budgets)
            estimate = self._estimate(budgets[0], info) if budgets else None
            await mode.io(
                store,
                self._locked_section,
                call,
                store,
                engine,
                fail_open,
                self._input(call, info, "pre", entries, facts),
                list(spec.rate_limits),
                budgets,
                estimate,
            )
            if not self._writes_before_call(call):
                # the pre_execution snapshot is captured here, outside the keys' locks
                self._write_pre(call, None)
        else:
            decision = spec.memo.get(engine, "pre", entries)
            if decision is None:
                document = self._input(call, info, "pre", entries, facts)
                decision = await mode.decide(engine, document, fail_open)
                spec.memo.learn(engine, document, decision)
            call.decision = decision
            self._after_decision(call, decision)
            if self._writes_before_call(call):  # a worker-thread hop only when there is I/O
                await mode.io(store, self._commit_pre, call, store)
            else:
                self._write_pre(call, None)
        call.ctx.decision = call.decision

    def _subject_for_rate_limits(self, call: _Call, info: CallInfo) -> None:
        """Rego's `rate_limit.no_user` reads `subject.user_id`: give it the policy's user."""
        if "user_id" in call.subject:
            return
        for policy in call.spec.policies:
            if policy.policy_type == "rate_limit" and getattr(policy, "per_user", False):
                user = policy.user_id(info)  # type: ignore[attr-defined]
                if user is not None:
                    call.subject["user_id"] = user
                    return

    @staticmethod
    def _estimate(policy: Any, info: CallInfo) -> int | None:
        try:
            return int(policy.estimate(info))
        except Exception as exc:
            logger.warning(
                "governor: BudgetPolicy %s could not estimate the cost (%s: %s); the budget check "
                "will refuse the call",
                policy.name,
                type(exc).__name__,
                exc,
            )
            return None

    def _locked_section(
        self,
        call: _Call,
        store: StorageBackend,
        engine: Engine,
        fail_open: bool,
        document: dict[str, Any],
        rate_limits: list[Any],
        budgets: list[Any],
        estimate: int | None,
    ) -> None:
        """count -> decide -> record/reserve -> write, in one transaction under the keys' locks."""
        info = call.call_info
        assert info is not None
        keys: dict[str, tuple[Any, str]] = {}
        windows: dict[str, float] = {}
        for policy in rate_limits:
            key = policy.key(info)
            if key is not None:
                keys[policy.name] = (policy, key)
                windows[key] = float(policy.window_seconds)
        budget = budgets[0] if budgets else None
        budget_key = budget.key(info) if budget is not None else None
        with store.transaction(
            rate_limit_keys=windows or None,
            budget_keys=[budget_key] if budget_key else (),
        ) as tx:
            facts = document["facts"]
            for name, (policy, key) in keys.items():
                facts.setdefault("rate_limit", {})[name] = {
                    "count": tx.count(key),
                    "window_seconds": policy.window_seconds,
                }
            if budget is not None and budget_key is not None:
                facts["budget"] = self._budget_fact(tx, budget, budget_key, estimate)
            decision = decide(engine, document, fail_open=fail_open)
            call.decision = decision
            self._after_decision(call, decision)
            if decision.decision != "deny":
                for _, key in keys.values():
                    tx.record(key)
            if (
                budget is not None
                and budget_key is not None
                and estimate is not None
                and decision.decision in ("allow", "redact")
            ):
                hold = tx.reserve(
                    budget_key,
                    estimate,
                    float(budget.reservation_ttl_seconds),
                    call.execution_id,
                    currency=budget.currency,
                )
                call.reservation = (store, hold)
                call.budget_policy = budget
            if self._writes_before_call(call):  # the approval's records commit with the count
                self._write_pre(call, tx)

    @staticmethod
    def _budget_fact(
        tx: Transaction, policy: Any, key: str, estimate: int | None
    ) -> dict[str, Any]:
        start, end = month_period(tx.now_utc)
        spent = tx.facts(key, start, end)
        fact: dict[str, Any] = {
            "spent": spent["spent"],
            "reserved": spent["reserved"],
            "estimated_cost": estimate,
            "currency": policy.currency,
        }
        if policy.limit is not None:
            fact["limit"] = policy.limit
        return fact

    def _after_decision(self, call: _Call, decision: Decision) -> None:
        call.mask_fields.update(str(m) for m in decision.audit.get("mask", ()) or ())
        redaction_error: _RedactionError | None = None
        if decision.redactions and decision.decision != "deny":
            # Applied now, before anything is written: records, snapshots and events then hold
            # the redacted arguments the function receives, never the redacted text.
            try:
                call.bound.named = _redact_arguments(call.bound, decision.redactions)
                call.plain = {k: to_json(v) for k, v in call.bound.named.items()}
                call.masked_cache = call.arguments_cache = None
            except _RedactionError as exc:
                redaction_error = exc
                call.mask_fields.update(str(r["path"]) for r in decision.redactions)
        self._event(
            call,
            EventType.POLICY_EVALUATED,
            {
                "phase": "pre",
                "decision": decision.decision,
                "reasons": list(decision.reasons),
                "violations": [dict(v) for v in decision.violations],
                "revision": decision.revision,
                "engine": decision.engine,
            },
        )
        if decision.decision == "deny":
            self._event(
                call,
                EventType.POLICY_VIOLATED,
                {
                    "phase": "pre",
                    "reasons": list(decision.reasons),
                    "violations": [dict(v) for v in decision.violations],
                },
            )
        if redaction_error is not None:
            raise PolicyViolation(
                f"{call.spec.qualname} was refused: the policy decision asks to redact "
                f"{redaction_error}, which cannot be done, so the call did not run "
                f"[reasons: {', '.join(decision.reasons) or 'redact'}; execution "
                f"{call.execution_id}]",
                decision=decision,
                execution_id=call.execution_id,
                function_name=call.spec.name,
            )

    @staticmethod
    def _writes_before_call(call: _Call) -> bool:
        """Whether the execution is stored before the function runs: only for an approval,
        whose pending execution and saved arguments must be committed before anyone is asked.

        Otherwise ONE transaction after the call writes everything: the execution, the
        `pre_execution` snapshot (captured now, stored then), the events and the audit record.
        A call that is not denied has nothing to lose before it returns, and the caller is told
        nothing before that transaction committed. (The rate-limit/budget locked section still
        commits its counts and holds before the function runs: that is what makes them exact.)
        """
        decision = call.decision
        assert decision is not None
        return decision.decision == "confirm"

    def _commit_pre(self, call: _Call, store: StorageBackend) -> None:
        with store.transaction() as tx:
            self._write_pre(call, tx)

    def _write_pre(self, call: _Call, tx: Transaction | None) -> None:
        """The pre-phase records, masked: the execution, its started event, the snapshots.

        Written through `tx` only for an approval (`_writes_before_call`); otherwise the
        `pre_execution` snapshot is captured now and stored with the final records.
        """
        decision = call.decision
        assert decision is not None
        self._queue_started(call)
        if decision.decision == "deny":
            return  # written once, with its audit record, by _finish_failed
        if not self._writes_before_call(call) or tx is None:
            if call.spec.capture_state:
                call.ctx.status = ExecutionStatus.RUNNING
                self._snapshot(call, None, "pre_execution", output=None, has_output=False)
            return
        status = ExecutionStatus.AWAITING_APPROVAL
        call.ctx.status = status
        tx.save_execution(self._execution_record(call, status))
        call.recorded = True
        if call.spec.capture_state:
            self._snapshot(call, tx, "pre_execution", output=None, has_output=False)
        self._snapshot(call, tx, "awaiting_approval", output=None, has_output=False)
        tx.add_approval(self._approval_record(call))
        call.approval_stored = True
        self._save_unsaved(call, tx)

    def _approval_record(self, call: _Call) -> ApprovalRecord:
        """The request committed with the pending execution: who may approve (the decision's
        block, the policies' stage settings), and the call's restorable arguments."""
        decision = call.decision
        assert decision is not None
        args, kwargs = call.bound.call_args(call.bound.named)
        return build_request(
            execution_id=call.execution_id,
            function_name=call.spec.name,
            function_qualname=call.spec.qualname,
            function_path=call.spec.full_name,
            approval=decision.approval,
            policies=[p for p in call.spec.policies if p.applies("pre")],
            arguments=_resume_arguments(args, kwargs),
            inputs=self._masked_inputs(call),
            subject=mask(call.subject, call.mask_fields),
            reasons=decision.reasons,
            decision=_stored_decision(decision),
        )

    @staticmethod
    def _save_unsaved(call: _Call, tx: Transaction) -> None:
        for record in call.unsaved:
            tx.save_event(record)
        call.unsaved = []

    def _queue_started(self, call: _Call) -> None:
        """Put `execution.started` first among the call's events (once), masked."""
        if call.started_event:
            return
        call.started_event = True
        started = EventRecord(
            event_type=EventType.EXECUTION_STARTED.value,
            data={
                "function_name": call.spec.name,
                "data": mask(
                    {"inputs": self._masked_inputs(call), "subject": call.subject},
                    call.mask_fields,
                ),
            },
            execution_id=call.execution_id,
            timestamp=call.ctx.started_at,
        )
        call.events.insert(0, started)
        call.unsaved.insert(0, started)

    # -- approval ---------------------------------------------------------------------------------

    async def _approve(
        self, mode: _Mode, call: _Call, store: StorageBackend, emitter: EventEmitter
    ) -> None:
        decision = call.decision
        assert decision is not None
        approval = dict(decision.approval)
        call.ctx.add_checkpoint("approval")
        self._event(
            call,
            EventType.APPROVAL_REQUESTED,
            {
                "approvers": list(approval.get("approvers", [])),
                "stages": list(approval.get("stages", [])),
                "timeout_seconds": approval.get("timeout_seconds", 0),
                "quorum": approval.get("quorum", 0),
                "reasons": list(decision.reasons),
            },
        )
        await mode.io(store, self._save_events, call, store)
        await mode.emit(emitter, self._take_events(call))
        request = ApprovalRequest(
            execution_id=call.execution_id,
            function_name=call.spec.name,
            function_qualname=call.spec.qualname,
            approval=approval,
            decision=decision,
            inputs=self._masked_inputs(call),
            arguments=self._arguments(call),
            subject=call.subject,
            storage=store,
            emitter=emitter,
            handler=self.approval_handler,
            policies=tuple(p for p in call.spec.policies if p.applies("pre")),
            function=call.spec.func,
        )
        manager = self.approval_manager
        if mode.is_async:
            outcome = await manager.request_approval(request)
        else:
            sync = getattr(manager, "request_approval_sync", None)
            outcome = (
                sync(request)
                if sync is not None
                else runtime.run_sync(lambda: manager.request_approval(request))
            )
        # the store's request records a decision made through it, with its event
        closed = await mode.io(store, store.get_approval, call.execution_id)
        in_store = closed is not None and closed.status is not ApprovalStatus.PENDING
        if outcome.status == "approved":
            claimed = await mode.io(store, _claim_approved, store, call.execution_id)
            if not claimed:
                raise ApprovalPending(
                    f"{call.spec.qualname}: execution {call.execution_id} was approved, but "
                    "another worker has already taken it over; its result will be stored there",
                    execution_id=call.execution_id,
                    approval=approval,
                    decision=decision,
                    function_name=call.spec.name,
                )
            self._event(
                call,
                EventType.APPROVAL_GRANTED,
                {"approver": outcome.approver, "reason": outcome.reason},
                stored=in_store,
            )
            call.ctx.status = ExecutionStatus.APPROVED
            return
        if outcome.status == "rejected":
            self._event(
                call,
                EventType.APPROVAL_REJECTED,
                {"approver": outcome.approver, "reason": outcome.reason},
                stored=in_store,
            )
            raise ApprovalRejected(
                f"{call.spec.qualname} was rejected by {outcome.approver or 'an approver'}"
                f"{': ' + outcome.reason if outcome.reason else ''}; it did not run "
                f"(execution {call.execution_id})",
                execution_id=call.execution_id,
                approver=outcome.approver,
                reason=outcome.reason,
                decision=decision,
                function_name=call.spec.name,
            )
        raise ApprovalPending(
            f"{call.spec.qualname} needs approval by "
            f"{', '.join(request.approvers) or 'an approver'} "
            f"before it runs; it is stored as execution {call.execution_id} "
            f"({', '.join(decision.reasons) or 'confirm'}). Approve or reject it, then resume it",
            execution_id=call.execution_id,
            approval=approval,
            decision=decision,
            function_name=call.spec.name,
        )

    def _save_events(self, call: _Call, store: StorageBackend) -> None:
        if not call.unsaved:
            return
        with store.transaction() as tx:
            self._save_unsaved(call, tx)

    # -- after the call ----------------------------------------------------------------------------

    async def _after(self, mode: _Mode, call: _Call, result: Any) -> Any:
        spec = call.spec
        call.ctx.outputs = result
        if spec.post == "pre":
            # Only policies whose post-phase answer IS their pre-phase answer (an AuditPolicy:
            # its masks and tags depend on its parameters, never on the output) apply after
            # the call: their answer is taken from the pre decision instead of evaluating again.
            call.ctx.add_checkpoint("post_policies")
            decision = _post_from_pre(call.decision)
            call.post_decision = decision
            self._event(
                call,
                EventType.POLICY_EVALUATED,
                {
                    "phase": "post",
                    "decision": decision.decision,
                    "reasons": list(decision.reasons),
                    "violations": [dict(v) for v in decision.violations],
                    "revision": decision.revision,
                    "engine": decision.engine,
                    "from_pre_decision": True,
                },
            )
        elif spec.post == "evaluate":
            call.ctx.add_checkpoint("post_policies")
            output = to_json(result)
            info = self._call_info(call, "post", output=output, raw_output=result)
            entries, facts = await self._gather(mode, call, info, "post")
            document = self._input(call, info, "post", entries, facts)
            decision = await mode.decide(self.engine, document, runtime.fail_open())
            call.post_decision = decision
            call.mask_fields.update(str(m) for m in decision.audit.get("mask", ()) or ())
            self._event(
                call,
                EventType.POLICY_EVALUATED,
                {
                    "phase": "post",
                    "decision": decision.decision,
                    "reasons": list(decision.reasons),
                    "violations": [dict(v) for v in decision.violations],
                    "revision": decision.revision,
                    "engine": decision.engine,
                },
            )
            if decision.decision in ("deny", "confirm"):
                self._event(
                    call,
                    EventType.POLICY_VIOLATED,
                    {
                        "phase": "post",
                        "reasons": list(decision.reasons),
                        "violations": [dict(v) for v in decision.violations],
                    },
                )
                raise self._violation(call, decision, "post")
            if decision.redactions:
                result = _redact_output(result, decision.redactions)
                call.ctx.outputs = result
        for action in spec.post_actions:
            await self._action(mode, call, action, "post")
        return result

    def _violation(self, call: _Call, decision: Decision, phase: str) -> PolicyViolation:
        messages = [str(v.get("message", "")) for v in decision.violations if v.get("message")]
        reasons = ", ".join(decision.reasons) or "no reason given"
        if phase == "pre":
            head = f"{call.spec.qualname} was denied by policy and did not run"
        elif decision.decision == "confirm":
            head = (
                f"{call.spec.qualname} ran, but its result needs a confirmation that cannot be "
                "given after the call; the result is withheld"
            )
        else:
            head = f"{call.spec.qualname} ran, but its result was denied by policy and is withheld"
        detail = " ".join(messages) if messages else "See the reasons."
        message = f"{head}: {detail} [reasons: {reasons}; execution {call.execution_id}]"
        cls: type[PolicyViolation] = PolicyViolation
        if any(r.startswith("rate_limit.") for r in decision.reasons):
            cls = RateLimitExceeded
        elif any(
            r.startswith(("approval.rejected:", "approval.expired:")) for r in decision.reasons
        ):
            cls = ApprovalRejected
        return cls(
            message,
            decision=decision,
            execution_id=call.execution_id,
            function_name=call.spec.name,
            phase=phase,
        )

    # -- final records -----------------------------------------------------------------------------

    async def _finish_completed(
        self, mode: _Mode, call: _Call, store: StorageBackend, emitter: EventEmitter, result: Any
    ) -> None:
        duration = (time.perf_counter() - call.started) * 1000.0
        call.ctx.status = ExecutionStatus.COMPLETED
        output = to_json(result)
        final = self._final_records(
            call, ExecutionStatus.COMPLETED, result, output, duration, None, "completed"
        )
        await mode.io(store, self._commit_final, call, store, ExecutionStatus.COMPLETED, final)
        await self._after_commit(mode, call, emitter)

    async def _finish_failed(
        self,
        mode: _Mode,
        call: _Call,
        store: StorageBackend,
        emitter: EventEmitter,
        exc: BaseException,
        *,
        ran: bool,
    ) -> None:
        duration = (time.perf_counter() - call.started) * 1000.0
        if isinstance(exc, ApprovalPending) or (
            call.approval_stored and not ran and not isinstance(exc, PolicyViolation)
        ):
            # a caller that stops waiting (timeout, cancellation, a crash of the manager) leaves
            # the request pending: it can still be decided, and resumed by a worker
            status, outcome = ExecutionStatus.AWAITING_APPROVAL, "awaiting_approval"
        elif isinstance(exc, ApprovalRejected):
            status, outcome = ExecutionStatus.REJECTED, "rejected"
        elif isinstance(exc, PolicyViolation):
            status, outcome = ExecutionStatus.FAILED, "denied"
        elif isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            status, outcome = ExecutionStatus.CANCELLED, "cancelled"
        else:
            status, outcome = ExecutionStatus.FAILED, "failed" if ran or call.decision else "error"
        call.ctx.status = status
        call.ctx.error = str(exc)
        try:
            final = self._final_records(call, status, None, None, duration, exc, outcome)
            await mode.io(store, self._commit_final, call, store, status, final)
        except Exception:
            logger.exception(
                "governor: could not store the outcome of execution %s (%s); the original error "
                "is raised to the caller",
                call.execution_id,
                outcome,
            )
            return
        try:
            await self._after_commit(mode, call, emitter)
        except Exception:
            logger.exception(
                "governor: after-commit hooks of execution %s failed", call.execution_id
            )

    def _final_records(
        self,
        call: _Call,
        status: ExecutionStatus,
        result: Any,
        output: Any,
        duration: float,
        exc: BaseException | None,
        outcome: str,
    ) -> _FinalRecords:
        """Build the call's final records, masked: the execution, the snapshots (pre_execution,
        captured before the call, and post_execution), the events not yet stored and the one
        audit record. Pure computation, done in the caller's thread: the worker thread of an
        async caller on a blocking store (`_commit_final`) only writes."""
        self._queue_started(call)
        record = self._execution_record(call, status)
        if exc is None:
            record.outputs = self._masked_output(call, output)
        elif not isinstance(exc, ApprovalPending):
            record.error = _error_text(exc)
            record.error_type = type(exc).__name__
        record.duration_ms = duration
        record.completed_at = utcnow()
        if exc is None and call.spec.capture_state:
            self._snapshot(call, None, "post_execution", output=result, has_output=True)
        if exc is None:
            self._event(
                call,
                EventType.EXECUTION_COMPLETED,
                {"outputs": record.outputs, "duration_ms": duration},
            )
        elif not isinstance(exc, ApprovalPending):
            self._event(
                call,
                EventType.EXECUTION_CANCELLED
                if outcome == "cancelled"
                else EventType.EXECUTION_FAILED,
                {
                    "error": _error_text(exc),
                    "error_type": type(exc).__name__,
                    "outcome": outcome,
                },
            )
        return _FinalRecords(
            execution=record,
            snapshots=list(call.pending_snapshots),
            events=list(call.unsaved),
            audit=self._audit_record(call, outcome, record.outputs, duration, exc),
        )

    def _commit_final(
        self, call: _Call, store: StorageBackend, status: ExecutionStatus, final: _FinalRecords
    ) -> None:
        """Settle or release the budget hold, then write the execution, snapshots, events and the
        call's one audit record (`_final_records`) in one transaction."""
        # a result the post phase withholds still cost what it cost: settle it
        self._settle(call, store, call.result, succeeded=call.returned)
        # An execution waiting for approval belongs to the approval from the moment it was
        # stored: any process may approve and resume it meanwhile, so it is never written over
        # here (that could undo a resume). A rejection takes it over by a status transition.
        write_execution = status is not ExecutionStatus.AWAITING_APPROVAL
        if status is ExecutionStatus.REJECTED and call.recorded:
            # closed by the approver's vote already (rejected, expired), or by this call now
            write_execution = store.claim_execution(
                call.execution_id, ExecutionStatus.AWAITING_APPROVAL, ExecutionStatus.REJECTED
            ) or store.claim_execution(
                call.execution_id, ExecutionStatus.REJECTED, ExecutionStatus.REJECTED
            )
        execution = final.execution if write_execution else None
        if call.approval_stored and status is not ExecutionStatus.AWAITING_APPROVAL:
            with store.transaction() as tx:  # the request's arguments go with the call's end
                _erase_arguments(tx, call.execution_id)
                audit = tx.save_records(
                    execution=execution,
                    snapshots=final.snapshots,
                    events=final.events,
                    audit=final.audit,
                )
        else:
            audit = store.save_records(
                execution=execution,
                snapshots=final.snapshots,
                events=final.events,
                audit=final.audit,
            )
        if write_execution:
            call.recorded = True
        call.pending_snapshots = []
        call.unsaved = []
        call.audit = audit

    def _settle(self, call: _Call, store: StorageBackend, result: Any, *, succeeded: bool) -> None:
        if call.reservation is None:
            return
        _, hold = call.reservation
        call.reservation = None
        policy = call.budget_policy
        try:
            if succeeded and call.call_info is not None:
                actual = policy.actual(call.call_info, result)
                if actual is None:
                    estimate = self._estimate(policy, call.call_info)
                    actual = estimate if estimate is not None else 0
                store.settle(hold, actual, execution_id=call.execution_id)
            else:
                store.release(hold)
        except Exception:
            logger.exception(
                "governor: could not settle/release budget hold %s of execution %s; it expires "
                "by itself after %ss",
                hold,
                call.execution_id,
                getattr(policy, "reservation_ttl_seconds", "?"),
            )

    async def _after_commit(self, mode: _Mode, call: _Call, emitter: EventEmitter) -> None:
        """After the records are committed: handlers, `on_state_saved`, the audit logger."""
        await mode.emit(emitter, self._take_events(call))
        saved, call.saved_states = call.saved_states, []
        if saved and self.on_state_saved is not None:
            callback = self.on_state_saved
            for state in saved:
                try:
                    await mode.user(lambda s=state: callback(call.execution_id, s))  # type: ignore[misc]
                except Exception:
                    logger.exception(
                        "governor: on_state_saved raised for execution %s; the call is not "
                        "affected. Fix the callback.",
                        call.execution_id,
                    )
        audit = call.audit
        if audit is None:
            return
        for policy in call.spec.policies:
            if getattr(policy, "custom_logger", None) is None or not hasattr(policy, "log"):
                continue
            try:
                await mode.user(lambda p=policy: p.log(_audit_dict(audit)))  # type: ignore[misc]
            except Exception:
                logger.exception(
                    "governor: the custom_logger of %s raised for execution %s",
                    policy.name,
                    call.execution_id,
                )

    # -- records -----------------------------------------------------------------------------------

    def _masked_named(self, call: _Call, output: Any = None) -> tuple[Any, Any]:
        document = {"args": call.plain, "output": output}
        masked = mask(document, _mask_paths(call))
        return masked["args"], masked["output"]

    def _masked_inputs(self, call: _Call) -> Any:
        key = frozenset(call.mask_fields)
        cached = call.masked_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        named, _ = self._masked_named(call)
        inputs = call.bound.inputs(named)
        call.masked_cache = (key, inputs)
        return inputs

    def _masked_output(self, call: _Call, output: Any) -> Any:
        _, masked = self._masked_named(call, output)
        return masked

    def _arguments(self, call: _Call) -> dict[str, Any]:
        """The restorable, masked arguments: `{"args", "kwargs"}` as passed, `encode`d (once per
        set of mask fields: the snapshots of a call share them, as stored records may)."""
        key = frozenset(call.mask_fields)
        cached = call.arguments_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        arguments = self._encode_arguments(call)
        call.arguments_cache = (key, arguments)
        return arguments

    def _encode_arguments(self, call: _Call) -> dict[str, Any]:
        encoded = {k: encode(v) for k, v in call.bound.named.items()}
        masked = mask({"args": encoded}, _mask_paths(call))["args"]
        if not isinstance(masked, Mapping):
            return {"args": [], "kwargs": {}, "masked": True}
        fields = sorted(call.mask_fields)
        return {
            "args": call.bound.positional(masked),
            "kwargs": call.bound.passed_keywords(masked),
            "masked": bool(fields) and masked != encoded,
        }

    def _execution_record(self, call: _Call, status: ExecutionStatus) -> ExecutionRecord:
        spec = call.spec
        decision = call.post_decision if _is_refusal(call.post_decision) else call.decision
        context = mask(to_json(call.context), call.mask_fields) if call.context else {}
        return ExecutionRecord(
            id=call.execution_id,
            function_name=spec.name,
            function_module=spec.module,
            function_qualname=spec.qualname,
            status=status,
            inputs=self._masked_inputs(call),
            started_at=call.ctx.started_at,
            metadata={
                "context": context,
                "subject": call.subject,
                "policies": [p.name for p in spec.policies],
                "checkpoints": list(call.ctx.checkpoint_history),
            },
            decision=decision.decision if decision is not None else None,
            policy_revision=decision.revision if decision is not None else None,
        )

    def _snapshot(
        self,
        call: _Call,
        tx: Transaction | None,
        checkpoint: str,
        *,
        output: Any,
        has_output: bool,
    ) -> None:
        """Capture a snapshot: stored through `tx`, or (None) kept for the final transaction."""
        decision = call.decision
        state: dict[str, Any] = {
            "checkpoint": checkpoint,
            "function": {
                "name": call.spec.name,
                "module": call.spec.module,
                "qualname": call.spec.qualname,
            },
            "arguments": self._arguments(call),
            "decision": _decision_doc(decision),
        }
        if has_output:
            state["output"] = mask({"output": encode(output)}, call.mask_fields)["output"]
        snapshot = SnapshotRecord(
            execution_id=call.execution_id, checkpoint=checkpoint, state=state, captured_at=utcnow()
        )
        if tx is not None:
            snapshot = tx.save_snapshot(snapshot)
        else:
            call.pending_snapshots.append(snapshot)
        call.ctx.add_checkpoint(checkpoint)
        self._event(
            call,
            EventType.STATE_CAPTURED,
            {"checkpoint": checkpoint, "snapshot_id": snapshot.id},
        )
        if self.on_state_saved is None:
            return  # nobody reads the payload (`_after_commit`)
        payload = {
            "execution_id": call.execution_id,
            "function_name": call.spec.name,
            "status": call.ctx.status.value,
            "checkpoint": checkpoint,
            "snapshot_id": snapshot.id,
            "inputs": self._masked_inputs(call),
            "captured_at": (snapshot.captured_at or utcnow()).isoformat(),
            "approval_required": checkpoint == "awaiting_approval",
        }
        if checkpoint == "awaiting_approval":
            payload["approval"] = dict(decision.approval) if decision is not None else {}
            payload["timeout"] = True
        call.saved_states.append(payload)

    def _audit_record(
        self,
        call: _Call,
        outcome: str,
        masked_output: Any,
        duration: float,
        exc: BaseException | None,
    ) -> AuditRecord:
        spec = call.spec
        pre, post = call.decision, call.post_decision
        effective = post if _is_refusal(post) else pre
        reasons = list(pre.reasons) if pre is not None else []
        if post is not None:
            reasons += [r for r in post.reasons if r not in reasons]
        body: dict[str, Any] = {
            "function": {"name": spec.name, "module": spec.module, "qualname": spec.qualname},
            "outcome": outcome,
            "subject": call.subject,
            "inputs": self._masked_inputs(call),
            "violations": [dict(v) for v in pre.violations] if pre is not None else [],
            "tags": sorted(
                {str(t) for d in (pre, post) if d is not None for t in d.audit.get("tags", ())}
            ),
            "engine": pre.engine if pre is not None else None,
        }
        if exc is None and outcome == "completed":
            body["output"] = masked_output
        if post is not None:
            body["post"] = _decision_doc(post)
        if pre is not None and pre.decision == "confirm":
            body["approval"] = dict(pre.approval)
        if exc is not None and not isinstance(exc, PolicyViolation | ApprovalPending):
            body["error"] = {"type": type(exc).__name__, "message": _error_text(exc)}
        return AuditRecord(
            action=f"function:{spec.full_name}",
            decision=effective.decision if effective is not None else "error",
            execution_id=call.execution_id,
            actor=str(call.subject["user_id"]) if "user_id" in call.subject else None,
            reasons=reasons,
            policy_revision=effective.revision if effective is not None else None,
            duration_ms=duration,
            record=body,
        )

    # -- events ------------------------------------------------------------------------------------

    def _event(
        self, call: _Call, event_type: EventType, data: dict[str, Any], *, stored: bool = False
    ) -> None:
        """Queue an event for the handlers and (unless the store has it already) the store."""
        record = EventRecord(
            event_type=event_type.value,
            data={"function_name": call.spec.name, "data": mask(data, call.mask_fields)},
            execution_id=call.execution_id,
            timestamp=utcnow(),
        )
        call.events.append(record)
        if not stored:
            call.unsaved.append(record)

    @staticmethod
    def _take_events(call: _Call) -> list[EventRecord]:
        events, call.events = call.events, []
        return events


# -- helpers ---------------------------------------------------------------------------------------


def _handed_out(record: EventRecord) -> Event:
    """The `Event` handlers receive for a queued record: its data a copy, so that a handler
    changing it changes nothing stored."""
    envelope = cast(dict[str, Any], record.data)
    return Event(
        event_type=EventType(record.event_type),
        execution_id=record.execution_id,
        function_name=envelope["function_name"],
        data=dict(envelope["data"]),
        event_id=record.id,
        timestamp=record.timestamp or utcnow(),
    )


def _mask_paths(call: _Call) -> set[str]:
    """The call's mask fields, with paths into the documented shape (`args.args.<i>`,
    `args.kwargs.<name>`) also given as the argument they name, so they mask it everywhere."""
    fields = set(call.mask_fields)
    named = call.plain
    for field_path in call.mask_fields:
        if not field_path.startswith(("args.args.", "args.kwargs.")):
            continue
        try:
            fields.add("args." + ".".join(_argument_path(call.bound, named, field_path)))
        except _RedactionError:
            continue
    return fields


def _post_mode(policies: Sequence[Policy]) -> str:
    """How a function's post phase is decided (`_Spec.post`).

    "none" when no policy applies after the call. "pre" when every policy that does is one whose
    Rego package reads neither `input.output` nor `input.phase` (`reads_output = False`, e.g.
    `AuditPolicy`), also applies before the call (so its entry was in the pre evaluation) and
    gathers no facts of its own: the second evaluation would give back the pre decision's
    audit answer, so it is not run. "evaluate" otherwise (output validation, user post
    policies, custom checks, a post-only audit policy).
    """
    post = [p for p in policies if p.applies("post")]
    if not post:
        return "none"
    if all(
        getattr(p, "reads_output", True) is False and p.applies("pre") and _gathers_nothing(p)
        for p in post
    ):
        return "pre"
    return "evaluate"


def _post_from_pre(pre: Decision | None) -> Decision:
    """The post-phase decision of audit-only post policies, from the pre decision: they never
    change a decision (allow), keep their own warnings and the pre decision's audit answer."""
    assert pre is not None
    violations = tuple(v for v in pre.violations if v.get("type") == "audit")
    return Decision(
        decision="allow",
        reasons=tuple(r for r in pre.reasons if r.startswith("audit.")),
        violations=violations,
        approval={
            "required": False,
            "approvers": [],
            "stages": [],
            "timeout_seconds": 0,
            "quorum": 0,
        },
        redactions=(),
        audit=pre.audit,
        revision=pre.revision,
        engine=pre.engine,
    )


def _gathers_nothing(policy: Policy) -> bool:
    """A policy that keeps the base `gather_facts` and is no custom check has no facts to give."""
    return type(policy).gather_facts is Policy.gather_facts and not policy.is_custom_check()


def _merge_facts(into: dict[str, Any], found: Mapping[str, Any]) -> None:
    """Merge a policy's facts two levels deep: `facts[kind][name]`."""
    for kind, value in found.items():
        current = into.get(kind)
        if isinstance(current, dict) and isinstance(value, Mapping):
            current.update(value)
        elif isinstance(value, Mapping):
            into[kind] = dict(value)
        else:
            into[kind] = value


def _is_refusal(decision: Decision | None) -> bool:
    return decision is not None and decision.decision in ("deny", "confirm")


def _claim_approved(store: StorageBackend, execution_id: str) -> bool:
    """Take an approved execution to `running`, exactly once across workers and processes.

    `approved -> running` when the store's request was approved (the `ApprovalManager`); a
    manager of the application's own that decides without the store leaves the execution
    `awaiting_approval`, so that transition is the fallback.
    """
    running = ExecutionStatus.RUNNING
    return store.claim_execution(
        execution_id, ExecutionStatus.APPROVED, running
    ) or store.claim_execution(execution_id, ExecutionStatus.AWAITING_APPROVAL, running)


def _erase_arguments(tx: Transaction, execution_id: str) -> None:
    """The call is over: its unmasked arguments leave the approval request."""
    record = tx.load_approval(execution_id)
    if record is not None and record.arguments is not None:
        record.arguments = None
        tx.update_approval(record)


def _check_resumable(record: ApprovalRecord, spec: _Spec) -> None:
    status = record.status
    if status is ApprovalStatus.PENDING:
        raise ApprovalPending(
            f"execution {record.execution_id} ({record.function_name}) is still waiting for "
            f"approval by {', '.join(record.current_stage.approvers) or 'an approver'}",
            execution_id=record.execution_id,
            approval=record.decision.get("approval", {}),
            function_name=record.function_name,
        )
    if status is not ApprovalStatus.APPROVED:
        by = f" by {record.decided_by}" if record.decided_by else ""
        raise ApprovalRejected(
            f"execution {record.execution_id} ({record.function_name}) was {status.value}{by}"
            f"{': ' + record.reason if record.reason else ''}; it will not run",
            execution_id=record.execution_id,
            function_name=record.function_name,
            approver=record.decided_by,
            reason=record.reason,
        )
    if record.function_name != spec.name:
        raise ApprovalMismatch(
            f"execution {record.execution_id} was approved for {record.function_name}, not "
            f"{spec.name}; resume it with that function"
        )


def _restore_arguments(record: ApprovalRecord, spec: _Spec) -> tuple[list[Any], dict[str, Any]]:
    """The approved arguments, after checking they are the ones the approval was given for."""
    stored = record.arguments
    if not isinstance(stored, Mapping):
        raise ApprovalMismatch(
            f"execution {record.execution_id}: its arguments are no longer stored; it cannot run"
        )
    if arguments_hash(spec.full_name, stored) != record.args_hash:
        raise ApprovalMismatch(
            f"execution {record.execution_id}: the stored arguments are not the ones that were "
            "approved (their hash differs); it will not run. Check who changed the approval row"
        )
    args = [decode(a, path=f"args[{i}]") for i, a in enumerate(stored.get("args", []))]
    kwargs = {k: decode(v, path=f"kwargs.{k}") for k, v in dict(stored.get("kwargs", {})).items()}
    return args, kwargs


def _record_unresumable(
    store: StorageBackend, record: ApprovalRecord, spec: _Spec, exc: Exception
) -> None:
    """An approved execution that cannot run: marked failed, with an audit record saying why."""
    now = utcnow()
    with store.transaction() as tx:
        _erase_arguments(tx, record.execution_id)
        tx.append_audit_record(
            AuditRecord(
                action=f"function:{spec.full_name}",
                decision="confirm",
                execution_id=record.execution_id,
                actor=str(record.subject["user_id"]) if "user_id" in record.subject else None,
                reasons=list(record.reasons),
                record={"outcome": "failed", "error": _error_text(exc), "resume": True},
                timestamp=now,
            )
        )
    store.update_execution(
        record.execution_id,
        status=ExecutionStatus.FAILED,
        error=_error_text(exc),
        error_type=type(exc).__name__,
        completed_at=now,
    )


def _resume_arguments(args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a resume calls the function with, `encode`d (restorable, unmasked)."""
    return {"args": [encode(a) for a in args], "kwargs": {k: encode(v) for k, v in kwargs.items()}}


def _stored_decision(decision: Decision) -> dict[str, Any]:
    """The decision as an approval request keeps it (a resume rebuilds it for the records)."""
    return {
        "decision": decision.decision,
        "reasons": list(decision.reasons),
        "violations": [dict(v) for v in decision.violations],
        "approval": dict(decision.approval),
        "redactions": [dict(r) for r in decision.redactions],
        "audit": dict(decision.audit),
        "revision": decision.revision,
        "engine": decision.engine,
    }


def _decision_doc(decision: Decision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {
        "decision": decision.decision,
        "reasons": list(decision.reasons),
        "revision": decision.revision,
        "engine": decision.engine,
    }


def _error_text(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _audit_dict(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "seq": record.seq,
        "execution_id": record.execution_id,
        "timestamp": record.timestamp.isoformat() if record.timestamp else None,
        "actor": record.actor,
        "action": record.action,
        "decision": record.decision,
        "reasons": list(record.reasons),
        "policy_revision": record.policy_revision,
        "duration_ms": record.duration_ms,
        "record": copy.deepcopy(record.record),  # the store's own (see save_records)
        "hash": record.hash,
    }
