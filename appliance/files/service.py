"""The files room as the runtime holds it: the index of the download folder, its watcher, the
actions, and the zip downloads prepared for clients."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from ..config import Settings, SettingsHolder
from ..events import FILE_ACTION, FILES_CHANGED, EventBus
from .actions import FileActions
from .index import FileIndex
from .names import api_form
from .watcher import FolderWatcher
from .zips import ZipTokens

log = logging.getLogger(__name__)

# Folders named in one files_changed event at most (a burst names the first ones).
CHANGED_SHOWN = 100


class FileService:
    def __init__(self, settings: SettingsHolder, bus: EventBus) -> None:
        self.settings = settings.current
        self.bus = bus
        self._lock = threading.Lock()
        self.zips = ZipTokens()
        self._build(self.settings.download_path)
        self._started = False
        settings.on_change(lambda _old, new: self.follow(new))

    def _build(self, root: Path) -> None:
        self.index = FileIndex(root, on_change=self._changed)
        self.watcher = FolderWatcher(self.index, watch=self.settings.file_watch,
                                     rescan_interval=self.settings.file_rescan_interval)
        self.actions = FileActions(self.index, self._acted)

    @property
    def root(self) -> Path:
        return self.index.root

    def follow(self, settings: Settings) -> None:
        """The download folder changed (``PUT /api/settings``): index and watch the new one."""
        with self._lock:
            self.settings = settings
            if Path(os.path.realpath(settings.download_path)) == self.index.root:
                return
            log.info("download folder is now %s: indexing it", settings.download_path)
            if self._started:
                self.watcher.stop()
            self._build(settings.download_path)
            if self._started:
                self.watcher.start()

    def start(self) -> None:
        with self._lock:
            self.watcher.start()
            self._started = True

    def stop(self) -> None:
        with self._lock:
            self.watcher.stop()
            self._started = False

    def status(self) -> dict[str, Any]:
        return self.watcher.status()

    def _changed(self, folders: list[str]) -> None:
        # Progress-like: a slow client may get only the latest (a download writing its file
        # changes its folder many times).
        self.bus.publish(FILES_CHANGED, {"folders": [api_form(f) for f in folders[:CHANGED_SHOWN]],
                                         "count": len(folders)}, progress=True)

    def _acted(self, result: dict[str, Any]) -> None:
        self.bus.publish(FILE_ACTION, result)
