"""Settings & targets: presets, conditions, download fields, notification targets (list,
create, edit, delete, test) and the engine settings that change at runtime."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from appliance.client import ApiError, Unreachable

from ..format import json_text, name_of
from ..screens.confirm import DeleteScreen
from ..screens.record import RecordScreen

KINDS = {
    "presets": "Presets",
    "conditions": "Conditions",
    "dl_fields": "Download fields",
    "notifications": "Notification targets",
    "engine": "Engine settings",
}
MAX_RECORDS = 1000  # of a list shown (as the Subscriptions view's tasks)
# What a new record starts from (the service fills in the rest with its defaults).
TEMPLATES: dict[str, dict[str, Any]] = {
    "presets": {"name": "", "description": "", "folder": "", "template": "", "cli": ""},
    "conditions": {"name": "", "filter": "", "cli": "", "extras": {}},
    "dl_fields": {"name": "", "description": "", "field": "", "kind": "text"},
    "notifications": {"name": "", "on": [], "presets": [],
                      "request": {"url": "", "type": "json", "method": "POST"}},
}


def summary(kind: str, record: dict[str, Any]) -> str:
    if kind == "notifications":
        status = record.get("last_status") or "never sent"
        waiting = record.get("waiting")
        if isinstance(waiting, int) and not isinstance(waiting, bool) and waiting > 0:
            # kept in the service's outbox until the target answers: the first thing to know
            # when a chat app has been quiet
            status += f" · {waiting} waiting"
        on = record.get("on")
        events = ",".join(map(str, on)) if isinstance(on, list) else ""
        state = "" if record.get("enabled", True) else "disabled · "
        request = record.get("request")
        url = request.get("url", "") if isinstance(request, dict) else ""
        return f"{state}{url} · {events or 'all events'} · {status}"
    for key in ("filter", "cli", "field", "description"):
        if record.get(key):
            return str(record[key])
    return ""


class SettingsTable(DataTable):
    BINDINGS = [
        Binding("k", "kind", "Next list"),
        Binding("n", "new", "New"),
        Binding("e", "edit", "Edit"),
        Binding("d", "delete", "Delete"),
        Binding("t", "test", "Test targets"),
        Binding("enter", "edit", "Edit", show=False),
    ]

    def action_kind(self) -> None:
        self.parent.next_kind()

    def action_new(self) -> None:
        self.parent.new()

    def action_edit(self) -> None:
        self.parent.edit()

    def action_delete(self) -> None:
        self.parent.delete()

    def action_test(self) -> None:
        self.parent.test()


class SettingsView(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = "presets"
        self.records: list[dict[str, Any]] = []
        self.columns_for: int | None = None  # the terminal's width the columns fit

    def compose(self) -> ComposeResult:
        yield Static("", id="settings-state")
        yield SettingsTable(id="settings-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.build_columns()

    def on_resize(self) -> None:
        if self.columns_for != self.app.size.width:  # a phone turned: laid out anew
            self.build_columns()
            self.show(self.kind, self.records)

    def build_columns(self) -> None:
        table = self.query_one(SettingsTable)
        self.columns_for = self.app.size.width
        table.clear(columns=True)
        table.add_column("Name", key="name", width=24)
        table.add_column("", key="summary", width=max(20, self.app.size.width - 30))

    def focus_first(self) -> None:
        self.query_one(SettingsTable).focus()
        self.load()

    def next_kind(self) -> None:
        kinds = list(KINDS)
        self.kind = kinds[(kinds.index(self.kind) + 1) % len(kinds)]
        self.load()

    @work(thread=True, exclusive=True, group="settings")
    def load(self) -> None:
        client, kind = self.app.client, self.kind
        try:
            if kind == "engine":
                values = client.settings()
                pinned = values.pop("pinned", {}) or {}
                records = [{"name": k, "value": v, "pinned": pinned.get(k)}
                           for k, v in values.items()]
            else:
                records = client.records(kind)
        except (ApiError, Unreachable) as exc:
            self.app.call_from_thread(self.app.failed, exc)
            return
        self.app.call_from_thread(self.show, kind, records)

    def show(self, kind: str, records: list[dict[str, Any]]) -> None:
        """``kind``'s records, unless the person has moved to another list meanwhile: a
        slow answer to the list before was shown under the next one's name, and its keys
        then edited or deleted the next kind's record of the same id."""
        if kind != self.kind:
            return
        # At most MAX_RECORDS (a list of 30,000 froze the TUI for 3 s): the first, counted.
        self.records = records[:MAX_RECORDS]
        table = self.query_one(SettingsTable)
        table.clear()
        for index, record in enumerate(self.records):
            if self.kind == "engine":
                value = json_text(record["value"])
                text = f"{value} (pinned by {record['pinned']})" if record["pinned"] else value
            else:
                text = summary(self.kind, record)
            table.add_row(Text(str(record.get("name") or record.get("id"))), Text(text),
                          key=str(index))
        shown = f", the first {MAX_RECORDS:,} shown" if len(records) > MAX_RECORDS else ""
        keys = "n new · e edit · d delete" + (" · t test" if self.kind == "notifications"
                                               else "")
        if self.kind == "engine":
            keys = "e edit"
        self.query_one("#settings-state", Static).update(
            f"{KINDS[self.kind]} ({len(records):,}{shown}) · k next list · {keys}")

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(SettingsTable)
        return self.records[table.cursor_row] if table.row_count else None

    def new(self) -> None:
        if self.kind == "engine":
            return
        kind = self.kind
        self.app.push_screen(
            RecordScreen(f"New: {KINDS[kind]}", TEMPLATES[kind],
                         lambda r: self.app.client.create(kind, r)),
            self._saved)

    def edit(self) -> None:
        record = self.selected()
        if record is None:
            return
        kind = self.kind
        if kind == "engine":
            body = {record["name"]: record["value"]}
            self.app.push_screen(RecordScreen("Engine setting", body,
                                              self.app.client.change_settings), self._saved)
            return
        shown = {k: v for k, v in record.items()
                 if k not in {"id", "last_status", "last_error", "last_sent_at", "waiting",
                              "default"}}
        self.app.push_screen(
            RecordScreen(f"Edit: {name_of(record, 'name', 'id')}", shown,
                         lambda r: self.app.client.update(kind, record["id"], r)),
            self._saved)

    def _saved(self, saved: bool | None) -> None:
        if saved:
            self.app.notify("Saved.")
            self.load()

    def delete(self) -> None:
        record = self.selected()
        if record is None or self.kind == "engine":
            return
        kind = self.kind
        self.app.push_screen(
            DeleteScreen(name_of(record, "name", "id")),
            lambda answer: answer is not None and self.app.api(
                self.app.client.remove, kind, record["id"], then=self.load))

    def test(self) -> None:
        if self.kind == "notifications":
            self.app.api(self.app.client.test_targets)
