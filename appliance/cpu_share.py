"""Where the service's work stands in the CPU's queue: the API's threads first, the rest of
its work below them.

On a small box, a round of task runs (500 feeds read at once after a night's power cut, their
entries checked and queued, the downloads it starts) competes for the same two cores as the
requests people make meanwhile. Linux keeps a niceness per thread and per process: the threads
that do a round's work and the download processes stand below the service's main thread (the
HTTP poller) and the request threads, which keep the niceness the service was started with.
``bench/tasks_scale.py`` measures the API during such a round.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

BACKGROUND_NICENESS = 10  # added to the service's: background work waits for the API
MAX_NICENESS = 19  # the kernel's lowest place


def _lower(tid: int, service_pid: int) -> int:
    """Put thread ``tid`` BACKGROUND_NICENESS below the main thread of ``service_pid``, never
    higher than it is (only root may raise a thread's place); its niceness after."""
    current = os.getpriority(os.PRIO_PROCESS, tid)
    wanted = min(os.getpriority(os.PRIO_PROCESS, service_pid) + BACKGROUND_NICENESS,
                 MAX_NICENESS)
    if wanted > current:
        os.setpriority(os.PRIO_PROCESS, tid, wanted)
        return wanted
    return current


def lower_this_thread() -> None:
    """A background pool's initializer: its thread below this process's main thread.

    Absolute, not added to the thread's own niceness: a pool's thread is made by whichever
    thread submits to it, perhaps one already below."""
    try:
        _lower(threading.get_native_id(), os.getpid())
    except OSError as exc:  # not Linux's per-thread niceness: the thread keeps its place
        log.debug("background thread keeps its niceness: %s", exc)


def lower_this_process() -> int:
    """A download process (at its start, before it makes any thread): below the service that
    started it, whichever of the service's threads did. Its niceness after."""
    return _lower(0, os.getppid())
