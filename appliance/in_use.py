"""Files a person is reading now, or read a moment ago: played in the player, sent as a file
or in a zip. Below every room: ``files.reading`` records each file it opens for a person, and
a task's retention asks before it deletes one (a channel's episode went from under the
person watching it, the player's next segment a 404, a zip being sent cut short).

A played file is read a segment at a time (a few seconds of video, then the file closed until
the next one), so a file counts as in use while it is open and for ``RECENT`` seconds after:
a player paused for a while still holds it. Files are known by their device and inode, what
stays the same whatever name or case the path was given (an SMB or exFAT folder, a rename),
and by their size and modification time: an inode freed by a delete and given to a new file
is not the file that was read.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

RECENT = 30 * 60.0
# Files remembered at most (read within RECENT): the oldest are forgotten first, so a client
# that reads a million files holds no more memory than this many pairs.
MAX_KNOWN = 10_000

Key = tuple[int, int, int, int]  # (st_dev, st_ino, st_size, st_mtime_ns)


def key_of(info: os.stat_result) -> Key:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


class FilesInUse:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[Key, int] = {}  # how many readers hold it open now
        self._last: dict[Key, float] = {}  # when it was last opened or closed (insertion order)

    def opened(self, key: Key) -> None:
        with self._lock:
            self._open[key] = self._open.get(key, 0) + 1
            self._touch(key)

    def closed(self, key: Key) -> None:
        with self._lock:
            left = self._open.get(key, 0) - 1
            if left > 0:
                self._open[key] = left
            else:
                self._open.pop(key, None)
            self._touch(key)

    def _touch(self, key: Key) -> None:
        self._last.pop(key, None)
        self._last[key] = self._clock()
        while len(self._last) > MAX_KNOWN:
            del self._last[next(iter(self._last))]

    def in_use(self, path: Path) -> bool:
        """Whether the file at ``path`` is open for a person, or was within ``RECENT``."""
        try:
            key = key_of(os.stat(path))
        except OSError:
            return False
        with self._lock:
            if key in self._open:
                return True
            last = self._last.get(key)
        return last is not None and self._clock() - last < RECENT


# The service's one record (a process holds one download folder and one engine).
FILES = FilesInUse()
