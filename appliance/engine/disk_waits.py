"""What a download that waits for the download folder's disk says (its item's ``msg``): what
it waits for, and what the person can do.

While the disk is gone, read-only or not the one downloads went to (``folder_disk``), no
download starts and a running one goes back to the queue. A download that had not started
said nothing (an empty ``msg``: a queue standing still for no reason it gave), one sent back
only "Waiting for the download folder's disk; will resume". Each now says the disk's problem
as the service last found it, from the moment it is found (``_say_disk_waits``, at each
change and at the start) or the download is ready to start (its info read, a person's start),
and says nothing of it again once the disk is back. A disk short of room is said the same
way, in ``disk_room``'s words (which name the disk and the room it waits for); a download it
sent back keeps saying so (``downloading.WAITING_FOR_ROOM``) until it starts again.

Part of ``DownloadEngine`` (engine.py), under its owners and rules.
"""

from __future__ import annotations

import logging

from ..store import Item
from ..store.database import StorageFailure
from ..store.records import PENDING

log = logging.getLogger(__name__)

WAITING_FOR_DISK = "Waiting for the download folder's disk"
ROOM_WAIT = "Waiting for room on the disk:"


def disk_wait(problem: str) -> str:
    """The ``msg`` of a download that waits for the download folder's disk, gone for
    ``problem`` (``folder_disk``'s words)."""
    return (f"{WAITING_FOR_DISK}: {problem} Plug the disk in and mount it again (a read-only "
            "one: check it, then mount it writable); the download then goes on by itself.")


class DiskWaits:
    """The disk waits of ``DownloadEngine``'s waiting downloads."""

    def _disk_wait(self) -> str:
        """What a download that could start says now: why it waits for the disk, or "" while
        it need not."""
        problem = self.folder_disk.problem
        if problem is None:
            return ""
        if problem == self.folder_disk.short_of_room:
            return f"{ROOM_WAIT} {problem}"
        return disk_wait(problem)

    def _say_disk_waits(self) -> None:
        """Each waiting download that could start says why it waits for the disk now, or,
        the disk back, no longer. Stored and announced in one write: a queue of thousands
        waits at once."""
        said = self._disk_wait()
        changed: list[Item] = []
        with self._lock:
            for item in self._items.values():
                if item.status != PENDING or item.id in self._runs or item.id in self._gone:
                    continue
                if (item.msg.startswith((WAITING_FOR_DISK, ROOM_WAIT))
                        or (not item.msg and item.auto_start and item.extractor)) \
                        and item.msg != said:
                    item.msg = said
                    changed.append(item)
        if not changed:
            return
        try:
            self._commit_all(changed, durable=False)
        except StorageFailure as exc:  # (a thread that does not wait for the disk: a word)
            log.warning("why the waiting downloads wait could not be stored (%s)",
                        exc.message)
