"""The engine's deletes: of waiting items, of running ones and of the history's, with their
files when asked (``file_removal``), never a file another item records too.

A delete is stored before it is answered, and said (``item_deleted``) once, by whoever ends
the item. A waiting item's ends in the request. A running item's row is deleted by the
request, its id marked ``_gone``, and only then is its run stopped: from then on nothing of
the item is stored, and its end, whatever it was going to be (an end decided before the
delete came, or a pause handing it back to the queue), is the delete, with its files when
asked. A database that refuses the row's delete refuses the request (507), the download left
as it was. (The run stored the delete at its end before: a database that refused that write
while the service stopped had the delete said and never stored, and the next start
downloaded the item again, whole.)

Part of ``DownloadEngine`` (engine.py), under its owners and rules.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .. import events
from ..errors import CONFLICT, AppError
from ..store import Item
from ..store.database import StorageFailure
from ..store.records import ACTIVE_STATUSES, DONE, FINISHED, QUEUE
from .file_removal import Listings, remove_files_of
from .runs import Run, StopReason

log = logging.getLogger(__name__)


class Deleted(dict[str, str]):
    """What a delete did to each item: "deleted" or "not found"; ``files_kept``: why the file
    of an item deleted with its files stayed."""

    def __init__(self) -> None:
        super().__init__()
        self.files_kept: dict[str, str] = {}


class Deleting:
    """Deletes for ``DownloadEngine``."""

    def delete_items(
        self, ids: list[str], *, remove_file: bool = False, kind: str | None = None
    ) -> Deleted:
        deleted = Deleted()
        history: list[str] = []
        remove_file = remove_file and self.settings.remove_files
        if remove_file:
            self._refuse_while_files_are_away(ids)
        for item_id in ids:
            if kind in (None, QUEUE) and self._delete_queued(item_id, remove_file, deleted):
                deleted[item_id] = "deleted"
                continue
            history.append(item_id)
        if history:
            # (of the kind in the same statement: read first, each record was made twice)
            records = self.store.delete(history, kind)
            self._say_deleted(records, remove_file, deleted)
            for item_id in history:
                deleted.setdefault(item_id, "not found")
        return deleted

    def _say_deleted(self, records: Sequence[Item], remove_file: bool,
                     deleted: Deleted) -> None:
        """Remove the files of history ``records`` deleted from the store, when asked, but
        those another item records too; then say each deleted."""
        if remove_file:
            deleted.files_kept.update(self._files_kept(records))
            folders = self._download_folders()
            listings = Listings()  # each folder files are removed from, listed once
            for item in records:
                if item.id not in deleted.files_kept:
                    remove_files_of(item, folders, listings)
        for item in records:
            deleted[item.id] = "deleted"
            self.bus.publish(events.ITEM_DELETED, {"id": item.id, "_id": item.id})

    def _files_kept(self, records: Sequence[Item]) -> dict[str, str]:
        """Why the file of each of ``records`` (deleted from the store) stays: another item,
        finished or running, records it too (the same video queued twice finishes twice with
        one file), and its sidecars are that item's as much. A failed or cancelled item's
        name is where its file would have been, not a file (``_name_taken``)."""
        with_files = [i for i in records if i.status == FINISHED and i.filename]
        holders = self.store.holders(with_files)
        if not holders:
            return {}
        others = {o.id: o for o in self.store.records(sorted(set().union(*holders.values())))
                  if o.status == FINISHED or o.status in ACTIVE_STATUSES}
        kept: dict[str, str] = {}
        for item in with_files:
            other = next((others[o] for o in sorted(holders.get(item.id, ())) if o in others),
                         None)
            if other is None:
                continue
            kept[item.id] = (f"Its file '{item.filename}' was kept, with its sidecars: another "
                             f"item records it too ('{other.title or other.url}', {other.id}). "
                             "Delete that one with its files to remove it.")
            log.info("not removing %s of item %s: item %s records it too", item.filename,
                     item.id, other.id)
        return kept

    def _refuse_while_files_are_away(self, ids: list[str]) -> None:
        """409 for a delete with files of history items while the download folder's disk is
        gone (or read-only): the items went and their files stayed on the disk for good once
        it was back, out of any delete's reach, the answer saying "deleted"."""
        if (problem := self.folder_disk.held) is None:
            return
        with self._lock:
            if all(i in self._items for i in ids):  # the queue's: no file of their own yet
                return
        raise AppError(f"{problem} Nothing was deleted: deleted now, the items' files would "
                       "stay on the disk for good. Delete them once it is back, or without "
                       "their files (remove_file false).", CONFLICT)

    def _delete_queued(self, item_id: str, remove_file: bool, deleted: Deleted) -> bool:
        """Delete a queue item; False when the queue has none of that id. A waiting item has
        no file of its own yet: it goes at once. A running one (``_delete_running``) writes
        in its temp folder until yt-dlp moves the finished files home."""
        with self._lock:
            run = self._runs.get(item_id)  # (its run's until its end is said)
            item = run.item if run is not None else self._items.get(item_id)
        if item is None:
            return False
        if run is not None or not self._drop(item):  # (it started, or ended, meanwhile)
            self._delete_running(item, remove_file, deleted)
        return True

    def _delete_running(self, item: Item, remove_file: bool, deleted: Deleted) -> None:
        """Delete the row of a running ``item``, mark it gone, then stop its run (see the
        module's docstring). A row its run's end made the history's first is deleted as the
        history's."""
        ended: list[Item] = []

        def delete() -> None:
            with self._order:  # (a state write and its announcement are not in between)
                records = self.store.delete([item.id])
                with self._lock:
                    if records and records[0].kind == DONE:
                        ended.extend(records)
                        return
                    self._gone[item.id] = remove_file
                    run = self._runs.get(item.id)
                    if run is not None:
                        run.request_stop(StopReason.DELETE)

        self._state_writes.store(delete)  # (a request's: raises StorageFailure)
        if ended:
            self._say_deleted(ended, remove_file, deleted)
        else:  # handed back to the queue meanwhile, or never started: this thread's to end
            self._end_deleted(item)

    def _end_deleted(self, item: Item, run: Run | None = None) -> bool:
        """End ``item``, whose delete is stored (``_gone``): out of the queue and its temp
        folder, then said. False when it is not this caller's to end (``_take``)."""
        with self._lock:
            if not self._take(item, run):
                return False
            self._gone.pop(item.id, None)
        self._remove_temp(item)
        with self._order:
            self.bus.publish(events.ITEM_DELETED, {"id": item.id, "_id": item.id})
        return True

    def _drop(self, item: Item) -> bool:
        """Remove a waiting item from memory, the store and its temp folder, and say so;
        False when it is not there to take (it started, or ended, meanwhile). A delete that
        the disk refuses leaves the item in the queue."""
        with self._lock:
            if not self._take(item, None):
                return False

        def delete() -> None:
            with self._order:
                self.store.delete([item.id])

        try:
            self._state_writes.store(delete)
        except StorageFailure:
            with self._lock:
                self._items.setdefault(item.id, item)
            raise
        self._remove_temp(item)
        with self._order:
            self.bus.publish(events.ITEM_DELETED, {"id": item.id, "_id": item.id})
        return True
