"""Reads of the queue for ``DownloadEngine`` (engine.py) that cost what they answer.

Each picks its items on the live queue under the engine's lock (``QueueItems``'s orders,
the runs for the running ones) and copies only those: a copy is whole (``Item.snapshot``,
taken under the lock), never an item a download thread is halfway through changing. Counts
are the queue's kept ones (queue_tally.py) and the running items', read live.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator

from ..store import Item
from ..store.order import Anchor
from ..store.records import ACTIVE_STATUSES, most_relevant
from .queue_order import Window
from .queue_tally import CountKey, QueueBatch, count_key, summed

# Whether an item of (status, auto_start, in a batch) is kept: a test the kept counts total.
CountTest = Callable[[str, bool, bool], bool]


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
                     where: CountTest | None = None,
                     keep: Callable[[Item], bool] | None = None,
                     after: Anchor | None = None) -> Window:
        """A page of the queue in list order (see ``QueueItems.window``) of the items that
        pass ``where`` and ``keep`` (each: all when None), copied. The total of ``where``
        alone is counted; ``keep`` (a search of their text) tests every item for it."""
        with self._lock:
            total = None
            if where is not None:
                if keep is None:
                    total = sum(n for key, n in self._queue_counts().items() if where(*key))
                keep = _both(where, keep)
            window = self._items.window(start, count, newest_first=newest_first, keep=keep,
                                        after=after, total=total)
            return dataclasses.replace(window, items=[i.snapshot() for i in window.items])

    def queue_batches(self) -> dict[str, QueueBatch]:
        """Each batch's items in the queue, summed: the kept sums of those at rest and the
        running ones' live figures."""
        with self._lock:
            return self._queue_batches()

    def _queue_batches(self) -> dict[str, QueueBatch]:
        """``queue_batches`` (under the lock)."""
        batches = self._items.tally.batches()
        for batch_id, live in summed(i for i in self._held() if i.batch_id).items():
            kept = batches.get(batch_id)
            batches[batch_id] = live if kept is None else kept.merged(live)
        return batches

    def _queue_counts(self) -> Counter[CountKey]:
        """Queued items per (status, auto_start, in a batch) (under the lock)."""
        counts = Counter(self._items.tally.counts)
        counts.update(count_key(item) for item in self._held())
        return counts

    def _held(self) -> Iterator[Item]:
        """The queued items the counts leave to their runs (under the lock)."""
        return (run.item for run in self._runs.values() if self._items.held(run.item))

    def queue_select(self, keep: Callable[[Item], bool]) -> list[Item]:
        """Copies of the items ``keep`` keeps, in arrival order; the others are not copied."""
        with self._lock:
            return [item.snapshot() for item in self._items.values() if keep(item)]

    def queue_ids(self, keep: Callable[[Item], bool]) -> list[str]:
        with self._lock:
            return [item.id for item in self._items.values() if keep(item)]


def _both(where: CountTest, keep: Callable[[Item], bool] | None) -> Callable[[Item], bool]:
    if keep is None:
        return lambda item: where(*count_key(item))
    return lambda item: where(*count_key(item)) and keep(item)
