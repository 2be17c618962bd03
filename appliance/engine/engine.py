"""The download queue: admission, info extraction, scheduling under limits, runs, recovery.

Rules kept here:
- Every state change of an item is written to the store before it is announced on the bus.
- A running download belongs to one thread ("dl-<id>") which alone reaps its process; other
  threads stop it by killing the process group and setting ``stop_reason``.
- The dispatcher thread sleeps on a condition: an idle engine uses no CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import shlex
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import events
from ..config import Settings
from ..errors import AppError, invalid, not_found
from ..events import EventBus
from ..store import Item, ItemStore, StatusFilter
from ..store.collections import Collection
from ..store.records import (
    CANCELLED,
    DONE,
    DOWNLOADING,
    ERROR,
    FINISHED,
    PENDING,
    POSTPROCESSING,
    PREPARING,
    QUEUE,
    SKIP,
    new_id,
)
from .archive import Archives, archive_id
from .archiving import ArchiveService
from .conditions import FIELDS as CONDITION_FIELDS
from .conditions import Conditions
from .dl_fields import FIELDS as DL_FIELDS
from .dl_fields import DlFields
from .failures import explain
from .nfo import write_nfo
from .options import resolve_folder
from .plans import Plan, Planner
from .presets import FIELDS as PRESET_FIELDS
from .presets import Presets
from .requests import AddRequest, parse_add_request
from .workers import Worker, WorkerDied, WorkerPool

log = logging.getLogger(__name__)

INTERRUPTED = "Interrupted; will resume"
# Info dicts kept between an item's extraction and its download (a YouTube one can be
# hundreds of KB, so only a few, and only briefly: the media URLs in them expire).
INFO_CACHE_SIZE = 20
INFO_CACHE_TTL = 300.0
EDITABLE_ALWAYS: dict[str, type] = {"title": str, "extras": dict}
EDITABLE_WAITING: dict[str, type] = {
    "preset": str, "folder": str, "template": str, "cli": str, "cookies": str,
}


@dataclasses.dataclass
class Run:
    item: Item
    worker: Worker | None = None
    stop_reason: str | None = None  # cancel | pause | delete | shutdown | stall
    # Where the job writes, fixed when it starts: the settings may change while it runs.
    home: Path | None = None
    temp: Path | None = None
    last_progress: float = dataclasses.field(default_factory=time.monotonic)
    thread: threading.Thread | None = None


class DownloadEngine:
    def __init__(self, settings: Settings, store: ItemStore, bus: EventBus) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.paused = False
        self._items: dict[str, Item] = {}
        self._runs: dict[str, Run] = {}
        self._extracting: dict[str, Worker | None] = {}
        self._infos: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._started = False
        self.presets = Presets(
            Collection(store.entities.Preset, PRESET_FIELDS, "preset"), settings.download_path
        )
        capacity = settings.max_workers + settings.extract_info_concurrency
        self.pool = WorkerPool(settings.warm_workers, settings.worker_idle_timeout, capacity)
        self._extract = ThreadPoolExecutor(
            settings.extract_info_concurrency, thread_name_prefix="extract"
        )
        self._dispatcher = threading.Thread(target=self._dispatch, name="dispatcher", daemon=True)
        entities = store.entities
        self.conditions = Conditions(
            Collection(entities.Condition, CONDITION_FIELDS, "condition"), self.presets
        )
        self.dl_fields = DlFields(Collection(entities.DlField, DL_FIELDS, "download field"))
        for feature, service in (("presets", self.presets), ("conditions", self.conditions),
                                 ("dl_fields", self.dl_fields)):
            service.on_change = functools.partial(self._config_changed, feature)
        self.planner = Planner(settings, self.presets)
        self.archives = Archives()
        self.archiving = ArchiveService(self.planner, self.archives, self.get,
                                        self._archive_ids)

    def _config_changed(self, feature: str, action: str, data: dict[str, Any]) -> None:
        self.bus.publish(events.CONFIG_UPDATE,
                         {"feature": feature, "action": action, "data": data})

    # --- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.presets.seed()
        self.store.add_download_folder(self.settings.download_path)
        resumed = self.store.requeue_interrupted()
        if resumed:
            log.info("recovered %d interrupted download(s); they will resume", resumed)
        with self._lock:
            for item in self.store.queue():
                self._items[item.id] = item
            waiting = [i for i in self._items.values() if not i.extractor]
        for item in waiting:
            self._submit_extraction(item)
        self._started = True
        self._dispatcher.start()

    def stop(self) -> None:
        """Stop every run and leave it resumable; reap every process."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            runs = list(self._runs.values())
            for run in runs:
                self._request_stop(run, "shutdown")
            for worker in self._extracting.values():
                if worker is not None:
                    worker.signal_kill()
            self._wake.notify_all()
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=30)
        self._extract.shutdown(wait=True, cancel_futures=True)
        if self._started:
            self._dispatcher.join(timeout=10)
        self.pool.close()

    # --- reads --------------------------------------------------------------------------

    def get(self, item_id: str) -> Item | None:
        with self._lock:
            item = self._items.get(item_id)
            if item is not None:
                return dataclasses.replace(item)
        return self.store.get(item_id)

    def queue_items(self) -> list[Item]:
        with self._lock:
            return [dataclasses.replace(i) for i in self._items.values()]

    def active_items(self) -> list[Item]:
        with self._lock:
            return [dataclasses.replace(r.item) for r in self._runs.values()]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            items = list(self._items.values())
            running = [r.item for r in self._runs.values()]
        return {
            "active_downloads": len(running),
            "queued": sum(1 for i in items if i.status == PENDING and i.auto_start),
            "paused": sum(1 for i in items if i.status == PENDING and not i.auto_start),
            "total_speed": sum(i.speed or 0 for i in running),
            "system_paused": self.paused,
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
            self.store.insert(items)
            for item in items:
                self._items[item.id] = item
        for item in items:
            self.bus.publish(events.ITEM_ADDED, item.to_dict())
            self._submit_extraction(item)
        return items

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

    def delete_items(
        self, ids: list[str], *, remove_file: bool = False, kind: str | None = None
    ) -> dict[str, str]:
        results: dict[str, str] = {}
        history: list[str] = []
        for item_id in ids:
            with self._lock:
                item = self._items.get(item_id)
                if item is not None and kind in (None, QUEUE):
                    results[item_id] = self._delete_queued(item)
                    continue
            history.append(item_id)
        if history:
            folders = self._download_folders() if remove_file else set()
            deleted = {i.id: i for i in self.store.delete(
                [i for i in history if self._is_kind(i, kind)])}
            for item_id in history:
                item = deleted.get(item_id)
                if item is None:
                    results[item_id] = "not found"
                    continue
                if remove_file:
                    self._remove_file(item, folders)
                results[item_id] = "deleted"
                self.bus.publish(events.ITEM_DELETED, {"id": item_id, "_id": item_id})
        return results

    def _is_kind(self, item_id: str, kind: str | None) -> bool:
        if kind is None:
            return True
        item = self.store.get(item_id)
        return item is not None and item.kind == kind

    def matching_ids(self, kind: str, status: StatusFilter) -> list[str]:
        if kind == QUEUE:
            with self._lock:
                return [
                    i.id for i in self._items.values()
                    if (i.status == status.status) != status.exclude
                ]
        return self.store.ids_matching(kind, status)

    def update_item(self, item_id: str, changes: dict[str, Any]) -> tuple[Item, bool]:
        """Edit an item (``POST /api/history/{id}``); returns the item and whether it changed.

        Any item may be retitled or given new extras; a waiting item may also change where and
        how it will download. A running item refuses the latter (409).
        """
        unknown = sorted(set(changes) - EDITABLE_ALWAYS.keys() - EDITABLE_WAITING.keys())
        if unknown:
            raise invalid(f"These fields cannot be changed: {', '.join(unknown)}.")
        for name, value in changes.items():
            expected = {**EDITABLE_ALWAYS, **EDITABLE_WAITING}[name]
            if not isinstance(value, expected):
                raise invalid(f"{name} must be a {expected.__name__}.")
        with self._lock:
            live = self._items.get(item_id)
            item = live if live is not None else self.store.get(item_id)
            if item is None:
                raise not_found("Item not found.")
            waiting = set(changes) & EDITABLE_WAITING.keys()
            if waiting and (item.kind != QUEUE or item.id in self._runs):
                raise AppError(f"{', '.join(sorted(waiting))} can only change while the item "
                               "waits in the queue.", "CONFLICT")
            checked = self._check_changes(changes)
            changed = {k: v for k, v in checked.items() if getattr(item, k) != v}
            if not changed:
                return dataclasses.replace(item), False
            for name, value in changed.items():
                setattr(item, name, value)
            self._commit(item)
            return dataclasses.replace(item), True

    def _check_changes(self, changes: dict[str, Any]) -> dict[str, Any]:
        if not set(changes) & EDITABLE_WAITING.keys():
            return dict(changes)
        merged = {k: v for k, v in changes.items() if k in EDITABLE_WAITING}
        request = parse_add_request({"url": "http://placeholder.invalid/", **merged},
                                    self.presets, self.dl_fields)
        resolve_folder(self.settings.download_path, request.folder)
        checked = dict(changes)
        if "cli" in checked:
            checked["cli"] = shlex.join(request.cli_args)
        if "template" in checked:
            checked["template"] = request.template
        return checked

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

    def apply_settings(self, settings: Settings) -> None:
        """Use changed settings from now on (``PUT /api/settings``): a higher limit starts
        waiting downloads at once, a lower one lets running downloads finish; folders and
        templates apply to downloads that start later."""
        with self._lock:
            self.settings = settings
            self.planner.settings = settings
            self.presets.download_path = settings.download_path
            self.pool.capacity = settings.max_workers + settings.extract_info_concurrency
            self._wake.notify_all()
        self.store.add_download_folder(settings.download_path)

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
            if not item.auto_start:
                item.auto_start = True
                item.msg = "" if item.msg == "Paused" else item.msg
                self._commit(item)
            self._wake.notify_all()
        return "started"

    def _pause_one(self, item_id: str) -> str:
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                return "not found"
            item.auto_start = False
            run = self._runs.get(item_id)
            if run is not None:
                self._request_stop(run, "pause")
            else:
                item.msg = "Paused"
                self._commit(item)
        return "paused"

    def _cancel_one(self, item_id: str) -> str:
        with self._lock:
            item = self._items.get(item_id)
            if item is None:
                return "not found"
            run = self._runs.get(item_id)
            if run is not None:
                self._request_stop(run, "cancel")
                return "ok"
            self._finish_cancel(item)
        return "ok"

    def _delete_queued(self, item: Item) -> str:
        """A queued item has no file of its own yet: a running one writes in its temp folder
        until yt-dlp moves the finished files home, so deleting it removes only that."""
        run = self._runs.get(item.id)
        if run is not None:
            self._request_stop(run, "delete")
            return "deleted"
        self._items.pop(item.id, None)
        self.store.delete([item.id])
        self._remove_temp(item)
        self.bus.publish(events.ITEM_DELETED, {"id": item.id, "_id": item.id})
        return "deleted"

    def _request_stop(self, run: Run, reason: str) -> None:
        run.stop_reason = reason
        if run.worker is not None:
            run.worker.signal_kill()

    # --- state changes (write, then announce) -------------------------------------------

    # ``durable=False`` marks the engine's own transitions: after a power cut took one back,
    # the restarted engine makes it again (store/database.py says why they skip the disk).

    def _commit(self, item: Item, event: str = events.ITEM_UPDATED, *,
                durable: bool = True) -> None:
        self.store.save(item, durable=durable)
        self.bus.publish(event, item.to_dict())

    def _to_history(self, item: Item, status: str, *, durable: bool = True,
                    **fields: Any) -> None:
        """Move a queue item to history with its final status (stored, then announced)."""
        with self._lock:
            self._items.pop(item.id, None)
            item.kind, item.status, item.finished_at = DONE, status, time.time()
            item.speed = item.eta = None
            for name, value in fields.items():
                setattr(item, name, value)
            self.store.save(item, durable=durable)
        self.bus.publish(events.ITEM_UPDATED, item.to_dict())
        self.bus.publish(events.ITEM_MOVED, {"to": "history", "item": item.to_dict()})
        self._wake_dispatcher()

    def _finish_cancel(self, item: Item) -> None:
        self._remove_temp(item)
        self._to_history(item, CANCELLED, msg="Cancelled")
        self.bus.publish(events.ITEM_CANCELLED, item.to_dict())

    def _fail(self, item: Item, message: str) -> None:
        message = explain(message, self.settings)
        # Not forwarded to websocket clients: the log_error below already tells them.
        log.warning("download failed: item=%s url=%s: %s", item.id, item.url, message,
                    extra={"announce": False})
        self._remove_temp(item)
        self._to_history(item, ERROR, durable=False, error=message, msg="")
        self.bus.publish(events.ITEM_ERROR, item.to_dict())
        self.bus.message("error", "Download failed", f"{item.title or item.url}: {message}",
                         id=item.id)

    def _wake_dispatcher(self) -> None:
        with self._lock:
            self._wake.notify_all()

    # --- extraction ---------------------------------------------------------------------

    def _submit_extraction(self, item: Item) -> None:
        with contextlib.suppress(RuntimeError):  # executor already shut down: we are stopping
            self._extract.submit(self._extract_info, item.id)

    def _extract_info(self, item_id: str) -> None:
        with self._lock:
            item = self._items.get(item_id)
            if item is None or self._stopping:
                return
            self._extracting[item_id] = None
            snapshot = dataclasses.replace(item)
        try:
            skip = self._archived(snapshot, before_extraction=True)
            result = {"type": "skip", "message": skip} if skip else \
                self.run_job("extract", snapshot, register=item_id, full=True)
        except WorkerDied as exc:
            result = {"type": "error", "message": str(exc)}
        except AppError as exc:  # its folder no longer resolves (settings changed)
            result = {"type": "error", "message": exc.message}
        finally:
            with self._lock:
                self._extracting.pop(item_id, None)
        with self._lock:
            item = self._items.get(item_id)
            if item is None or self._stopping or item.id in self._runs:
                return
            self._extracted(item, result)
            self._wake.notify_all()

    def _extracted(self, item: Item, result: dict[str, Any]) -> None:
        if result.get("type") == "skip":
            self._skip(item, result["message"])
            return
        if result.get("type") == "error":
            self._fail(item, result.get("message") or "could not read the URL's info")
            return
        summary = result.get("summary") or {}
        if summary.get("_type") == "playlist":
            self._expand_playlist(item, summary)
            return
        item.title = summary.get("title") or item.title
        item.extractor = summary.get("extractor_key") or summary.get("extractor") or "generic"
        item.video_id = str(summary.get("id") or "")
        item.info = summary
        item.msg = "" if item.msg == "Waiting for info" else item.msg
        skip = self._archived(item, before_extraction=False) or self._apply_conditions(item)
        if skip:
            self._skip(item, skip)
            return
        self._keep_info(item.id, result.get("info"))
        self._commit(item, durable=False)

    def _keep_info(self, item_id: str, info: dict[str, Any] | None) -> None:
        """Keep a fresh info dict for the item's download, so the site is asked once."""
        if not info:
            return
        self._infos[item_id] = (time.monotonic(), info)
        while len(self._infos) > INFO_CACHE_SIZE:
            self._infos.pop(next(iter(self._infos)))

    def _fresh_info(self, item_id: str) -> dict[str, Any] | None:
        with self._lock:
            kept = self._infos.pop(item_id, None)
        if kept is None or time.monotonic() - kept[0] > INFO_CACHE_TTL:
            return None  # media URLs in an old info may have expired: read it again
        return kept[1]

    def _archived(self, item: Item, *, before_extraction: bool) -> str | None:
        """Why the item is skipped because its archive holds it, or None.

        Before extraction the id comes from the URL alone (no network, a warm process); after,
        from the extracted info.
        """
        archive = self.planner.plan(item).archive
        if archive is None or item.extras.get("force"):
            return None
        if before_extraction:
            ids = self.run_job("archive_ids", item, urls=[item.url]).get("ids") or [{}]
            entry = ids[0].get("archive_id")
        else:
            entry = archive_id(item.extractor, item.video_id)
        if entry and self.archives.contains(archive, entry):
            item.extras = {**item.extras, "archive_id": entry}
            return f"Already downloaded: '{entry}' is in the archive {archive.name}."
        return None

    def _apply_conditions(self, item: Item) -> str | None:
        """Apply the first matching condition; returns a skip reason when it says skip."""
        if item.extras.get("ignore_conditions"):
            return None
        condition = self.conditions.match(item.info)
        if condition is None:
            return None
        extras = condition.get("extras") or {}
        item.extras = {**item.extras, "condition": condition["name"]}
        if extras.get("skip"):
            return f"Skipped by condition '{condition['name']}'."
        if extras.get("preset"):
            item.preset = extras["preset"]
        if condition.get("cli"):
            item.cli = " ".join(filter(None, [item.cli, condition["cli"]]))
        item.msg = f"Condition '{condition['name']}' applied."
        return None

    def _skip(self, item: Item, reason: str) -> None:
        log.info("skipping item=%s url=%s: %s", item.id, item.url, reason)
        self._remove_temp(item)
        self._to_history(item, SKIP, durable=False, msg=reason)
        self.bus.message("info", "Skipped", f"{item.title or item.url}: {reason}", id=item.id)

    def _expand_playlist(self, item: Item, summary: dict[str, Any]) -> None:
        entries = summary.get("entries") or []
        if not entries:
            self._fail(item, "The playlist has no entries.")
            return
        batch_id = item.batch_id or item.id
        batch_name = item.batch_name or summary.get("title") or item.url
        # Entries carry enough to download; conditions need each entry's full info.
        extract_each = self.conditions.enabled() and not item.extras.get("ignore_conditions")
        children = [
            dataclasses.replace(
                item,
                id=new_id(),
                url=entry["url"],
                title=entry.get("title") or entry["url"],
                extractor="" if extract_each else entry.get("ie_key") or "generic",
                video_id=entry.get("id") or "",
                batch_id=batch_id,
                batch_name=batch_name,
                created_at=self.store.stamp(),
                info={"playlist": summary.get("title"), "playlist_index": index},
                msg="",
            )
            for index, entry in enumerate(entries, start=1)
        ]
        self.store.replace([item.id], children)
        self._items.pop(item.id, None)
        self._remove_temp(item)
        for child in children:
            self._items[child.id] = child
        self.bus.publish(events.ITEM_DELETED, {"id": item.id, "_id": item.id})
        for child in children:
            self.bus.publish(events.ITEM_ADDED, child.to_dict())
        for child in children:
            if extract_each:
                self._submit_extraction(child)
            elif reason := self._archived(child, before_extraction=False):
                self._skip(child, reason)
        self._wake.notify_all()

    def _archive_ids(self, urls: list[str]) -> list[dict[str, Any]]:
        item = Item(id=new_id(), url=urls[0])
        try:
            return self.run_job("archive_ids", item, urls=urls).get("ids") or []
        finally:
            self._remove_temp(item)

    def command_line(self, payload: Any) -> str:
        """The yt-dlp command an add request would run (``POST /api/yt-dlp/command/``)."""
        request = parse_add_request(payload, self.presets, self.dl_fields)
        item = self._new_item(request)
        plan = self.planner.plan(item)
        cookie_file = self.settings.temp_path / item.id / "cookies.txt" if plan.cookies else None
        return plan.command_line(item.url, self.settings, cookie_file)

    def extract_url(self, url: str, preset: str, cli_args: list[str]) -> dict[str, Any]:
        """Full info for ``url`` (``GET /api/yt-dlp/url/info``), through a warm process."""
        item = Item(id=new_id(), url=url, preset=preset, cli=shlex.join(cli_args))
        try:
            result = self.run_job("extract", item, full=True)
        finally:
            self._remove_temp(item)
        if result.get("type") == "error":
            raise AppError(result.get("message") or "could not read the URL's info",
                           "DOWNLOAD_ERROR")
        return result.get("info") or {}

    def run_job(
        self, op: str, item: Item, *, register: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Run an extraction job in a pooled process, bounded by the extract timeout."""
        worker = self.pool.acquire()
        if register is not None:
            with self._lock:
                if self._stopping:
                    self.pool.release(worker)
                    raise WorkerDied("the engine is stopping")
                self._extracting[register] = worker
        command = {**self._job_command(op, item), **extra}
        try:
            result = worker.run(command, self._log_child,
                                timeout=self.settings.extract_info_timeout)
        except WorkerDied:
            self.pool.discard(worker)
            raise
        self.pool.release(worker)
        return result

    def _job_command(self, op: str, item: Item, plan: Plan | None = None) -> dict[str, Any]:
        plan = plan or self.planner.plan(item)
        command: dict[str, Any] = {
            "op": op,
            "job": item.id,
            "url": item.url,
            "args": plan.args,
            "root": str(plan.root),
            "home": str(plan.home),
            "temp": str(self._temp_dir(item)),
            "template": plan.template,
            "default_template": self.settings.output_template,
        }
        if plan.cookies:
            command["cookiefile"] = str(self._write_cookies(item, plan.cookies))
        return command

    def _log_child(self, message: dict[str, Any]) -> None:
        if message.get("type") == "log":
            level = logging.ERROR if message.get("level") == "error" else logging.WARNING
            log.log(level, "yt-dlp [%s]: %s", message.get("job"), message.get("msg"),
                    extra={"announce": False})

    # --- dispatch -----------------------------------------------------------------------

    def _dispatch(self) -> None:
        with self._lock:
            while not self._stopping:
                self._start_eligible()
                self._wake.wait()

    def _start_eligible(self) -> None:
        if self.paused:
            return
        limit = self.settings.max_workers
        per_site = self.settings.max_workers_per_extractor
        busy = Counter(r.item.extractor.lower() for r in self._runs.values())
        for item in sorted(self._items.values(), key=lambda i: i.created_at):
            if len(self._runs) >= limit:
                return
            if item.status != PENDING or not item.auto_start or not item.extractor:
                continue
            if item.id in self._runs or busy[item.extractor.lower()] >= per_site:
                continue
            busy[item.extractor.lower()] += 1
            self._launch(item)

    def _launch(self, item: Item) -> None:
        item.status, item.msg, item.error = PREPARING, "", ""
        item.started_at = item.started_at or time.time()
        self._commit(item, durable=False)
        run = Run(item)
        self._runs[item.id] = run
        run.thread = threading.Thread(
            target=self._run_download, args=(run,), name=f"dl-{item.id[:8]}", daemon=True
        )
        run.thread.start()

    # --- a download ---------------------------------------------------------------------

    def _run_download(self, run: Run) -> None:
        try:
            self._download(run)
        finally:
            self.store.release_thread()

    def _download(self, run: Run) -> None:
        item = run.item
        try:
            worker = self.pool.acquire()
        except WorkerDied as exc:
            self._end_run(run, None, str(exc))
            return
        with self._lock:
            run.worker = worker
            stop_early = run.stop_reason is not None
        if stop_early:
            self.pool.release(worker)
            self._end_run(run, None, "stopped before it started")
            return
        run.last_progress = time.monotonic()
        try:
            plan = self.planner.plan(item)
            command = self._job_command("download", item, plan)
            with self._lock:
                item.download_folder = str(plan.root)
                run.home, run.temp = plan.home, Path(command["temp"])
            info = self._fresh_info(item.id)
            if info is not None:
                command["info"] = info
            result = worker.run(command, lambda m: self._on_message(run, m),
                                check=lambda: self._check_stall(run))
        except WorkerDied as exc:
            self.pool.discard(worker)
            self._end_run(run, None, str(exc))
            return
        except AppError as exc:  # the folder became invalid (settings changed)
            self.pool.release(worker)
            self._end_run(run, None, exc.message)
            return
        self.pool.release(worker)
        self._end_run(run, result, None)

    def _check_stall(self, run: Run) -> str | None:
        if run.item.status != DOWNLOADING:
            return None
        idle = time.monotonic() - run.last_progress
        if idle > self.settings.stall_timeout:
            run.stop_reason = "stall"
            return f"No progress for {idle:.0f} s; the download was stopped."
        return None

    def _on_message(self, run: Run, message: dict[str, Any]) -> None:
        if message.get("type") != "progress":
            self._log_child(message)
            return
        run.last_progress = time.monotonic()
        item = run.item
        status = message.get("status")
        new_status = POSTPROCESSING if status == "postprocessing" else DOWNLOADING
        with self._lock:
            if run.stop_reason is not None:
                return
            for field in ("downloaded_bytes", "total_bytes"):
                if message.get(field) is not None:
                    setattr(item, field, int(message[field]))
            item.speed, item.eta = message.get("speed"), message.get("eta")
            if item.total_bytes and item.downloaded_bytes is not None:
                item.percent = round(min(100.0, 100.0 * item.downloaded_bytes
                                         / item.total_bytes), 2)
            if message.get("filename"):
                item.filename = self._file_name(run, message["filename"])
            if new_status != item.status:
                item.status = new_status
                self._commit(item, durable=False)
                return
        self.bus.publish(events.ITEM_UPDATED, item.to_dict(), progress=True)

    def _end_run(self, run: Run, result: dict[str, Any] | None, failure: str | None) -> None:
        item = run.item
        with self._lock:
            self._runs.pop(item.id, None)
            reason = run.stop_reason
        item.speed = item.eta = None
        if reason == "shutdown":
            item.status, item.msg = PENDING, INTERRUPTED
            self.store.save(item)
        elif reason == "pause":
            with self._lock:
                item.status, item.msg = PENDING, "Paused"
                self._commit(item)
        elif reason == "cancel":
            self._finish_cancel(item)
        elif reason == "delete":
            with self._lock:
                self._items.pop(item.id, None)
            self.store.delete([item.id])
            self._remove_temp(item)
            self.bus.publish(events.ITEM_DELETED, {"id": item.id, "_id": item.id})
        elif failure is not None or result is None or result.get("type") == "error":
            message = failure or (result or {}).get("message") or "download failed"
            if reason == "stall":
                message = f"No progress for {self.settings.stall_timeout:g} s; stopped."
            self._fail(item, message)
        else:
            self._finish(run, result)
        self._wake_dispatcher()

    def _finish(self, run: Run, result: dict[str, Any]) -> None:
        item = run.item
        filepath = result.get("filepath") or ""
        size = None
        if filepath:
            with contextlib.suppress(OSError):
                size = os.path.getsize(filepath)
        summary = result.get("summary") or {}
        item.title = summary.get("title") or item.title
        item.extractor = summary.get("extractor_key") or item.extractor
        item.video_id = str(summary.get("id") or item.video_id)
        item.info = {**item.info, **summary}
        notes = self._after_download(item, filepath)
        self._remove_temp(item)
        self._to_history(
            item, FINISHED, durable=False,
            filename=self._file_name(run, filepath) if filepath else item.filename,
            file_size=size,
            percent=100.0,
            downloaded_bytes=size if size is not None else item.downloaded_bytes,
            total_bytes=size if size is not None else item.total_bytes,
            msg="; ".join(notes),
        )
        log.info("download finished: item=%s file=%s", item.id, item.filename)
        self.bus.publish(events.ITEM_COMPLETED, item.to_dict())
        self.bus.message("success", "Download completed", item.title or item.url, id=item.id)

    def _after_download(self, item: Item, filepath: str) -> list[str]:
        """Record the download in its archive and write its NFO file when the preset says so,
        before the item is announced as finished. Returns notes on what failed; the download
        itself stands."""
        plan = self.planner.plan(item)
        entry = archive_id(item.extractor, item.video_id)
        notes = []
        if plan.archive is not None and entry:
            try:
                self.archives.add(plan.archive, [entry])
            except OSError as exc:
                notes.append(f"could not record it in the archive: {exc.strerror}")
        if plan.preset.nfo and filepath:
            try:
                write_nfo(Path(filepath), plan.preset.nfo, item.info, overwrite=True)
            except (ValueError, OSError) as exc:
                notes.append(f"no NFO file: {exc}")
        return notes

    # --- files --------------------------------------------------------------------------

    @staticmethod
    def _file_name(run: Run, path: str) -> str:
        """``path`` relative to the download folder the run writes in. A file still in the
        job's temp folder is named where yt-dlp will move it (the same relative path under
        home). Empty for a path elsewhere: a name that is not where the file really is would
        be a wrong file to show or to delete."""
        file = Path(os.path.normpath(path))
        if run.temp is not None and run.home is not None and file.is_relative_to(run.temp):
            file = run.home / file.relative_to(run.temp)
        root = Path(run.item.download_folder)
        if run.item.download_folder and file.is_relative_to(root):
            return str(file.relative_to(root))
        log.warning("item %s: %s is outside its download folder %s", run.item.id, path, root)
        return ""

    def _temp_dir(self, item: Item) -> Path:
        path = self.settings.temp_path / item.id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _write_cookies(self, item: Item, cookies: str) -> Path:
        path = self._temp_dir(item) / "cookies.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(cookies)
        return path

    def _remove_temp(self, item: Item) -> None:
        shutil.rmtree(self.settings.temp_path / item.id, ignore_errors=True)

    def _download_folders(self) -> set[str]:
        """The download folder configured now and those the settings named before, where
        finished files of items may still be. A folder an item merely names is not one."""
        return {str(self.settings.download_path), *self.store.download_folders()}

    def _remove_file(self, item: Item, folders: set[str]) -> None:
        """Delete the file of a finished item: only the one it recorded, only inside the
        download folder it was written in, only while that is one of ``folders``, and never
        through a symlink (the file itself, or a folder on the way that leads out)."""
        if (not self.settings.remove_files or item.status != FINISHED or not item.filename
                or item.download_folder not in folders):
            return
        root = Path(item.download_folder).resolve()
        path = Path(item.download_folder) / item.filename
        target = path.resolve()
        if path.is_symlink() or not target.is_relative_to(root) or not target.is_file():
            log.warning("not removing %s of item %s: not a file inside %s", path, item.id,
                        item.download_folder)
            return
        try:
            target.unlink()
            log.info("removed file %s of item %s", target, item.id)
        except OSError as exc:
            log.warning("could not remove %s: %s", target, exc)
