"""An item's state changes, for ``DownloadEngine`` (engine.py): written, then announced.

``durable=False`` marks the engine's own transitions: after a power cut took one back, the
restarted engine makes it again (store/database.py says why they skip the disk). Call these
without the engine's lock: they take it for the memory part only. A write the disk refuses is
waited on in the engine's own threads and raises in a request's (``storing``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from .. import events
from ..store import Item
from ..store.database import StorageFailure
from ..store.records import DONE
from .deleting import Deleted
from .runs import Run


class StateChanges:
    """Storing and announcing an item's state for ``DownloadEngine``."""

    def _commit(self, item: Item, event: str = events.ITEM_UPDATED, *,
                durable: bool = True) -> None:
        """Store a queue item as it is now, then announce it; nothing when it has left the
        queue meanwhile (whoever took it out stores its end). A disk that refuses the write
        is waited on (``storing``), without the locks."""
        self._commit_all([item], event, durable=durable)

    def _commit_all(self, items: list[Item], event: str = events.ITEM_UPDATED, *,
                    durable: bool = True) -> None:
        """``_commit`` each of ``items``, in one write."""

        def store() -> None:
            with self._order:
                with self._lock:
                    # (a deleted item's delete is stored: deleting.py)
                    kept = [(item, item.snapshot()) for item in items
                            if self._items.get(item.id) is item and item.id not in self._gone]
                if not kept:
                    return
                self.store.save_all([snapshot for _, snapshot in kept], durable=durable)
                with self._lock:
                    # the stamp of its last stored change, which its progress events carry
                    # too (they went on with the one before: a time going back to a client)
                    for item, snapshot in kept:
                        item.updated_at = snapshot.updated_at
                for _, snapshot in kept:
                    self.bus.publish(event, snapshot.to_dict())

        self._state_writes.store(store)

    def _set(self, item: Item, changes: dict[str, Any]) -> dict[str, Any]:
        """Set ``changes`` on a waiting ``item`` (under the lock), counted as it is then;
        what they replaced."""
        before = {name: getattr(item, name) for name in changes}
        for name, value in changes.items():
            setattr(item, name, value)
        self._items.refresh(item)
        return before

    def _commit_change(self, item: Item, before: dict[str, Any],
                       after: dict[str, Any]) -> None:
        """``_commit`` a person's change (``after``, set over ``before``). One the disk refuses
        (``StorageFailure``) is undone: the answer says it failed, so it has not happened --
        unless another change came since."""
        try:
            self._commit(item)
        except StorageFailure:
            with self._lock:
                for name, value in before.items():
                    if getattr(item, name) == after[name]:
                        setattr(item, name, value)
                self._items.refresh(item)
            raise

    def _to_history(self, item: Item, status: str, *, run: Run | None = None,
                    durable: bool = True, also: tuple[str, ...] = (), **fields: Any) -> bool:
        """Move a queue item to history with its final status (stored, then announced with
        ``item_updated``, ``item_moved`` and the events in ``also``). False when it is not
        this caller's to end (see ``_take``): the first end wins; False too when the engine
        stopped before the disk took it. A request's end that the disk refuses
        (``StorageFailure``) leaves the item in the queue as it was."""
        with self._lock:
            if not self._take(item, run):
                return False
            before = item.snapshot()
            self._mark_ended(item, status, **fields)
        # Out of the queue, the item is this thread's alone.
        deleted: list[bool] = []  # its delete, stored first (with its files or not)

        def save() -> None:
            # The end and its announcement at once: a delete stored in between (deleting.py)
            # was said, then the end, its item gone.
            with self._order:
                with self._lock:
                    gone = self._gone.pop(item.id, None)
                if gone is not None:
                    deleted.append(gone)
                    return
                self.store.save(item, durable=durable)
                # Whoever sees the end finds nothing left of the item in the temp folder.
                self._remove_temp(item)
                self._announce_end(item, also)

        try:
            stored = self._state_writes.store(save)
        except StorageFailure:
            with self._lock:
                for field in dataclasses.fields(Item):
                    setattr(item, field.name, getattr(before, field.name))
                self._items.setdefault(item.id, item)
            raise
        if deleted:  # the end is the delete, with the files it ended with when asked
            self._remove_temp(item)
            self._say_deleted([item], deleted[0], Deleted())
            return False
        # Not stored: the engine stopped while the disk refused it. Never announced (a
        # 'completed' told to every target, then again once the next start ended the item
        # from its stored state), its temp folder kept for that start to go on with.
        return stored

    @staticmethod
    def _mark_ended(item: Item, status: str, **fields: Any) -> None:
        item.kind, item.status, item.finished_at = DONE, status, time.time()
        item.speed = item.eta = None
        for name, value in fields.items():
            setattr(item, name, value)

    def _announce_end(self, item: Item, also: tuple[str, ...] = ()) -> None:
        data = item.to_dict()
        self.bus.publish(events.ITEM_UPDATED, data)
        self.bus.publish(events.ITEM_MOVED, {"to": "history", "item": data})
        for event in also:
            self.bus.publish(event, data)
