"""The queue's items in memory, with the two orders its reads need kept as it changes.

Every list of the queue used to copy every item (20,000 queued: 16 ms under the engine's
lock) and then sort, filter and cut the copy, for a page of ten. Kept here instead:

- the order items came into the queue (a dict's: the "queue's order" of ``most_relevant``
  and of ``/api/history/live``), with each item's arrival number, so that a few items picked
  from anywhere are put back in that order without walking the queue;
- the order of every list (``created_at``, then ``id``: store/order.py), as a sorted list of
  keys, so that a page, an anchor's place and the newest items are found by bisection;
- the queue's counts (queue_tally.py), each item filed by its tally while it rests: one is
  held out while its run owns it (``hold``, ``release``), and filed again when a request
  changes a waiting one (``refresh``).

Not thread-safe by itself: the engine reads and changes it under its lock. An item's
``created_at`` never changes while it is queued; its key is the one it was filed under.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter

from ..store import Item
from ..store.order import Anchor, sort_key
from .queue_tally import QueueTally, Tally

Key = tuple[float, str]
_time_of = itemgetter(0)


@dataclasses.dataclass(frozen=True)
class Window:
    """A page of a list of the queue: its items (not copies), the list's total (before any
    anchor) and whether items follow the page."""

    items: list[Item]
    total: int
    more: bool


class QueueItems:
    """The queue by id (the engine's ``_items``), in arrival order and in list order."""

    def __init__(self, running: Callable[[str], bool] = lambda item_id: False) -> None:
        """``running``: whether a run owns the item of an id now (its item is held out of
        the counts from its arrival on)."""
        self._by_id: dict[str, Item] = {}
        # per id: its arrival number, the key it is filed under and the tally it is counted
        # by (None: held), in one dict (100,000 queued: 22 MB for all of this, the dict by
        # id 5 MB of it; a second dict by id would add ~5 MB)
        self._filed: dict[str, tuple[int, Key, Tally | None]] = {}
        self._sorted: list[Key] = []
        self._arrivals = itertools.count()
        self._running = running
        self.tally = QueueTally()

    # --- the mapping the engine uses ------------------------------------------------------

    def get(self, item_id: str) -> Item | None:
        return self._by_id.get(item_id)

    def __getitem__(self, item_id: str) -> Item:
        return self._by_id[item_id]

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def values(self) -> Iterable[Item]:
        return self._by_id.values()

    def __setitem__(self, item_id: str, item: Item) -> None:
        # a dict keeps a key's place when its value changes: so does the arrival order
        arrival = (self._unfile(item_id) if item_id in self._by_id
                   else next(self._arrivals))
        self._by_id[item_id] = item
        key = sort_key(item)
        self._filed[item_id] = (arrival, key, self._counted(item))
        bisect.insort(self._sorted, key)

    def __delitem__(self, item_id: str) -> None:
        del self._by_id[item_id]
        self._unfile(item_id)

    def setdefault(self, item_id: str, item: Item) -> Item:
        if item_id not in self._by_id:
            self[item_id] = item
        return self._by_id[item_id]

    def _unfile(self, item_id: str) -> int:
        """Take the item's key out of the list order and its tally out of the counts; its
        arrival number."""
        arrival, key, tally = self._filed.pop(item_id)
        del self._sorted[bisect.bisect_left(self._sorted, key)]
        if tally is not None:
            self.tally.file(tally, -1)
        return arrival

    def _counted(self, item: Item) -> Tally | None:
        """Count a resting item; its tally (None: a run holds it)."""
        if self._running(item.id):
            return None
        tally = self.tally.tally_of(item)
        self.tally.file(tally)
        return tally

    # --- the counts -----------------------------------------------------------------------

    def hold(self, item_id: str) -> None:
        """Its run owns the item from now on: its counts are read live (it was counted as
        it was filed)."""
        arrival, key, tally = self._filed[item_id]
        if tally is not None:
            self.tally.file(tally, -1)
            self._filed[item_id] = (arrival, key, None)

    def release(self, item_id: str) -> None:
        """No run owns the item of this id any more: count it as it is, if it is queued."""
        filed = self._filed.get(item_id)
        if filed is not None and filed[2] is None:
            self._filed[item_id] = (*filed[:2], self._counted(self._by_id[item_id]))

    def refresh(self, item: Item) -> None:
        """A resting ``item`` changed: count it as it is now."""
        filed = self._filed.get(item.id)
        if filed is None or filed[2] is None or self._by_id[item.id] is not item:
            return
        tally = self.tally.tally_of(item)
        if tally != filed[2]:
            self.tally.file(filed[2], -1)
            self.tally.file(tally)
            self._filed[item.id] = (*filed[:2], tally)

    def held(self, item: Item) -> bool:
        """Whether ``item`` is queued and not counted: its run's reads count it."""
        filed = self._filed.get(item.id)
        return filed is not None and filed[2] is None and self._by_id[item.id] is item

    # --- reads ----------------------------------------------------------------------------

    def newest_arrivals(self, count: int) -> Iterator[Item]:
        """The last ``count`` items to arrive, the last first."""
        return itertools.islice(reversed(self._by_id.values()), count)

    def in_arrival_order(self, items: Iterable[Item]) -> list[Item]:
        """``items`` of the queue (each once) in the order they arrived."""
        unique = {item.id: item for item in items}
        return sorted(unique.values(), key=lambda item: self._filed[item.id][0])

    def window(self, start: int, count: int, *, newest_first: bool,
               keep: Callable[[Item], bool] | None = None,
               after: Anchor | None = None, total: int | None = None) -> Window:
        """``count`` items from the ``start``-th on, of the items ``keep`` keeps (all when
        None), in list order (``newest_first``: reversed), following ``after`` when given.
        Without ``keep`` it reads only the page; with it, it tests items until the page is
        full and, unless ``total`` (how many ``keep`` keeps) is given, every item for the
        total, but copies none."""
        lo, hi = self._following(after, newest_first)
        if keep is None:
            total, span = len(self._sorted), hi - lo
            end = min(span, start + count)
            if newest_first:
                keys = self._sorted[hi - end : hi - min(start, end)][::-1]
            else:
                keys = self._sorted[lo + min(start, end) : lo + end]
            return Window([self._by_id[key[1]] for key in keys], total, span > start + count)
        if total is None:
            total = sum(1 for item in self._by_id.values() if keep(item))
        positions = range(hi - 1, lo - 1, -1) if newest_first else range(lo, hi)
        kept = (item for item in (self._by_id[self._sorted[n][1]] for n in positions)
                if keep(item))
        # the walk ends at the page's end or at the last kept item, if it comes first
        page = list(itertools.islice(kept, start, min(start + count + 1, total)))
        return Window(page[:count], total, len(page) > count)

    def _following(self, after: Anchor | None, newest_first: bool) -> tuple[int, int]:
        """The span of the sorted keys that follow ``after`` (store/order.py's ``follows``)."""
        keys = self._sorted
        if after is None:
            return 0, len(keys)
        if after.id is None:  # the time alone: every item of that time is at it, not after
            if newest_first:
                return 0, bisect.bisect_left(keys, after.created_at, key=_time_of)
            return bisect.bisect_right(keys, after.created_at, key=_time_of), len(keys)
        at = (after.created_at, after.id)
        if newest_first:
            return 0, bisect.bisect_left(keys, at)
        return bisect.bisect_right(keys, at), len(keys)
