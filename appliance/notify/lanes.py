"""A target as delivery sees it, and its lane: the queue and thread that send to it, merge
chat bursts and retry (the rule: ``Lane``). The dispatcher that feeds the lanes:
``notifier.py``; what keeps their notices across a restart: ``outbox.py``."""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import events
from ..outbound import checked_session
from ..store.outbox import target_key
from . import messages
from .batches import BatchClosed, Notice
from .catalog import DUPLICATES, EVENTS, ITEM_EVENTS, MERGE_GROUP
from .outbox import Job
from .senders import Outcome
from .targets import is_webhook, scrub

if TYPE_CHECKING:
    import requests

    from .notifier import Notifier

log = logging.getLogger("appliance.notify")

MAX_BACKOFF = 300.0  # seconds; the longest wait between two retries
# A chat summary waits for the rest of its playlist at most this long, so a long playlist
# still reports what it has done every so often.
BURST_MAX_HOLD = 600.0
STOP = object()  # the end of a queue


@dataclasses.dataclass(frozen=True, eq=False)
class Target:
    """A target as delivery sees it (a snapshot; the store holds the truth)."""

    key: str  # db:<id> or file:<digest of its URL>
    id: int | None
    name: str
    on: tuple[str, ...]
    presets: tuple[str, ...]
    enabled: bool
    request: dict[str, Any]

    @property
    def chat(self) -> bool:
        return not is_webhook(self.request["url"])

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Target:
        return cls(target_key(record["id"]), record["id"], record["name"], tuple(record["on"]),
                   tuple(record["presets"]), record["enabled"], record["request"])

    def wants(self, notice: Notice) -> bool:
        # (no "test" comes this way: the test endpoint sends to every target itself)
        if not self.enabled:
            return False
        wanted = self.on or EVENTS
        if notice.event not in wanted:
            return False
        duplicate_of = DUPLICATES.get(notice.event)
        if duplicate_of and notice.item_id and duplicate_of in wanted:
            return False
        if self.presets and notice.event in ITEM_EVENTS:
            return notice.preset in self.presets
        return True


@dataclasses.dataclass
class Group:
    """A burst being merged for one chat target: one kind, one batch."""

    kind: str
    batch_id: str
    batch_name: str
    target: Target
    first: float
    last: float
    batch_open: bool = False
    burst: messages.Burst = dataclasses.field(default_factory=messages.Burst)
    attempts: int = 0  # the retry state its restored notices had
    next_at: float = 0.0

    def rows(self) -> list[int | None]:
        """The outbox rows of what it holds whole (what it only counts has none)."""
        return [b["row"] for b in self.burst.briefs]

    def due_at(self, window: float) -> float:
        hold_until = self.first + BURST_MAX_HOLD
        return hold_until if self.batch_open else min(self.last + window, hold_until)


class Lane:
    """One target's queue and thread.

    The merging rule (chat targets only, when ``notify_burst_window`` > 0): item events are
    held in groups — ``added``, ``finished`` (completed, failed, cancelled together) and
    ``deleted`` — one group per playlist (``batch_id``; items added one by one share the
    group of no batch). A group is sent as ONE message when no new event has joined it for
    the window and, for ``finished``, when no entry of its playlist is still queued; it is
    sent anyway once it has been held ``BURST_MAX_HOLD`` seconds. A group of one event is
    sent as that event's own message. Other events (pause, resume, log messages, test) are
    sent at once. Webhooks get every event, one request each, at once.

    Each notice's outbox row goes once it is delivered, given up or not wanted; a stop leaves
    it. A group keeps the rows of the events it holds whole; those it only counts lose theirs
    as they join (after a restart the summary lists what it held).
    """

    def __init__(self, notifier: Notifier, target: Target) -> None:
        self.notifier = notifier
        self.key = target.key
        self.name = target.name
        self.jobs: queue.Queue[Any] = queue.Queue()  # bounded by ``trim``
        self.groups: dict[tuple[str, str], Group] = {}
        self.closing = False
        self.discard = False
        self.session: requests.Session | None = None
        self.thread = threading.Thread(target=self._run, name=f"notify-{target.key}",
                                       daemon=True)

    def put(self, job: Any) -> None:
        self.jobs.put_nowait(job)

    def trim(self, keep: int) -> list[Job]:
        """Take the oldest notices out of the queue, so that at most ``keep`` wait; them.
        (the job in hand and what a group holds are not in the queue)"""
        with self.jobs.mutex:
            waiting = [job for job in self.jobs.queue if isinstance(job, Job)]
            gone = waiting[:max(0, len(waiting) - keep)]
            if gone:
                dropped = set(gone)
                kept = [job for job in self.jobs.queue if job not in dropped]
                self.jobs.queue.clear()
                self.jobs.queue.extend(kept)
            return gone

    def close(self, *, discard: bool = False) -> None:
        self.discard = self.discard or discard
        self.closing = True
        self.jobs.put_nowait(STOP)

    def _next_timeout(self) -> float | None:
        if not self.groups:
            return None
        window = self.notifier.window
        return max(0.0, min(g.due_at(window) for g in self.groups.values()) - time.monotonic())

    def _run(self) -> None:
        try:
            while True:
                try:
                    job = self.jobs.get(timeout=self._next_timeout())
                except queue.Empty:
                    job = None
                if self.discard:
                    break
                if self.notifier.abandoned:
                    self._say_unsent(job)
                    break
                if job is not None and job is not STOP:
                    self._guarded(self._handle, job)
                if self.closing and self.jobs.empty():
                    self._guarded(self._flush, everything=True)
                    break
                self._guarded(self._flush)
        finally:
            if self.session is not None:
                self.session.close()
            self.notifier.store.release_thread()

    def _say_unsent(self, job: Any) -> None:
        """What a stop left unsent, said: what has its outbox row is sent after the restart;
        the rest (the database refused its row, a summary only counted it) is lost."""
        waiting = [j for j in (job, *self.jobs.queue) if isinstance(j, Job)]
        rows = [j.row for j in waiting] + [r for g in self.groups.values() for r in g.rows()]
        kept = sum(row is not None for row in rows)
        lost = len(rows) - kept + sum(sum(g.burst.more.values()) for g in self.groups.values())
        if kept:
            log.info("%d notification event(s) for %r wait for the next start: the service "
                     "stopped while they waited", kept, self.name)
        if lost:
            log.warning("%d notification event(s) for %r were not sent: the service stopped "
                        "while they waited, and they were not kept", lost, self.name)

    def _guarded(self, step: Callable[..., None], job: Any = None, **kwargs: Any) -> None:
        """One step of the lane; whatever it raises fails that step only (recorded on the
        target when the step was an event for it), and the lane goes on with the next."""
        try:
            step(*([job] if job is not None else []), **kwargs)
        except Exception as exc:
            log.exception("notification lane %r could not handle an event", self.name)
            if isinstance(job, Job):  # given up: a restart would meet the same bug
                self.notifier.outbox.done([job.row])
                self.notifier.record(job.target, internal_error(exc, job.target))

    def _handle(self, job: Any) -> None:
        if isinstance(job, BatchClosed):
            for group in self.groups.values():
                if group.batch_id == job.batch_id:
                    group.batch_open = False
            return
        notice = job.notice
        # Where the target points now, and what it wants: it may have been edited (a new URL,
        # events it no longer wants) or disabled while the event waited behind a hanging send.
        target = self.notifier.latest(job.target)
        if not target.wants(notice):
            self.notifier.outbox.done([job.row])
            return
        if target.chat and notice.event in MERGE_GROUP and self.notifier.window > 0:
            self._join(target, job)
            return
        if target.chat:
            payload: Any = messages.describe(notice.event, notice.item or notice.data)
        else:
            payload = messages.envelope(notice.event, notice.data, notice.at, job.delivery)
        self.deliver(target, payload, [job.row], job.attempts, job.next_at)

    def _join(self, target: Target, job: Job) -> None:
        notice = job.notice
        if notice.event == events.ITEM_ADDED and notice.batch_id:
            # A playlist's entries replace the item it was added as: that item's own
            # "queued" and "removed" need not reach people.
            for group in self.groups.values():
                replaced = [b for b in group.burst.briefs
                            if b["data"].get("id") == notice.batch_id]
                if replaced:
                    self.notifier.outbox.done(b["row"] for b in replaced)
                    group.burst.briefs = [b for b in group.burst.briefs if b not in replaced]
            self.groups = {k: g for k, g in self.groups.items() if g.burst.count()}
        kind = MERGE_GROUP[notice.event]
        now = time.monotonic()
        group = self.groups.get((kind, notice.batch_id))
        if group is None:
            group = Group(kind, notice.batch_id, notice.batch_name, target, now, now)
            self.groups[(kind, notice.batch_id)] = group
        group.target, group.last = target, now
        group.batch_open = notice.batch_open and kind == "finished"
        group.batch_name = group.batch_name or notice.batch_name
        group.attempts = max(group.attempts, job.attempts)
        group.next_at = max(group.next_at, job.next_at)
        held = len(group.burst.briefs)
        group.burst.add({**messages.brief(notice.event, notice.item, notice.at),
                         "row": job.row, "delivery": job.delivery})
        if len(group.burst.briefs) == held:  # only counted: its row is no use
            self.notifier.outbox.done([job.row])

    def _flush(self, *, everything: bool = False) -> None:
        now, window = time.monotonic(), self.notifier.window
        for key, group in list(self.groups.items()):
            if everything or group.due_at(window) <= now:
                del self.groups[key]
                # Where the target points now: it may have been edited while the group waited.
                target = self.notifier.latest(group.target)
                if not target.enabled:
                    self.notifier.outbox.done(group.rows())
                    continue
                if target.chat:
                    self.deliver(target, messages.summarize(
                        group.kind, group.batch_name, group.burst), group.rows(),
                        group.attempts, group.next_at)
                else:  # the target became a webhook meanwhile: what was held whole
                    for b in group.burst.briefs:
                        self.deliver(target, messages.envelope(
                            b["event"], b["data"], b["at"], b["delivery"]), [b["row"]])
                    if group.burst.more:
                        log.info("notification target %r became a webhook during a burst: "
                                 "%d of its events were only counted, not sent", self.name,
                                 sum(group.burst.more.values()))

    def deliver(self, target: Target, payload: Any, rows: list[int | None],
                attempts: int = 0, next_at: float = 0.0) -> None:
        """Send with retries (transient failures only, backoff doubling), record the result;
        the outbox ``rows`` go unless a stop came first. ``attempts`` and ``next_at``: the
        retry state of restored notices (their wait is kept)."""
        notifier = self.notifier
        wait = next_at - time.time()
        if wait > 0 and notifier.stopping.wait(min(wait, MAX_BACKOFF)):
            return  # (kept for the next start)
        attempt = attempts
        stopped = False
        while True:
            if self.session is None and not target.chat:
                self.session = checked_session("notifications")  # (requests loads here: ~15 MB)
            outcome = notifier.send_once(target, payload, self.session)
            if outcome.ok or not outcome.transient or attempt >= notifier.retries:
                break
            delay = min(MAX_BACKOFF, notifier.retry_delay * 2 ** attempt)
            if outcome.retry_after:
                delay = max(delay, min(outcome.retry_after, MAX_BACKOFF))
            # (debug: the journal says a failure once, when the retries are spent, not once
            # a retry; the API shows the wait meanwhile)
            log.debug("notification to %r failed (%s); retry %d of %d in %.1f s", target.name,
                     outcome.error, attempt + 1, notifier.retries, delay)
            notifier.outbox.retrying(rows, attempt + 1, time.time() + delay)
            if notifier.stopping.wait(delay):
                stopped = True  # no more retries: the next start goes on with them
                break
            latest = notifier.latest(target)  # the next try goes where the target points now
            if not latest.enabled or latest.chat != target.chat:
                break  # (disabled or deleted meanwhile; or its payload is for the other kind)
            target = latest
            attempt += 1
        if not stopped:
            notifier.outbox.done(rows)
        if not outcome.ok:
            log.warning("notification to %r failed after %d attempt(s)%s: %s", target.name,
                        attempt + 1, "; kept for the next start" if stopped else "",
                        outcome.error, exc_info=outcome.bug)
            if attempt:
                outcome = dataclasses.replace(
                    outcome, error=f"{outcome.error} ({attempt + 1} attempts)")
        notifier.record(target, outcome)


def internal_error(exc: Exception, target: Target) -> Outcome:
    return Outcome(False, None, scrub(f"Internal error: {type(exc).__name__}: {exc}",
                                      target.request), bug=exc)
