"""The in-process event bus: the engine publishes, the websocket, notifications and logs listen.

Subscribers are called in the publishing thread and must only hand the event off (put it on a
queue, ``call_soon_threadsafe``); a subscriber that raises is logged and never breaks the
publisher or the other subscribers.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Events that carry a state change. Slow consumers may drop anything else (progress), never
# these.
ITEM_ADDED = "item_added"
ITEM_UPDATED = "item_updated"
ITEM_CANCELLED = "item_cancelled"
ITEM_DELETED = "item_deleted"
ITEM_MOVED = "item_moved"
ITEM_STATUS = "item_status"
ITEM_COMPLETED = "item_completed"
ITEM_ERROR = "item_error"
PAUSED = "paused"
RESUMED = "resumed"
CONFIG_UPDATE = "config_update"
LOG_INFO = "log_info"
LOG_SUCCESS = "log_success"
LOG_WARNING = "log_warning"
LOG_ERROR = "log_error"


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: Any
    # A progress event may be dropped or coalesced by a slow consumer; a state event never.
    progress: bool = False
    at: float = dataclasses.field(default_factory=time.time)

    def envelope(self) -> dict[str, Any]:
        return {"event": self.name, "data": self.data}


Subscriber = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: tuple[Subscriber, ...] = ()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def publish(self, name: str, data: Any, *, progress: bool = False) -> Event:
        event = Event(name, data, progress)
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", callback, name)
        return event

    def message(self, level: str, title: str, message: str, **extra: Any) -> Event:
        """A human message for clients (``log_info``, ``log_error``, …)."""
        data = {"title": title, "message": message, "timestamp": time.time(), **extra}
        return self.publish(f"log_{level}", data)
