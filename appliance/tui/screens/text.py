"""A page of text: an answer to read (a URL inspected, a file's details) or a log that grows
(a subscription's run, followed live)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, RichLog, Static

from appliance.client import ApiError, Unreachable
from appliance.client.http import LogStream

from .. import format as fmt


class TextScreen(ModalScreen[None]):
    """``load`` runs off the UI and gives what to show (a Text, or lines)."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, title: str, load: Callable[[], Text | Iterable[str]]) -> None:
        super().__init__()
        self.title_text, self.load = fmt.named(title), load

    def compose(self) -> ComposeResult:
        with Vertical(id="text"):
            yield Static(self.title_text, id="text-title", markup=False)
            yield RichLog(id="text-body", wrap=True, markup=False, max_lines=5000)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(RichLog).write("…")
        self.fill()

    @work(thread=True, exclusive=True)
    def fill(self) -> None:
        try:
            shown = self.load()
        except (ApiError, Unreachable) as exc:
            shown = Text(str(exc), style="bold red")
        self.app.call_from_thread(self.show, shown)

    def show(self, shown: Text | Iterable[str]) -> None:
        if not self.is_attached:
            return
        body = self.query_one(RichLog)
        body.clear()
        for part in [shown] if isinstance(shown, Text) else shown:
            body.write(part)


class LogScreen(ModalScreen[None]):
    """The lines of ``open_stream()`` as they come, until its end or Esc."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, title: str, open_stream: Callable[[], LogStream]) -> None:
        super().__init__()
        self.title_text, self.open_stream = fmt.named(title), open_stream
        self.stream: LogStream | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="text"):
            yield Static(self.title_text, id="text-title", markup=False)
            yield RichLog(id="text-body", wrap=True, markup=False, max_lines=5000)
            yield Static("following…", id="text-state", markup=False)  # (the service's words)
        yield Footer()

    def on_mount(self) -> None:
        self.follow()

    @work(thread=True, exclusive=True)
    def follow(self) -> None:
        stream = None
        try:
            stream = self.open_stream()
            if not self.app.call_from_thread(self.opened, stream):
                return
            for record in stream:
                self.app.call_from_thread(self.add, record)
        except (ApiError, Unreachable) as exc:
            self.app.call_from_thread(self.finish, str(exc))
            return
        finally:
            # One this screen did not take (it closed meanwhile: ``self.app`` itself raises
            # then, on a screen gone) is closed here, not left to the garbage collector.
            if stream is not None and stream is not self.stream:
                stream.close()
        self.app.call_from_thread(self.finish, "the run has ended")

    def opened(self, stream: LogStream) -> bool:
        """Kept only while the screen is open: one that opened after it was closed (a slow
        service, a quick Esc) was read until the run ended, holding a stream slot."""
        if not self.is_attached:
            stream.close()
            return False
        self.stream = stream
        return True

    def add(self, record: dict[str, Any]) -> None:
        if self.is_attached:  # lines still in flight when the screen was closed
            self.query_one(RichLog).write(fmt.clipped(str(record.get("line") or "")))

    def finish(self, why: str) -> None:
        if self.is_attached:
            self.query_one("#text-state", Static).update(why)

    def on_unmount(self) -> None:
        if self.stream is not None:
            self.stream.close()
