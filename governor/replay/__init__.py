"""Replay of stored executions (`ReplayEngine`); `governor.replay.engine` is 0.2.0's import path."""

from governor.replay.engine import ReplayEngine, ReplayError

__all__ = ["ReplayEngine", "ReplayError"]
