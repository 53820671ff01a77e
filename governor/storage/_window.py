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
  every `SWEEP_EVERY` locking transactions of a store (and in its first).
- A key is meant to keep one window length; if it shrinks, calls that left the shorter window
  are forgotten. Several policies with different windows use different keys, each with its own
  window, in one transaction (`transaction(rate_limit_keys={key: window_seconds, ...})`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from governor.errors import StorageError

#: Longest rate-limit or budget key accepted (it is indexed).
MAX_KEY_LENGTH = 1024
#: How long past its window an idle key is kept before it is swept.
PRUNE_GRACE_SECONDS = 300.0
#: A store sweeps idle keys (and old budget holds) in its first locking transaction and then
#: every this many.
SWEEP_EVERY = 512
#: At most this many keys or holds are swept at a time, so a sweep stays short.
SWEEP_BATCH = 500


def check_key(key: object, kind: str) -> str:
    """Return `key` if it is a usable `kind` key ("rate-limit" or "budget"), else raise."""
    if not isinstance(key, str) or not key:
        raise StorageError(f"{kind} keys must be non-empty strings, got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise StorageError(
            f"{kind} key is {len(key)} characters, longer than {MAX_KEY_LENGTH}: "
            f"{key[:60]!r}...; hash long parts (user ids, URLs) before building the key"
        )
    return str(key)


def check_key_list(keys: Sequence[str], method: str) -> None:
    """Refuse a bare string or an empty list where `method` needs a list of keys."""
    if isinstance(keys, str):
        raise StorageError(f"{method} takes a list of keys, not one string: pass [key]")
    if not keys:
        raise StorageError(f"{method} needs at least one key")


def check_window_seconds(window_seconds: object, key: str) -> float:
    """Return a rate-limit window length as a float, or raise naming the key."""
    if isinstance(window_seconds, bool) or not isinstance(window_seconds, int | float):
        raise StorageError(
            f"window_seconds of rate-limit key {key!r} must be a number, got {window_seconds!r}"
        )
    if not math.isfinite(window_seconds) or window_seconds <= 0:
        raise StorageError(
            f"window_seconds of rate-limit key {key!r} must be a positive number, "
            f"got {window_seconds!r}"
        )
    return float(window_seconds)
