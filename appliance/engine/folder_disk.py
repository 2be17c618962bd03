"""Whether the download folder is still on its disk.

A download folder on a USB disk (or a network share) is the usual home-server layout. When that
disk is unplugged or unmounted, what is left is its mount point: an empty folder on the
system's own disk (or no folder at all, when the download folder lies deeper on the disk).
Downloads written there would fill the system's disk -- the database's too -- and be hidden
under the disk once it is mounted again. So the mount point the download folder lies on is
noted, and checked every few seconds (``check``) in a thread of its own -- not the
scheduler's: a network share that stops answering blocks whoever looks at it, and only this
thread should wait for it. While it is not mounted, or
the folder is missing, no download starts; the queue waits and goes on by itself once the disk
is back. The change is logged once each way (an error reaches websocket clients and
notification targets).

A folder on the system's own disk (its mount point is ``/``) is only checked for being there.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

CHECK_SECONDS = 5


def missing(folder: Path) -> str:
    """What is said while the download folder is not there."""
    return (f"The download folder {folder} is missing (is its disk mounted?): downloads wait "
            "until it is back.")


def mount_point(folder: Path) -> Path:
    """The mount point of the disk ``folder`` lies on (of its nearest existing parent)."""
    path = Path(os.path.realpath(folder))
    while not os.path.ismount(path):
        path = path.parent
    return path


class FolderDisk:
    """The download folder's disk, as ``check`` last found it: ``problem`` says why
    downloads wait (None: they need not)."""

    def __init__(self, folder_of: Callable[[], Path], on_change: Callable[[], None]) -> None:
        self._folder_of = folder_of
        self._on_change = on_change
        self._watched: tuple[Path, Path] | None = None  # (the folder, its mount point)
        self.problem: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.note()
        self._thread = threading.Thread(target=self._watch, name="folder-disk", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()  # not joined: a check stuck on a hung share must not hold the stop

    def _watch(self) -> None:
        while not self._stop.wait(CHECK_SECONDS):
            try:
                self.check()
            except Exception:  # a bug must not end the watch: the queue would never resume
                log.exception("checking the download folder's disk failed")

    def note(self) -> None:
        """Note the folder's mount point as it is now (at start, and for a new folder)."""
        folder = self._folder_of()
        self._watched = (folder, mount_point(folder))

    def check(self) -> None:
        if self._watched is None or self._watched[0] != self._folder_of():
            self.note()  # the settings named another folder: its disk is as found now
        assert self._watched is not None
        folder, mounted_at = self._watched
        if mounted_at != Path("/") and not os.path.ismount(mounted_at):
            problem = (f"The download folder {folder} is on the disk mounted at {mounted_at}, "
                       "which is not mounted any more: downloads wait until it is back "
                       "(written there, they would fill the system's disk).")
        elif not folder.is_dir():
            problem = missing(folder)
        else:
            problem = None
        if problem == self.problem:
            return
        if problem is not None:
            log.error("%s", problem)
        else:
            log.warning("The download folder %s is back: waiting downloads go on.", folder)
        self.problem = problem
        self._on_change()
