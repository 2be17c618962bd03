"""The in-process event bus: the engine publishes, the websocket, notifications and logs listen.

Subscribers are called in the publishing thread and must only hand the event off (put it on a
queue, ``call_soon_threadsafe``); a subscriber that raises is logged and never breaks the
publisher or the other subscribers.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import threading
import time
import uuid
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
# The download folder's disk went (``{"problem": "<why downloads wait>"}``) or came back
# (``{"problem": null}``): appliance.engine.folder_disk.
DOWNLOAD_FOLDER = "download_folder"
CONFIG_UPDATE = "config_update"
LOG_INFO = "log_info"
LOG_SUCCESS = "log_success"
LOG_WARNING = "log_warning"
LOG_ERROR = "log_error"
# A scheduled task's run queued something (appliance.tasks).
TASK_DISPATCHED = "task_dispatched"
# The file browser: an action done (rename, delete, move, directory), and folders whose listing
# changed (by anyone: a download, an action, a shell).
FILE_ACTION = "file_action"
FILES_CHANGED = "files_changed"


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: Any
    # A progress event may be dropped or coalesced by a slow consumer; a state event never.
    progress: bool = False
    at: float = dataclasses.field(default_factory=time.time)

    def envelope(self) -> dict[str, Any]:
        """YTPTube's frame: ``{"event": name, "data": Event}`` (see :func:`envelope`)."""
        return envelope(self.name, self.data, self.at)


def envelope(name: str, data: Any, at: float | None = None) -> dict[str, Any]:
    """YTPTube's websocket frame ``{"event": name, "data": Event}``, where Event is ``{id,
    created_at, event, title, message, data}`` and ``data`` the payload. A message
    (``log_*``) also lifts its title and message into the Event, where YTPTube has them."""
    stamp = time.time() if at is None else at
    text = data if isinstance(data, dict) and name.startswith("log_") else {}
    return {"event": name, "data": {
        "id": str(uuid.uuid4()),
        "created_at": datetime.datetime.fromtimestamp(stamp, datetime.UTC).isoformat(),
        "event": name,
        "title": text.get("title"),
        "message": text.get("message"),
        "data": data,
    }}


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
