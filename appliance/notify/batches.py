"""Which notices belong to a playlist that is still running: the dispatcher's view of batches,
from the events it sees."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import events
from ..engine.credentials import shared_item
from ..events import Event
from .catalog import FINAL_EVENTS, ITEM_EVENTS


@dataclasses.dataclass(frozen=True)
class Notice:
    """One event on its way to targets."""

    event: str
    data: Any  # what the bus carried, an item's secrets masked (webhooks get it so)
    at: float
    item: dict[str, Any]  # the item as far as known (for the text people read)
    item_id: str = ""
    preset: str = ""
    batch_id: str = ""
    batch_name: str = ""
    batch_open: bool = False  # entries of the same playlist are still queued


@dataclasses.dataclass(frozen=True)
class BatchClosed:
    batch_id: str


class BatchTracker:
    """Which queued items belong to which playlist (dispatcher thread only).

    Learns items from ``item_added`` (and ``item_updated`` of queue items it has not seen,
    e.g. after a restart); forgets them on their final event or deletion.
    """

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, set[str]] = {}

    def _remember(self, item: dict[str, Any]) -> None:
        item_id = str(item.get("id") or "")
        if not item_id:
            return
        self.items[item_id] = {k: item.get(k) for k in (
            "id", "title", "url", "preset", "batch_id", "batch_name")}
        if item.get("batch_id"):
            self.batches.setdefault(item["batch_id"], set()).add(item_id)

    def observe(self, event: Event) -> tuple[Notice | None, list[str]]:
        data = event.data if isinstance(event.data, dict) else {}
        item_id = str(data.get("id") or "") if event.name in ITEM_EVENTS or \
            event.name.startswith("log_") else ""
        if event.name == events.ITEM_UPDATED:
            if data.get("kind") == "queue" and str(data.get("id")) not in self.items:
                self._remember(data)
            return None, []
        if event.name == events.ITEM_ADDED:
            self._remember(data)
        known = self.items.get(item_id, {})
        item = {**known, **data}
        batch_id = str(item.get("batch_id") or "")
        closed: list[str] = []
        if event.name in FINAL_EVENTS or event.name == events.ITEM_DELETED:
            self.items.pop(item_id, None)
            members = self.batches.get(batch_id)
            if members is not None:
                members.discard(item_id)
                if not members:
                    del self.batches[batch_id]
                    closed.append(batch_id)
        # What leaves the box for a webhook or a chat never needs the item's secrets, nor
        # those of another event's URL (a task's private feed).
        notice = Notice(
            event.name, shared_item(event.data), event.at,
            shared_item(item), item_id, str(item.get("preset") or ""),
            batch_id, str(item.get("batch_name") or ""), bool(self.batches.get(batch_id)),
        )
        return notice, closed
