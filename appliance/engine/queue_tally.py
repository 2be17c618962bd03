"""Counts of the queue kept as it changes, for the reads that answered them by testing every
queued item (100,000 queued: engine stats 76 ms, a status filter's total 30 ms; Flasharr's
batch summaries read five fields of each of 20,000 batched items, 157 ms):

- items per (status, auto_start, in a batch or not): engine stats, a status filter's total,
  Flasharr's lists by state;
- per batch, what its Flasharr summary takes of its queued items: how many per (status,
  auto_start), its name, summed sizes, percentages and speeds, its first time;
- whether any item waits to start: the dispatcher's walk of the queue, skipped when none.

Each item is counted by its ``tally`` (``tally_of``), filed when it comes to rest in the
queue and taken back, as filed, when it leaves or changes (``QueueItems``, under the engine's
lock): a count never takes back what an item was not counted for. A running item (a handful)
changes its figures at each progress message: it is not filed, and reads add it live.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import Counter
from collections.abc import Iterable

from ..store import Item
from ..store.records import PENDING

CountKey = tuple[str, bool, bool]  # status, auto_start, in a batch
# status, auto_start, batch_id, batch_name, total_bytes, downloaded_bytes, percent, speed,
# created_at; an item of no batch is counted by its first two alone (the rest are None)
Tally = tuple[str, bool, str, str, int | None, int | None, float | None, float | None,
              float | None]


def count_key(item: Item) -> CountKey:
    return item.status, item.auto_start, bool(item.batch_id)


@dataclasses.dataclass
class QueueBatch:
    """A batch's items in the queue, summed (``flasharr.batches`` makes its summary)."""

    counts: dict[tuple[str, bool], int]  # items per (status, auto_start)
    name: str  # the first name its items carry (they share one, unless edited apart)
    total_bytes: int
    downloaded_bytes: int
    percent: float
    speed: float
    created_at: float | None

    def merged(self, other: QueueBatch) -> QueueBatch:
        counts = Counter(self.counts)
        counts.update(other.counts)
        times = [t for t in (self.created_at, other.created_at) if t]
        return QueueBatch(dict(counts), self.name or other.name,
                          self.total_bytes + other.total_bytes,
                          self.downloaded_bytes + other.downloaded_bytes,
                          self.percent + other.percent, self.speed + other.speed,
                          min(times) if times else None)


def _count(counter: Counter, key: object, sign: int) -> None:
    """Add ``sign`` to ``key``'s count; a count down to nothing leaves (reads walk them)."""
    counter[key] += sign
    if not counter[key]:
        del counter[key]


class _BatchSum:
    """One batch's filed items. Percentages and speeds are counted per value, not summed:
    a float sum that takes back what it added drifts, a count does not (most are None)."""

    def __init__(self) -> None:
        self.size = 0
        self.counts: Counter[tuple[str, bool]] = Counter()
        self.names: Counter[str] = Counter()  # in the order first filed
        self.total_bytes = self.downloaded_bytes = 0
        self.percents: Counter[float] = Counter()
        self.speeds: Counter[float] = Counter()
        self.times: list[float] = []  # sorted: the first is the batch's

    def file(self, tally: Tally, sign: int) -> None:
        status, auto_start, _, name, total, downloaded, percent, speed, created = tally
        self.size += sign
        _count(self.counts, (status, auto_start), sign)
        if name:
            _count(self.names, name, sign)
        self.total_bytes += sign * (total or 0)
        self.downloaded_bytes += sign * (downloaded or 0)
        if percent:
            _count(self.percents, percent, sign)
        if speed:
            _count(self.speeds, speed, sign)
        if created:
            if sign > 0:
                bisect.insort(self.times, created)
            else:
                del self.times[bisect.bisect_left(self.times, created)]

    def read(self) -> QueueBatch:
        return QueueBatch(
            dict(self.counts), next(iter(self.names), ""), self.total_bytes,
            self.downloaded_bytes, sum(p * n for p, n in self.percents.items()),
            sum(s * n for s, n in self.speeds.items()), self.times[0] if self.times else None)


class QueueTally:
    """The counts of the items filed in it (see the module's doc)."""

    def __init__(self) -> None:
        self.counts: Counter[CountKey] = Counter()
        self._batches: dict[str, _BatchSum] = {}
        self._shared: dict[Tally, Tally] = {}  # the few tallies of items of no batch, once

    def tally_of(self, item: Item) -> Tally:
        if not item.batch_id:
            tally: Tally = (item.status, item.auto_start, "", "", None, None, None, None, None)
            return self._shared.setdefault(tally, tally)
        return (item.status, item.auto_start, item.batch_id, item.batch_name,
                item.total_bytes, item.downloaded_bytes, item.percent, item.speed,
                item.created_at)

    def file(self, tally: Tally, sign: int = 1) -> None:
        """Count an item by ``tally`` (``sign`` -1: take back what it was counted for)."""
        batch_id = tally[2]
        _count(self.counts, (tally[0], tally[1], bool(batch_id)), sign)
        if batch_id:
            batch = self._batches.get(batch_id)
            if batch is None:
                batch = self._batches[batch_id] = _BatchSum()
            batch.file(tally, sign)
            if not batch.size:
                del self._batches[batch_id]

    def startable(self) -> bool:
        """Whether any item filed waits to start: a queue held back whole (a subscription's
        back catalogue, thousands) is not walked at each of the dispatcher's wakes for
        none."""
        return any(status == PENDING and auto_start for status, auto_start, _ in self.counts)

    def batches(self) -> dict[str, QueueBatch]:
        """Each batch's sums, in the order its first filed item came."""
        return {batch_id: batch.read() for batch_id, batch in self._batches.items()}


def summed(items: Iterable[Item]) -> dict[str, QueueBatch]:
    """The batches of ``items``, summed as the queue keeps them."""
    tally = QueueTally()
    for item in items:
        tally.file(tally.tally_of(item))
    return tally.batches()
