"""Reads of the queue for ``DownloadEngine`` (engine.py) that cost what they answer.

Each picks its items on the live queue under the engine's lock (``QueueItems``'s orders,
the runs for the running ones) and copies only those: a copy is whole (``Item.snapshot``,
taken under the lock), never an item a download thread is halfway through changing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from ..store import Item
from ..store.order import Anchor
from ..store.records import ACTIVE_STATUSES, most_relevant
from .queue_order import Window


class QueueReads:
    """The queue's counts, cuts and pages for ``DownloadEngine``."""

    def queue_count(self) -> int:
        with self._lock:
            return len(self._items)

    def queue_cut(self, limit: int | None) -> tuple[list[Item], int]:
        """``most_relevant`` of the queue (all of it when ``limit`` is None) and how many it
        holds. Its running items are those of the runs (a run starts whenever an item leaves
        waiting): only they, and the newest ``limit`` arrivals, can be chosen."""
        with self._lock:
            count = len(self._items)
            if limit is None:
                return [item.snapshot() for item in self._items.values()], count
            running = [run.item for run in self._runs.values()
                       if run.item.status in ACTIVE_STATUSES
                       and self._items.get(run.item.id) is run.item]
            candidates = self._items.in_arrival_order(
                [*running, *self._items.newest_arrivals(limit)])
            return [item.snapshot() for item in most_relevant(candidates, limit)], count

    def queue_window(self, start: int, count: int, *, newest_first: bool = False,
                     keep: Callable[[Item], bool] | None = None,
                     after: Anchor | None = None) -> Window:
        """A page of the queue in list order (see ``QueueItems.window``), copied."""
        with self._lock:
            window = self._items.window(start, count, newest_first=newest_first, keep=keep,
                                        after=after)
            return dataclasses.replace(window, items=[i.snapshot() for i in window.items])

    def queue_select(self, keep: Callable[[Item], bool]) -> list[Item]:
        """Copies of the items ``keep`` keeps, in arrival order; the others are not copied."""
        with self._lock:
            return [item.snapshot() for item in self._items.values() if keep(item)]

    def queue_fields(self, names: tuple[str, ...], keep: Callable[[Item], bool]
                     ) -> list[dict[str, Any]]:
        """The fields ``names`` (two or more) of the items ``keep`` keeps, as dicts: each
        item's read whole under the lock, and no item copied."""
        read = attrgetter(*names)
        with self._lock:
            rows = [read(item) for item in self._items.values() if keep(item)]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def queue_ids(self, keep: Callable[[Item], bool]) -> list[str]:
        with self._lock:
            return [item.id for item in self._items.values() if keep(item)]
