"""Delivery of notifications, off the engine's path.

- The bus subscriber only filters and puts the event on a bounded queue (``put_nowait``; when
  the queue is full the event is dropped and logged). It never blocks the publisher.
- One dispatcher thread (``notify-dispatch``) takes events off that queue, keeps track of
  which playlist entries are still queued, picks the targets that want each event and hands
  it to each target's lane. It never sends anything itself, so it never waits on a network.
- One lane per target: a thread (``notify-<target>``) with its own bounded queue that sends,
  with a timeout per send and retries with exponential backoff for transient failures. A
  slow, hanging or failing target only ever delays itself: downloads and other targets are
  on other threads. Targets on a home server are a handful, so a thread each is cheap and the
  isolation is total (a shared pool would let a hanging target hold a worker that others
  need).
- Chat (Apprise) lanes merge bursts; webhooks get every event as it comes. See
  ``lanes.Lane`` for the rule.
- The dispatcher writes what it hands to lanes to the outbox first (the events it finds
  waiting, in one transaction), and the start reads the outbox back into the lanes: a stop or
  a crash loses no notice that reached it (``outbox.py``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import events
from ..config import Settings, SettingsHolder
from ..events import Event, EventBus
from ..files.fetch import policy
from ..store.database import StorageFailure
from ..store.notifications import NotificationStore
from ..store.outbox import OutboxStore, file_target_key
from . import messages
from .batches import BatchClosed, BatchTracker
from .catalog import EVENTS, TEST
from .lanes import STOP, Lane, Target, internal_error
from .outbox import LANE_SIZE, QUIET, TOTAL_SIZE, Job, Outbox, fair_share
from .senders import Outcome, send_apprise, send_webhook
from .targets import asset, default_request, masked_request

if TYPE_CHECKING:
    import requests

log = logging.getLogger("appliance.notify")

QUEUE_SIZE = 2000  # events waiting for the dispatcher
BATCH = 500  # events the dispatcher routes at once (their outbox rows: one transaction)
CONFIG_FILE = "apprise.yml"


class Notifier:
    def __init__(self, settings: Settings | SettingsHolder, store: NotificationStore,
                 bus: EventBus, outbox: OutboxStore) -> None:
        self.store = store
        self.outbox = Outbox(outbox)
        self.bus = bus
        self.settings = SettingsHolder.of(settings)
        self.config_file: Path = self.settings.current.config_path / CONFIG_FILE
        self.stopping = threading.Event()
        self._abandon = threading.Event()
        self._unrecorded = threading.Event()  # a status could not be stored (said once)
        self._events: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_SIZE)
        self._lock = threading.Lock()
        self._lanes: dict[str, Lane] = {}
        self._retired: list[Lane] = []
        self._dirty = True
        self._targets: list[Target] = []
        self._file_targets: list[Target] = []
        self._file_status: dict[str, dict[str, Any]] = {}
        self._tracker = BatchTracker()
        self._unsubscribe: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self.dropped = 0

    # Read from the settings each time they are used.
    @property
    def timeout(self) -> float:
        return self.settings.current.notify_timeout

    @property
    def retries(self) -> int:
        return self.settings.current.notify_retries

    @property
    def retry_delay(self) -> float:
        return self.settings.current.notify_retry_delay

    @property
    def window(self) -> float:
        return self.settings.current.notify_burst_window

    @property
    def abandoned(self) -> bool:
        return self._abandon.is_set()

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._file_targets = self._load_config_file()
        self._restore()
        self._thread = threading.Thread(target=self._dispatch_loop, name="notify-dispatch",
                                        daemon=True)
        self._thread.start()
        self._unsubscribe = self.bus.subscribe(self._on_event)

    def stop(self, drain: float = 3.0) -> None:
        """Deliver what is pending within ``drain`` seconds (no retries), then drop the rest.
        Returns once every thread has ended, or at most ~5 s later for a send in flight."""
        if self._thread is None:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.stopping.set()
        deadline = time.monotonic() + drain
        try:
            self._events.put(STOP, timeout=drain)
        except queue.Full:
            self._abandon.set()  # the dispatcher checks it between events
        self._thread.join(max(0.1, deadline - time.monotonic()))
        with self._lock:
            lanes = [*self._lanes.values(), *self._retired]
            for lane in lanes:
                lane.close()
        for lane in lanes:
            lane.thread.join(max(0.0, deadline - time.monotonic()))
        if any(lane.thread.is_alive() for lane in lanes) or self._thread.is_alive():
            self._abandon.set()
            # A send in flight ends within its timeout; the threads then see the abandon
            # and end (they are daemons: they never hold up the process's exit).
            give_up = time.monotonic() + min(self.timeout + 1, 5)
            for thread in [self._thread, *(lane.thread for lane in lanes)]:
                thread.join(max(0.0, give_up - time.monotonic()))
        with self._lock:  # a lane the dispatcher made while it was being stopped
            for lane in self._lanes.values():
                if lane not in lanes:
                    lane.close(discard=True)
        left = [lane.name for lane in lanes if lane.thread.is_alive()]
        if left:
            log.warning("notification threads still sending after the stop: %s", left)
        if self.dropped:
            log.warning("%d notification event(s) were dropped (queue full)", self.dropped)
        self.outbox.overflow.say()
        self._thread = None

    def _restore(self) -> None:
        """The notices the outbox kept, back in their lanes in their order (before any new
        event: those come after them)."""
        targets = {t.key: t for t in self._current_targets() if t.enabled}
        if self._dirty:  # the targets could not be read: their notices wait for a start that can
            log.warning("the notifications kept from before the restart wait for the next "
                        "start: the notification targets could not be read")
            return
        lanes = set()
        for job in self.outbox.restore(targets):
            lane = self._lane(job.target)
            lane.put(job)
            lanes.add(lane)
        self._bound(lanes)

    # --- the hand-off (publisher's thread) ------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.progress:
            return
        if event.name == events.CONFIG_UPDATE:
            if isinstance(event.data, dict) and event.data.get("feature") == "notifications":
                self._dirty = True
            return
        if event.name not in EVENTS and event.name != events.ITEM_UPDATED:
            return
        if isinstance(event.data, dict) and str(event.data.get("logger", "")).startswith(
                log.name):
            return  # our own warnings (a target failing) must not become notifications
        try:
            self._events.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("notification queue full (%d events): dropped %d so far",
                            QUEUE_SIZE, self.dropped)

    # --- the dispatcher ---------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        try:
            while True:
                batch, stop = self._take()
                puts: list[tuple[Lane, Any]] = []
                for event in batch:
                    try:
                        puts += self._dispatch(event)
                    except Exception:
                        log.exception("notification dispatch failed for %s", event.name)
                # Kept before any lane can take them (and lose them to a crash mid-send).
                self.outbox.keep([job for _, job in puts if isinstance(job, Job)])
                for lane, job in puts:
                    lane.put(job)
                self._bound({lane for lane, _ in puts})
                if stop:
                    break
        finally:
            self.store.release_thread()

    def _take(self) -> tuple[list[Event], bool]:
        """The next events (the first waited for, then those waiting, ``BATCH`` at most), and
        whether the stop came. A burst's overflow is said once it is over (``Overflow``)."""
        overflow = self.outbox.overflow
        try:
            event = self._events.get(timeout=QUIET if overflow.counts else None)
        except queue.Empty:
            overflow.say()
            return [], False
        if overflow.due():
            overflow.say()
        batch: list[Event] = []
        while event is not STOP and not self._abandon.is_set():
            batch.append(event)
            if len(batch) >= BATCH:
                return batch, False
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _dispatch(self, event: Event) -> list[tuple[Lane, Any]]:
        """What ``event`` puts in which lane."""
        notice, closed = self._tracker.observe(event)
        if notice is None:
            return []
        puts: list[tuple[Lane, Any]] = [(self._lane(target), Job(target, notice))
                                        for target in self._current_targets()
                                        if target.wants(notice)]
        if closed:
            with self._lock:
                lanes = list(self._lanes.values())
            puts += [(lane, BatchClosed(batch_id)) for lane in lanes for batch_id in closed]
        return puts

    def _bound(self, lanes: set[Lane]) -> None:
        """At most LANE_SIZE notices in the queue of each of ``lanes`` and TOTAL_SIZE in all
        queues (the fullest queues lose their oldest): the rest go."""
        for lane in lanes:
            self.outbox.dropped(lane.name, lane.trim(LANE_SIZE))
        with self._lock:
            every = list(self._lanes.values())
        sizes = [lane.jobs.qsize() for lane in every]
        if sum(sizes) > TOTAL_SIZE:
            level = fair_share(sizes, TOTAL_SIZE)
            for lane in every:
                self.outbox.dropped(lane.name, lane.trim(level))

    def _current_targets(self) -> list[Target]:
        if self._dirty:
            self._dirty = False
            try:
                self._targets = [Target.from_record(r) for r in self.store.all()]
            except StorageFailure:  # the store says it, once: not a traceback at each event
                self._dirty = True
            except Exception:
                self._dirty = True
                log.exception("cannot read the notification targets")
            # A deleted or disabled target's lane ends, dropping what it still holds (and
            # its outbox rows: the store drops them with the change, but for those written
            # by the dispatch that was under way meanwhile).
            keys = {t.key for t in self._targets + self._file_targets if t.enabled}
            with self._lock:
                retired = [self._lanes.pop(k) for k in list(self._lanes) if k not in keys]
                for lane in retired:
                    lane.close(discard=True)
                self._retired = [lane for lane in self._retired + retired
                                 if lane.thread.is_alive()]
            for lane in retired:
                self.outbox.forget(lane.key)
        return self._targets + self._file_targets

    def latest(self, target: Target) -> Target:
        """``target`` as it is now (disabled once deleted): as the dispatcher last read it from
        the store, or from the store when it changed since (the dispatcher reads it again only
        with the next event, and a lane may be retrying meanwhile). The dispatcher replaces
        its lists whole and never edits one: reading them is safe here."""
        if self._dirty and target.id is not None:
            with contextlib.suppress(Exception):  # (the store says why; the copy will do)
                record = self.store.get(target.id)
                if record is None:
                    return dataclasses.replace(target, enabled=False)
                return Target.from_record(record)
        return next((t for t in self._targets + self._file_targets if t.key == target.key),
                    target)

    def _lane(self, target: Target) -> Lane:
        with self._lock:
            lane = self._lanes.get(target.key)
            if lane is None or not lane.thread.is_alive():
                # (a lane never ends on its own; if one did, its queue would keep events for good)
                lane = Lane(self, target)
                self._lanes[target.key] = lane
                lane.thread.start()
            return lane

    # --- sending --------------------------------------------------------------------------

    def send_once(self, target: Target, payload: Any,
                  session: requests.Session | None = None) -> Outcome:
        try:
            if target.chat:
                return send_apprise(target.request["url"], payload, self.timeout,
                                    policy(self.settings.current.fetch_private_addresses),
                                    trusted=target.id is None)
            return send_webhook(target.request, payload, self.timeout, session)
        except Exception as exc:  # a bug: that delivery fails, the lane goes on
            return internal_error(exc, target)

    def record(self, target: Target, outcome: Outcome) -> None:
        at = time.time()
        if target.id is None:
            with self._lock:
                self._file_status[target.key] = {
                    "last_status": "ok" if outcome.ok else "failed",
                    "last_error": outcome.error or None, "last_sent_at": at,
                }
            return
        try:
            self.store.record_delivery(target.id, outcome.ok, outcome.error, at)
        except StorageFailure as exc:
            # A full disk or a lock another program holds: said once, in words, until a
            # status is recorded again (a traceback at each delivery grew the log on the
            # full disk, and the websocket's clients saw each).
            if not self._unrecorded.is_set():
                self._unrecorded.set()
                log.warning("delivery statuses of notification targets are not recorded "
                            "until the database can be written: %s", exc.message)
            return
        except Exception:
            log.exception("cannot record the delivery status of %r", target.name)
            return
        if self._unrecorded.is_set():
            self._unrecorded.clear()
            log.info("delivery statuses of notification targets are recorded again")

    def test(self) -> list[dict[str, Any]]:
        """Send a ``test`` event to every enabled target at once (no retries); each answer,
        within the send timeout."""
        targets = [Target.from_record(r) for r in self.store.all()] + self._file_targets
        targets = [t for t in targets if t.enabled]
        if not targets:
            return []
        at = time.time()
        data = {"message": "This is a test notification from appliance.", "timestamp": at}

        def one(target: Target) -> Outcome:
            try:
                payload = messages.describe(TEST, data) if target.chat else \
                    messages.envelope(TEST, data, at)
                outcome = self.send_once(target, payload)
                if outcome.bug is not None:
                    log.warning("test notification to %r failed: %s", target.name,
                                outcome.error, exc_info=outcome.bug)
                self.record(target, outcome)
                return outcome
            finally:
                self.store.release_thread()

        pool = concurrent.futures.ThreadPoolExecutor(min(8, len(targets)),
                                                     thread_name_prefix="notify-test")
        try:
            futures = [pool.submit(one, t) for t in targets]
            concurrent.futures.wait(futures, timeout=self.timeout * 2 + 5)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        results = []
        for target, future in zip(targets, futures, strict=True):
            if not future.done() or future.cancelled():
                outcome = Outcome(False, None, f"No answer within {self.timeout:g} s.")
            elif (exc := future.exception()) is not None:  # a bug outside the send itself
                log.warning("test notification to %r failed", target.name, exc_info=exc)
                outcome = internal_error(exc, target)
            else:
                outcome = future.result()
            results.append({"id": target.id, "name": target.name, **outcome.as_dict()})
        return results

    # --- apprise.yml ----------------------------------------------------------------------

    def _load_config_file(self) -> list[Target]:
        path = self.config_file
        if not path.is_file():
            return []
        import apprise

        config = apprise.AppriseConfig(asset=asset())
        if not config.add(str(path)):
            log.warning("%s: Apprise could not read it; no targets loaded from it", path)
            return []
        try:
            read = getattr(config, "services", None) or config.servers  # Apprise 2 / 1
            services = list(read())
        except Exception as exc:
            log.warning("%s: %s; no targets loaded from it", path, exc)
            return []
        targets: dict[str, Target] = {}
        for n, service in enumerate(services, start=1):
            url = service.url()
            key = file_target_key(url)
            if key in targets:
                log.warning("%s #%d: the same URL as %s; sent to once", path, n,
                            targets[key].name)
                continue
            targets[key] = Target(key, None, f"{CONFIG_FILE} #{n} ({service.service_name})",
                                  (), (), True, {**default_request(), "url": url})
        if not targets:
            log.warning("%s holds no usable Apprise URL", path)
        log.info("%s: %d notification target(s) loaded (all events)", path, len(targets))
        return list(targets.values())

    def waiting(self) -> dict[str, int]:
        """How many notices wait for each target (by key) that has some."""
        return self.outbox.waiting()

    def file_targets(self) -> dict[str, Any]:
        """The targets of apprise.yml as the API shows them (read-only, secrets masked)."""
        with self._lock:
            status = dict(self._file_status)
        waiting = self.waiting()
        return {
            "path": str(self.config_file),
            "targets": [
                {"name": t.name, "on": [], "presets": [], "enabled": True,
                 "request": masked_request(t.request),
                 **status.get(t.key, {"last_status": None, "last_error": None,
                                      "last_sent_at": None}),
                 "waiting": waiting.get(t.key, 0)}
                for t in self._file_targets
            ],
        }
