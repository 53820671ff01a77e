"""`@govern` and `@govern_class`: governor 0.2.0's decorators, decided by the Rego library.

```python
from governor import govern, RateLimitPolicy, AuditPolicy

@govern(policies=[AuditPolicy(sensitive_fields=["card"]), RateLimitPolicy(max_calls=10)])
async def pay(amount: int, card: str) -> dict: ...

@govern()                      # sync functions too: governed in the caller's thread
def lookup(customer_id: str) -> dict: ...
```

The lifecycle is `governor.executor`'s. Without `storage=`, `emitter=` or `engine=`, every
decorated function shares the process's store (`get_default_storage()`), emitter
(`get_default_emitter()`) and engine (`governor.runtime.get_engine()`), looked up at call time.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from governor.engine.base import Engine
from governor.errors import ConfigurationError
from governor.events.emitter import EventEmitter
from governor.executor import (
    Action,
    ApprovalManager,
    Executor,
    StateCallback,
)
from governor.policies.base import Policy
from governor.storage import StorageBackend

__all__ = ["govern", "govern_all", "govern_class"]

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


def _policies(value: Policy | Sequence[Policy] | None) -> tuple[Policy, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, Policy) else list(value)
    for i, policy in enumerate(items):
        if not isinstance(policy, Policy):
            raise ConfigurationError(
                f"govern(policies=...): item {i} is {type(policy).__name__} {policy!r}, not a "
                "Policy; use the policy classes (RateLimitPolicy(...), ...) or "
                "load_policies_from_file"
            )
    return tuple(items)


def _actions(value: Action | Sequence[Action] | None, name: str) -> tuple[Action, ...]:
    if value is None:
        return ()
    items = [value] if callable(value) else list(value)
    for i, action in enumerate(items):
        if not callable(action):
            raise ConfigurationError(
                f"govern({name}=...): item {i} is {type(action).__name__}, not callable; an "
                "action is a function taking the ExecutionContext (sync or async)"
            )
    return tuple(items)


def govern(
    policies: Policy | Sequence[Policy] | None = None,
    pre: Action | Sequence[Action] | None = None,
    post: Action | Sequence[Action] | None = None,
    capture_state: bool = True,
    storage: StorageBackend | None = None,
    emitter: EventEmitter | None = None,
    approval_handler: Any = None,
    approval_manager: ApprovalManager | None = None,
    context: Mapping[str, Any] | None = None,
    on_state_saved: StateCallback | None = None,
    engine: Engine | None = None,
    *,
    _method: bool | None = None,
) -> Callable[[F], F]:
    """Govern a function: every call is decided by the Rego library and recorded.

    - `policies`: policy configurations (`RateLimitPolicy(...)`, `ValidationPolicy(...)`, ...).
    - `pre`, `post`: actions run before the decision and after the call, each `action(ctx)` with
      the call's `ExecutionContext`, sync or async.
    - `capture_state`: store `pre_execution` and `post_execution` snapshots (for replay).
    - `storage`, `emitter`, `engine`: instead of the process's shared ones.
    - `approval_manager`: decides `confirm` decisions (an `ApprovalManager`); without one,
      `approval_handler` (a callable or a 0.2.0 handler object) may decide at once, and otherwise
      the call raises `ApprovalPending` with the stored execution's id.
    - `context`: static context (`{"user": {...}}`), merged under the per-call
      `governance_context`.
    - `on_state_saved(execution_id, state)`: called (sync or async) after each snapshot is stored,
      including the `awaiting_approval` one of a pending approval.

    Works on `async def` functions (the wrapper is async) and on plain functions (the wrapper is
    sync and runs in the caller's thread). Raises `PolicyViolation`, `RateLimitExceeded`,
    `ApprovalPending`, `ApprovalRejected`, or whatever the function raises.
    """
    policy_list = _policies(policies)
    pre_actions = _actions(pre, "pre")
    post_actions = _actions(post, "post")
    if context is not None and not isinstance(context, Mapping):
        raise ConfigurationError(
            f"govern(context=...) must be a mapping such as {{'user': {{'id': ...}}}}, got "
            f"{type(context).__name__}"
        )
    if on_state_saved is not None and not callable(on_state_saved):
        raise ConfigurationError("govern(on_state_saved=...) must be callable(execution_id, state)")
    executor = Executor(
        storage=storage,
        emitter=emitter,
        approval_manager=approval_manager,
        approval_handler=approval_handler,
        on_state_saved=on_state_saved,
        engine=engine,
    )

    def decorator(func: F) -> F:
        if isinstance(func, staticmethod | classmethod):
            wrapped = decorator(cast(F, func.__func__))
            return cast(F, type(func)(wrapped))
        if not callable(func):
            raise ConfigurationError(f"@govern decorates functions, got {type(func).__name__}")
        spec = executor.spec(
            func,
            policies=policy_list,
            pre_actions=pre_actions,
            post_actions=post_actions,
            capture_state=capture_state,
            context=context,
            method=_method,
        )
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await executor.run(spec, args, kwargs)

            wrapper = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                return executor.run_sync(spec, args, kwargs)

            wrapper = sync_wrapper
        marked: Any = wrapper
        marked.__governed__ = True
        marked.__original__ = func
        marked.__executor__ = executor
        marked.__governor_spec__ = spec
        return cast(F, marked)

    return decorator


def govern_class(
    pre: Action | Sequence[Action] | None = None,
    post: Action | Sequence[Action] | None = None,
    policies: Policy | Sequence[Policy] | None = None,
    capture_state: bool = True,
    methods: Sequence[str] | None = None,
    **kwargs: Any,
) -> Callable[[C], C]:
    """Govern the methods of a class with the same settings (`**kwargs` go to `govern`).

    With `methods=None`, every public (no leading `_`) `async def` method, inherited ones
    included; otherwise exactly the named methods, sync or async (a missing name is a
    `ConfigurationError`). `self` (or `cls`) is not an argument of the governed call: policies and
    records see the other arguments, by name.
    """

    def decorator(cls: C) -> C:
        if not isinstance(cls, type):
            raise ConfigurationError(f"@govern_class decorates classes, got {type(cls).__name__}")
        if methods is None:
            names = [
                name
                for name, member in inspect.getmembers(cls)
                if not name.startswith("_") and inspect.iscoroutinefunction(member)
            ]
        else:
            names = list(methods)
            missing = [n for n in names if not callable(getattr(cls, n, None))]
            if missing:
                raise ConfigurationError(
                    f"@govern_class(methods=...): {cls.__qualname__} has no method "
                    f"{', '.join(repr(n) for n in missing)}"
                )
        for name in names:
            static = inspect.getattr_static(cls, name)
            if isinstance(static, staticmethod):
                governed: Any = staticmethod(
                    govern(policies, pre, post, capture_state, _method=False, **kwargs)(
                        static.__func__
                    )
                )
            elif isinstance(static, classmethod):
                governed = classmethod(
                    govern(policies, pre, post, capture_state, _method=True, **kwargs)(
                        static.__func__
                    )
                )
            else:
                function = getattr(cls, name)
                governed = govern(policies, pre, post, capture_state, _method=True, **kwargs)(
                    function
                )
            setattr(cls, name, governed)
        return cls

    return decorator


#: governor 0.2.0's alias of `govern_class`.
govern_all = govern_class
