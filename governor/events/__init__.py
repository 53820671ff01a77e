"""Lifecycle events of governed calls: their types, the event record, and the emitter.

Events are persisted through the store by the executor (masked like every record) and then handed
to the emitter's handlers. Import paths of governor 0.2.0 are kept: `governor.events.base`
(`EventType`, `Event`) and `governor.events.emitter` (`EventEmitter`, `get_default_emitter`).
"""

from governor.events.base import Event, EventType
from governor.events.emitter import (
    EventEmitter,
    EventHandler,
    get_default_emitter,
    set_default_emitter,
)

__all__ = [
    "Event",
    "EventEmitter",
    "EventHandler",
    "EventType",
    "get_default_emitter",
    "set_default_emitter",
]
