"""Logging: one line per event with time, level, logger and message, on stderr (the journal
under systemd) and, when ``file_logging`` is on, in a rotating file in the config folder.

- :func:`configure_logging` (``appliance serve``, before gunicorn forks): the stderr handler
  and the level.
- :func:`attach_file_logging` (the runtime, in the worker): ``<config>/logs/appliance.log``,
  rotated at 5 MB, five old files kept. The handler also hands each formatted line to the
  live log streams that subscribed (``/api/logs/stream``): no file polling.
- :func:`read_entries`: the newest entries first, read backwards from the end of the file in
  blocks (then the rotated files), so a page costs what it returns, not the file's size.
- :class:`BusForwarder`: WARNING and ERROR records of the ``appliance`` loggers go to the
  event bus as ``log_warning`` / ``log_error`` (and so to websocket clients), rate-limited.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from .systemd import stderr_formatter
from .url_secrets import without_url_secrets

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DIR = "logs"
LOG_FILE = "appliance.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUP_COUNT = 5
READ_BLOCK = 64 * 1024
# A record's text in the file and the live streams, and a message on the bus, at most (in
# characters): a site's error text or a URL of megabytes, logged whole, went to every
# websocket client and chat target and made each /api/logs page that held it megabytes.
MAX_RECORD = 64 * 1024
MAX_ANNOUNCED = 1000

# A line that starts a record (FORMAT with logging's default asctime); any other line
# continues the record above it (a traceback, a message with newlines).
_HEADER = re.compile(
    r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) ([A-Z]+|Level \d+) (\S+): (.*)", re.DOTALL
)


# Control characters but line ends and tabs, written as \xNN: a site's title or error text
# with ESC sequences in it would otherwise act on the terminal of whoever reads the log
# (`tail -f`, the service run by hand), and a CR would hide what came before it on the line.
_ESCAPED = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))
            if code not in (0x09, 0x0A)}


def printable(text: str) -> str:
    """``text`` with its control characters (line ends and tabs aside) written as ``\\xNN``."""
    return text.translate(_ESCAPED)


def shown(text: str) -> str:
    """A record's ``text`` as every reader of the log gets it (the journal, the file and its
    streams, the bus): :func:`printable`, and the URLs it names without their secrets
    (the journal and the file are handed to whoever helps debug)."""
    return printable(without_url_secrets(text))


def cut(text: str, most: int) -> str:
    """``text``, or its first ``most`` characters and how many more there were."""
    if len(text) <= most:
        return text
    return f"{text[:most]}… ({len(text) - most} more characters)"


def utf8(text: str) -> str:
    """``text`` with each lone surrogate (a byte of a file name that is no UTF-8, as
    os.listdir gives it) written as ``\\udcXX``: as it was, it failed the log file's write (the
    record lost, a traceback on stderr instead) and a websocket frame's or a webhook's JSON."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class PrintableFormatter(logging.Formatter):
    """``inner``'s lines, :func:`shown`."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return shown(self.inner.format(record))


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_appliance", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(PrintableFormatter(stderr_formatter(FORMAT)))
        handler._appliance = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    # Pony logs every SQL statement at INFO when its own logger is on; keep it quiet.
    logging.getLogger("pony").setLevel(logging.WARNING)


def log_file_path(config_path: Path) -> Path:
    return config_path / LOG_DIR / LOG_FILE


def line_id(line: str) -> str:
    """The id of a log line in the API: the SHA-256 of its text (same in both endpoints)."""
    return hashlib.sha256(line.encode("utf-8", "replace")).hexdigest()


# --- the file and its live subscribers ---------------------------------------------------


class LogSubscription:
    """One live stream's queue of ``(line, created)``. Never blocks the logging thread: when
    the reader is too slow the newest lines are dropped and counted."""

    def __init__(self, maxsize: int) -> None:
        self._queue: queue.Queue[tuple[str, float]] = queue.Queue(maxsize)
        self._lock = threading.Lock()
        self._dropped = 0

    def put(self, line: str, created: float) -> None:
        try:
            self._queue.put_nowait((line, created))
        except queue.Full:
            with self._lock:
                self._dropped += 1

    def get(self, timeout: float) -> tuple[str, float] | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def get_nowait(self) -> tuple[str, float] | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def take_dropped(self) -> int:
        with self._lock:
            dropped, self._dropped = self._dropped, 0
        return dropped


class LogFileHandler(RotatingFileHandler):
    """The rotating log file, which also fans each line out to live subscribers."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(path, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8")
        self.setFormatter(logging.Formatter(FORMAT))
        self.path = path
        self.users = 0
        self._subscribers: tuple[LogSubscription, ...] = ()
        self._subscribers_lock = threading.Lock()

    def format(self, record: logging.LogRecord) -> str:
        # The rollover check, the write and the fan-out all need the line: format it once.
        line = record.__dict__.get("_appliance_line")
        if line is None:
            # A record's later lines (a traceback, a message with line breaks) start with a
            # space: a line break in a URL, a site's error text or a name that a message
            # quotes cannot start a forged record of its own (say, an ERROR) in /api/logs.
            line = shown(cut(super().format(record), MAX_RECORD)).replace("\n", "\n ")
            line = utf8(line)
            record._appliance_line = line  # type: ignore[attr-defined]
        return line

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        subscribers = self._subscribers
        if subscribers:
            try:
                line = self.format(record)
            except Exception:
                self.handleError(record)
                return
            for subscriber in subscribers:
                subscriber.put(line, record.created)

    def subscribe(self, maxsize: int = 1000) -> LogSubscription:
        subscription = LogSubscription(maxsize)
        with self._subscribers_lock:
            self._subscribers = (*self._subscribers, subscription)
        return subscription

    def unsubscribe(self, subscription: LogSubscription) -> None:
        with self._subscribers_lock:
            self._subscribers = tuple(s for s in self._subscribers if s is not subscription)


_file_lock = threading.Lock()
_file_handler: LogFileHandler | None = None


def attach_file_logging(path: Path) -> LogFileHandler:
    """Log to ``path`` (rotating) from now on; the root logger gets one such handler per
    process. Attaching the same path again shares the handler (counted)."""
    global _file_handler
    with _file_lock:
        current = _file_handler
        if current is not None and current.path == path:
            current.users += 1
            return current
        if current is not None:
            logging.getLogger().removeHandler(current)
            current.close()
        handler = LogFileHandler(path)
        handler.users = 1
        logging.getLogger().addHandler(handler)
        _file_handler = handler
        return handler


def detach_file_logging(handler: LogFileHandler) -> None:
    global _file_handler
    with _file_lock:
        handler.users -= 1
        if handler.users > 0:
            return
        logging.getLogger().removeHandler(handler)
        handler.close()
        if _file_handler is handler:
            _file_handler = None


def file_handler_for(path: Path) -> LogFileHandler | None:
    """The live handler writing ``path``, if file logging to it is on in this process."""
    handler = _file_handler
    return handler if handler is not None and handler.path == path else None


# --- reading the file backwards ----------------------------------------------------------


def _lines_backwards(path: Path) -> Iterator[bytes]:
    """The complete lines of ``path``, last first, read from the end in blocks. The text
    after the last newline (empty, or a line still being written) is skipped."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        position = handle.seek(0, 2)
        tail = b""
        first = True
        while position > 0:
            size = min(READ_BLOCK, position)
            position -= size
            handle.seek(position)
            parts = (handle.read(size) + tail).split(b"\n")
            tail = parts[0]
            complete = parts[1:]
            if first and complete:
                complete = complete[:-1]  # after the last newline: nothing, or half a line
                first = False
            yield from reversed(complete)
        if not first:
            yield tail  # the first line of the file


def _iso(asctime: str) -> str | None:
    try:
        local = datetime.strptime(asctime, "%Y-%m-%d %H:%M:%S,%f")
    except ValueError:
        return None
    return local.astimezone().astimezone(UTC).isoformat()


def parse_entry(text: str) -> dict[str, Any]:
    """One record's text (its first line and any continuation lines) as an API entry."""
    match = _HEADER.fullmatch(text)
    if match is None:
        timestamp, level, logger, message = None, "", "", text
    else:
        timestamp = _iso(match.group(1))
        level, logger, message = match.group(2), match.group(3), match.group(4)
    return {
        "id": line_id(text),
        "timestamp": timestamp,
        "datetime": timestamp,
        "level": level,
        "logger": logger,
        "message": message,
    }


def _records_backwards(path: Path) -> Iterator[str]:
    """Every record's text, newest first: the file, then ``.1`` … (older rotations)."""
    files = [path, *(path.with_name(f"{path.name}.{n}") for n in range(1, BACKUP_COUNT + 1))]
    for file in files:
        continuation: list[str] = []
        for raw in _lines_backwards(file):
            line = raw.decode("utf-8", "replace").rstrip("\r")
            if _HEADER.fullmatch(line) is None:
                continuation.append(line)
                continue
            yield "\n".join([line, *reversed(continuation)])
            continuation = []
        if continuation:  # lines with no record line above them (a foreign or cut file)
            yield "\n".join(reversed(continuation))


def read_entries(path: Path, offset: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """Entries ``offset`` … ``offset + limit - 1`` counted from the newest, and whether the
    oldest entry was reached. Reads only as far back as that page needs."""
    entries: list[dict[str, Any]] = []
    records = _records_backwards(path)
    try:
        for index, text in enumerate(records):
            if index < offset:
                continue
            if len(entries) == limit:
                return entries, False  # there is at least one older entry
            entries.append(parse_entry(text))
        return entries, True
    finally:
        records.close()


# --- log records to the event bus --------------------------------------------------------


class BusForwarder(logging.Handler):
    """WARNING and ERROR records of the ``appliance`` loggers → ``log_warning`` /
    ``log_error`` on the bus, for websocket clients and notifications.

    - Rate-limited with a token bucket (``burst`` at once, then ``rate`` a second): a log
      storm cannot flood clients; what was held back is counted in the next message.
    - Never recursive: records logged while a forwarded message is being published (by a
      bus subscriber, the websocket) are not forwarded, and the websocket's and the bus's own
      loggers are skipped.
    - A record logged with ``extra={"announce": False}`` is skipped: its news already went
      out as a bus message of its own.
    """

    SKIPPED_LOGGERS = ("appliance.ws", "appliance.events")

    def __init__(self, bus: Any, *, rate: float = 0.5, burst: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(logging.WARNING)
        self.bus = bus
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._held_back = 0
        self._bucket_lock = threading.Lock()
        self._local = threading.local()

    def _take_token(self) -> tuple[bool, int]:
        with self._bucket_lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1:
                self._held_back += 1
                return False, 0
            self._tokens -= 1
            held_back, self._held_back = self._held_back, 0
            return True, held_back

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False) or getattr(record, "announce", True) is False:
            return
        if record.name.startswith(self.SKIPPED_LOGGERS):
            return
        allowed, held_back = self._take_token()
        if not allowed:
            return
        self._local.busy = True
        try:
            error = record.levelno >= logging.ERROR
            message = (record.getMessage().splitlines() or [""])[0]
            message = utf8(cut(without_url_secrets(message), MAX_ANNOUNCED))
            if held_back:
                message += f" ({held_back} more log message(s) were held back)"
            self.bus.message("error" if error else "warning",
                             "Error" if error else "Warning", message, logger=record.name)
        except Exception:
            self.handleError(record)
        finally:
            self._local.busy = False


def forward_to_bus(bus: Any) -> BusForwarder:
    handler = BusForwarder(bus)
    logging.getLogger("appliance").addHandler(handler)
    return handler


def stop_forwarding(handler: BusForwarder) -> None:
    logging.getLogger("appliance").removeHandler(handler)
