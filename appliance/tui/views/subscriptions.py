"""Subscriptions (the service's tasks): last run, last outcome, next run; enable/disable, run
now, mark/unmark what the source lists now, inspect a URL before adding it, follow a run's log.

Loaded once when first shown; from then on the websocket's ``config_update`` events of
feature ``tasks`` (every create, change, delete and finished run) keep it current, with no
polling. After a reconnect it is read again (what changed meanwhile)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from appliance.client import ApiError, Unreachable

from .. import format as fmt
from ..screens.confirm import DeleteScreen
from ..screens.prompt import PromptScreen
from ..screens.text import LogScreen, TextScreen

OUTCOME_STYLE = {"success": "green", "failed": "bold red", "running": "cyan"}
# Tasks shown at most: a service that names a new task in every event must not grow the
# table, and the work of each of its repaints, without bound (past it, new ones are not shown).
MAX_TASKS = 1000
TASK_NAMES = ("name", "url", "id")  # what a task is called, the first that shows


def outcome(task: dict[str, Any]) -> Text:
    if task.get("running"):
        return Text("running", style=OUTCOME_STYLE["running"])
    status = str(task.get("last_status") or "")
    if not status:
        return Text("to be marked" if task.get("mark_pending") else "never run", style="dim")
    if status == "failed":
        return Text(f"failed x{task.get('failures') or 1}", style=OUTCOME_STYLE["failed"])
    return Text(f"{status} +{task.get('last_queued') or 0}", style=OUTCOME_STYLE["success"])


def inspection(answer: dict[str, Any]) -> Text:
    """What the service said a task for the URL would do."""
    text = Text()
    # Each part by its start and end: an answer of 13 MB (a title of 50,000 characters an
    # entry) was laid out whole in the UI and not shown after five minutes.
    for key in ("handler", "matched", "supported"):
        if key in answer:
            text.append(f"{key:<10}", style="bold").append(f"{fmt.named(str(answer[key]))}\n")
    items = answer.get("items") or answer.get("entries") or []
    if isinstance(items, list):
        text.append(f"{len(items)} entries\n", style="bold")
        for entry in items[:200]:
            if isinstance(entry, dict):
                text.append(f"  {fmt.named(str(entry.get('title') or ''))}"
                            f"  {fmt.named(str(entry.get('url') or ''))}\n")
    rest = {k: v for k, v in answer.items()
            if k not in {"handler", "matched", "supported", "items", "entries"}}
    if rest:
        text.append(fmt.clipped(fmt.json_text(rest, indent=1)))
    return text


class SubscriptionTable(DataTable):
    BINDINGS = [
        Binding("r", "run", "Run now"),
        Binding("e", "toggle", "On/off"),
        Binding("l", "log", "Log"),
        Binding("m", "mark", "Mark seen"),
        Binding("u", "unmark", "Unmark"),
        Binding("i", "inspect", "Inspect URL"),
        Binding("g", "reload", "Reload", show=False),
        Binding("enter", "log", "Log", show=False),
    ]

    def action_run(self) -> None:
        self.parent.run_now()

    def action_toggle(self) -> None:
        self.parent.toggle()

    def action_log(self) -> None:
        self.parent.follow_log()

    def action_mark(self) -> None:
        self.parent.mark(True)

    def action_unmark(self) -> None:
        self.parent.mark(False)

    def action_inspect(self) -> None:
        self.parent.inspect()

    def action_reload(self) -> None:
        self.parent.load()


class SubscriptionsView(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tasks: dict[str, dict[str, Any]] = {}
        self.loaded = False
        self._fill_due = False
        # The tasks changed since the table was last filled: only their rows are repainted
        # (all of 500 subscriptions took 170 ms of the UI at each run's end).
        self._changed: set[str] = set()
        self.columns_for: int | None = None  # the terminal's width the columns fit

    def compose(self) -> ComposeResult:
        yield Static("", id="subscriptions-state")
        yield SubscriptionTable(id="subscriptions-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.build_columns()

    def on_resize(self) -> None:
        """Laid out again for a new width (a phone turned), the selection kept."""
        if self.columns_for != self.app.size.width:
            selected = self.selected()
            self.build_columns()
            self._changed.update(self.tasks)
            self.fill()
            if selected is not None and str(selected["id"]) in self.tasks:
                table = self.query_one(SubscriptionTable)
                table.move_cursor(row=table.get_row_index(str(selected["id"])))

    def build_columns(self) -> None:
        table = self.query_one(SubscriptionTable)
        self.columns_for = self.app.size.width
        table.clear(columns=True)
        wide = self.app.size.width >= 100
        fixed = 3 + 16 + 13 + 16 + (22 if wide else 0) + 2 * (5 if wide else 4) + 2
        table.add_column("Name", key="name", width=max(12, self.app.size.width - fixed))
        table.add_column("On", key="on", width=3)
        table.add_column("Last run", key="last", width=16)
        table.add_column("Outcome", key="outcome", width=13)
        table.add_column("Next run", key="next", width=16)
        if wide:
            table.add_column("URL", key="url", width=22)

    def focus_first(self) -> None:
        self.query_one(SubscriptionTable).focus()
        if not self.loaded:
            self.load()

    @work(thread=True, exclusive=True, group="subscriptions")
    def load(self) -> None:
        try:
            tasks = self.app.client.tasks()
        except (ApiError, Unreachable) as exc:
            self.app.call_from_thread(self.app.failed, exc)
            return
        self.app.call_from_thread(self.show, tasks)

    def show(self, tasks: list[dict[str, Any]]) -> None:
        self.loaded = True
        self.tasks = {str(t["id"]): t for t in tasks[:MAX_TASKS]}
        self._changed.update(self.tasks)
        self.fill()

    def changed(self, action: str, task: Any) -> None:
        """A ``config_update`` of feature ``tasks`` (``create``, ``update``, ``delete``)."""
        if not self.loaded or not isinstance(task, dict) or "id" not in task:
            return
        if action == "delete":
            self.tasks.pop(str(task["id"]), None)
        elif str(task["id"]) in self.tasks or len(self.tasks) < MAX_TASKS:
            self.tasks[str(task["id"])] = task
            self._changed.add(str(task["id"]))
        else:
            return
        # One repaint for a burst of events, not one each (each sorts and may rebuild it all).
        if not self._fill_due:
            self._fill_due = True
            self.call_after_refresh(self.fill)

    def fill(self) -> None:
        self._fill_due = False
        changed, self._changed = self._changed, set()
        table = self.query_one(SubscriptionTable)
        wide = "url" in table.columns
        ordered = sorted(self.tasks.values(), key=lambda t: str(t.get("name") or "").lower())
        keys = [str(t["id"]) for t in ordered]
        selected = self.selected()
        if keys != [str(k.value) for k in table.rows]:
            table.clear()
            for task in ordered:
                table.add_row(*self.cells(task, wide), key=str(task["id"]))
            if selected is not None and str(selected["id"]) in self.tasks:
                table.move_cursor(row=keys.index(str(selected["id"])))
        else:
            columns = list(table.columns)
            for key in changed & self.tasks.keys():
                row = table.get_row(key)
                for column, before, value in zip(columns, row, self.cells(self.tasks[key], wide),
                                                 strict=True):
                    if value != before:
                        table.update_cell(key, column, value)
        running = sum(1 for t in ordered if t.get("running"))
        failing = sum(1 for t in ordered if t.get("last_status") == "failed")
        self.query_one("#subscriptions-state", Static).update(
            f"Subscriptions ({len(ordered)}) · {running} running · {failing} failing")

    @staticmethod
    def cells(task: dict[str, Any], wide: bool) -> list[Text]:
        enabled = task.get("enabled", True)
        next_run = fmt.when(task.get("next_run_at")) or ("off" if not enabled else "—")
        cells = [
            Text(str(task.get("name") or ""), no_wrap=True, overflow="ellipsis"),
            Text("✓" if enabled else "-", style="green" if enabled else "dim"),
            Text(fmt.when(task.get("last_run_at")) or "—"),
            outcome(task),
            Text(next_run),
        ]
        if wide:
            cells.append(Text(str(task.get("url") or ""), no_wrap=True, overflow="ellipsis"))
        return cells

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(SubscriptionTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return self.tasks.get(str(key))

    def _chosen(self) -> dict[str, Any] | None:
        task = self.selected()
        if task is None:
            self.app.notify("Nothing selected.", severity="warning")
        return task

    def run_now(self) -> None:
        if (task := self._chosen()) is not None:
            before = task.get("last_run_at")
            self.app.api(self.app.client.run_task, task["id"],
                         then=lambda: self.started(str(task["id"]), before))

    def started(self, key: str, last_run_at: Any) -> None:
        """A run has begun; shown as running unless its end has been announced already."""
        task = self.tasks.get(key)
        if task is not None and task.get("last_run_at") == last_run_at:
            self.changed("update", {**task, "running": True})

    def toggle(self) -> None:
        if (task := self._chosen()) is not None:
            self.app.api(self.app.client.update, "tasks", task["id"],
                         {"enabled": not task.get("enabled", True)})

    def mark(self, seen: bool) -> None:
        if (task := self._chosen()) is None:
            return
        if seen:
            self.app.api(self.app.client.mark_task, task["id"])
            return
        self.app.push_screen(
            DeleteScreen(f"the marks of {fmt.name_of(task, *TASK_NAMES)} "
                         "(its entries may be queued again)"),
            lambda answer: answer is not None and self.app.api(self.app.client.unmark_task,
                                                              task["id"]))

    def inspect(self) -> None:
        def inspect_url(url: str | None) -> None:
            if url:
                self.app.push_screen(TextScreen(f"Inspect {url}",
                                                lambda: inspection(self.app.client.inspect(url))))

        self.app.push_screen(PromptScreen("URL to inspect (what a subscription would queue):"),
                             inspect_url)

    def follow_log(self) -> None:
        if (task := self._chosen()) is None:
            return
        client = self.app.client

        def newest_run() -> Any:
            runs = client.executions(task["id"])
            if not runs:
                raise ApiError(404, "This subscription has not run yet.")
            if not isinstance(runs[0].get("id"), int):
                raise ApiError(0, "The service named its newest run without an id.")
            return client.execution_log(runs[0]["id"])

        self.app.push_screen(LogScreen(f"Newest run of {fmt.name_of(task, *TASK_NAMES)}",
                                       newest_run))
