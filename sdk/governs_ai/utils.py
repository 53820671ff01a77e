"""Opt-in retries for your own code: `with_retry` and `RetryConfig` (delays in milliseconds).

The client already retries its idempotent calls (`retries`, `retry_delay` of the config); use
`with_retry` around a larger step, e.g. a precheck followed by the model call::

    config = RetryConfig(max_retries=5, retry_delay=2000, retry_condition=lambda e: e.retryable)

    @with_retry(config)
    async def answer(question: str) -> str: ...

`retry_condition` is any callable taking the exception (or an object with `should_retry(exc)`);
the default retries `GovernsAIError`s whose `retryable` is true.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from governs_ai.exceptions import GovernsAIError, RateLimitError

__all__ = ["RetryConfig", "is_retryable", "with_retry"]

P = ParamSpec("P")
R = TypeVar("R")


class _Condition(Protocol):
    def should_retry(self, error: BaseException) -> bool: ...


def is_retryable(error: BaseException) -> bool:
    """The default condition: a `GovernsAIError` marked `retryable` (network, 429, 5xx)."""
    return isinstance(error, GovernsAIError) and error.retryable


@dataclass
class RetryConfig:
    """How `with_retry` retries: attempts = `max_retries` + 1; delays in milliseconds.

    The n-th retry waits `retry_delay` × `backoff_factor`^n (at most `max_delay`), scaled by a
    random factor in [0.5, 1.5) when `jitter`; a `RateLimitError`'s `retry_after` wins.
    """

    max_retries: int = 3
    retry_delay: float = 1000
    retry_condition: Callable[[BaseException], bool] | _Condition | None = None
    backoff_factor: float = 2.0
    max_delay: float = 60000
    jitter: bool = False

    def should_retry(self, error: BaseException) -> bool:
        condition = self.retry_condition
        if condition is None:
            return is_retryable(error)
        if callable(condition):
            return bool(condition(error))
        return bool(condition.should_retry(error))

    def delay(self, retry: int, error: BaseException) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            return min(error.retry_after, self.max_delay / 1000)
        milliseconds = self.retry_delay * self.backoff_factor**retry
        if self.jitter:
            milliseconds *= random.uniform(0.5, 1.5)
        return min(milliseconds, self.max_delay) / 1000


def with_retry(
    retry_config: RetryConfig | None = None,
    *,
    max_retries: int | None = None,
    retry_delay: float | None = None,
    retry_condition: Callable[[BaseException], bool] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a sync or async function to retry it per `retry_config` (or the keywords)."""
    config = retry_config or RetryConfig()
    changes: dict[str, Any] = {
        "max_retries": max_retries,
        "retry_delay": retry_delay,
        "retry_condition": retry_condition,
    }
    config = RetryConfig(
        **{**config.__dict__, **{k: v for k, v in changes.items() if v is not None}}
    )

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(function):
            async_function = cast(Callable[P, Awaitable[Any]], function)

            @functools.wraps(function)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                retry = 0
                while True:
                    try:
                        return await async_function(*args, **kwargs)
                    except Exception as error:
                        if retry >= config.max_retries or not config.should_retry(error):
                            raise
                        await asyncio.sleep(config.delay(retry, error))
                        retry += 1

            return cast(Callable[P, R], run_async)

        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            retry = 0
            while True:
                try:
                    return function(*args, **kwargs)
                except Exception as error:
                    if retry >= config.max_retries or not config.should_retry(error):
                        raise
                    time.sleep(config.delay(retry, error))
                    retry += 1

        return run

    return decorate
