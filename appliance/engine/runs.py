"""A running download and why it stops.

Owner: the run's download thread (``dl-<id>``). While an item runs, only that thread changes
it. Other threads send it requests under the engine's lock: a stop (``Run.request_stop``; the
thread then sees its process end) or an edit (``Run.request_edit``, applied by the thread at
its next tick). The thread reads the requests, changes the item, and stores and announces it.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
import time
from pathlib import Path
from typing import Any

from ..store import Item
from .work_signs import Signs
from .workers import Worker


class StopReason(enum.Enum):
    CANCEL = "cancel"
    PAUSE = "pause"
    DELETE = "delete"
    SHUTDOWN = "shutdown"
    STALL = "stall"
    # The download folder's disk went (folder_disk): back to the queue, resumed once it is back.
    DISK = "disk"
    # A disk it writes to is full (disk_room): back to the queue, resumed once it has room.
    ROOM = "room"


# The reasons that may replace the one a run already stops for. The first reason wins: a
# stall noticed while a pause is on its way does not turn the paused item into an error, and
# a pause after a cancel does not bring the item back. Only a delete replaces another: the
# person wants the item gone, whatever else was stopping it.
_ANY_BUT_FIRST = frozenset({StopReason.DELETE})
STOP_AFTER: dict[StopReason | None, frozenset[StopReason]] = {
    None: frozenset(StopReason),
    StopReason.CANCEL: _ANY_BUT_FIRST,
    StopReason.PAUSE: _ANY_BUT_FIRST,
    StopReason.STALL: _ANY_BUT_FIRST,
    StopReason.SHUTDOWN: _ANY_BUT_FIRST,
    StopReason.DISK: _ANY_BUT_FIRST,
    StopReason.ROOM: _ANY_BUT_FIRST,
    StopReason.DELETE: frozenset(),
}


# The stops that let yt-dlp's move of the finished files end once it has begun: killed part
# way, what it had moved (the sidecars go first: the .info.json, the thumbnail, the
# subtitles) stayed in the download folder, no item's, out of any delete's reach.
# A delete's end is the delete (deleting.py), with the files when asked; a cancel's, the
# item finished, its media home whole (downloading.reason_that_stands). The others kill
# the move: the item goes back to the queue (paused, a disk gone or full, the service
# stopping) or fails (stalled).
SPARE_THE_MOVE = frozenset({StopReason.DELETE, StopReason.CANCEL})


def next_reason(current: StopReason | None, requested: StopReason) -> StopReason | None:
    """The reason a run stops for once ``requested`` arrives while it stops for ``current``."""
    return requested if requested in STOP_AFTER[current] else current


@dataclasses.dataclass(eq=False)
class Run:
    """One download in progress. Fields other than ``item`` are read and written under the
    engine's lock; ``item`` belongs to the run's thread (see the module docstring)."""

    item: Item
    worker: Worker | None = None
    reason: StopReason | None = None
    # Set by the owner once it has read ``reason`` for the last time: later requests are
    # too late (the item's end is decided).
    ended: bool = False
    # Set by the owner when the item goes back to waiting (paused, interrupted): from then on
    # it is a waiting item that other threads may change, though the run keeps its slot until
    # the item's new state is announced.
    handed_back: bool = False
    edits: dict[str, Any] = dataclasses.field(default_factory=dict)
    edited: set[str] = dataclasses.field(default_factory=set)  # every field ever asked for
    # Where the job writes, fixed when it starts: the settings may change while it runs.
    home: Path | None = None
    temp: Path | None = None
    # The last sign of progress: a message from the job, or work its processes did (signs).
    last_progress: float = dataclasses.field(default_factory=time.monotonic)
    # yt-dlp moves its files home, as the run's thread let it (downloading._let_move).
    moving: bool = False
    # When its thread last looked at it (downloading._tick).
    ticked_at: float = dataclasses.field(default_factory=time.monotonic)
    # The last look at the work its processes did (work_signs), and when it was taken.
    signs: Signs | None = None
    signs_at: float = 0.0
    # Why it stopped as stalled, in the words its item keeps (set with the STALL reason).
    stalled: str = ""
    thread: threading.Thread | None = None
    # The item's msg, error and started_at as it waited: what it is again when its thread
    # cannot be started (downloading._not_started).
    waited: tuple[str, str, float | None] = ("", "", None)

    def request_stop(self, reason: StopReason) -> bool:
        """Ask the run to stop for ``reason``; False when an earlier reason (or its end) wins.
        Kills the process group at once: the owner sees its process end. But not a cancel's
        or a delete's once yt-dlp moves the files home (``SPARE_THE_MOVE``)."""
        if self.ended:
            return False
        chosen = next_reason(self.reason, reason)
        if chosen is self.reason:
            if self._spares(self.reason) and reason is StopReason.STALL \
                    and self.worker is not None:
                self.worker.signal_kill()  # a move left to end that hangs (a dead share)
            return False
        self.reason = chosen
        if self.worker is not None and not self._spares(chosen):
            self.worker.signal_kill()
        return True

    def _spares(self, reason: StopReason | None) -> bool:
        return self.moving and reason in SPARE_THE_MOVE

    def request_edit(self, changes: dict[str, Any]) -> bool:
        """Fields (title, extras, auto_start) the owner sets on the item at its next tick;
        False once its end is decided (the edits would be lost)."""
        if self.ended:
            return False
        self.edits.update(changes)
        self.edited.update(changes)
        return True

    def take_edits(self) -> dict[str, Any]:
        edits, self.edits = self.edits, {}
        return edits
