"""History: one page at a time from the API, status filter, sort, search (by the service,
over the whole history); delete (with or without files) and re-queue."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static
from textual.worker import get_current_worker

from appliance.client import ApiError, Page, Unreachable

from .. import format as fmt
from .queue import STATUS_STYLE

PER_PAGE = 100
STATUSES = ("", "finished", "error", "cancelled", "skip", "!finished")
SEARCH_DELAY = 0.4  # seconds of no typing before the service is asked
MAX_SEARCH = 200  # the service's limit


class HistoryTable(DataTable):
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("f", "filter", "Status"),
        Binding("o", "order", "Order"),
        Binding("n", "page(1)", "Next page"),
        Binding("b", "page(-1)", "Prev page"),
        Binding("d", "item('delete')", "Delete"),
        Binding("r", "item('retry')", "Re-queue"),
        Binding("g", "reload", "Reload", show=False),
        Binding("enter", "item('details')", "Details", show=False),
    ]

    def action_search(self) -> None:
        self.parent.query_one(Input).focus()

    def action_filter(self) -> None:
        self.parent.next_status()

    def action_order(self) -> None:
        self.parent.toggle_order()

    def action_page(self, step: int) -> None:
        self.parent.turn(step)

    def action_reload(self) -> None:
        self.parent.load()

    def action_item(self, action: str) -> None:
        view = self.parent
        view.app.item_action(action, view.selected(), after=view.load)


class HistoryView(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.page_number = 1
        self.status = ""
        self.newest_first = True
        self.search = ""
        self.current: Page | None = None
        self.shown: list[dict[str, Any]] = []
        self._typing: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="history-state")
        yield Input(placeholder="/ search the history (title, URL); Enter to go back",
                    id="history-search", max_length=MAX_SEARCH)
        yield HistoryTable(id="history-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(HistoryTable)
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
        self.page_number = 1
        self.load()

    def toggle_order(self) -> None:
        self.newest_first = not self.newest_first
        self.page_number = 1
        self.load()

    def turn(self, step: int) -> None:
        if self.current is None:
            return
        wanted = min(max(1, self.page_number + step), max(1, self.current.total_pages))
        if wanted != self.page_number:
            self.page_number = wanted
            self.load()

    @work(thread=True, exclusive=True, group="history")
    def load(self) -> None:
        try:
            page = self.app.client.history(page=self.page_number, per_page=PER_PAGE,
                                           status=self.status or None,
                                           newest_first=self.newest_first,
                                           search=self.search or None)
        except (ApiError, Unreachable) as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error")
            return
        if not get_current_worker().is_cancelled:  # a newer request is on its way
            self.app.call_from_thread(self.show, page)

    def show(self, page: Page) -> None:
        self.current = page
        self.fill()

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._typing is not None:
            self._typing.stop()
        self._typing = self.set_timer(SEARCH_DELAY, self.search_now)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search_now()
        self.query_one(HistoryTable).focus()

    def search_now(self) -> None:
        if self._typing is not None:
            self._typing.stop()
        wanted = " ".join(self.query_one(Input).value.split())
        if wanted != self.search:
            self.search = wanted
            self.page_number = 1
            self.load()

    def fill(self) -> None:
        if self.current is None:
            return
        self.shown = list(self.current.items)
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
        order = "newest first" if self.newest_first else "oldest first"
        found = f" · search {self.search!r}" if self.search else ""
        self.query_one("#history-state", Static).update(
            f"History page {self.current.page}/{max(1, self.current.total_pages)} · "
            f"{self.current.total} items · status {self.status or 'all'} · {order}{found}")

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(HistoryTable)
        if not table.row_count:
            return None
        return self.shown[table.cursor_row]
