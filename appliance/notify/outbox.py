"""What keeps a notice for a target across a stop or a crash: the job a lane holds, its row in
the outbox (store/outbox.py), the bounds of what waits, and the start-up's reading back.

- The dispatcher writes the rows of the events it routes, many in one transaction, before a
  lane can take them; the engine never waits for it. A lane removes a row once its notice is
  delivered, given up for good (a final failure, or the retries spent), or no longer wanted
  (the target edited, disabled or deleted); a stop leaves it, with its retry state.
- At most ``LANE_SIZE`` notices wait in one target's queue and ``TOTAL_SIZE`` in all queues:
  past that the oldest go, said in ONE warning per target and burst (``Overflow``).
- At start-up the rows are read back, oldest first, into their targets' lanes; a row that
  cannot be read, or whose target is gone or disabled, is dropped and said.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from ..store.database import StorageFailure
from ..store.outbox import OutboxStore
from .batches import Notice
from .catalog import EVENTS

if TYPE_CHECKING:
    from .lanes import Target

log = logging.getLogger("appliance.notify")

LANE_SIZE = 1000  # notices waiting in one target's queue
TOTAL_SIZE = 10_000  # in all queues
SAY_EVERY = 60.0  # seconds: how often an overflow that goes on is said
QUIET = 1.0  # seconds without events: the burst that overflowed is over, its count said
LATEST = 253402300800  # 10000-01-01: the end of the times a date can show


@dataclasses.dataclass(eq=False)
class Job:
    """A notice for one target, as a lane holds it."""

    target: Target
    notice: Notice
    row: int | None = None  # its outbox row; None while (or when) it has none
    delivery: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    attempts: int = 0  # tries that failed (before a restart)
    next_at: float = 0.0  # Unix time its next try is due (a restored retry's wait)


def _text(notice: Notice) -> str:
    fields = {f.name: getattr(notice, f.name) for f in dataclasses.fields(Notice)}
    # (what the bus carries is JSON for the websocket; str() for anything that is not)
    return orjson.dumps(fields, default=str).decode()


_STRINGS = ("event", "item_id", "preset", "batch_id", "batch_name")


def notice_of(text: str) -> Notice:
    """The notice a row holds; ValueError saying why it is not one."""
    fields = orjson.loads(text)
    if not isinstance(fields, dict) or set(fields) != {f.name for f in
                                                       dataclasses.fields(Notice)}:
        raise ValueError("not a notice's fields")
    if not all(isinstance(fields[k], str) for k in _STRINGS) or fields["event"] not in EVENTS:
        raise ValueError("a field is not text, or the event is unknown")
    at = fields["at"]
    # (a time no clock shows, 1e30, failed the envelope's date with a traceback at the send)
    if not isinstance(fields["item"], dict) or isinstance(at, bool) or \
            not isinstance(at, int | float) or not 0 <= at < LATEST:
        raise ValueError("item is not an object or at not a time")
    # A playlist's state is the dispatcher's of now: a restored summary waits for no entry.
    return Notice(**{**fields, "at": float(fields["at"]), "batch_open": False})


def fair_share(sizes: list[int], total: int) -> int:
    """The most each queue may keep so that ``sizes`` add up to ``total`` at most, the
    smaller queues kept whole (the fullest lose the most)."""
    left, count = total, len(sizes)
    for n, size in enumerate(sorted(sizes)):
        share = left // (count - n)
        if size > share:
            return share
        left -= size
    return max(sizes, default=0)


class Overflow:
    """Notices dropped for want of room, counted per target and said once per burst: when no
    event has come for ``QUIET`` seconds, or every ``SAY_EVERY`` while they keep coming."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.since = 0.0

    def add(self, name: str, count: int) -> None:
        if count:
            self.since = self.since or time.monotonic()
            self.counts[name] = self.counts.get(name, 0) + count

    def due(self) -> bool:
        return bool(self.counts) and time.monotonic() - self.since >= SAY_EVERY

    def say(self) -> None:
        for name, count in self.counts.items():
            log.warning("notification target %r had more than %d notices waiting (%d in all "
                        "targets at most): the oldest %d were dropped", name, LANE_SIZE,
                        TOTAL_SIZE, count)
        self.counts, self.since = {}, 0.0


class Outbox:
    """The outbox as delivery uses it. A database that refuses a write is said once, until
    one works again; delivery goes on meanwhile, only without the rows."""

    def __init__(self, store: OutboxStore) -> None:
        self.store = store
        self.overflow = Overflow()
        self._refused = False

    def _guarded(self, write: Callable[[], Any], what: str) -> Any:
        try:
            done = write()
        except StorageFailure as exc:
            if not self._refused:
                self._refused = True
                log.warning("notifications are not kept across a restart until the database "
                            "can be written: %s", exc.message)
            return None
        except Exception:
            log.exception("cannot %s the notification outbox", what)
            return None
        if self._refused:
            self._refused = False
            log.info("notifications are kept across a restart again")
        return done

    def keep(self, jobs: list[Job]) -> None:
        """Give each job its row (one transaction for them all)."""
        fresh = [job for job in jobs if job.row is None]
        rows = self._guarded(lambda: self.store.add(
            [(job.target.key, job.delivery, _text(job.notice)) for job in fresh]), "write")
        for job, row in zip(fresh, rows or (), strict=False):
            job.row = row

    def done(self, rows: Iterable[int | None]) -> None:
        chosen = [row for row in rows if row is not None]
        if chosen:
            self._guarded(lambda: self.store.remove(chosen), "write")

    def retrying(self, rows: Iterable[int | None], attempts: int, next_at: float) -> None:
        chosen = [row for row in rows if row is not None]
        if chosen:
            self._guarded(lambda: self.store.retrying(chosen, attempts, next_at), "write")

    def forget(self, target_key: str) -> None:
        self._guarded(lambda: self.store.remove_target(target_key), "write")

    def dropped(self, name: str, jobs: list[Job]) -> None:
        self.done(job.row for job in jobs)
        self.overflow.add(name, len(jobs))

    def waiting(self) -> dict[str, int]:
        """How many notices wait for each target (by key) that has some; {} when the
        database cannot say."""
        return self._guarded(self.store.counts, "read") or {}

    def restore(self, targets: dict[str, Target]) -> list[Job]:
        """The waiting notices of ``targets`` (enabled targets by key), oldest first; the
        rows that cannot be read or whose target is gone or disabled are dropped and said."""
        # No more than the queues keep (a table filled behind the service's back is not
        # read whole into memory): the newest, the rest dropped and said.
        rows = self._guarded(lambda: self.store.waiting(TOTAL_SIZE), "read") or []
        if len(rows) == TOTAL_SIZE and (older := self._guarded(
                lambda: self.store.remove_before(rows[0].row), "write")):
            log.warning("%d notification(s) waiting in the outbox were dropped, the oldest: "
                        "more than %d waited", older, TOTAL_SIZE)
        jobs: list[Job] = []
        unreadable: list[str] = []
        orphans: dict[str, int] = {}
        for row in rows:
            target = targets.get(row.target)
            if target is None:
                orphans[row.target] = orphans.get(row.target, 0) + 1
                continue
            try:
                notice = notice_of(row.notice)
                if not isinstance(row.attempts, int) or not isinstance(row.delivery, str):
                    raise ValueError("attempts or delivery id of a wrong type")
                next_at = float(row.next_at or 0.0)
            except (ValueError, TypeError) as exc:  # (orjson's errors are ValueErrors)
                unreadable.append(f"{row.row} ({str(exc)[:80]})")
                continue
            jobs.append(Job(target, notice, row.row, row.delivery, max(0, row.attempts),
                            next_at))
        kept = {job.row for job in jobs}
        self.done(row.row for row in rows if row.row not in kept)
        if unreadable:
            log.warning("%d notification(s) waiting in the outbox could not be read and were "
                        "dropped: row %s", len(unreadable), ", ".join(unreadable[:10]))
        for key, count in orphans.items():
            log.warning("%d notification(s) waiting for %r were dropped: that target is gone "
                        "or disabled", count, key[:100])
        if jobs:
            log.info("%d notification(s) kept from before the restart are sent again",
                     len(jobs))
        return jobs
