"""What ``appliance tui`` sends and shows, field by field: the add form and the file actions
as the service receives them (tests/support/hostile.py records each body), the engine
settings' list, the text the views make of records, log lines, inspections and items, and
the queue's model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from support.hostile import Held, HostileService, hostile_service
from support.tui_pilot import drive, until
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static, TextArea

from appliance.client import ApiClient, Connection, LiveEvent
from appliance.tui.app import ApplianceApp
from appliance.tui.model import QueueModel
from appliance.tui.screens.add import AddScreen
from appliance.tui.screens.confirm import DeleteScreen
from appliance.tui.screens.details import table_of
from appliance.tui.screens.prompt import PromptScreen
from appliance.tui.screens.text import TextScreen
from appliance.tui.views.logs import record_from_entry, record_from_line
from appliance.tui.views.settings import summary
from appliance.tui.views.subscriptions import inspection

pytestmark = pytest.mark.xdist_group("tui_hostile")

service = pytest.fixture(hostile_service)


@pytest.fixture
def app(service: HostileService) -> Iterator[ApplianceApp]:
    configuration = service.answers["/api/system/configuration"]
    configuration.update(presets=[{"name": "default"}, {"name": "audio"}],
                         dl_fields=[{"name": "Season", "field": "season", "kind": "text"},
                                    {"name": "Chapters", "field": "chapters", "kind": "bool"}])
    yield ApplianceApp(ApiClient(Connection(service.url, token="t")))


def sent(service: HostileService, request: str) -> list[Any]:
    return [body for asked, body in service.sent if asked == request]


def test_the_add_form_sends_each_field_it_was_given(service: HostileService,
                                                    app: ApplianceApp) -> None:
    service.answers["POST /api/history"] = [{"status": "queued", "id": "1", "url": "u"}]

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("a")
        screen = await until(pilot, lambda: isinstance(app.screen, AddScreen) and app.screen,
                             "the add screen")
        urls = "https://a.example/1\n# a comment\n\nhttps://a.example/2"
        screen.query_one("#add-urls", TextArea).text = urls
        screen.query_one("#add-preset", Select).value = "audio"
        for name, value in (("folder", " shows/ "), ("template", "%(title)s.%(ext)s"),
                            ("cli", "-x")):
            screen.query_one(f"#add-{name}", Input).value = value
        screen.query_one("Input.dl-field", Input).value = "2"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: sent(service, "POST /api/history"), "the add")

    drive(app, scenario, size=(100, 40))
    fields = {"preset": "audio", "folder": "shows/", "template": "%(title)s.%(ext)s",
              "cli": "-x", "auto_start": True, "dl_fields": {"season": "2"}}
    # Both in one request (a paste of thousands was a request each).
    assert sent(service, "POST /api/history") == [[{"url": "https://a.example/1", **fields},
                                                   {"url": "https://a.example/2", **fields}]]


def test_file_actions_send_the_entry_and_what_was_typed(service: HostileService,
                                                        app: ApplianceApp) -> None:
    entry = {"type": "file", "name": "a.mp4", "path": "shows/a.mp4", "size": 1}
    service.answers["/api/file/browser/"] = {
        "path": "shows", "contents": [entry],
        "pagination": {"page": 1, "total": 1, "total_pages": 1}}
    service.answers["/api/file/actions"] = [{"ok": True}]
    actions = "POST /api/file/actions"

    async def answer(pilot: Pilot, key: str, typed: str | None, count: int) -> None:
        await pilot.press(key)
        if typed is None:
            await until(pilot, lambda: isinstance(app.screen, DeleteScreen), "the question")
            assert [str(s.render()) for s in app.screen.query(Static)] == [
                "Delete shows/a.mp4?", "y deletes it. n or Esc keeps it."]
            await pilot.press("y")
        else:
            field = await until(pilot, lambda: isinstance(app.screen, PromptScreen)
                                and app.screen.query_one(Input), "the prompt")
            field.value = typed
            await pilot.press("enter")
        await until(pilot, lambda: len(sent(service, actions)) == count, f"action {count}")

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("6")
        await until(pilot, lambda: app.screen.query_one("#files-table").row_count, "the file")
        await answer(pilot, "r", "b.mp4", 1)
        await answer(pilot, "m", "/films/", 2)
        await answer(pilot, "d", None, 3)
        await answer(pilot, "c", "new", 4)

    drive(app, scenario, size=(100, 40))
    assert sent(service, actions) == [
        [{"action": "rename", "path": "shows/a.mp4", "new_name": "b.mp4"}],
        [{"action": "move", "path": "shows/a.mp4", "new_path": "films"}],
        [{"action": "delete", "path": "shows/a.mp4"}],
        [{"action": "directory", "path": "shows", "new_dir": "new"}]]


def test_what_the_views_make_of_records_lines_and_items() -> None:
    target = {"name": "n", "enabled": False, "on": ["item_completed", 7],
              "request": {"url": "https://hook.example/x"}, "last_status": "200"}
    assert summary("notifications", target) == (
        "disabled · https://hook.example/x · item_completed,7 · 200")
    assert summary("notifications", {"on": "x", "request": "y"}) == (
        " · all events · never sent")
    assert summary("notifications", {**target, "enabled": True, "waiting": 12}) == (
        "https://hook.example/x · item_completed,7 · 200 · 12 waiting")
    for nothing in (0, None, "12", True, -1):
        assert summary("notifications", {**target, "waiting": nothing}).endswith(" · 200")
    assert summary("presets", {"cli": "", "field": "f", "description": "d"}) == "f"
    line = record_from_line({"id": 3, "line": "2024-05-01 12:00:00,123 WARNING x: y"})
    assert (line.id, line.level) == ("3", "WARNING")
    assert record_from_line({"line": "a b WARNING"}).level == "WARNING"
    assert record_from_line({"line": "a b"}).level == "INFO"
    entry = record_from_entry({"id": 4, "timestamp": "2024-05-01T12:00:00.5+00:00",
                               "level": "ERROR", "logger": "l", "message": "m"})
    assert entry == type(entry)("4", "ERROR", "2024-05-01 12:00:00 ERROR l: m")
    found = inspection({"handler": "Rss", "matched": True, "supported": False,
                        "items": [{"title": "t", "url": "u"}, 3], "extra": {"k": "v"}})
    assert found.plain == ('handler   Rss\nmatched   True\nsupported False\n2 entries\n'
                           '  t  u\n{\n "extra": {\n  "k": "v"\n }\n}')
    fields = table_of({"zeta": 1, "title": "t", "alpha": [1], "msg": "", "error": ""})
    assert fields.plain == ('title            t\nerror            \nalpha            [\n 1\n]\n'
                            'zeta             1\n')


def test_the_engine_settings_list_values_and_who_pins_them(service: HostileService,
                                                           app: ApplianceApp) -> None:
    service.answers["/api/presets"] = {"items": [{"id": 1, "name": "default"}]}
    service.answers["/api/settings"] = {"max_workers": 2, "paused": False,
                                        "pinned": {"max_workers": "YTP_MAX_WORKERS"}}

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("4")
        table = app.screen.query_one("#settings-table", DataTable)
        await until(pilot, lambda: table.row_count == 1, "the presets")
        await pilot.press("k", "k", "k", "k")
        await until(pilot, lambda: table.row_count == 2, "the engine settings")
        assert [str(table.get_row_at(row)[1]) for row in range(2)] == [
            "2 (pinned by YTP_MAX_WORKERS)", "false"]
        await pilot.press("d")  # no deleting a setting: nothing asks
        await pilot.pause()
        assert not isinstance(app.screen, DeleteScreen)

    drive(app, scenario, size=(100, 40))


def test_the_queue_takes_whole_items_and_counts_the_history() -> None:
    model = QueueModel()
    model.snapshot({"history_count": 5, "queue": {"q": {"status": "downloading",
                                                        "kind": "queue"}}})
    model.apply(LiveEvent("item_completed", {"id": "q", "status": "finished", "kind": "done"}))
    model.apply(LiveEvent("item_updated", {"id": "n", "status": "pending", "kind": "queue"}))
    model.apply(LiveEvent("item_updated", {"id": "q", "status": "downloading",
                                           "kind": "queue"}))  # late: it has ended
    # ended once: a second event of the ended item (its record changed) counts no more
    model.apply(LiveEvent("item_updated", {"id": "q", "status": "finished", "kind": "done"}))
    assert {i: item["status"] for i, item in model.items.items()} == {
        "q": "finished", "n": "pending"}
    assert model.history_count == 6


class Answered(ApplianceApp):
    """The app, counting the workers' answers handed to the UI thread, by callback name."""

    def __init__(self, client: ApiClient) -> None:
        super().__init__(client)
        self.answered: list[str] = []

    def call_from_thread(self, callback: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().call_from_thread(callback, *args, **kwargs)
        finally:
            self.answered.append(getattr(callback, "__name__", ""))


def test_a_list_answered_after_the_next_one_was_asked_for_is_not_shown(
        service: HostileService) -> None:
    """k twice on a slow service: the conditions' answer came after the download fields'
    and was shown under "Download fields", and d then deleted the download field with a
    condition's id (the table showed one kind's records, the view acted on the other's)."""
    service.answers["/api/presets"] = {"items": [{"id": 1, "name": "a preset"}]}
    held = service.answers["/api/conditions"] = Held(
        {"items": [{"id": 7, "name": "a condition", "filter": "f"}]})
    service.answers["/api/dl_fields"] = {"items": [{"id": 3, "name": "a field"}]}
    service.answers["DELETE /api/dl_fields/3"] = {"status": "deleted"}
    app = Answered(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("4")
        table = app.screen.query_one("#settings-table", DataTable)
        state = app.screen.query_one("#settings-state", Static)
        await until(pilot, lambda: table.row_count == 1, "the presets")
        await pilot.press("k")
        await until(pilot, lambda: "GET /api/conditions" in service.asked, "the conditions")
        await pilot.press("k")
        await until(pilot, lambda: str(state.render()).startswith("Download fields (1)"),
                    "the download fields")
        held.released.set()
        await until(pilot, lambda: app.answered.count("show") == 3, "the late answer")
        await pilot.pause()
        assert str(state.render()).startswith("Download fields (1)")
        assert str(table.get_row_at(0)[0]) == "a field"
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DeleteScreen), "the question")
        await pilot.press("y")
        await until(pilot, lambda: any(a.startswith("DELETE") for a in service.asked),
                    "the deletion")
        assert [a for a in service.asked if a.startswith("DELETE")] == [
            "DELETE /api/dl_fields/3"]
        # e: the record as JSON, without its id; what is saved goes to that record
        await pilot.press("e")
        editor = await until(pilot, lambda: app.screen.query("#record-json"), "the editor")
        assert json.loads(editor.first(TextArea).text) == {"name": "a field"}
        editor.first(TextArea).text = '{"name": "renamed"}'
        await pilot.press("ctrl+s")
        await until(pilot, lambda: sent(service, "PATCH /api/dl_fields/3"), "the change")
        assert sent(service, "PATCH /api/dl_fields/3") == [{"name": "renamed"}]

    drive(app, scenario, size=(100, 30))
    assert not app.crash_report


def test_the_history_is_read_again_after_a_deletion(service: HostileService,
                                                   app: ApplianceApp) -> None:
    service.answers["/api/history"] = {
        "items": [{"id": "h", "title": "t", "status": "finished", "kind": "done"}],
        "pagination": {"page": 1, "total": 1, "total_pages": 1}}
    service.answers["DELETE /api/history"] = {"h": "deleted"}

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("2")
        table = app.screen.query_one("#history-table", DataTable)
        await until(pilot, lambda: table.row_count == 1, "the item")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DeleteScreen), "the question")
        await pilot.press("y")
        await until(pilot, lambda: "DELETE /api/history" in service.asked, "the deletion")
        deleted = service.asked.index("DELETE /api/history")
        await until(pilot, lambda: "GET /api/history" in service.asked[deleted:],
                    "the page read again")
        assert sent(service, "DELETE /api/history") == [
            {"type": "done", "ids": ["h"], "remove_file": False}]

    drive(app, scenario)
    assert not app.crash_report


def test_details_of_a_file_not_of_a_folder(service: HostileService, app: ApplianceApp) -> None:
    service.answers["/api/file/browser/"] = {
        "path": "", "pagination": {"page": 1, "total": 2, "total_pages": 1},
        "contents": [{"type": "dir", "name": "d", "path": "d"},
                     {"type": "file", "name": "a.mp4", "path": "a.mp4"}]}
    service.answers["/api/file/info/a.mp4"] = {"title": "the clip", "ffprobe": {}}

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("6")
        await until(pilot, lambda: app.screen.query_one("#files-table").row_count == 2,
                    "the folder")
        await pilot.press("i", "down", "i")  # on the folder: nothing; on the file: its details
        await until(pilot, lambda: isinstance(app.screen, TextScreen), "the file's details")
        assert [a for a in service.asked if a.startswith("GET /api/file/info")] == [
            "GET /api/file/info/a.mp4"]
        assert str(app.screen.query_one("#text-title", Static).render()) == "a.mp4"

    drive(app, scenario, size=(100, 30))
    assert not app.crash_report


def test_a_subscription_run_now_shows_running(service: HostileService,
                                              app: ApplianceApp) -> None:
    service.answers["/api/tasks"] = {"items": [{"id": 1, "name": "s", "last_status": "success",
                                                "last_run_at": 1, "last_queued": 2}],
                                     "pagination": {"has_next": False}}
    service.answers["POST /api/tasks/1/execute"] = {"message": "started"}

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("5")
        table = app.screen.query_one("#subscriptions-table", DataTable)
        await until(pilot, lambda: table.row_count == 1, "the subscription")
        assert str(table.get_cell("1", "outcome")) == "success +2"
        await pilot.press("r")
        await until(pilot, lambda: str(table.get_cell("1", "outcome")) == "running",
                    "running shown")

    drive(app, scenario, size=(100, 30))
    assert not app.crash_report


def test_files_changed_reads_the_folder_shown_again(service: HostileService,
                                                    app: ApplianceApp) -> None:
    """The websocket's ``files_changed``: the folder shown is read again when the event
    names it (not for another folder), a hidden one when it is shown next."""
    service.answers["/api/file/browser/shows"] = {
        "path": "shows", "pagination": {"page": 1, "total": 1, "total_pages": 1},
        "contents": [{"type": "file", "name": "a.mp4", "path": "shows/a.mp4"}]}
    read = "GET /api/file/browser/shows"

    def changed(*folders: str) -> None:
        app.on_live_event(LiveEvent("files_changed", {"folders": list(folders)}))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("6")
        app.screen.query_one("FilesView").go("shows")
        await until(pilot, lambda: service.asked.count(read) == 1, "the folder")
        changed("/films/", "other")
        changed("/shows/")
        await until(pilot, lambda: service.asked.count(read) == 2, "read again")
        await pilot.press("1")
        changed("shows")  # hidden: read when shown next
        await pilot.press("6")
        await until(pilot, lambda: service.asked.count(read) == 3, "read when shown")
        assert service.asked.count(read) == 3

    drive(app, scenario, size=(100, 30))
    assert not app.crash_report


def test_the_add_forms_folder_completes_from_the_services_folders(
        service: HostileService, app: ApplianceApp) -> None:
    service.answers["/api/system/configuration"]["folders"] = [{"path": "Shows/Kids"},
                                                               {"path": "films"}]

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AddScreen), "the add screen")
        folder = app.screen.query_one("#add-folder", Input)
        folder.focus()
        await pilot.press("s", "h")
        await until(pilot, lambda: folder._suggestion == "Shows/Kids", "the suggestion")
        await pilot.press("right")  # takes it
        assert folder.value == "Shows/Kids"

    drive(app, scenario, size=(100, 40))
    assert not app.crash_report


def test_the_subscription_selected_stays_selected_when_one_is_added_above(
        service: HostileService, app: ApplianceApp) -> None:
    service.answers["/api/tasks"] = {"items": [{"id": 1, "name": "b"}, {"id": 2, "name": "c"}],
                                     "pagination": {"has_next": False}}

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await pilot.press("5")
        table = app.screen.query_one("#subscriptions-table", DataTable)
        await until(pilot, lambda: table.row_count == 2, "the subscriptions")
        await pilot.press("down")
        await until(pilot, lambda: table.cursor_row == 1, "c selected")
        app.on_live_event(LiveEvent("config_update", {
            "feature": "tasks", "action": "create", "data": {"id": 3, "name": "a"}}))
        await until(pilot, lambda: table.row_count == 3, "the new one")
        assert [str(table.get_row_at(n)[0]) for n in range(3)] == ["a", "b", "c"]
        assert table.cursor_row == 2  # still c

    drive(app, scenario, size=(100, 30))
    assert not app.crash_report
