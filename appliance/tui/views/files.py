"""Files: the download folder through the file browser API — folders, sort, search, pages;
rename, move, delete and new folder when the service allows actions; a file's details with
its ffprobe summary.

A folder is read when it is opened and again when the websocket's ``files_changed`` names
it (a download, an action, a person in a shell): no polling."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from appliance.client import ApiError, Page, Unreachable

from .. import format as fmt
from ..screens.confirm import DeleteScreen
from ..screens.prompt import PromptScreen
from ..screens.text import TextScreen
from .paged import PagedTable, PagedView, unique

PER_PAGE = 200
SORTS = ("name", "size", "date", "type")
ACTIONS = {"rename", "move", "delete", "new_folder"}


def joined(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def media_summary(info: dict[str, Any]) -> Text:
    """The ffprobe facts a person looks for: container, duration, streams, sidecars."""
    text = Text()

    def line(key: str, value: Any) -> None:
        if value not in (None, "", [], {}):
            text.append(f"{key:<11}", style="bold").append(f"{fmt.clipped(str(value))}\n")

    probe = _object(info.get("ffprobe"))
    form = _object(probe.get("format"))
    line("title", info.get("title"))
    line("type", info.get("mimetype"))
    line("container", form.get("format_long_name") or form.get("format_name"))
    duration = _number(form.get("duration"))
    line("duration", fmt.eta(duration) if duration else None)
    line("size", fmt.size(_number(form.get("size"))))
    bit_rate = _number(form.get("bit_rate"))
    line("bit rate", f"{bit_rate / 1000:.0f} kbit/s" if bit_rate else None)
    streams = probe.get("streams")
    for stream in map(_object, streams if isinstance(streams, list) else []):
        kind = str(stream.get("codec_type") or "?")
        parts = [str(stream.get("codec_name") or "?")]
        if kind == "video":
            parts.append(f"{stream.get('width')}x{stream.get('height')}")
            fps = _ratio(str(stream.get("avg_frame_rate") or ""))
            if fps is not None:
                parts.append(f"{fps:.3g} fps")
        elif kind == "audio":
            parts += [f"{stream.get('channels')} ch", f"{stream.get('sample_rate')} Hz"]
        language = _object(stream.get("tags")).get("language")
        if language:
            parts.append(str(language))
        line(kind, " · ".join(parts))
    if not probe:
        line("media", "not media ffprobe reads")
    for group, files in _object(info.get("sidecar")).items():
        names = [str(f.get("file") or f.get("name") or f) if isinstance(f, dict) else str(f)
                 for f in (files if isinstance(files, list) else [])]
        line(group, ", ".join(n.rpartition("/")[2] for n in names))
    return text


def _object(value: Any) -> dict[str, Any]:
    """A part of ffprobe's answer that should be an object; an empty one when it is not."""
    return value if isinstance(value, dict) else {}


def _ratio(rate: str) -> float | None:
    """ffprobe's ``30000/1001``, when it is a finite number. (``int()`` of what
    ``isdigit()`` passed raised on "²" and on 5,000 digits, and the division on 400: the
    details' worker stopped the TUI.)"""
    above, _, below = rate.partition("/")
    num, den = _number(above), _number(below)
    if num is None or not den:  # (ffprobe says "0/0" for a rate it does not know)
        return None
    fps = num / den
    return fps if math.isfinite(fps) and fps > 0 else None


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # not a number, or past a float's range
        return None


class FilesTable(PagedTable):
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("backspace", "up", "Up"),
        Binding("s", "sort", "Sort"),
        Binding("o", "order", "Order", show=False),  # 80 columns hold the rest
        Binding("n", "page(1)", "Next page", show=False),
        Binding("b", "page(-1)", "Prev page", show=False),
        Binding("i", "details", "Details"),
        Binding("r", "act('rename')", "Rename"),
        Binding("m", "act('move')", "Move"),
        Binding("d", "act('delete')", "Delete"),
        Binding("c", "act('new_folder')", "New folder"),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "act":
            return self.parent.may_act
        return True

    def action_open(self) -> None:
        self.parent.open_selected()

    def action_up(self) -> None:
        self.parent.go(parent_of(self.parent.folder))

    def action_sort(self) -> None:
        self.parent.next_sort()

    def action_details(self) -> None:
        self.parent.details()

    def action_act(self, action: str) -> None:
        self.parent.act(action)


class FilesView(PagedView):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.folder = ""
        self.sort_by = "name"
        self.stale = False
        self.columns_for: int | None = None  # the terminal's width the columns fit

    @property
    def may_act(self) -> bool:
        return bool((self.app.configuration.get("app") or {}).get("browser_control_enabled"))

    def compose(self) -> ComposeResult:
        yield Static("", id="files-state")
        yield Input(placeholder="/ search names in this folder; Enter to go back",
                    id="files-search")
        yield FilesTable(id="files-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.build_columns()

    def on_resize(self) -> None:
        """Laid out again for a new width (a phone turned), the selection kept."""
        if self.columns_for != self.app.size.width:
            selected = self.selected()
            self.build_columns()
            if self.current is not None:
                self.fill(self.current, selected)

    def build_columns(self) -> None:
        table = self.query_one(FilesTable)
        self.columns_for = self.app.size.width
        table.clear(columns=True)
        wide = self.app.size.width >= 100
        fixed = 9 + 16 + (14 if wide else 0) + 2 * (4 if wide else 3) + 2
        table.add_column("Name", key="name", width=max(16, self.app.size.width - fixed))
        table.add_column("Size", key="size", width=9)
        table.add_column("Modified", key="mtime", width=16)
        if wide:
            table.add_column("Type", key="type", width=14)

    def focus_first(self) -> None:
        self.query_one(FilesTable).focus()
        if self.current is None or self.stale:
            self.load()

    def go(self, folder: str) -> None:
        if folder != self.folder or self.current is None:
            self.folder, self.search = folder, ""
            self.query_one(Input).value = ""
            self.restart()

    def next_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.restart()

    def folders_changed(self, folders: Any) -> None:
        """``files_changed``: read the folder again when it is one of those named — now if it
        is shown, else when it is shown next (downloads change folders all the time)."""
        if self.current is not None and isinstance(folders, list) and any(
                str(f).strip("/") == self.folder for f in folders):
            if self.display:
                self.load()
            else:
                self.stale = True

    @work(thread=True, exclusive=True, group="files")
    def load(self) -> None:
        answer = self.fetched(lambda: self.app.client.browse(
            self.folder, page=self.page_number, per_page=PER_PAGE, sort_by=self.sort_by,
            descending=self.descending, search=self.search))
        if answer is not None:
            self.app.call_from_thread(self.show, *answer)

    def show(self, folder: str, page: Page) -> None:
        self.stale = False
        unchanged = self.current == page and self.folder == folder.strip("/")
        self.folder = folder.strip("/")
        order = "desc" if self.descending else "asc"
        found = f" · search {self.search!r}" if self.search else ""
        # Folder names are often bracketed ("Artist [Live]"): text, never markup.
        self.query_one("#files-state", Static).update(Text(
            f"/{fmt.named(self.folder)} · {page.total} entries · "
            f"page {page.page}/{page.total_pages} · sort {self.sort_by} {order}{found}"))
        if unchanged:  # e.g. a files_changed that did not touch this page: no repaint
            return
        selected = self.selected()
        self.current = page
        self.fill(page, selected)

    def fill(self, page: Page, selected: dict[str, Any] | None) -> None:
        table = self.query_one(FilesTable)
        wide = "type" in table.columns
        table.clear()
        for entry in unique(page.items[:PER_PAGE], "path"):  # (as History does)
            is_dir = entry.get("type") == "dir"
            name = str(entry.get("name") or "") + ("/" if is_dir else "")
            cells = [Text(name, style="bold" if is_dir else "", no_wrap=True,
                          overflow="ellipsis"),
                     Text("" if is_dir else fmt.size(entry.get("size")), justify="right"),
                     Text(str(entry.get("mtime") or "")[:16].replace("T", " "))]
            if wide:
                cells.append(Text(str(entry.get("content_type") or ""), no_wrap=True))
            table.add_row(*cells, key=str(entry.get("path")))
        if selected is not None and selected.get("path") in [e.get("path") for e in page.items]:
            table.move_cursor(row=table.get_row_index(str(selected["path"])))

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(FilesTable)
        if self.current is None or not table.row_count:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return next((e for e in self.current.items if e.get("path") == key), None)

    def open_selected(self) -> None:
        entry = self.selected()
        if entry is None:
            return
        if entry.get("type") == "dir":
            self.go(str(entry["path"]).strip("/"))
        else:
            self.details()

    def details(self) -> None:
        entry = self.selected()
        if entry is None or entry.get("type") == "dir":
            return
        path = str(entry["path"])
        self.app.push_screen(TextScreen(path, lambda: media_summary(
            self.app.client.file_info(path))))

    def act(self, action: str) -> None:
        entry = self.selected()
        if action == "new_folder":
            self.app.push_screen(PromptScreen(f"New folder in /{self.folder}:"),
                                 lambda name: name and self.run_actions(
                                     [{"action": "directory", "path": self.folder or "/",
                                       "new_dir": name}]))
            return
        if entry is None:
            self.app.notify("Nothing selected.", severity="warning")
            return
        path, name = str(entry["path"]), str(entry.get("name") or "")
        if action == "rename":
            self.app.push_screen(PromptScreen(f"Rename {path} to:", name),
                                 lambda new: new and new != name and self.run_actions(
                                     [{"action": "rename", "path": path, "new_name": new}]))
        elif action == "move":
            self.app.push_screen(PromptScreen(f"Move {path} into the folder:", self.folder),
                                 lambda to: to is not None and self.run_actions(
                                     [{"action": "move", "path": path,
                                       "new_path": to.strip("/") or "/"}]))
        elif action == "delete":
            self.app.push_screen(DeleteScreen(path), lambda answer: answer is not None
                                 and self.run_actions([{"action": "delete", "path": path}]))

    @work(thread=True, group="file-actions")
    def run_actions(self, actions: list[dict[str, Any]]) -> None:
        try:
            results = self.app.client.file_actions(actions)
        except (ApiError, Unreachable) as exc:
            self.app.call_from_thread(self.app.failed, exc)
            return
        for result in results:
            if result.get("ok"):
                self.app.call_from_thread(self.app.notify,
                                          f"{result.get('action')}: {result.get('path')} done")
            else:
                self.app.call_from_thread(self.app.notify, f"{result.get('path')}: "
                                          f"{result.get('error')}", severity="error")
        self.app.call_from_thread(self.load)
