"""The Queue view: a header of totals and a table of items with their progress."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Sparkline, Static
from textual.widgets.data_table import ColumnKey, RowKey

from .. import format as fmt
from ..model import ENDED, MAX_ITEMS, QueueModel, eta_of, percent_of, speed_of

WIDE = 110  # from this width on the table also shows the site

STATUS_STYLE = {"error": "red", "cancelled": "yellow", "finished": "green", "skip": "dim"}
LEFT_OUT = (f"Older items are left out: the queue shows the newest {MAX_ITEMS:,} (the ended "
            "first to go). The History view (2) has every item that ended.")


def row_of(item: dict[str, Any], wide: bool) -> tuple[Any, ...]:
    status = str(item.get("status") or "")
    msg = item.get("msg") or ""
    shown = "paused" if status == "pending" and msg == "Paused" else status
    size = item.get("total_bytes") or item.get("file_size")
    cells: list[Any] = [
        Text(str(item.get("title") or item.get("url") or ""), no_wrap=True,
             overflow="ellipsis"),
        Text(shown, style=STATUS_STYLE.get(status, "")),
        fmt.bar(percent_of(item), status),
        Text(fmt.size(size)),
        Text(fmt.speed(speed_of(item)) if status not in ENDED else ""),
        Text(fmt.eta(eta_of(item)) if status not in ENDED else ""),
    ]
    if wide:
        cells.insert(1, Text(str(item.get("extractor") or ""), no_wrap=True))
    return tuple(cells)


class QueueTable(DataTable):
    BINDINGS = [
        Binding("a", "app.add", "Add"),
        Binding("s", "item('start')", "Start"),
        Binding("p", "item('pause')", "Pause"),
        Binding("c", "item('cancel')", "Cancel"),
        Binding("d", "item('delete')", "Delete"),
        Binding("r", "item('retry')", "Retry"),
        Binding("P", "app.pause_all", "Pause all"),
        Binding("x", "clear_ended", "Clear ended", show=False),
        Binding("enter", "item('details')", "Details", show=False),
    ]

    def set_cells(self, changed: dict[str, dict[str, Any]]) -> None:
        """Cells (``{row key: {column key: value}}``) set in place, and only the lines of
        their rows drawn again. DataTable's ``update_cell`` redraws the whole table: every
        repaint wrote each of its lines to the terminal again for any cell that changed (a
        waiting item off the screen whose info was read), 11 KB/s at 80x24 with 5 downloads
        (``bench/tui.py``, its goal 10)."""
        for row_key, cells in changed.items():
            row = self._data[RowKey(row_key)]
            for column_key, value in cells.items():
                row[ColumnKey(column_key)] = value
        self._update_count += 1  # what the table's render caches are keyed by
        for row_key in changed:
            self.refresh_row(self.get_row_index(row_key))

    def selected(self) -> dict[str, Any] | None:
        if not self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.app.model.items.get(str(row_key))

    def action_item(self, action: str) -> None:
        self.app.item_action(action, self.selected())

    def action_clear_ended(self) -> None:
        self.app.model.clear_ended()
        self.app.repaint_queue()


class QueueView(Vertical):
    """Repainted by :meth:`repaint` on the app's clock: only rows whose cells changed."""

    def __init__(self, model: QueueModel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.rows: dict[str, tuple[Any, ...]] = {}
        self.wide = False
        self.disk_free: int | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="totals"):
            yield Static(id="totals-text")
            yield Sparkline([0.0], id="speed-sparkline")
        yield Static(id="folder-problem")
        yield Static(LEFT_OUT, id="left-out")
        yield QueueTable(id="queue-table", cursor_type="row", zebra_stripes=True)

    def show_folder_problem(self, problem: str | None) -> None:
        """Why downloads wait for the download folder's disk, while they do: a toast would be
        gone long before the disk is back. By its start and end (its line grows with it: 2,000
        characters hid the table of an 80x24 terminal)."""
        shown = self.query_one("#folder-problem", Static)
        shown.update(Text(fmt.named(problem or "")))  # the service's words (a path): no markup
        shown.display = bool(problem)

    def on_mount(self) -> None:
        self.build_columns()

    def focus_first(self) -> None:
        self.query_one(QueueTable).focus()

    def build_columns(self) -> None:
        table = self.query_one(QueueTable)
        self.wide = self.app.size.width >= WIDE
        table.clear(columns=True)
        widths = {"status": 11, "progress": fmt.BAR_WIDTH + 5, "size": 9, "speed": 11,
                  "eta": 7}
        if self.wide:
            widths["site"] = 10
        # Each column has one cell of padding on both sides; the scrollbar takes 2.
        used = sum(widths.values()) + 2 * (len(widths) + 1) + 2
        table.add_column("Title", key="title", width=max(10, self.app.size.width - used))
        if self.wide:
            table.add_column("Site", key="site", width=widths["site"])
        table.add_column("Status", key="status", width=widths["status"])
        table.add_column("Progress", key="progress", width=widths["progress"])
        table.add_column("Size", key="size", width=widths["size"])
        table.add_column("Speed", key="speed", width=widths["speed"])
        table.add_column("ETA", key="eta", width=widths["eta"])
        self.rows.clear()
        self.model.dirty.update(self.model.items)

    def on_resize(self) -> None:
        self.build_columns()
        self.repaint()

    def repaint(self) -> None:
        # The app's clock calls this; while the app closes, the table may be gone already.
        table = next(iter(self.query(QueueTable)), None)
        if table is None:
            return
        dirty, removed = self.model.take_changes()
        selected = table.selected()
        for item_id in removed:
            if self.rows.pop(item_id, None) is not None:
                table.remove_row(item_id)
        # The cursor stays on its item, not on its row number, when rows above it go.
        if removed and selected is not None and str(selected.get("id")) in self.rows:
            row = table.get_row_index(str(selected["id"]))
            if row != table.cursor_row:
                table.move_cursor(row=row, scroll=False)
        keys = [str(c.value) for c in table.columns]
        new_rows = []
        changed: dict[str, dict[str, Any]] = {}
        for item_id in dirty:
            item = self.model.items.get(item_id)
            if item is None:
                continue
            row = row_of(item, self.wide)
            old = self.rows.get(item_id)
            self.rows[item_id] = row
            if old is None:
                new_rows.append((fmt.number(item.get("created_at")) or 0, item_id, row))
                continue
            cells = {key: after for key, before, after in zip(keys, old, row, strict=True)
                     if before != after}
            if cells:
                changed[item_id] = cells
        table.set_cells(changed)
        for _, item_id, row in sorted(new_rows, key=lambda r: r[0]):
            table.add_row(*row, key=item_id)
        for note in self.query("#left-out"):  # (gone already while the app closes)
            note.display = self.model.left_out
        self.repaint_totals()

    def repaint_totals(self) -> None:
        totals = self.model.totals()
        parts = [f"{totals['active']} active", f"{totals['queued']} queued"]
        if totals["failed"]:
            parts.append(f"{totals['failed']} failed today")
        parts.append(fmt.speed(totals["speed"]) or "0 B/s")
        if self.disk_free is not None:
            parts.append(f"{fmt.size(self.disk_free)} free")
        if totals["paused"]:
            parts.append("PAUSED")
        for text in self.query("#totals-text").results(Static):  # (as the table, above)
            text.update(" · ".join(parts))

    def sample_speed(self) -> None:
        self.model.sample_speed()
        # The app's clock calls this; while the app closes, the sparkline may be gone already.
        for sparkline in self.query(Sparkline):
            sparkline.data = list(self.model.speeds) or [0.0]
