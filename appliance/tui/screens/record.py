"""Edit a record (preset, condition, download field, notification target, engine settings)
as JSON; what the service refuses is shown with its own words and the editor stays open."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, TextArea

from appliance.client import ApiError, Unreachable

from ..format import json_text, named


class RecordScreen(ModalScreen[bool]):
    """``save`` gets the edited object and calls the API; dismissed with True once saved."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "dismiss(False)", "Cancel"),
    ]

    def __init__(self, title: str, record: dict[str, Any],
                 save: Callable[[dict[str, Any]], Any]) -> None:
        super().__init__()
        self.title_text, self.record, self.save = named(title), record, save

    def compose(self) -> ComposeResult:
        with Vertical(id="record"):
            yield Static(self.title_text, markup=False)
            yield TextArea(json_text(self.record, indent=2),
                           id="record-json", language=None)
            yield Static("", id="record-error", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        try:
            edited = json.loads(self.query_one(TextArea).text)
        except (ValueError, RecursionError) as exc:  # "[[[[…" nested too deep to read
            self.query_one("#record-error", Static).update(f"Not valid JSON: {exc}")
            return
        if not isinstance(edited, dict):
            self.query_one("#record-error", Static).update("Give a JSON object: { … }")
            return
        self.send(edited)

    @work(thread=True, exclusive=True)
    def send(self, edited: dict[str, Any]) -> None:
        try:
            self.save(edited)
        except (ApiError, Unreachable) as exc:
            self.app.call_from_thread(self.query_one("#record-error", Static).update, str(exc))
            return
        self.app.call_from_thread(self.dismiss, True)
