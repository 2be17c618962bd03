"""The download queue: admission, info extraction, scheduling under limits, runs, recovery.

Owners:
- The engine's lock (``_lock``, not re-entrant) guards what is in memory: the queue, the runs,
  and the fields of waiting items. It is held only for that: never across a store write, a
  process start or stop, or ``bus.publish`` (subscribers run on the publishing thread).
- A running item belongs to its download thread (``dl-<id>``, see ``runs.py``), which alone
  changes it and reaps its process; other threads send it requests (stop, edit).
- Every state change of an item is written to the store before it is announced, in one order:
  ``_order`` is held from the write to the end of its announcement, and the write takes the
  item as it is at that moment (``_commit``), so the store never keeps an older state than
  memory and clients see states in the order they were stored.
- Settings are read from the service's ``SettingsHolder`` (``self.settings`` is its current
  value) each time they are used.
- The dispatcher thread sleeps on a condition: an idle engine uses no CPU.
"""

from __future__ import annotations

import functools
import logging
import shlex
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import cpu_share, events
from ..config import Settings, SettingsHolder
from ..errors import AppError, invalid, not_found
from ..events import EventBus
from ..store import Item, ItemStore, StatusFilter
from ..store.collections import Collection
from ..store.records import (
    CANCELLED,
    ERROR,
    PENDING,
    PREPARING,
    QUEUE,
    new_id,
)
from .archive import Archives
from .archiving import ArchiveService
from .conditions import FIELDS as CONDITION_FIELDS
from .conditions import Conditions
from .deleting import Deleting
from .disk_waits import DiskWaits
from .dl_fields import FIELDS as DL_FIELDS
from .dl_fields import DlFields
from .downloading import Downloading
from .edits import Edits
from .extraction import Extraction
from .failures import explain
from .folder_disk import FolderDisk
from .jobs import Jobs
from .options import resolve_folder
from .plans import Planner
from .presets import FIELDS as PRESET_FIELDS
from .presets import Presets
from .queue_order import QueueItems
from .queue_reads import QueueReads
from .requests import AddRequest, parse_add_request
from .runs import Run, StopReason
from .states import StateChanges
from .storing import StateWrites
from .workers import Worker, WorkerPool

log = logging.getLogger(__name__)

# Seconds before the dispatcher starts downloads again after a thread's start was refused.
START_AGAIN = 5.0


class DownloadEngine(Extraction, Downloading, Deleting, Jobs, Edits, StateChanges,
                     QueueReads, DiskWaits):
    def __init__(self, settings: Settings | SettingsHolder, store: ItemStore, bus: EventBus
                 ) -> None:
        self.settings_holder = holder = SettingsHolder.of(settings)
        settings = holder.current
        self.store = store
        self.bus = bus
        self.paused = False
        self._runs: dict[str, Run] = {}
        self._items = QueueItems(running=self._runs.__contains__)
        self._extracting: dict[str, Worker | None] = {}
        # Running items whose delete is stored, and whether with their files (deleting.py)
        self._gone: dict[str, bool] = {}
        self._infos: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._order = threading.Lock()  # a store write and its announcement, one at a time
        self._stopping = False
        self._started = False
        self._pings: list[threading.Event] = []
        self._state_writes = StateWrites()
        self.folder_disk = FolderDisk(lambda: self.settings.download_path,
                                      self._folder_disk_changed, settings.config_path,
                                      temp_of=lambda: self.settings.temp_path)
        # The times each queue item found a disk full (disk_room.MOST_WAITS)
        self._room_waits: Counter[str] = Counter()
        self.presets = Presets(
            Collection(store.entities.Preset, PRESET_FIELDS, "preset"), holder, self.converted
        )
        self.pool = WorkerPool(settings.warm_workers, settings.worker_idle_timeout,
                               capacity=self._pool_capacity, linger=settings.worker_linger)
        self._extract_threads = settings.extract_info_concurrency  # the executor's, fixed
        self._extract = ThreadPoolExecutor(
            self._extract_threads, thread_name_prefix="extract",
            initializer=cpu_share.lower_this_thread,
        )
        self._dispatcher = threading.Thread(target=self._dispatch, name="dispatcher", daemon=True)
        entities = store.entities
        self.conditions = Conditions(
            Collection(entities.Condition, CONDITION_FIELDS, "condition"), self.presets,
            self.converted)
        self.presets.users.append(self.conditions.naming_preset)
        self.dl_fields = DlFields(Collection(entities.DlField, DL_FIELDS, "download field"))
        for feature, service in (("presets", self.presets), ("conditions", self.conditions),
                                 ("dl_fields", self.dl_fields)):
            service.on_change = functools.partial(self._config_changed, feature)
        self.planner = Planner(holder, self.presets)
        self.archives = Archives()
        self.archiving = ArchiveService(self.planner, self.archives, self.get,
                                        self._archive_ids)
        holder.on_change(self._settings_changed)

    @property
    def settings(self) -> Settings:
        return self.settings_holder.current

    def _pool_capacity(self) -> int:
        """Processes worth keeping: one per download and per extraction at once."""
        settings = self.settings
        return settings.max_workers + settings.extract_info_concurrency

    def _config_changed(self, feature: str, action: str, data: dict[str, Any]) -> None:
        self.bus.publish(events.CONFIG_UPDATE,
                         {"feature": feature, "action": action, "data": data})

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.folder_disk.start()
        self.presets.seed()
        self.store.add_download_folder(self.settings.download_path)
        resumed = self.store.requeue_interrupted()
        if resumed:
            log.info("recovered %d interrupted download(s); they will resume", resumed)
        self._start_extraction_threads()
        queued = self.store.queue()
        with self._lock:
            for item in queued:
                self._items[item.id] = item
            waiting = [i for i in self._items.values() if not i.extractor]
        for item in waiting:
            self._submit_extraction(item)
        self._say_disk_waits()  # (or no longer: a disk back while the service was down)
        self._started = True
        self._dispatcher.start()

    def _start_extraction_threads(self) -> None:
        """Every extraction thread started now, while threads can be had: the executor starts
        one as work comes, and one refused then (the limit of processes and threads) left the
        URL waiting for its info, unsaid, until the next was added. Each waits for all the
        others, so that none is reused: the executor starts another only when none is idle."""
        started = threading.Barrier(self._extract_threads)
        for _ in range(self._extract_threads):
            self._extract.submit(started.wait, timeout=30)

    def stop(self) -> None:
        """Stop every run and leave it resumable; reap every process."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._state_writes.stop()
            self.folder_disk.stop()
            runs = list(self._runs.values())
            for run in runs:
                run.request_stop(StopReason.SHUTDOWN)
            for worker in self._extracting.values():
                if worker is not None:
                    worker.signal_kill()
            self._wake.notify_all()
        if self._started:  # it starts the threads of the runs it registered last, then ends
            self._dispatcher.join(timeout=10)
        # Before the runs are waited for: one that waits for its process to start (a zygote's
        # cold start, minutes on a busy box) ends at once, as if its process were killed. It
        # was waited for 30 s, then the store closed under it: its item stayed 'preparing'.
        self.pool.close()
        for run in runs:
            if run.thread is not None and run.thread.ident is not None:
                run.thread.join(timeout=30)
        self._extract.shutdown(wait=True, cancel_futures=True)

    def alive(self, timeout: float) -> bool:
        """Whether the dispatcher loop answers within ``timeout``: it takes the engine's lock
        and runs a round (systemd's watchdog asks; a hung engine gets no heartbeat)."""
        answered = threading.Event()
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            if self._stopping or not self._dispatcher.is_alive():
                return False
            self._pings.append(answered)
            self._wake.notify_all()
        finally:
            self._lock.release()
        return answered.wait(timeout)

    # --- reads --------------------------------------------------------------------------

    def get(self, item_id: str) -> Item | None:
        with self._lock:
            item = self._items.get(item_id)
            if item is not None:
                return item.snapshot()
        return self.store.get(item_id)

    def queue_items(self) -> list[Item]:
        with self._lock:
            return [i.snapshot() for i in self._items.values()]

    def active_items(self) -> list[Item]:
        with self._lock:
            return [r.item.snapshot() for r in self._runs.values()
                    if not r.handed_back]

    def stats(self, timeout: float | None = None) -> dict[str, Any]:
        """The engine's figures; ``timeout``: the most to wait for its lock (TimeoutError
        after it: a stuck engine's figures are not worth a thread stuck with it)."""
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError("the download engine did not answer")
        try:
            counts = self._queue_counts()
            running = [r.item for r in self._runs.values() if not r.handed_back]
        finally:
            self._lock.release()
        waiting: Counter[bool] = Counter()
        problem = self.folder_disk.problem
        for (status, auto_start, _), n in counts.items():
            if status == PENDING:
                waiting[auto_start] += n
        return {
            "active_downloads": len(running),
            "queued": waiting[True],
            "paused": waiting[False],
            "total_speed": sum(i.speed or 0 for i in running),
            "system_paused": self.paused,
            "download_folder_problem": problem,
            "waiting_for_room": problem is not None and problem == self.folder_disk.short_of_room,
            "workers": self.pool.stats(),
        }

    # --- commands -----------------------------------------------------------------------

    def add(self, payloads: list[Any]) -> list[Item]:
        """Validate, store and announce new items; extraction continues in the background."""
        requests = [parse_add_request(p, self.presets, self.dl_fields) for p in payloads]
        for request in requests:
            resolve_folder(self.settings.download_path, request.folder)
        items = [self._new_item(r) for r in requests]
        with self._lock:
            if self._stopping:
                raise AppError("The service is shutting down.", "UNAVAILABLE")
        with self._order:
            self.store.insert(items)
            with self._lock:
                for item in items:
                    self._items[item.id] = item
                added = [item.to_dict() for item in items]
            for data in added:
                self.bus.publish(events.ITEM_ADDED, data)
        for item in items:
            self._submit_extraction(item)
        return [item.snapshot() for item in items]

    def _new_item(self, request: AddRequest) -> Item:
        return Item(
            id=new_id(),
            url=request.url,
            title=request.url,
            preset=request.preset,
            folder=request.folder,
            template=request.template,
            cookies=request.cookies,
            cli=shlex.join(request.cli_args),
            auto_start=request.auto_start,
            batch_id=request.batch_id,
            batch_name=request.batch_name,
            extras=request.extras,
            removed_options=request.removed_options,
            created_at=self.store.stamp(),
            msg="Waiting for info",
        )

    def start_items(self, ids: list[str]) -> dict[str, str]:
        return self._each(ids, self._start_one)

    def pause_items(self, ids: list[str]) -> dict[str, str]:
        return self._each(ids, self._pause_one)

    def cancel_items(self, ids: list[str]) -> dict[str, str]:
        return self._each(ids, self._cancel_one)

    def matching_ids(self, kind: str, status: StatusFilter) -> list[str]:
        if kind == QUEUE:
            return self.queue_ids(status.keeps)
        return self.store.ids_matching(kind, status)

    def set_paused(self, paused: bool) -> bool:
        """System pause: hold the whole queue (running downloads finish). False if no change."""
        with self._lock:
            if self.paused == paused:
                return False
            self.paused = paused
            self._wake.notify_all()
        self.bus.publish(events.PAUSED if paused else events.RESUMED,
                         {"paused": paused, "at": time.time()})
        return True

    def _settings_changed(self, old: Settings, new: Settings) -> None:
        """After ``PUT /api/settings``: a higher limit starts waiting downloads at once, a lower
        one lets running downloads finish; folders and templates apply to downloads that start
        later (a run keeps the folder it started in)."""
        if new.download_path != old.download_path:
            self.store.add_download_folder(new.download_path)
        self._wake_dispatcher()

    # --- per-item commands --------------------------------------------------------------

    def _each(self, ids: list[str], action: Any) -> dict[str, str]:
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise invalid("ids is required and must be an array.")
        results = {item_id: action(item_id) for item_id in ids}
        if ids and all(v == "not found" for v in results.values()):
            raise not_found("Item not found.")
        return results

    def _start_one(self, item_id: str) -> str:
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                return "not found"
            run = self._live_run(item_id)
            changed = not item.auto_start if run is None else run.reason is StopReason.PAUSE
            if run is not None and changed:  # it starts again once it has stopped
                run.request_edit({"auto_start": True})
            if run is not None or not changed:
                self._wake.notify_all()
                return "started"
            after = {"auto_start": True,
                     "msg": self._disk_wait() if item.msg == "Paused" else item.msg}
            before = self._set(item, after)
        self._commit_change(item, before, after)
        with self._lock:
            self._wake.notify_all()
        return "started"

    def _pause_one(self, item_id: str) -> str:
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                return "not found"
            run = self._live_run(item_id)
            if run is not None:
                run.edits.pop("auto_start", None)
                run.request_stop(StopReason.PAUSE)
                return "paused"
            after = {"auto_start": False, "msg": "Paused"}
            before = self._set(item, after)
        self._commit_change(item, before, after)
        return "paused"

    def _cancel_one(self, item_id: str) -> str:
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                return "not found"
            run = self._live_run(item_id)
            if run is not None:
                run.request_stop(StopReason.CANCEL)
                return "ok"
        if not self._finish_cancel(item):
            self._ask_run(item_id, StopReason.CANCEL)  # it started meanwhile
        return "ok"

    def _ask_run(self, item_id: str, reason: StopReason) -> None:
        with self._lock:
            run = self._live_run(item_id)
            if run is not None:
                run.request_stop(reason)

    def _live_run(self, item_id: str) -> Run | None:
        """The run that owns the item now (under the lock); None once it handed the item
        back to the queue."""
        run = self._runs.get(item_id)
        return run if run is not None and not run.handed_back else None

    def _take(self, item: Item, run: Run | None) -> bool:
        """Take ``item`` out of the queue to end it (under the lock). Only its run may take a
        running item; False when the item is not there to take (another end came first)."""
        if self._items.get(item.id) is not item:
            return False
        if run is None and self._live_run(item.id) is not None:
            return False
        del self._items[item.id]
        self._infos.pop(item.id, None)
        self._room_waits.pop(item.id, None)
        if run is None:
            self._wake.notify_all()
        return True

    # --- state changes (states.py: write, then announce) -------------------------------

    def _finish_cancel(self, item: Item, run: Run | None = None) -> bool:
        return self._to_history(item, CANCELLED, run=run, msg="Cancelled",
                                also=(events.ITEM_CANCELLED,))

    def _fail(self, item: Item, message: str, run: Run | None = None, *,
              explained: bool = False) -> None:
        """End ``item`` as failed on ``message`` (said plainly first unless ``explained``)."""
        if not explained:
            message = explain(message, self.settings)
        if not self._to_history(item, ERROR, run=run, durable=False, error=message, msg="",
                                also=(events.ITEM_ERROR,)):
            return
        # Not forwarded to websocket clients: the log_error below already tells them.
        log.warning("download failed: item=%s url=%s: %s", item.id, item.url, message,
                    extra={"announce": False})
        self.bus.message("error", "Download failed", f"{item.title or item.url}: {message}",
                         id=item.id)

    def _folder_disk_changed(self) -> None:
        """The download folder's disk went or came back, or a disk filled up or has room
        again. Gone (or full): the running downloads go back to the queue, their partial files
        kept (finished, yt-dlp would move their files onto the bare mount point; on a full
        disk each would fail); back: the dispatcher starts them again, and they resume."""
        problem = self.folder_disk.problem
        reason = StopReason.ROOM if problem == self.folder_disk.short_of_room else \
            StopReason.DISK
        self.bus.publish(events.DOWNLOAD_FOLDER, {"problem": problem})
        with self._lock:
            if problem is not None:
                for run in self._runs.values():
                    run.request_stop(reason)
            self._wake.notify_all()
        self._say_disk_waits()

    def _wake_dispatcher(self) -> None:
        with self._lock:
            self._wake.notify_all()

    # --- dispatch -----------------------------------------------------------------------

    def _dispatch(self) -> None:
        held_until = 0.0  # no run starts before then: a thread's start was refused
        while True:
            with self._lock:
                while not self._stopping:
                    held = held_until - time.monotonic()
                    runs = self._launchable() if held <= 0 else []
                    # systemd's watchdog (alive()): this loop took the lock and ran a round.
                    for ping in self._pings:
                        ping.set()
                    self._pings.clear()
                    if runs:
                        break
                    self._wake.wait(timeout=held if held > 0 else None)
                if self._stopping:
                    return
            for run in runs:
                assert run.thread is not None
                try:
                    run.thread.start()
                except RuntimeError as exc:  # "can't start new thread"
                    self._not_started(run, exc)
                    held_until = time.monotonic() + START_AGAIN

    def _launchable(self) -> list[Run]:
        """Register runs for the items the limits let start now (under the lock)."""
        if self.paused or self.folder_disk.problem:
            return []
        settings = self.settings
        if len(self._runs) >= settings.max_workers or not self._items.tally.startable():
            return []
        busy = Counter(r.item.extractor.lower() for r in self._runs.values())
        runs: list[Run] = []
        # Only what may start is sorted: a queue of thousands held back (not auto-started, a
        # subscription's back catalogue) was sorted whole, under the lock, at every wake.
        ready = [i for i in self._items.values()
                 if i.status == PENDING and i.auto_start and i.extractor and i.id not in self._runs
                 and i.id not in self._gone]
        for item in sorted(ready, key=lambda i: i.created_at):
            if len(self._runs) >= settings.max_workers:
                break
            site = item.extractor.lower()
            if busy[site] >= settings.max_workers_per_extractor:
                continue
            busy[site] += 1
            run = self._runs[item.id] = Run(item, waited=(item.msg, item.error, item.started_at))
            item.status, item.msg, item.error = PREPARING, "", ""
            item.started_at = item.started_at or time.time()
            self._items.hold(item.id)
            run.thread = threading.Thread(
                target=self._run_download, args=(run,), name=f"dl-{item.id[:8]}", daemon=True
            )
            runs.append(run)
        return runs

    # --- files --------------------------------------------------------------------------

    def _download_folders(self) -> set[str]:
        """The download folder configured now and those the settings named before, where
        finished files of items may still be. A folder an item merely names is not one."""
        return {str(self.settings.download_path), *self.store.download_folders()}
