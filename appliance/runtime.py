"""Everything the service runs, built once in the worker after fork and stopped on exit.

The runtime owns the one ``SettingsHolder`` and hands it to every component it builds.
"""

from __future__ import annotations

import errno
import logging
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

from pony.orm.dbapiprovider import DBException

from . import events, flasharr
from .auth import Authenticator
from .config import Settings, SettingsHolder, ensure_folders
from .engine.engine import DownloadEngine
from .engine.info import UrlInfo
from .engine.option_table import tables
from .events import Event, EventBus
from .files import FileService
from .instance import instance_id
from .logs import (
    attach_file_logging,
    detach_file_logging,
    forward_to_bus,
    log_file_path,
    stop_forwarding,
)
from .notify import Notifier
from .player import Player
from .setting_fields import ENV_PREFIX
from .slots import IMAGE_FETCHES, OUTSIDE_WAITS, Slots
from .store import ItemStore
from .store.backups import BackupSchedule
from .store.notifications import NotificationStore
from .store.outbox import OutboxStore
from .store.tasks import TaskStore
from .systemd import ServiceAgent
from .tasks.service import TaskService
from .ytdlp_update import YtdlpUpdates

log = logging.getLogger(__name__)


class StartupFailure(Exception):
    """What stops the service's start, in words for whoever reads the journal (the server
    says it in one line, not as a traceback)."""


# Less room than this left on a disk the start writes to is a full disk (what is left to
# anybody but root: the kernel keeps the rest for it).
FULL_DISK = 1 << 20
FREE_IT = "free some space there, then start the service again"
CHECK_IT = "check the disk under it, and that the service's user may read and write it"


def disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < FULL_DISK
    except OSError:  # gone, unplugged: not known to be full
        return False


def open_store(database: Path, download_folder: Path) -> ItemStore:
    """The history's store, or StartupFailure that says why it cannot be opened."""
    try:
        return ItemStore(database, download_folder)
    except (DBException, sqlite3.Error, OSError) as exc:  # pony wraps sqlite3's errors
        # "database is locked": a write lock held past the busy timeout, not a broken file.
        if "locked" in str(exc):
            remedy = ("another program holds it (an sqlite3 shell, a backup tool): close "
                      "that program, then start the service again")
        # SQLite says "disk I/O error" when its shared memory file cannot grow: a disk that
        # filled up (downloads, years of logs) is no broken disk.
        elif disk_full(database.parent):
            remedy = f"its disk is full: {FREE_IT}"
        else:
            remedy = CHECK_IT
        raise StartupFailure(f"the database {database} cannot be opened ({exc}): {remedy}"
                             ) from None


def failed_start(exc: OSError, settings: Settings) -> StartupFailure:
    """A file the start writes that could not be written (the service's id on a first start,
    the log file, a folder's mark), in words: the disk that is full, or the file and why. An
    ``os.write`` on a full disk names no file."""
    said = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        full = [f"{path} ({ENV_PREFIX}{name.upper()})" for name, path in (
            ("config_path", settings.config_path), ("temp_path", settings.temp_path),
            ("download_path", settings.download_path)) if disk_full(path)]
        if full:
            return StartupFailure(f"the service cannot start: {said}: the disk of "
                                  f"{', '.join(full)} is full: {FREE_IT}")
    where = f" ({exc.filename})" if exc.filename else ""
    return StartupFailure(f"the service cannot start: {said}{where}: {CHECK_IT}")


# Items whose file a file browser action changed that are announced one by one, at most.
ANNOUNCED_FILE_ITEMS = 1000


class QueueService:
    """The queue as the websocket sees it: commands in, plain dicts out."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.engine = runtime.engine

    def add(self, requests: list[Any]) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.engine.add(requests)]

    # The websocket protocol answers "ok" per id, or the reason it was not done.
    @staticmethod
    def _ok(results: dict[str, str]) -> dict[str, str]:
        return {k: "ok" if v != "not found" else "item not found" for k, v in results.items()}

    def start(self, ids: list[str]) -> dict[str, str]:
        return self._ok(self.engine.start_items(ids))

    def pause(self, ids: list[str]) -> dict[str, str]:
        return self._ok(self.engine.pause_items(ids))

    def cancel(self, ids: list[str]) -> dict[str, str]:
        return self._ok(self.engine.cancel_items(ids))

    def delete(self, ids: list[str], remove_file: bool = False) -> dict[str, str]:
        allowed = remove_file and self.runtime.settings.remove_files
        return self._ok(self.engine.delete_items(ids, remove_file=allowed))

    def flasharr_tasks(self) -> list[dict[str, Any]]:
        chosen, _ = self.engine.queue_cut(flasharr.SYNC_ALL_LIMIT)
        return [flasharr.task(i.to_dict()) for i in chosen]

    def flasharr_task(self, item: dict[str, Any]) -> dict[str, Any]:
        return flasharr.task(item)

    def active_count(self) -> int:
        return len(self.engine.active_items())

    def active_items(self) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.engine.active_items()]

    def engine_stats(self) -> dict[str, Any]:
        return flasharr.engine_stats(self.engine.stats(), self.runtime.store.status_counts())


class Runtime:
    def __init__(self, settings: Settings, *, websocket: bool = True) -> None:
        ensure_folders(settings)
        self.settings_holder = held = SettingsHolder(settings)
        self.instance_id = instance_id(settings.config_path)
        self.auth = Authenticator(held)
        self.bus = EventBus()
        # Set when the service begins to stop (SIGTERM or stop()): live streams end at once
        # instead of holding the graceful shutdown.
        self.stopping = threading.Event()
        self._log_file: Any = None
        self._log_forwarder: Any = None
        self.store = open_store(settings.database_file, settings.download_path)
        self.backups = BackupSchedule(settings.database_file, settings.db_backups)
        # yt-dlp's option table (engine.option_table), kept for the installed yt-dlp version.
        tables.keep_in(settings.config_path)
        self.engine = DownloadEngine(held, self.store, self.bus)
        self.notifications = NotificationStore(self.store.entities.NotificationTarget)
        self.notifier = Notifier(held, self.notifications, self.bus,
                                 OutboxStore(self.store.entities.NotificationOutbox))
        self.url_info = UrlInfo(self.engine.extract_url, self.engine.presets, held)
        self.service = QueueService(self)
        self.tasks = TaskService(held, TaskStore(self.store.entities),
                                 self.store, self.engine, self.bus)
        self.files = FileService(held, self.bus)
        self.bus.subscribe(self._follow_file_actions)
        self.player = Player(held)
        # Answers that last, each kind bounded (a thread is set aside for each place: slots.py)
        share = max(1, settings.max_transfers // 2)
        self.transfers = Slots(
            settings.max_transfers, f"Too many files are being sent ({settings.max_transfers} "
            "at once, YTP_MAX_TRANSFERS); try again.", wait=0, share=share,
            over_share=f"This client is already being sent {share} files, the most one client "
            "may at once (half of YTP_MAX_TRANSFERS: the rest are kept for others); try again "
            "when one ends.")
        self.streams = Slots(
            settings.max_streams, f"Too many live streams are open ({settings.max_streams}, "
            "YTP_MAX_STREAMS); close one and try again.", wait=0, retry_after=5)
        self.image_fetches = Slots(
            IMAGE_FETCHES, f"{IMAGE_FETCHES} remote images are being fetched; try again.",
            wait=1.0)
        self.outside = Slots(
            OUTSIDE_WAITS, f"Too many requests are waiting on other servers ({OUTSIDE_WAITS} "
            "at once: URL info, task previews, tests); try again shortly.", wait=0)
        self.ytdlp = YtdlpUpdates(held, self.engine.pool.renew, self.bus)
        # systemd's notify protocol: a no-op unless `appliance serve` runs under systemd.
        self.systemd = ServiceAgent.from_claimed(self.engine.alive, self.engine.stats)
        self.websocket = None
        self.announcer = None
        if websocket:
            from .ws import WebsocketServer

            self.websocket = WebsocketServer(
                held, self.bus, self.service, authenticator=self.auth
            )
        # Only the serving runtime (the one whose sidecar listens) announces itself; the API
        # tests' runtimes have neither.
        if websocket and settings.zeroconf:
            from .discovery import Announcer

            self.announcer = Announcer(settings, self.instance_id)

    def _follow_file_actions(self, event: Event) -> None:
        """A file (or folder) the file browser renamed or moved keeps its items: their
        history names it where it is now. One it deleted is no item's file any more. Clients
        are told of each item changed (``item_updated``), as of any other change."""
        data = event.data
        if event.name != events.FILE_ACTION or not isinstance(data, dict) or not data["ok"]:
            return
        folders = (str(self.files.root), str(self.settings.download_path))
        if data["action"] in ("rename", "move"):
            changed = self.store.follow_rename(folders, data["path"], data["new_path"])
            what = f"follow {data['path']} to {data['new_path']}"
        elif data["action"] == "delete":
            changed = self.store.forget_files(folders, data["path"])
            what = f"name no file now: {data['path']} was deleted in the file browser"
        else:
            return
        if not changed:
            return
        log.info("%d item(s) %s", len(changed), what)
        if len(changed) > ANNOUNCED_FILE_ITEMS:
            # Thousands of whole items at once would put clients too far behind (closed).
            self.bus.message("info", "History changed", f"{len(changed)} items {what}; "
                             "reload the history to see them.")
            return
        for item in self.store.records(changed):
            self.bus.publish(events.ITEM_UPDATED, item.to_dict())

    @property
    def settings(self) -> Settings:
        """The settings now (``settings_holder.current``)."""
        return self.settings_holder.current

    def start(self) -> None:
        if self.settings.file_logging:
            self._log_file = attach_file_logging(log_file_path(self.settings.config_path))
        self._log_forwarder = forward_to_bus(self.bus)
        if not self.auth.enabled:
            log.warning("no credentials are set (YTP_AUTH_USERNAME/YTP_AUTH_PASSWORD or "
                        "`appliance web passwd`): the API is open to anyone who can reach "
                        "%s:%s", self.settings.host, self.settings.port)
        else:
            log.info("authentication is on: %s", self.auth.describe())
        self.notifier.start()  # before the engine, so that no event of the start is missed
        self.engine.start()
        # yt-dlp's option table, on a first start or a new version: made now, by a process of
        # its own, so that no request waits for it (engine.option_table).
        threading.Thread(target=tables.prepare, name="option-table", daemon=True).start()
        self.tasks.start()
        self.files.start()
        if self.websocket is not None:
            try:
                self.websocket.start()
            except OSError as exc:  # the port, taken since `appliance serve` checked it
                raise StartupFailure(
                    f"the websocket cannot listen on {self.settings.host}:"
                    f"{self.settings.websocket_port} ({exc.strerror or exc}): another program "
                    "holds the port, or YTP_HOST is no address of this machine") from None
        self.backups.start()
        self.ytdlp.start()
        if self.announcer is not None:
            self.announcer.start()
        log.info("appliance ready: downloads in %s, websocket on port %s",
                 self.settings.download_path, self.settings.websocket_port)
        self.bus.subscribe(self.systemd.changed)
        self.systemd.ready()  # the database is open, the queue recovered, the websocket up

    def stop(self) -> None:
        self.stopping.set()
        self.systemd.stop()
        if self.announcer is not None:
            self.announcer.stop()
        if self.websocket is not None:
            self.websocket.stop()
        self.backups.stop()
        self.tasks.stop()  # before the engine: a run may be queuing items
        self.files.stop()
        self.ytdlp.stop()
        self.engine.stop()
        self.notifier.stop()  # after the engine: its last events are delivered (bounded wait)
        self.store.close()
        log.info("appliance stopped")
        if self._log_forwarder is not None:
            stop_forwarding(self._log_forwarder)
            self._log_forwarder = None
        if self._log_file is not None:
            detach_file_logging(self._log_file)
            self._log_file = None
