"""watchdog's inotify observer, made to follow a folder tree of any depth.

watchdog 7 walks a folder with ``os.walk``, which on Python 3.11 calls itself once per level:
a tree about a thousand folders deep (anyone who can make folders can make one; a move brings
one in whole) raised RecursionError out of the service's start, or ended watchdog's reader
thread, after which no event came at all. Here its watch group walks with a list of folders
still to read, never by recursion (a folder made is walked to tell what it held before its
watches were set, as watchdog does). And a folder moved in is announced by its own event only:
watchdog walked it once more, by recursion again, to announce each entry below it, while the
file index reads a folder it did not know whole itself (``FileIndex.refresh``).

A folder whose path is longer than the system's limit (PATH_MAX: some 2,000 levels of
one-letter names) can neither be read nor watched by its path: it and what lies below it are
left out, as the file index leaves them out (no request could name them).
"""

from __future__ import annotations

import os

from watchdog.events import DirCreatedEvent, DirModifiedEvent, DirMovedEvent
from watchdog.observers.inotify import InotifyEmitter, InotifyObserver, InotifyWatchGroup
from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent, Mask
from watchdog.observers.inotify_move_event_grouper import GroupedInotifyEvent, PathedInotifyEvent

from .trees import walk

_CREATED_FOLDER = Mask(InotifyConstants.IN_CREATE | InotifyConstants.IN_ISDIR)


class _WatchGroup(InotifyWatchGroup):
    """watchdog's watch group, with its two walks made without recursion."""

    def _add_all_callbacks(self, path: bytes) -> None:
        self._add_callback(path)
        if self.is_recursive and os.path.isdir(path):
            for folder, folders, _ in walk(path):
                for name in folders:
                    self._add_callback(os.path.join(folder, name))

    def _recursive_simulate(self, src_path: bytes) -> list[InotifyEvent]:
        """What a folder just made holds already (made before its watch was set): an event
        each, as watchdog makes them."""
        events = []
        for folder, folders, others in walk(src_path):
            node = self._find_node_by_path(folder)
            if node is None:  # not watched (yet): its own events tell what it holds
                continue
            events += [InotifyEvent(node.wd, _CREATED_FOLDER, 0, name) for name in folders]
            events += [InotifyEvent(node.wd, InotifyConstants.IN_CREATE, 0, name)
                       for name in others]
        return events


class _Emitter(InotifyEmitter):
    def on_thread_start(self) -> None:
        self._inotify = _WatchGroup(
            self._inotify_fd, os.fsencode(self.watch.path),
            is_recursive=self.watch.is_recursive, event_mask=self.get_event_mask_from_filter(),
            follow_symlink=self.watch.follow_symlink)

    def build_and_queue_event(self, event: GroupedInotifyEvent, *, full_events: bool = False
                              ) -> None:
        """A folder moved, or moved in, is its own event and its folders' (as watchdog says
        them), without one more for each entry below it; any other event as watchdog says."""
        if isinstance(event, PathedInotifyEvent):
            if not (event.ev.is_moved_to and event.ev.is_directory) or full_events:
                super().build_and_queue_event(event, full_events=full_events)
                return
            path = self._decode_path(event.path)
            self.queue_event(DirCreatedEvent(path))
            self.queue_event(DirModifiedEvent(os.path.dirname(path)))
            return
        moved_from, moved_to = event  # a move's two halves
        if not moved_from.ev.is_directory:
            super().build_and_queue_event(event, full_events=full_events)
            return
        source, target = self._decode_path(moved_from.path), self._decode_path(moved_to.path)
        self.queue_event(DirMovedEvent(source, target))
        self.queue_event(DirModifiedEvent(os.path.dirname(source)))
        self.queue_event(DirModifiedEvent(os.path.dirname(target)))


class DeepObserver(InotifyObserver):
    """An inotify observer whose watches follow a tree of any depth (see above)."""

    def __init__(self) -> None:
        super().__init__()
        self._emitter_class = _Emitter  # watchdog's own constructor names its emitter class
