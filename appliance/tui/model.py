"""The queue as the TUI knows it, kept from the websocket's events. No Textual here.

Items stay after they leave the service's queue (finished, failed, cancelled while the TUI
watched) so that one can see them end and retry them; ``clear_ended`` drops them. Every
change marks the item dirty; the view repaints dirty rows on its own clock, so a burst of
progress events costs one repaint.

It holds at most :data:`MAX_ITEMS` items: a queue of a hundred thousand (or a service that
names a new id in every event) would fill the memory and make every repaint crawl. Past that
the oldest are left out, those that ended first and running ones last, and ``left_out`` says
so.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from appliance.client import LiveEvent

from .format import number

ACTIVE = frozenset({"preparing", "downloading", "postprocessing"})
ENDED = frozenset({"finished", "error", "cancelled", "skip"})
SPEED_SAMPLES = 60
MAX_ITEMS = 1000
# Left out in batches of this many at once past MAX_ITEMS (one sort per batch, not per
# event), and down to MAX_ITEMS exactly when the view repaints.
LEAVE_OUT_BATCH = 100
# Items whose failure was counted, remembered so that it is counted once.
COUNTED_FAILURES = 2 * MAX_ITEMS

_FULL_ITEM_EVENTS = frozenset({
    "item_added", "item_updated", "item_completed", "item_error", "item_cancelled",
    "item_status",
})


def _number(item: dict[str, Any], *keys: str) -> float | None:
    """The first of ``keys`` that holds a number (the wire gives speed and ETA as numbers,
    older services as text beside ``speed_bps``/``eta_seconds``)."""
    for key in keys:
        if (value := number(item.get(key))) is not None:
            return value
    return None


def speed_of(item: dict[str, Any]) -> float | None:
    """Bytes per second."""
    return _number(item, "speed_bps", "speed")


def eta_of(item: dict[str, Any]) -> float | None:
    return _number(item, "eta_seconds", "eta")


def percent_of(item: dict[str, Any]) -> float | None:
    percent = _number(item, "percent", "progress")
    if percent is not None:
        return percent
    if item.get("status") == "finished":
        return 100.0
    done, total = number(item.get("downloaded_bytes")), number(item.get("total_bytes"))
    if done is not None and total is not None and total > 0:
        return 100.0 * done / total
    return None


@dataclasses.dataclass(frozen=True)
class Missed:
    """What ended while the TUI was away, as a snapshot after a reconnect tells it."""

    vanished: list[str]  # waiting or running here, not in the snapshot
    ended: int  # items the history gained meanwhile: those, and any added and ended unseen
    # The earliest creation time of the vanished, when each has one: the history (ordered by
    # creation) holds none of them past it.
    oldest: float | None = None


def local_day(epoch: float) -> tuple[int, int, int]:
    return time.localtime(epoch)[:3]


class QueueModel:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.items: dict[str, dict[str, Any]] = {}
        self.dirty: set[str] = set()
        self.removed: set[str] = set()
        self.paused = False
        self.pause_events = 0  # pause and resume events seen (a read of the pause before is old)
        self.history_count = 0
        self.synced = False  # a snapshot was taken: the next one is a catch-up
        self.failed = 0  # failures today: counted from the history at connect, then events
        self.failed_day = local_day(clock())  # the day they are counted for
        self.counted_failures: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.left_out = False  # older items were left out for newer ones (MAX_ITEMS)
        self.speeds: collections.deque[float] = collections.deque(maxlen=SPEED_SAMPLES)

    # --- what the websocket says ---------------------------------------------------------

    def snapshot(self, live: dict[str, Any]) -> Missed:
        """Take ``/api/history/live``; what ended while the TUI was away (the caller asks the
        history for it)."""
        queue = live.get("queue") or {}
        count = int(live.get("history_count") or 0)
        ended = max(0, count - self.history_count) if self.synced else 0
        self.history_count, self.synced = count, True
        vanished = [i for i, item in self.items.items()
                    if i not in queue and item.get("status") not in ENDED]
        created = [number(self.items[i].get("created_at")) for i in vanished]
        oldest = None if None in created else min(created, default=None)
        # The service's whole queue from here on, or as much of it as was asked for.
        self.left_out = int(live.get("queue_count") or 0) > len(queue)
        for item_id, item in queue.items():
            # The key is the id: an item that lacks one or names another still has this one.
            self.items[item_id] = {**item, "id": item_id}
            self.dirty.add(item_id)
            self._bound(MAX_ITEMS + LEAVE_OUT_BATCH)
        return Missed(vanished, ended, oldest)

    def apply(self, event: LiveEvent) -> None:
        data = event.data
        name = event.name
        if name in {"paused", "resumed"}:
            self.paused = name == "paused"
            self.pause_events += 1
        elif name == "item_deleted" and isinstance(data, dict):
            self.remove(str(data.get("id")))
        elif name == "item_moved" and isinstance(data, dict):
            moved = data.get("item")
            if isinstance(moved, dict):
                self.upsert(moved)
        elif name in _FULL_ITEM_EVENTS and isinstance(data, dict) and data.get("id"):
            # Ids are the queue's keys, text: a number or a list from the wire is made one.
            item_id = str(data["id"])
            data = {**data, "id": item_id}
            if name == "item_error":
                self.count_failure(item_id)
            if "kind" in data or name == "item_added":
                self.upsert(data)
            elif self.items.get(item_id, {}).get("kind") == "queue":
                # progress: only the fields that move
                self.items[item_id].update(data)
                self.dirty.add(item_id)

    def upsert(self, item: dict[str, Any]) -> None:
        item_id = str(item.get("id"))
        known = self.items.get(item_id)
        if known is not None and item.get("kind") == "queue" and known.get("kind") == "done":
            return  # a late state event of an item that has already ended
        if item.get("kind") == "done" and (known is None or known.get("kind") != "done"):
            self.history_count += 1
        self._store(item_id, item)

    def ended_meanwhile(self, item: dict[str, Any]) -> None:
        """An item of the history that ended while the TUI was away (the snapshot's count
        has it already); one that failed today is counted (its event came to no one)."""
        if item.get("status") == "error" and local_day(
                number(item.get("finished_at")) or 0) == local_day(self.clock()):
            self.count_failure(str(item.get("id")))
        self._store(str(item.get("id")), item)

    def gone(self, item_id: str) -> None:
        """An item the snapshot left out and the history does not hold: deleted, or waiting
        beyond what the snapshot holds. Kept if an event said meanwhile that it ended."""
        if self.items.get(item_id, {}).get("status") not in ENDED:
            self.remove(item_id)

    def count_failure(self, item_id: str) -> None:
        if item_id in self.counted_failures:
            return
        self.counted_failures[item_id] = None
        if len(self.counted_failures) > COUNTED_FAILURES:
            self.counted_failures.popitem(last=False)
        self.failures_today()  # (a new day starts from none)
        self.failed += 1

    def failures_today(self) -> int:
        """The count of today's failures; from none again once the day has changed (a TUI
        left open in tmux said "37 failed today" for a week's)."""
        today = local_day(self.clock())
        if today != self.failed_day:
            self.failed, self.failed_day = 0, today
        return self.failed

    def _store(self, item_id: str, item: dict[str, Any]) -> None:
        self.items[item_id] = {**self.items.get(item_id, {}), **item, "id": item_id}
        self.removed.discard(item_id)
        self.dirty.add(item_id)
        self._bound(MAX_ITEMS + LEAVE_OUT_BATCH)

    def _bound(self, most: int) -> None:
        """Past ``most`` items, down to :data:`MAX_ITEMS`: those that ended go first, then
        those that wait, running ones last; the oldest of each first, by creation (as the
        service's snapshot keeps the newest), then as first seen. (By first seen alone, each
        event of a waiting item left out, its info read as the queue works through its
        oldest, brought it back in place of one shown: a row removed and one added at every
        repaint, the whole table redrawn, 11-14 KB/s to the terminal with 1,005 queued.)"""
        if len(self.items) <= most:
            return
        order = {item_id: n for n, item_id in enumerate(self.items)}
        ranked = sorted(self.items, key=lambda i: (
            _rank(self.items[i]), number(self.items[i].get("created_at")) or 0.0, order[i]))
        for item_id in ranked[:len(self.items) - MAX_ITEMS]:
            self.remove(item_id)
        self.left_out = True

    def remove(self, item_id: str) -> None:
        if self.items.pop(item_id, None) is not None:
            self.removed.add(item_id)
            self.dirty.discard(item_id)

    def clear_ended(self) -> None:
        for item_id in [i for i, item in self.items.items() if item.get("status") in ENDED]:
            self.remove(item_id)

    # --- what the header shows -----------------------------------------------------------

    def totals(self) -> dict[str, Any]:
        active = queued = 0
        total_speed = 0.0
        for item in self.items.values():
            status = item.get("status")
            if status in ACTIVE:
                active += 1
                total_speed += speed_of(item) or 0.0
            elif status == "pending":
                queued += 1
        return {"active": active, "queued": queued, "speed": total_speed,
                "failed": self.failures_today(), "paused": self.paused}

    def sample_speed(self) -> float:
        speed = self.totals()["speed"]
        self.speeds.append(speed)
        return speed

    def take_changes(self) -> tuple[set[str], set[str]]:
        self._bound(MAX_ITEMS)
        dirty, removed = self.dirty, self.removed
        self.dirty, self.removed = set(), set()
        return dirty, removed


def _rank(item: dict[str, Any]) -> int:
    """Which items are left out first: ended (0), waiting (1), running (2)."""
    status = item.get("status")
    return 0 if status in ENDED else 2 if status in ACTIVE else 1
