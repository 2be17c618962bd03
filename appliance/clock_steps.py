"""Steps of the wall clock, told from the boot clock, which never steps.

A Raspberry Pi has no battery clock: it boots with the time it had when it last shut down
(fake-hwclock, systemd-timesyncd's saved clock) and steps forward once the network gives it
the time, after the service may have started. A download finished before that step is
stamped too early by as long as the box was off, and a task's retention ("delete files older
than D days") would remove, at its next run, a file fetched a minute ago. So the service
looks at the clock now and then (``ClockSteps.step``) and moves what it stamped since it
started by a forward step. A step back is only said: a stamp too late keeps a file longer,
never deletes one early.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# Seconds: anything less between two looks (a minute apart) is NTP's slewing or a late look,
# not a step; a step that matters to retention is hours or days.
STEP = 60.0


def boot_clock() -> float:
    """Seconds since boot, suspend included (a laptop's night is no step of the wall)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@dataclasses.dataclass(frozen=True)
class Step:
    """Stamps in [``since``, ``until``) were made by the clock before a step and are
    ``seconds`` too early."""

    since: float
    until: float
    seconds: float


class ClockSteps:
    """The wall clock against the boot clock since this service started."""

    def __init__(self, wall: Callable[[], float] = time.time,
                 boot: Callable[[], float] = boot_clock) -> None:
        self._wall = wall
        self._boot = boot
        self.started_at = wall()  # in the wall clock's present terms: moved by each step
        self._offset = self.started_at - boot()

    def step(self) -> Step | None:
        """The forward step since the last look, if the clock made one."""
        now = self._wall()
        offset = now - self._boot()
        moved, self._offset = offset - self._offset, offset
        if abs(moved) < STEP:
            return None
        if moved < 0:
            log.warning("the clock went back %.0f s; times stamped before stay as they are "
                        "(a file's time later than it was only keeps it longer)", -moved)
            return None
        step = Step(self.started_at, now - moved, moved)
        self.started_at += moved
        log.warning("the clock stepped forward %.0f s (set from the network after the start, "
                    "as on a box without a battery clock): what finished since the start "
                    "is dated again", moved)
        return step

    def again(self, step: Step) -> None:
        """``step`` was not applied (the database refused the new dates): the next look
        finds it again."""
        self._offset -= step.seconds
        self.started_at -= step.seconds
