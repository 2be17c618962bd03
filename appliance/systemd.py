"""systemd's side of the service: the notify protocol (readiness, status and watchdog from
the worker, stopping from the master), and journald priorities on stderr.

- :func:`claim_notify_socket` runs in ``appliance serve`` before gunicorn starts. It takes
  ``NOTIFY_SOCKET`` (and the watchdog's period) out of the environment: gunicorn's master
  would say ``READY=1`` as soon as it booted, before the worker has a database, a recovered
  queue or a websocket; and the download processes must not be able to speak for the service.
  The forked worker inherits what was kept here.
- :class:`ServiceAgent` (the runtime, in the worker): ``READY=1`` once the runtime has
  started, ``STATUS=`` with a short summary whenever it changes, ``WATCHDOG=1`` only while the
  engine's dispatcher loop answers (a hung engine is restarted by systemd).
- :func:`announce_stopping`: ``STOPPING=1`` from gunicorn's master when it is told to stop.
- :class:`JournalFormatter`: ``<N>`` syslog priority prefixes on every line when stderr is the
  journal (``JOURNAL_STREAM``), so ``journalctl -p warning`` finds warnings.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

log = logging.getLogger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"
# STATUS= is sent at most this often while downloads move (it is a summary, not progress).
STATUS_INTERVAL = 1.0
STATUS_WAIT = 1.0  # seconds for the engine's figures

_claimed: dict[str, str] = {}


def claim_notify_socket(environ: MutableMapping[str, str] | None = None) -> None:
    """Keep the notify socket and watchdog period for the worker; remove them from the
    environment so that nothing else (gunicorn's master, download processes) uses them."""
    environ = os.environ if environ is None else environ
    for name in (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID):
        value = environ.pop(name, None)
        if value:
            _claimed[name] = value


def claimed() -> Mapping[str, str]:
    return dict(_claimed)


def watchdog_period(values: Mapping[str, str]) -> float | None:
    """Seconds systemd's watchdog allows between two ``WATCHDOG=1``; None when it is off."""
    try:
        usec = int(values.get(WATCHDOG_USEC, "0"))
    except ValueError:
        return None
    # A period past the longest wait (WatchdogSec=1000y) is as good as that wait: the agent's
    # thread ended on the OverflowError of its first wait, and no status followed.
    return min(usec / 1e6, threading.TIMEOUT_MAX) if usec > 0 else None


class Notifier:
    """Datagrams to systemd's notify socket; a no-op without one. Never raises: systemd
    being away is no reason to fail a download. A socket that cannot be used is said once
    (a warning: under ``Type=notify`` systemd stops a service it never heard ready at its
    start timeout, and restarts one whose heartbeat it stops hearing), and its return."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._failing = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, **fields: str) -> bool:
        if not self.address:
            return False
        text = "\n".join(f"{name.upper()}={value}" for name, value in fields.items())
        address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        with self._lock:
            try:
                if address[0] not in "/\0":  # as sd_notify: never a path from the cwd
                    raise OSError("neither an absolute path nor an abstract socket (@)")
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX,
                                               socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(text.encode(), address)
            except OSError as exc:
                if not self._failing:
                    log.warning("systemd's notify socket %r cannot be used (%s): systemd "
                                "will stop the service as not started, or restart it as "
                                "hung", self.address, exc)
                self._failing = True
                return False
            if self._failing:
                log.info("systemd's notify socket %r is used again", self.address)
                self._failing = False
        return True

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def announce_stopping() -> None:
    """STOPPING=1, from gunicorn's master as it begins to shut the whole service down."""
    Notifier(_claimed.get(NOTIFY_SOCKET)).send(
        stopping="1", status="stopping: running downloads are left resumable")


def status_line(stats: Mapping[str, Any]) -> str:
    """``2 downloading, 14 queued, paused`` from the engine's figures."""
    parts = [f"{stats.get('active_downloads', 0)} downloading",
             f"{stats.get('queued', 0)} queued"]
    if stats.get("system_paused"):
        parts.append("paused")
    if stats.get("download_folder_problem"):
        parts.append("waiting for room on a full disk" if stats.get("waiting_for_room") else
                     "waiting for the download folder's disk")
    return ", ".join(parts)


class ServiceAgent:
    """Tells systemd what the worker's runtime is doing, from a thread of its own.

    ``alive(timeout)`` must prove the engine loop runs (the dispatcher answers);
    ``stats(timeout=…)`` gives the figures of the status line, or raises TimeoutError. The
    thread sleeps until something changes (a bus event calls :meth:`changed`) or the next
    heartbeat is due: an idle service wakes it once per half watchdog period.
    """

    def __init__(self, notifier: Notifier, watchdog: float | None,
                 alive: Callable[[float], bool], stats: Callable[..., Mapping[str, Any]]) -> None:
        self.notifier = notifier
        self.watchdog = watchdog
        self.alive = alive
        self.stats = stats
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = ""

    @classmethod
    def from_claimed(cls, alive: Callable[[float], bool],
                     stats: Callable[..., Mapping[str, Any]]) -> ServiceAgent:
        values = claimed()
        return cls(Notifier(values.get(NOTIFY_SOCKET)), watchdog_period(values), alive, stats)

    def ready(self) -> None:
        """The runtime is up: say so, then keep status and heartbeat current."""
        if not self.notifier.enabled:
            return
        self._status = status_line(self.stats())
        if self.notifier.send(ready="1", status=self._status):
            log.info("told systemd the service is ready%s",
                     f" (watchdog every {self.watchdog / 2:g} s)" if self.watchdog else "")
        self._thread = threading.Thread(target=self._run, name="systemd", daemon=True)
        self._thread.start()

    def changed(self, _event: Any = None) -> None:
        """Something the status line shows may have changed (a bus subscriber: no work)."""
        self._changed.set()

    def stop(self) -> None:
        """The worker's runtime stops. Not STOPPING=1: a worker also stops when gunicorn
        replaces it (reload, crash), and systemd would take that for the service stopping;
        the master says it (:func:`announce_stopping`)."""
        self._stop.set()
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.notifier.close()

    def _run(self) -> None:
        interval = self.watchdog / 2 if self.watchdog else None
        next_beat = time.monotonic()
        answering = True
        while not self._stop.is_set():
            now = time.monotonic()
            if interval is not None and now >= next_beat:
                # Within half the period, so that a slow answer still leaves time to send.
                answering = self.alive(interval / 2)
                if answering:
                    self.notifier.send(watchdog="1")
                else:
                    log.error("the download engine did not answer within %g s; systemd's "
                              "watchdog will restart the service if it stays so",
                              interval / 2)
                next_beat = now + interval
            if answering:  # the figures come from the engine: a stuck one would hold us here
                self._send_status()
            wait = None if interval is None else max(0.0, next_beat - time.monotonic())
            self._changed.wait(wait)
            if self._changed.is_set() and not self._stop.is_set():
                self._changed.clear()
                self._stop.wait(STATUS_INTERVAL)  # a burst of events is one status

    def _send_status(self) -> None:
        if self._stop.is_set():
            return
        try:
            # The engine may be stuck since it last answered: this thread must go on to
            # say so at the next heartbeat, not wait with it.
            line = status_line(self.stats(timeout=STATUS_WAIT))
        except TimeoutError:
            return
        if line != self._status:
            self._status = line
            self.notifier.send(status=line)


# --- journald ----------------------------------------------------------------------------

# syslog priorities (sd-daemon.h's SD_ERR …) by logging level.
PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
              (logging.INFO, 6))
DEBUG_PRIORITY = 7
JOURNAL_FORMAT = "%(name)s: %(message)s"


def stderr_is_journal(environ: Mapping[str, str] | None = None, fd: int = 2) -> bool:
    """systemd sets ``JOURNAL_STREAM=<dev>:<inode>`` when stdout/stderr go to the journal;
    it is only true for this stream if the numbers are those of the open ``fd``."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        stat = os.fstat(fd)
        return (int(device), int(inode)) == (stat.st_dev, stat.st_ino)
    except (OSError, ValueError):
        return False


def priority(levelno: int) -> int:
    return next((p for level, p in PRIORITIES if levelno >= level), DEBUG_PRIORITY)


class JournalFormatter(logging.Formatter):
    """Every line of a record gets its ``<N>`` prefix (a traceback's lines too: journald
    stores each line as an entry of its own). No time stamp: the journal keeps one."""

    def __init__(self, fmt: str = JOURNAL_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def stderr_formatter(fmt: str) -> logging.Formatter:
    """The formatter for a stderr handler: journald priorities when stderr is the journal."""
    return JournalFormatter() if stderr_is_journal() else logging.Formatter(fmt)

