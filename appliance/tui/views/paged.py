"""What the views of long lists from the API share (History, Files): one page at a time,
turned with keys, ordered either way, and a search line whose text goes to the service once
typing pauses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from textual.binding import Binding
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Input
from textual.worker import get_current_worker

from appliance.client import ApiError, Page, Unreachable

SEARCH_DELAY = 0.4  # seconds of no typing before the service is asked
Answer = TypeVar("Answer")


def unique(entries: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The entries of a page with a ``key`` (a table row's key) that no earlier one has: a
    row key twice stops the table."""
    seen: set[str] = set()
    kept = []
    for entry in entries:
        value = entry.get(key)
        if value is not None and str(value) not in seen:
            seen.add(str(value))
            kept.append(entry)
    return kept


class PagedTable(DataTable):
    """The keys; the view (the table's parent) does the work."""

    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("o", "order", "Order"),
        Binding("n", "page(1)", "Next page"),
        Binding("b", "page(-1)", "Prev page"),
        Binding("g", "reload", "Reload", show=False),
    ]

    def action_search(self) -> None:
        self.parent.query_one(Input).focus()

    def action_order(self) -> None:
        self.parent.toggle_order()

    def action_page(self, step: int) -> None:
        self.parent.turn(step)

    def action_reload(self) -> None:
        self.parent.load()


class PagedView(Vertical):
    """``load()`` asks for ``page_number`` (``descending``, ``search``) and shows it in
    ``current``."""

    def __init__(self, *, descending: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.page_number = 1
        self.descending = descending
        self.search = ""
        self.current: Page | None = None
        self._typing: Timer | None = None

    def load(self) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        """From the first page, after the order, the filter or the search changed."""
        self.page_number = 1
        self.load()

    def toggle_order(self) -> None:
        self.descending = not self.descending
        self.restart()

    def turn(self, step: int) -> None:
        if self.current is None:
            return
        wanted = min(max(1, self.page_number + step), max(1, self.current.total_pages))
        if wanted != self.page_number:
            self.page_number = wanted
            self.load()

    def fetched(self, call: Callable[[], Answer]) -> Answer | None:
        """In the view's worker: ``call()``'s answer; None when it failed (the person is
        told why) or when a newer request has replaced this one."""
        try:
            answer = call()
        except (ApiError, Unreachable) as exc:
            self.app.call_from_thread(self.app.failed, exc)
            return None
        return None if get_current_worker().is_cancelled else answer

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._typing is not None:
            self._typing.stop()
        self._typing = self.set_timer(SEARCH_DELAY, self.search_now)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search_now()
        self.query_one(PagedTable).focus()

    def search_now(self) -> None:
        if self._typing is not None:
            self._typing.stop()
        wanted = self.query_one(Input).value.strip()
        if wanted != self.search:
            self.search = wanted
            self.restart()
