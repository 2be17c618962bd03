"""History: one page at a time from the API, status filter, sort, search (by the service,
over the whole history); delete (with or without files) and re-queue."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from appliance.client import Page

from .. import format as fmt
from .paged import PagedTable, PagedView, unique
from .queue import STATUS_STYLE

PER_PAGE = 100
STATUSES = ("", "finished", "error", "cancelled", "skip", "!finished")
MAX_SEARCH = 200  # the service's limit


class HistoryTable(PagedTable):
    BINDINGS = [
        Binding("f", "filter", "Status"),
        Binding("d", "item('delete')", "Delete"),
        Binding("r", "item('retry')", "Re-queue"),
        Binding("enter", "item('details')", "Details", show=False),
    ]

    def action_filter(self) -> None:
        self.parent.next_status()

    def action_item(self, action: str) -> None:
        view = self.parent
        view.app.item_action(action, view.selected(), after=view.load)


class HistoryView(PagedView):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(descending=True, **kwargs)
        self.status = ""
        self.shown: list[dict[str, Any]] = []
        self.columns_for: int | None = None  # the terminal's width the columns fit

    def compose(self) -> ComposeResult:
        yield Static("", id="history-state")
        yield Input(placeholder="/ search the history (title, URL); Enter to go back",
                    id="history-search", max_length=MAX_SEARCH)
        yield HistoryTable(id="history-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.build_columns()

    def on_resize(self) -> None:
        # A phone turned, a window resized: the columns were laid out for the width at the
        # start, the status and size columns off the screen of a narrower one.
        if self.columns_for != self.app.size.width:
            table = self.query_one(HistoryTable)
            row = table.cursor_row
            self.build_columns()
            self.fill()
            table.move_cursor(row=row)

    def build_columns(self) -> None:
        table = self.query_one(HistoryTable)
        self.columns_for = self.app.size.width
        table.clear(columns=True)
        width = max(20, self.app.size.width - 43)
        table.add_column("Title", key="title", width=width)
        table.add_column("Status", key="status", width=10)
        table.add_column("Size", key="size", width=9)
        table.add_column("Finished", key="finished", width=16)

    def focus_first(self) -> None:
        self.query_one(HistoryTable).focus()
        if self.current is None:
            self.load()

    def next_status(self) -> None:
        self.status = STATUSES[(STATUSES.index(self.status) + 1) % len(STATUSES)]
        self.restart()

    @work(thread=True, exclusive=True, group="history")
    def load(self) -> None:
        page = self.fetched(lambda: self.app.client.history(
            page=self.page_number, per_page=PER_PAGE, status=self.status or None,
            newest_first=self.descending, search=self.search or None))
        if page is not None:
            self.app.call_from_thread(self.show, page)

    def show(self, page: Page) -> None:
        self.current = page
        self.fill()

    def fill(self) -> None:
        if self.current is None:
            return
        # (at most the page asked for: one of 30,000 laid out froze the TUI for 6.5 s)
        self.shown = unique(self.current.items[:PER_PAGE], "id")
        table = self.query_one(HistoryTable)
        table.clear()
        for item in self.shown:
            status = str(item.get("status") or "")
            table.add_row(
                Text(str(item.get("title") or item.get("url") or ""), no_wrap=True,
                     overflow="ellipsis"),
                Text(status, style=STATUS_STYLE.get(status, "")),
                Text(fmt.size(item.get("file_size") or item.get("total_bytes"))),
                Text(fmt.when(item.get("finished_at"))),
                key=str(item["id"]),
            )
        order = "newest first" if self.descending else "oldest first"
        found = f" · search {self.search!r}" if self.search else ""
        self.query_one("#history-state", Static).update(Text(
            f"History page {self.current.page}/{max(1, self.current.total_pages)} · "
            f"{self.current.total} items · status {self.status or 'all'} · {order}{found}"))

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(HistoryTable)
        if not table.row_count:
            return None
        return self.shown[table.cursor_row]
