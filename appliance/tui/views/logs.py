"""Logs: the newest records, then the live stream; level filter, search, pause the tail.

The stream is open only while this view is shown: each open stream holds one of the
service's few stream slots (``YTP_MAX_STREAMS``)."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, RichLog, Static
from textual.worker import Worker, get_current_worker

from appliance.client import ApiError, Unreachable
from appliance.client.http import LogStream

from .. import format as fmt

KEEP = 2000
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
STYLE = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red", "DEBUG": "dim"}


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    id: str
    level: str
    text: str


def record_id(entry: dict[str, Any], text: str) -> str:
    """The record's id; one the service does not give (another version, a proxy's log) is
    the text's own, as the service makes its ids: every id-less record shared the id "",
    and all after the first were taken for it, the view silent for good."""
    given = entry.get("id")
    if given not in (None, ""):
        return str(given)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def record_from_line(entry: dict[str, Any]) -> Record:
    """A stream record: ``2024-05-01 12:00:00,123 LEVEL logger: message``."""
    line = fmt.clipped(str(entry.get("line") or ""))
    parts = line.split(maxsplit=3)
    level = parts[2] if len(parts) > 2 else "INFO"
    return Record(record_id(entry, line), level, line)


def record_from_entry(entry: dict[str, Any]) -> Record:
    """A ``GET /api/logs`` entry."""
    text = (f"{str(entry.get('timestamp') or '')[:19].replace('T', ' ')} "
            f"{entry.get('level')} {entry.get('logger')}: {entry.get('message')}")
    text = fmt.clipped(text)
    return Record(record_id(entry, text), str(entry.get("level") or "INFO"), text)


class LogLog(RichLog):
    BINDINGS = [
        Binding("l", "level", "Level"),
        Binding("slash", "search", "Search"),
        Binding("space", "tail", "Pause/follow"),
    ]

    def action_level(self) -> None:
        self.parent.next_level()

    def action_search(self) -> None:
        self.parent.query_one(Input).focus()

    def action_tail(self) -> None:
        self.parent.toggle_tail()


class LogsView(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records: collections.deque[Record] = collections.deque(maxlen=KEEP)
        self.seen: set[str] = set()
        self.min_level = "INFO"
        self.following = True
        self.showing = False
        self.stream: LogStream | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="logs-state")
        yield Input(placeholder="/ search the log; Enter to go back", id="logs-search")
        yield LogLog(id="logs-log", max_lines=KEEP, wrap=True, markup=False)

    def focus_first(self) -> None:
        self.query_one(LogLog).focus()

    def on_show(self) -> None:
        self.showing = True
        self.show_state()
        self.follow()

    def on_hide(self) -> None:
        self.showing = False
        if self.stream is not None:
            self.stream.close()
            self.stream = None

    def resume(self) -> None:
        """The live feed is back (the service may have restarted): the stream again, if it
        ended while shown."""
        if self.showing and self.stream is None:
            self.follow()

    @work(thread=True, exclusive=True, group="logs")
    def follow(self) -> None:
        try:
            page = self.app.client.logs(limit=150)
            stream = self.app.client.log_stream()
        except (ApiError, Unreachable) as exc:
            self.app.call_from_thread(self.app.failed, exc)
            return
        if not self.app.call_from_thread(self.opened, stream, get_current_worker()):
            stream.close()  # (the app closing: not left to the garbage collector)
            return
        older = [record_from_entry(e) for e in reversed(page.get("logs") or [])]
        self.app.call_from_thread(self.add, older)
        try:
            for entry in stream:
                self.app.call_from_thread(self.add, [record_from_line(entry)])
        except Unreachable as exc:
            self.app.call_from_thread(self.app.notify, f"log stream ended: {exc}",
                                      severity="warning")
        self.app.call_from_thread(self.ended, stream)

    def opened(self, stream: LogStream, worker: Worker[None]) -> bool:
        """The stream is kept only while the view is shown and this request is the newest:
        one opened after the view was hidden (a slow service, a quick key) was read for the
        TUI's life, holding one of the service's few stream slots."""
        if worker.is_cancelled or not self.showing:
            stream.close()
            return False
        self.stream = stream
        return True

    def ended(self, stream: LogStream) -> None:
        if self.stream is stream:
            self.stream = None

    def add(self, records: list[Record]) -> None:
        fresh = [r for r in records if r.id not in self.seen]
        for record in fresh:
            self.seen.add(record.id)
            self.records.append(record)
        if len(self.seen) > 4 * KEEP:
            self.seen = {r.id for r in self.records}
        if self.following:
            log = self.query_one(LogLog)
            for record in fresh:
                if self.shows(record):
                    log.write(Text(record.text, style=STYLE.get(record.level, "")))

    def shows(self, record: Record) -> bool:
        level = record.level if record.level in LEVELS else "ERROR"
        if LEVELS.index(level) < LEVELS.index(self.min_level):
            return False
        words = self.query_one(Input).value.lower().split()
        return all(w in record.text.lower() for w in words)

    def redraw(self) -> None:
        log = self.query_one(LogLog)
        log.clear()
        for record in self.records:
            if self.shows(record):
                log.write(Text(record.text, style=STYLE.get(record.level, "")))
        self.show_state()

    def next_level(self) -> None:
        self.min_level = LEVELS[(LEVELS.index(self.min_level) + 1) % len(LEVELS)]
        self.redraw()

    def toggle_tail(self) -> None:
        self.following = not self.following
        if self.following:
            self.redraw()
        self.show_state()

    def show_state(self) -> None:
        tail = "following" if self.following else "PAUSED (space follows)"
        self.query_one("#logs-state", Static).update(
            f"Logs · {self.min_level} and above · {tail}")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(LogLog).focus()
