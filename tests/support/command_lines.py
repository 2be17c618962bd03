"""Every command line the processes this test process started (directly or not) had while a
test watched: ``/proc/PID/cmdline``, which any user of the box may read (``ps``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

from .procs import descendants

INTERVAL = 0.005  # ffmpeg's fix-up of a short stream lives some tens of milliseconds


def command_lines() -> dict[int, str]:
    """Each living descendant's command line, its arguments joined by spaces."""
    found: dict[int, str] = {}
    for proc in descendants(os.getpid()):
        try:
            argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        except OSError:  # it ended while we looked
            continue
        found[proc.pid] = argv.replace(b"\0", b" ").decode(errors="replace")
    return found


class CommandLines:
    """Watches the command lines of this process's descendants until the block ends;
    ``seen`` holds each one seen."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="command-lines", daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(INTERVAL):
            self.seen.update(command_lines().values())

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(10)
        self.seen.update(command_lines().values())
