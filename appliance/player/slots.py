"""A bound on the processes the player runs at once (segments' ffmpeg, probes' ffprobe): a
request over it waits SLOT_WAIT seconds for one to end, then gets 503 (Retry-After), so the
player can never take every request thread or CPU core."""

from __future__ import annotations

import threading

from .. import errors

SLOT_WAIT = 3.0


class Slots:
    def __init__(self, count: int, what: str) -> None:
        self.count = count
        self.what = what  # named in the 503: "ffmpeg processes, YTP_PLAYER_MAX_FFMPEG"
        self._free = threading.BoundedSemaphore(count)

    def take(self) -> None:
        if not self._free.acquire(timeout=SLOT_WAIT):
            raise errors.AppError(f"The player is busy ({self.count} {self.what}); try again.",
                                  errors.UNAVAILABLE, headers={"Retry-After": "2"})

    def give_back(self) -> None:
        self._free.release()
