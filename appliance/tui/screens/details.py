"""Item details: every field, the error in full, the yt-dlp command, archive add/remove."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from appliance.client import ApiError, Unreachable

from .. import format as fmt

TIMES = {"created_at", "updated_at", "started_at", "finished_at", "timestamp"}
FIRST = ("title", "status", "url", "error", "msg", "filename", "download_dir", "file_size",
         "preset", "folder", "template", "cli", "removed_options", "extractor", "video_id",
         "batch_name", "created_at", "started_at", "finished_at")
# The details' text at most (five errors of CLIP_HEAD + CLIP_TAIL), then the fields not
# reached are counted: an item has some forty fields, and one of 20,000 (a hostile
# service's, or another version's gone wrong) took the details 8 s to lay out at a load of
# 2.5, the TUI frozen; 500 fields of 64 KiB would be 4 MB laid out even clipped.
DETAILS_CHARS = 40_000


def table_of(item: dict[str, Any]) -> Text:
    """``key  value`` lines, every field the service gave up to :data:`DETAILS_CHARS`, the
    important ones first."""
    table = Text()
    keys = [k for k in FIRST if k in item] + sorted(k for k in item if k not in FIRST)
    for index, key in enumerate(keys):
        if len(table) >= DETAILS_CHARS:
            table.append(f"({len(keys) - index:,} more fields left out)\n", style="bold")
            break
        value = item[key]
        if value in ("", None, [], {}) and key not in {"status", "error"}:
            continue
        if key in TIMES:
            text = fmt.when(value)
        elif (key == "file_size" or key.endswith("_bytes")) and fmt.number(value) is not None:
            text = f"{fmt.size(value)} ({value})"
        elif isinstance(value, dict | list):  # (a size that is one too: str() recursed)
            text = fmt.json_text(value, indent=1)
        else:
            text = str(value)
        table.append(f"{fmt.named(key):<17}", style="bold")
        table.append(fmt.clipped(text) + "\n")
    return table


class DetailsScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("y", "command", "yt-dlp command"),
        Binding("A", "archive", "Archive"),
        Binding("U", "unarchive", "Unarchive"),
    ]

    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__()
        self.item = item

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="details"):
            yield Static(table_of(self.item), id="details-fields")
            yield Static("", id="details-command", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#details").focus()
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        try:
            self.item = self.app.client.item(str(self.item["id"]))
        except (ApiError, Unreachable):
            return  # what the queue knew stays on screen
        self.app.call_from_thread(self.query_one("#details-fields", Static).update,
                                  table_of(self.item))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool:
        if action == "command":
            return bool((self.app.configuration.get("app") or {}).get("console_enabled"))
        return True

    @work(thread=True, exclusive=True, group="command")
    def action_command(self) -> None:
        try:
            # (an option per URL of a batch, or a hostile service's megabytes)
            text = fmt.clipped(self.app.client.command(self.item))
        except (ApiError, Unreachable) as exc:
            text = str(exc)
        self.app.call_from_thread(self.query_one("#details-command", Static).update, text)

    def action_archive(self) -> None:
        self.app.api(self.app.client.archive, str(self.item["id"]))

    def action_unarchive(self) -> None:
        self.app.api(self.app.client.unarchive, str(self.item["id"]))
