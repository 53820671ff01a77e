"""What both backends share about rate-limit windows: argument checks, clocks, sweeping.

Semantics (identical in every backend):
- A window for `key` at `now` counts the calls recorded at moments in `(now - window_seconds,
  now]` (later ones too). `record` adds a call at `now`.
- Each key's clock never runs backwards: a caller whose `now` is older than the key's latest
  recorded call (it read the clock, then waited for the lock behind a later caller) is treated as
  arriving at that latest moment. So the recorded moments of a key only increase, calls that left
  the window can be deleted as soon as they leave it, and the guarantee is exact: for every
  recorded call at `t`, at most the admitted number of calls lie in `(t - window_seconds, t]`.
- Keys that saw no call for `window_seconds + PRUNE_GRACE_SECONDS` are swept with their calls,
  every `SWEEP_EVERY` windows of a store (and on its first).
- A key is meant to keep one window length; if it shrinks, calls that left the shorter window
  are forgotten.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from governor.errors import StorageError
from governor.storage.base import RateLimitWindow

#: Longest rate-limit key accepted (it is indexed).
MAX_KEY_LENGTH = 1024
#: How long past its window an idle key is kept before it is swept.
PRUNE_GRACE_SECONDS = 300.0
#: A store sweeps idle keys in its first window and then every this many windows.
SWEEP_EVERY = 512
#: At most this many idle keys are swept at a time, so a sweep stays short.
SWEEP_BATCH = 500


def prepare_window(keys: Sequence[str], window_seconds: float, now: float) -> tuple[str, ...]:
    """Check `rate_limit_window`'s arguments; return the keys sorted and de-duplicated."""
    if isinstance(keys, str):
        raise StorageError("rate_limit_window takes a list of keys, not one string: pass [key]")
    if not keys:
        raise StorageError("rate_limit_window needs at least one key")
    for key in keys:
        if not isinstance(key, str) or not key:
            raise StorageError(f"rate-limit keys must be non-empty strings, got {key!r}")
        if len(key) > MAX_KEY_LENGTH:
            raise StorageError(
                f"rate-limit key is {len(key)} characters, longer than {MAX_KEY_LENGTH}: "
                f"{key[:60]!r}...; hash long parts (user ids, URLs) before building the key"
            )
    if isinstance(window_seconds, bool) or not isinstance(window_seconds, int | float):
        raise StorageError(f"window_seconds must be a number, got {window_seconds!r}")
    if not math.isfinite(window_seconds) or window_seconds <= 0:
        raise StorageError(f"window_seconds must be a positive number, got {window_seconds!r}")
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise StorageError(f"now must be a finite timestamp in seconds, got {now!r}")
    return tuple(sorted(set(keys)))


class LockedWindow(RateLimitWindow):
    """Base of the backends' windows: only the locked keys, only inside the `with` block."""

    def __init__(self, keys: tuple[str, ...], window_seconds: float, now: float) -> None:
        self.keys = frozenset(keys)
        self.window_seconds = window_seconds
        self.now = now
        #: Calls at or before this moment are outside the window.
        self.cutoff = now - window_seconds
        self.closed = False

    def check(self, key: str) -> None:
        """Raise unless `key` may be counted or recorded in this window now."""
        if self.closed:
            raise StorageError("this rate-limit window is closed: use it inside its `with` block")
        if key not in self.keys:
            raise StorageError(
                f"rate-limit key {key!r} is not locked by this window; "
                f"pass it to rate_limit_window (locked: {sorted(self.keys)})"
            )
