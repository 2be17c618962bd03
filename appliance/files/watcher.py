"""Keeps the file index current: one watchdog observer (inotify on Linux) whose handler only
notes paths; one thread that indexes the folder at start, then takes the noted paths in
batches (a burst — a playlist finishing, ``rm -r`` of a folder — is one batch) and rescans the
whole folder now and then, since events can be lost.

When they are (the kernel's inotify queue overflowed: 100,000 files made in seconds), watchdog
sends no event; it logs a warning and calls each watch group's ``on_queue_overflow`` (which
sets its watches again). Chained there, an overflow asks for a full rescan OVERFLOW_DELAY
later: every overflow of one burst falls in that window and the burst is read once, not per
overflow, and not only at the next periodic rescan.

When the folder cannot be watched (inotify limits, or ``YTP_FILE_WATCH=false`` for a network
share, where inotify sees only this machine's own changes) the index is kept by rescans every
``file_rescan_interval`` seconds; that is logged once and shown by ``mode``/``reason``
(``/api/system/configuration`` → ``files``). So is a watch that cannot start or that stops
while running (a thread of watchdog's that ended on an error): the index is then kept by
rescans, not only by the rare rescans of a watched folder. A tree of any depth is watched
(``deep_watch``: watchdog's own walks recursed, and a tree a thousand folders deep ended
them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from .deep_watch import DeepObserver
from .index import FileIndex

log = logging.getLogger(__name__)

# A batch is taken once no event came for QUIET seconds, or BATCH_MAX after its first event.
QUIET = 0.1
BATCH_MAX = 0.5
# While watching, a full rescan every this many file_rescan_intervals (lost events).
WATCHED_RESCAN_FACTOR = 10
# A rescan this long after an inotify queue overflow (and the overflows of its burst).
OVERFLOW_DELAY = 1.0
# While watching, how often the watch's threads are checked to be still running.
WATCH_CHECK = 10.0
EVENTS = [FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent,
          FileClosedEvent, DirCreatedEvent, DirDeletedEvent, DirModifiedEvent, DirMovedEvent]

WATCHING = "watching"
POLLING = "polling"


class _Noter(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [event.src_path]
        if getattr(event, "dest_path", ""):
            paths.append(event.dest_path)
        # as os.scandir names them (undecodable bytes escaped), as the index holds them
        self.watcher.note(*(os.fsdecode(p) for p in paths))


class FolderWatcher:
    def __init__(self, index: FileIndex, *, watch: bool, rescan_interval: float) -> None:
        self.index = index
        self.want_watch = watch
        self.rescan_interval = rescan_interval
        self.mode = POLLING
        self.reason = "" if watch else "YTP_FILE_WATCH is off"
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._observer: Any = None
        self._thread: threading.Thread | None = None
        self._rescan_due: float | None = None  # monotonic; set by an overflow

    def note(self, *paths: str) -> None:
        with self._lock:
            self._pending.update(paths)
        self._wake.set()

    def overflowed(self) -> None:
        """Events were lost: rescan soon; overflows until then are the same burst."""
        with self._lock:
            if self._rescan_due is None:
                log.warning("file events of %s were lost (inotify queue overflow): rescanning "
                            "in %g s", self.index.root, OVERFLOW_DELAY)
                self._rescan_due = time.monotonic() + OVERFLOW_DELAY
        self._wake.set()

    def status(self) -> dict[str, Any]:
        return {"mode": self.mode, "reason": self.reason, "indexed": self.index.ready.is_set(),
                "rescan_interval": self.rescan_interval * (
                    WATCHED_RESCAN_FACTOR if self.mode == WATCHING else 1)}

    def start(self) -> None:
        if self.want_watch:
            self._start_observer()
        if self.mode == POLLING:
            log.warning("the download folder %s is not watched (%s): new files show within "
                        "%g s (rescans)", self.index.root, self.reason, self.rescan_interval)
        self._thread = threading.Thread(target=self._run, name="file-index", daemon=True)
        self._thread.start()

    def _start_observer(self) -> None:
        observer = DeepObserver()
        try:
            observer.schedule(_Noter(self), str(self.index.root), recursive=True,
                              event_filter=EVENTS)
            observer.start()
        except Exception as exc:  # OSError: inotify's limits; the service starts in any case
            self.reason = f"cannot watch: {_said(exc)}"
            observer.stop()
            return
        self._observer = observer
        self.mode = WATCHING
        if not self._hook_overflow(observer):
            log.info("this watchdog does not report inotify queue overflows: lost events are "
                     "found by the rescan every %g s", self.rescan_interval
                     * WATCHED_RESCAN_FACTOR)

    def _hook_overflow(self, observer: Any) -> bool:
        """Chain ``overflowed`` to each inotify watch group's ``on_queue_overflow`` (watchdog
        7.1's only signal; its emitter's ``_inotify``, set when the emitter started)."""
        hooked = False
        for emitter in observer.emitters:
            group = getattr(emitter, "_inotify", None)
            original = getattr(group, "on_queue_overflow", None)
            if original is None:
                continue

            def on_queue_overflow(original: Callable[[], None] = original) -> None:
                try:
                    original()
                finally:
                    self.overflowed()

            group.on_queue_overflow = on_queue_overflow
            hooked = True
        return hooked

    def _watch_lost(self) -> bool:
        """Whether the watch stopped by itself (a thread of watchdog's ended on an error);
        then the index is kept by rescans from now on, as for a folder
        never watched."""
        observer = self._observer
        # (a stop ends the threads itself: that is no error)
        if self.mode != WATCHING or observer is None or self._stop.is_set():
            return False
        reader = getattr(observer, "_inotify_fd", None)  # watchdog 7's inotify reader
        threads = [observer, *observer.emitters, *([reader] if reader is not None else [])]
        if all(thread.is_alive() for thread in threads):
            return False
        # (the thread's own error went to the log, by Python's threading.excepthook)
        self.reason = "the watch stopped: a thread of the watcher ended on an error"
        self.mode = POLLING
        log.error("the download folder %s is no longer watched (%s): new files show within %g "
                  "s (rescans)", self.index.root, self.reason, self.rescan_interval)
        with contextlib.suppress(Exception):
            observer.stop()
        self._observer = None
        return True

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        observer, self._observer = self._observer, None  # (the watch's thread may drop it)
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        started = time.monotonic()
        self.index.rescan()
        log.info("indexed %d entries of %s in %.2f s", self.index.count(), self.index.root,
                 time.monotonic() - started)
        interval = self.rescan_interval * (WATCHED_RESCAN_FACTOR if self.mode == WATCHING else 1)
        next_rescan = time.monotonic() + interval
        while not self._stop.is_set():
            with self._lock:
                due = min(next_rescan, self._rescan_due or next_rescan)
            if self.mode == WATCHING:
                due = min(due, time.monotonic() + WATCH_CHECK)
            self._wake.wait(timeout=max(0.0, due - time.monotonic()))
            if self._stop.is_set():
                return
            if self._watch_lost():
                interval = self.rescan_interval
                next_rescan = time.monotonic()  # what happened since it stopped is unknown
            if self._wake.is_set():
                self._settle()
                self._take_batch()
            with self._lock:
                overflow = self._rescan_due is not None and time.monotonic() >= self._rescan_due
                if overflow:
                    self._rescan_due = None  # an overflow from now on is a new burst
            if overflow or time.monotonic() >= next_rescan:
                self._rescan(overflow)
                next_rescan = time.monotonic() + interval

    def _rescan(self, overflow: bool) -> None:
        try:
            self.index.rescan()
        except Exception:  # the thread must live on; the next rescan tries again
            log.exception("rescanning the download folder failed")
            return
        if overflow:
            log.info("rescanned %s after lost events: %d entries", self.index.root,
                     self.index.count())

    def _settle(self) -> None:
        """Wait for a burst to end (no event for QUIET s), BATCH_MAX at most."""
        first = time.monotonic()
        while time.monotonic() - first < BATCH_MAX and not self._stop.is_set():
            self._wake.clear()
            if not self._wake.wait(QUIET):
                return

    def _take_batch(self) -> None:
        self._wake.clear()
        with self._lock:
            batch, self._pending = self._pending, set()
        if batch:
            try:
                self.index.refresh(batch)
            except Exception:  # the thread must live on; the next rescan repairs the index
                log.exception("updating the file index failed")


def _said(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
