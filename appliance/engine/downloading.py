"""The engine's downloads: one thread per running item (``dl-<id>``), the item's owner while it
runs (``runs.py``). It starts the job in a pooled process, turns its messages into progress,
applies the requests other threads leave on the run, and ends the item as the first stop
reason says.

Part of ``DownloadEngine`` (engine.py), under its owners and rules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from .. import events
from ..errors import AppError
from ..store import Item
from ..store.records import (
    ACTIVE_STATUSES,
    DOWNLOADING,
    FINISHED,
    PENDING,
    POSTPROCESSING,
    SKIP,
)
from ..units import finite, human_duration
from . import disk_room
from .archive import archive_id
from .disk_waits import WAITING_FOR_DISK
from .nfo import write_nfo
from .runs import Run, StopReason, next_reason
from .work_signs import group_signs, who, worked
from .workers import PROCESS_LIMIT, Worker, WorkerDied

log = logging.getLogger(__name__)

INTERRUPTED = "Interrupted; will resume"
WAITING_FOR_ROOM = "Waiting for room on the disk; will resume"
NO_THREAD = f"no thread could be had: {PROCESS_LIMIT}, or memory is short"
NOT_STARTED = f"Waiting: {NO_THREAD}; will start again"
# Why a run went back to the queue, as its item says it; its partial files stay for the resume.
# The most seconds between two looks at a silent download's work (_look_for_work).
SIGNS_EVERY = 30.0
# A run's thread looks at its download about once a second (_tick); a longer gap is time in
# which nobody watched it.
UNWATCHED = 5.0
HANDED_BACK = {StopReason.SHUTDOWN: INTERRUPTED,
               StopReason.DISK: f"{WAITING_FOR_DISK}; will resume",  # (or why: disk_waits)
               StopReason.ROOM: WAITING_FOR_ROOM, StopReason.PAUSE: "Paused"}

# The most a count of bytes may be: what the history keeps (SQLite's INTEGER).
MAX_BYTES = (1 << 63) - 1


def byte_count(value: Any) -> int | None:
    """A download's count of bytes as the history can keep it; None when it is none. A site's
    Content-Length is any number: one past 2**63 failed the item's every write, its end's
    too, and the item stayed 'preparing' for good."""
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)  # yt-dlp's estimate of a total
    return value if type(value) is int and 0 <= value <= MAX_BYTES else None


def rate(value: Any) -> float | None:
    """yt-dlp's speed or ETA as it sent it (an ETA's whole seconds stay whole), when it is a
    finite number; None else: infinity or NaN, which the item's text forms raise on, or a whole
    number past 64 bits, which the API's JSON cannot carry (a site's Content-Length of 10**25
    at a slow speed made an ETA of 10**20 s, and every look at the item a 500)."""
    if type(value) is int:
        return value if abs(value) <= MAX_BYTES else None
    return value if type(value) is float and finite(value) is not None else None


def _archive_line(item: Item) -> str | None:
    """What tells two items' videos apart (for the generic extractor, its address too)."""
    return archive_id(item.extractor, item.video_id, item.url)


class Downloading:
    """The download threads of ``DownloadEngine``."""

    def _run_download(self, run: Run) -> None:
        try:
            with self._state_writes.patiently():
                # PREPARING (set by the dispatcher), stored and announced before anything
                # later; by this thread, so that the dispatcher never waits for the disk.
                self._commit(run.item, durable=False)
                self._download(run)
        finally:
            self.store.release_thread()

    def _not_started(self, run: Run, exc: RuntimeError) -> None:
        """The run's thread could not be started (the box's limit of processes and threads,
        systemd's TasksMax or ``ulimit -u``, or its memory): the item waits in the queue as it
        was, saying why, and is started again later (the dispatcher waits); the dispatcher
        died of it, and no download ever started again. A stop asked for meanwhile ends it
        as asked, on this (the dispatcher's) thread."""
        item = run.item
        with self._lock:
            stopped = run.reason is not None
            if not stopped:
                item.status = PENDING
                _, item.error, item.started_at = run.waited
                item.msg = NOT_STARTED
                del self._runs[item.id]
                self._items.release(item.id)
        if run.waited[0] != NOT_STARTED:  # once an item, not at each try
            log.warning("item %s: its download could not be started (%s): %s; it waits in "
                        "the queue and is started again in a while", item.id, exc, NO_THREAD)
        if stopped:
            try:
                self._end_run(run, None, NOT_STARTED)
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
            run.last_progress = time.monotonic()
            stop_early = run.reason is not None
        if stop_early:
            self._give_back(run, worker)
            self._end_run(run, None, "stopped before it started")
            return
        try:
            plan = self.planner.plan(item)
            command = self._job_command("download", item, plan)
            mark = self.folder_disk.mark(plan.root)
            if mark is not None:
                command["folder_mark"] = mark
            with self._lock:
                item.download_folder = str(plan.root)
                run.home, run.temp = plan.home, Path(command["temp"])
            info = self._fresh_info(item.id)
            if info is not None:
                command["info"] = info
            result = worker.run(command, lambda m: self._on_message(run, m),
                                check=lambda: self._tick(run))
        except WorkerDied as exc:
            self.pool.discard(worker)
            self._end_run(run, None, str(exc))
            return
        except AppError as exc:  # the folder became invalid (settings changed)
            self._give_back(run, worker)
            self._end_run(run, None, exc.message)
            return
        except Exception as exc:
            # A bug here (on the way to the process, or reading what it said) must still end
            # the item and give its slot back; the process, in an unknown state, goes.
            log.exception("item %s: the download failed on an unexpected error", item.id)
            self.pool.discard(worker)
            self._end_run(run, None, f"Unexpected error: {type(exc).__name__}: {exc}")
            return
        self._give_back(run, worker)
        self._end_run(run, result, None)

    def _give_back(self, run: Run, worker: Worker) -> None:
        """The job is over: the process goes back to the pool, no longer the run's. A stop
        asked for from now until the run's end must not kill it: another item's job may have
        it already."""
        with self._lock:
            run.worker = None
        self.pool.release(worker)

    def _tick(self, run: Run) -> str | None:
        """About once a second and after each message: notice a stall, apply edits. A stall
        is a stop request like any other: if a pause or cancel came first, it wins."""
        now = time.monotonic()
        self._look_for_work(run, now)
        with self._lock:
            if now - run.ticked_at > UNWATCHED:
                # This thread was held (its item's state waiting for a full disk, a box that
                # thrashes): what the process did meanwhile went unseen, and it may have
                # waited on this thread (its messages fill their pipe). Judged from now on;
                # a download waited out for longer than the bound was stopped as stalled
                # the moment the disk took its state again.
                run.last_progress = max(run.last_progress, now)
            run.ticked_at = now
            stall_timeout = self.settings.stall_timeout
            if now - run.last_progress > stall_timeout and run.request_stop(StopReason.STALL):
                said = human_duration(stall_timeout) or f"{stall_timeout:g} s"
                run.stalled = (f"No progress for {said}: {who(run.signs)} stalled (the site "
                               "stopped sending, or the connection hangs); it was stopped. "
                               "Retry it later.")
                return run.stalled
            edited = self._apply_edits(run)
        if edited:
            self._commit(run.item)
        return None

    def _look_for_work(self, run: Run, now: float) -> None:
        """Signs of work (work_signs) count as progress: a download yt-dlp handed to ffmpeg
        says nothing until ffmpeg ends. Looked at only while the job is silent, a few times
        per bound (every 30 s at most), off the lock: /proc is read."""
        every = min(SIGNS_EVERY, self.settings.stall_timeout / 5)
        worker = run.worker  # (set by this thread, the run's owner)
        if worker is None or now - max(run.last_progress, run.signs_at) < every:
            return
        signs = group_signs(worker.pid, run.temp)
        with self._lock:
            if run.signs is not None and worked(run.signs, signs, now - run.signs_at):
                run.last_progress = max(run.last_progress, now)
            run.signs, run.signs_at = signs, now

    @staticmethod
    def _apply_edits(run: Run) -> bool:
        """Set the fields other threads asked for (under the lock, by the owner)."""
        edits = run.take_edits()
        item = run.item
        for name, value in edits.items():
            setattr(item, name, value)
        if edits.get("auto_start") and item.msg == "Paused":
            item.msg = ""
        return bool(edits)

    def _on_message(self, run: Run, message: dict[str, Any]) -> None:
        if message.get("type") == "moving":  # the job asks to move its files home
            self._let_move(run)
            return
        if message.get("type") == "waiting":  # a wait yt-dlp chose is no stall while it lasts
            seconds = finite(message.get("seconds"))
            if seconds is not None and seconds >= 0:
                with self._lock:
                    run.last_progress = max(run.last_progress, time.monotonic() + seconds)
            return
        if message.get("type") != "progress":
            self._log_child(message)
            return
        item = run.item
        new_status = POSTPROCESSING if message.get("status") == "postprocessing" \
            else DOWNLOADING
        # named before the lock: a file outside the folder is logged, and logs reach the bus
        filename = self._file_name(run, message["filename"]) if message.get("filename") \
            else None
        with self._lock:
            run.last_progress = time.monotonic()
            if run.reason is not None:
                return
            for field in ("downloaded_bytes", "total_bytes"):
                if message.get(field) is not None:
                    setattr(item, field, byte_count(message[field]))
            item.speed, item.eta = rate(message.get("speed")), rate(message.get("eta"))
            if item.total_bytes and item.downloaded_bytes is not None:
                item.percent = round(min(100.0, 100.0 * item.downloaded_bytes
                                         / item.total_bytes), 2)
            if filename is not None:
                item.filename = filename
            changed = new_status != item.status
            item.status = new_status
            progress = None if changed else item.to_dict()
        if progress is None:
            self._commit(item, durable=False)
        else:
            self.bus.publish(events.ITEM_UPDATED, progress, progress=True)

    def _let_move(self, run: Run) -> None:
        """Let the job move its files home unless a stop came first: from now on a cancel or
        a delete lets the move end (runs.Run.request_stop). A stop that came first killed
        the process, which waits for this answer: nothing of it is home."""
        with self._lock:
            worker = run.worker
            run.moving = run.reason is None
        if run.moving and worker is not None:
            worker.answer({"op": "move"})

    def _end_run(self, run: Run, result: dict[str, Any] | None, failure: str | None) -> None:
        """The run's last step: its stop reason (the first one asked for) decides the item's
        end. From here on no request changes it."""
        item = run.item
        failed = failure is not None or result is None or result.get("type") == "error"
        message = failure or (result or {}).get("message") or "download failed"
        folder_gone = bool(result and result.get("folder_gone"))
        if folder_gone:  # said now, not at the next periodic check; its files wait in temp
            self.folder_disk.check()
        # A refused file's message quotes the site, whose words may read as a full disk.
        said_by_site = bool(result and result.get("not_media"))
        with self._lock:
            filled = failed and run.reason is None and not said_by_site and (
                bool(result and result.get("no_room")) or disk_room.disk_full(message))
        no_room = self._no_room(run, message) if filled else None
        with self._lock:
            run.ended = True
            if folder_gone:
                run.reason = next_reason(run.reason, StopReason.DISK)
            if filled and no_room is None:
                run.reason = next_reason(run.reason, StopReason.ROOM)
            reason = reason_that_stands(run.reason, failed, item.id)
            item.speed = item.eta = None
            if reason in HANDED_BACK:
                item.status = PENDING
                item.msg = self._handed_back(reason)
                if reason is StopReason.PAUSE:
                    item.auto_start = False
                self._apply_edits(run)
                run.handed_back = True
            elif reason is not StopReason.DELETE and (reason is not None or failed):
                self._apply_edits(run)  # a finished download applies them in _finish
        try:
            if reason in HANDED_BACK:
                self._commit(item)
            elif reason is StopReason.CANCEL:
                self._finish_cancel(item, run)
            elif reason is StopReason.DELETE and failed:  # (done, it ends as the delete)
                self._end_deleted(item, run)
            elif no_room is not None:
                self._fail(item, no_room, run, explained=True)
            elif failed:
                if reason is StopReason.STALL:
                    message = run.stalled or message
                self._fail(item, message, run)
            else:
                self._finish(run, result)
        except Exception as exc:  # a bug in recording the end: the item still ends
            log.exception("item %s: recording the download's end failed", item.id)
            self._fail(item, f"Unexpected error at the download's end: {type(exc).__name__}: "
                             f"{exc}", run)
        finally:
            with self._lock:  # the slot is free once the item's end is announced
                del self._runs[item.id]
                self._items.release(item.id)
                self._wake.notify_all()

    def _handed_back(self, reason: StopReason) -> str:
        """What an item a run sent back to the queue says (under the lock)."""
        return (reason is StopReason.DISK and self._disk_wait()) or HANDED_BACK[reason]

    def _no_room(self, run: Run, message: str) -> str | None:
        """A disk was full as the run wrote (``message``): downloads wait for room (None),
        its partial files kept, or, when it never would fit (larger than the whole disk, or
        it filled a disk too often), why it fails."""
        item = run.item
        folders = self.folder_disk.folders()
        with self._lock:
            self._room_waits[item.id] += 1
            waits = self._room_waits[item.id]
        why = disk_room.too_big(folders, item.total_bytes)
        if why is None and waits > disk_room.MOST_WAITS:
            why = disk_room.too_often(waits)
        if why is not None:
            return f"{why} ({message})"
        self.folder_disk.filled()
        return None

    def _finish(self, run: Run, result: dict[str, Any]) -> None:
        item = run.item
        filepath = result.get("filepath") or ""
        size = mtime_ns = None
        if filepath:
            with contextlib.suppress(OSError):
                stat = os.stat(filepath)
                size, mtime_ns = stat.st_size, stat.st_mtime_ns
        summary = result.get("summary") or {}
        with self._lock:
            item.extractor = summary.get("extractor_key") or item.extractor
            item.video_id = str(summary.get("id") or item.video_id)
            item.info = {**item.info, **summary}
            # a title the person gave while it ran wins over the site's
            titled = "title" in run.edited
            item.title = item.title if titled else summary.get("title") or item.title
            self._apply_edits(run)
            done = item.snapshot()
        if result.get("skipped"):  # no file, and why (engine.child): neither archived nor NFO
            self._to_history(item, SKIP, run=run, durable=False, msg=str(result["skipped"]))
            return
        if result.get("found") and (taken := self._name_taken(run, done, filepath)):
            with self._lock:
                item.filename = ""  # the other video's file: never this item's to show or delete
            self._fail(item, taken, run, explained=True)
            return
        notes = self._after_download(done, filepath)
        if gaps := result.get("gaps"):  # (engine.child: fragments yt-dlp skipped)
            notes.insert(0, str(gaps))
            log.warning("download finished with gaps: item=%s url=%s: %s", item.id, item.url,
                        gaps)
        if not self._to_history(
            item, FINISHED, run=run, durable=False, also=(events.ITEM_COMPLETED,),
            filename=self._file_name(run, filepath) if filepath else done.filename,
            file_size=size,
            file_mtime_ns=mtime_ns,
            percent=100.0,
            downloaded_bytes=size if size is not None else done.downloaded_bytes,
            total_bytes=size if size is not None else done.total_bytes,
            msg="; ".join(notes),
        ):
            return
        log.info("download finished: item=%s file=%s", item.id, item.filename)
        self.bus.message("success", "Download completed", item.title or item.url, id=item.id)

    def _name_taken(self, run: Run, done: Item, filepath: str) -> str | None:
        """Why the file the download ended with (one already under its name: engine.child's
        ``found``) is not its own: another video's item records it. Two videos of one title
        under a template without the id: the second finished with the first's file, "already
        downloaded", its own never fetched, nothing said (or, run at once, its file replaced
        the first's, whose item then named a video not its own)."""
        video = _archive_line(done)
        name = self._file_name(run, filepath)
        if video is None or not name:
            return None
        mine = dataclasses.replace(done, filename=name)
        # a failed or cancelled item's name is where its file would have been, not a file
        others = [o for o in self.store.records(sorted(self.store.sharing_with(mine)))
                  if o.status == FINISHED or o.status in ACTIVE_STATUSES]
        videos = {_archive_line(o): o for o in others}
        other = next((o for key, o in videos.items() if key not in (None, video)), None)
        if other is None or video in videos:
            return None
        # two direct links of one file name have one id too: %(id)s tells them apart no more
        remedy = "Give this item a template of its own" if other.video_id == done.video_id \
            else "Put %(id)s in the template (the output_template setting, or the item's)"
        return (f"Not saved: its file's name '{name}' is already another video's file "
                f"('{other.title or other.url}', {other.url}), which was left as it is: the "
                f"output template gives both one name. {remedy}, then retry.")

    def _after_download(self, item: Item, filepath: str) -> list[str]:
        """Record the download in its archive and write its NFO file when the preset says so,
        before the item is announced as finished. Returns notes on what failed; the download
        itself stands."""
        plan = self.planner.plan(item)
        entry = archive_id(item.extractor, item.video_id, item.url)
        notes = []
        if plan.archive is not None and entry:
            try:
                self.archives.add(plan.archive, [entry])
            except OSError as exc:
                notes.append(f"could not record it in the archive: {exc.strerror}")
        if plan.preset.nfo and filepath:
            try:
                write_nfo(Path(filepath), plan.preset.nfo, item.info,
                          root=Path(item.download_folder), overwrite=True)
            except (ValueError, OSError) as exc:
                notes.append(f"no NFO file: {exc}")
        return notes


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


def reason_that_stands(reason: StopReason | None, failed: bool, item_id: str
                       ) -> StopReason | None:
    """The stop reason that decides a run's end. A cancel that came once the job had ended
    whole does not: its files are home, and a cancelled item would leave them recorded by
    none (an orphan in the download folder). The item finishes, as it did."""
    if reason is StopReason.CANCEL and not failed:
        log.info("item %s: cancelled once its download had ended: it is finished, its files "
                 "kept", item_id)
        return None
    return reason
