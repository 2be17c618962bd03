"""Files a person is reading now, or read a moment ago: played in the player, sent as a file
or in a zip. Below every room: ``files.reading`` records each file it opens for a person, and
a task's retention asks before it deletes one (a channel's episode went from under the
person watching it, the player's next segment a 404, a zip being sent cut short).

A zip holds all of its files open from the moment they are checked to its last byte (a
``Holding``), not only the one being read: the others, to come, were deleted from under it.
A file held open now is one a person's delete leaves for later: an item's removal with its
files waits for the reader to let them go (``when_let_go``); the browser's delete of such a
file says so (``held``).

A played file is read a segment at a time (a few seconds of video, then the file closed until
the next one), so a file counts as in use while it is open and for ``RECENT`` seconds after:
a player paused for a while still holds it. Files are known by their device and inode, what
stays the same whatever name or case the path was given (an SMB or exFAT folder, a rename),
and by their size and modification time: an inode freed by a delete and given to a new file
is not the file that was read.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)

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
        self._after: dict[Key, list[Callable[[], None]]] = {}  # done once it is let go

    def opened(self, key: Key) -> None:
        with self._lock:
            self._open[key] = self._open.get(key, 0) + 1
            self._touch(key)

    def closed(self, key: Key) -> None:
        due: list[Callable[[], None]] = []
        with self._lock:
            left = self._open.get(key, 0) - 1
            if left > 0:
                self._open[key] = left
            else:
                self._open.pop(key, None)
                due = self._after.pop(key, [])
            self._touch(key)
        for action in due:
            try:
                action()
            except Exception:  # the reader's close goes on; the file stays
                log.exception("what waited for a file to be let go failed")

    def when_let_go(self, paths: Iterable[Path], action: Callable[[], None]) -> bool:
        """``action`` done by the reader that lets go of the first of ``paths`` held open now
        (when it lets go of its last hold), then True; False when none is held: act now."""
        for path in paths:
            key = _key_at(path)
            with self._lock:
                if key is not None and key in self._open:
                    self._after.setdefault(key, []).append(action)
                    return True
        return False

    def _touch(self, key: Key) -> None:
        self._last.pop(key, None)
        self._last[key] = self._clock()
        while len(self._last) > MAX_KNOWN:
            del self._last[next(iter(self._last))]

    def in_use(self, path: Path) -> bool:
        """Whether the file at ``path`` is open for a person, or was within ``RECENT``."""
        key = _key_at(path)
        if key is None:
            return False
        with self._lock:
            if key in self._open:
                return True
            last = self._last.get(key)
        return last is not None and self._clock() - last < RECENT

    def anything_held(self) -> bool:
        with self._lock:
            return bool(self._open)

    def held(self, path: Path) -> bool:
        """Whether the file at ``path`` is open for a person now (sent, played, zipped)."""
        key = _key_at(path)
        with self._lock:
            return key is not None and key in self._open

    def holding(self, keys: Iterable[Key]) -> Holding:
        """These files open for one reader until it lets them go."""
        return Holding(self, list(keys))


class Holding:
    """Files a reader holds open together (a zip's): let go once, by whichever comes first --
    its end, the server's ``close``, or its collection (a body the server never took)."""

    def __init__(self, files: FilesInUse, keys: list[Key]) -> None:
        self._files = files
        self._lock = threading.Lock()
        self._keys = keys
        for key in keys:
            files.opened(key)

    def let_go(self) -> None:
        with self._lock:
            keys, self._keys = self._keys, []
        for key in keys:
            self._files.closed(key)

    def __del__(self) -> None:
        self.let_go()


def _key_at(path: Path) -> Key | None:
    try:
        return key_of(os.stat(path))
    except OSError:
        return None


# The service's one record (a process holds one download folder and one engine).
FILES = FilesInUse()
