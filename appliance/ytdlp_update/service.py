"""yt-dlp kept current while the service runs: the figures for ``GET /api/system/ytdlp``, an
update in a thread of its own (never a request thread), the scheduled update
(``YTP_YTDLP_UPDATE_INTERVAL``) and, after an install or a roll back, the warm download
processes retired so that the next download starts with what is installed now. Running
downloads keep the yt-dlp they started with."""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import errors
from ..config import Settings, SettingsHolder, url_shown
from ..engine.js_runtime import js_runtime
from ..engine.option_table import tables
from ..events import EventBus
from .index import newer
from .updater import Outcome, Updater

log = logging.getLogger(__name__)

LATEST_TTL = 600.0  # the index is asked at most this often for GET /api/system/ytdlp ...
UNKNOWN_TTL = 60.0  # ... and again after a minute when it could not be reached
KEEP_FOLDER = "ytdlp-releases"
INDEX_WAIT = 6.0


class YtdlpUpdates:
    def __init__(self, settings: Settings | SettingsHolder, renew_processes: Callable[[], None],
                 bus: EventBus, *, python: Path | None = None) -> None:
        self._settings = held = SettingsHolder.of(settings)
        settings = held.current
        self.renew_processes = renew_processes
        self.bus = bus
        self.updater = Updater(python or Path(sys.executable), settings.ytdlp_index_url,
                               settings.config_path / KEEP_FOLDER,
                               check_url=settings.ytdlp_check_url)
        self._lock = threading.Lock()
        self._latest: tuple[float, str | None] | None = None
        self._running = False
        self._last: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        held.on_change(self._settings_changed)

    @property
    def settings(self) -> Settings:
        return self._settings.current

    def _settings_changed(self, _old: Settings, new: Settings) -> None:
        self.updater.index_url, self.updater.check_url = new.ytdlp_index_url, new.ytdlp_check_url

    # --- what GET shows -------------------------------------------------------------------

    def latest(self) -> str | None:
        with self._lock:
            cached = self._latest
        now = time.monotonic()
        if cached is not None and now - cached[0] < (LATEST_TTL if cached[1] else UNKNOWN_TTL):
            return cached[1]
        # In a thread of its own, waited for a few seconds at most: name resolution is not
        # bounded by the socket's timeout, and this runs on a request thread.
        found: list[str | None] = []
        asking = threading.Thread(target=lambda: found.append(self.updater.latest()),
                                  name="ytdlp-index", daemon=True)
        asking.start()
        asking.join(INDEX_WAIT)
        value = found[0] if found else None
        with self._lock:
            self._latest = (now, value)
        return value

    def status(self) -> dict[str, Any]:
        installed = self.updater.installed()
        latest = self.latest()
        with self._lock:
            update = dict(self._last) if self._last else {"state": "idle"}
            if self._running:
                update["state"] = "running"
        return {
            "installed": installed or "unknown",
            "latest": latest or "unknown",
            "update_available": None if latest is None else newer(latest, installed),
            "index_url": url_shown(self.settings.ytdlp_index_url),
            "update_interval_hours": self.settings.ytdlp_update_interval,
            "update": update,
        }

    # --- updating -------------------------------------------------------------------------

    def _claim(self) -> bool:
        """Whether this caller may run the update (none runs); it is then shown running.
        Checked and set under one lock: the schedule and a request may both ask at once, and
        two pip runs in one environment would mix two releases' files."""
        with self._lock:
            if self._running:
                return False
            self._running = True
            self._last = {"state": "running", "started_at": time.time()}
            return True

    def start_update(self) -> dict[str, Any]:
        """Begin an update in the background; 409 while one runs."""
        if not self._claim():
            raise errors.AppError("A yt-dlp update is already running.", errors.CONFLICT)
        thread = threading.Thread(target=self._update_in_thread, name="ytdlp-update",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()
        return {"state": "running"}

    def _update_in_thread(self) -> None:
        try:
            self.update()
        except Exception:  # a thread of its own: nobody else would see it
            log.exception("the yt-dlp update failed")
            with self._lock:
                self._running = False
                self._last = {"state": "failed", "message": "internal error (see the log)",
                              "started_at": (self._last or {}).get("started_at"),
                              "finished_at": time.time()}

    def update(self) -> Outcome:
        """Update now (the caller's thread): install, check, roll back if needed, retire the
        warm processes when what is installed changed."""
        with self._lock:
            self._running = True
            started = (self._last or {}).get("started_at") or time.time()
        outcome = self.updater.update()
        if outcome.state in {"updated", "rolled_back"}:
            self.renew_processes()
            js_runtime.cache_clear()  # the solver may have changed with it
            tables.prepare()  # the new version's option table, made now, not by a request
        with self._lock:
            self._running = False
            self._latest = None
            self._last = {**dataclasses.asdict(outcome), "started_at": started,
                          "finished_at": time.time()}
        level = {"updated": "success", "up_to_date": "info"}.get(outcome.state, "warning")
        log.log(logging.WARNING if level == "warning" else logging.INFO, "yt-dlp update: %s",
                outcome.message, extra={"announce": False})
        self.bus.message(level, "yt-dlp update", outcome.message, state=outcome.state)
        return outcome

    # --- the schedule ---------------------------------------------------------------------

    def start(self) -> None:
        if self.updater.interrupted():  # the service stopped during an update: finish it
            self.start_update()
        hours = self.settings.ytdlp_update_interval
        if hours > 0:
            thread = threading.Thread(target=self._schedule, args=(hours * 3600,),
                                      name="ytdlp-schedule", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _schedule(self, every: float) -> None:
        while not self._stop.wait(every):
            if self._claim():
                self._update_in_thread()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=1 if thread.name == "ytdlp-update" else 10)
