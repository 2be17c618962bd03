"""``appliance tui`` as its user meets it over years: a service of another version that leaves
out what this one sends, actions on items that moved on meanwhile, keys that race. Against
the hostile service (tests/support/hostile.py, in this process) where the real one never
answers so, against the real one where it does."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.commands import isolated_home, run
from support.hostile import HISTORY, Held, HostileService, Stream, hostile_service
from support.origin import MediaOrigin
from support.server import Server
from support.tui_pilot import (
    cell,
    connected,
    drive,
    lines_of,
    select,
    settled,
    text_of,
    until,
)
from textual import events
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Input, Static, TextArea

from appliance.client import ApiClient, Connection
from appliance.tui.app import ApplianceApp, finish_adds
from appliance.tui.screens import add
from appliance.tui.screens.prompt import PromptScreen
from appliance.tui.views.files import media_summary
from appliance.tui.views.queue import row_of
from appliance.tui.views.subscriptions import SubscriptionsView

pytestmark = pytest.mark.xdist_group("tui_years")

hostile = pytest.fixture(hostile_service)
home = pytest.fixture(isolated_home)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real service, its queue paused: what is added waits."""
    server = Server(tmp_path_factory.mktemp("tui-years")).start()
    server.post("/api/system/pause", {})
    yield server
    server.stop()


async def paste_in_the_add_form(pilot: Pilot, app: ApplianceApp, text: str) -> None:
    """Open the add form and paste ``text`` into its URLs."""
    await pilot.press("a")
    urls = await until(pilot, lambda: app.screen.query("#add-urls")
                       and app.screen.query_one("#add-urls", TextArea), "the form")
    app.post_message(events.Paste(text))
    last = text.strip().splitlines()[-1]
    await until(pilot, lambda: last in urls.text, "the paste")


def stream_of(*records: dict[str, object]) -> bytes:
    """A log stream's body: one ``log_lines`` event of ``records``, then its end."""
    return f"event: log_lines\ndata: {json.dumps(list(records))}\n\n".encode()


def test_log_records_without_ids_are_each_shown(hostile: HostileService) -> None:
    """A service that names no id for its records (another version, a proxy's log): every
    id-less record shared the id "", all after the first were taken for it and dropped, the
    Logs view silent for good. Each is known by its text now, as the service's ids are."""
    hostile.answers["/api/logs"] = {"logs": [  # newest first
        {"timestamp": "2024-05-01T11:00:01", "level": "ERROR", "logger": "a", "message": "two"},
        {"timestamp": "2024-05-01T11:00:00", "level": "INFO", "logger": "a", "message": "one"},
    ]}
    hostile.answers["/api/logs/stream"] = Stream(stream_of(
        {"line": "2024-05-01 12:00:00,1 INFO x: three"},
        {"line": "2024-05-01 12:00:01,1 WARNING x: four"},
        {"id": "", "line": "2024-05-01 12:00:02,1 INFO x: five"},
        {"line": "2024-05-01 12:00:02,1 INFO x: five"},  # the same record again: once
    ))
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("3")
        await until(pilot, lambda: "five" in lines_of(app, "#logs-log"), "the last record")
        shown = lines_of(app, "#logs-log").splitlines()
        assert [line.rsplit(" ", 1)[1] for line in shown] == [
            "one", "two", "three", "four", "five"]

    drive(app, scenario)
    assert not app.crash_report


def test_a_retry_of_an_item_that_has_not_ended_queues_no_second_one(
        service: Server, origin: MediaOrigin) -> None:
    """``r`` on a waiting (or running) item of the queue: a retry adds the item again and
    removes its ended record, which a waiting one has not, so a second download of the URL
    was queued beside the first ("queued", the person told). It is refused, in words."""
    url = f"{origin.clip_url}?waiting"
    item_id = service.post("/api/history", {"url": url}).json()[0]["id"]
    app = ApplianceApp(ApiClient(Connection(service.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await until(pilot, lambda: item_id in app.screen.query_one("#queue-table").rows,
                    "the waiting item's row")
        select(app, "queue-table", item_id)
        await pilot.press("r")
        warned = await until(pilot, lambda: [n for n in app._notifications
                                             if "has not ended" in n.message], "the warning")
        assert warned[0].severity == "warning"
        assert warned[0].message.endswith(
            "has not ended (pending): only a finished, failed or cancelled item is queued "
            "again (cancel it first).")
        await pilot.press("c")  # cancelled: ended, so it may be retried
        await until(pilot, lambda: app.model.items.get(item_id, {}).get("status") ==
                    "cancelled", "the item cancelled")
        await pilot.press("r")
        await until(pilot, lambda: item_id not in app.model.items and [
            i for i in app.model.items.values() if i.get("url") == url], "queued again")

    drive(app, scenario)
    assert not app.crash_report
    queue = service.get("/api/history/live").json()["queue"]
    assert [i["url"] for i in queue.values()].count(url) == 1


def test_a_pause_lost_to_a_restart_is_not_shown_nor_resumed(
        make_server: Callable[..., Server]) -> None:
    """A pause does not outlive a restart. The TUI kept the pause it knew: PAUSED in the
    header over a queue that ran, and ``P`` (which resumes what the header says is paused)
    answered "Downloads are not paused." each time, never pausing again. The pause is read
    again with the snapshot of every reconnect."""
    server = make_server("paused")
    server.post("/api/system/pause", {})
    app = ApplianceApp(ApiClient(Connection(server.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await until(pilot, lambda: "PAUSED" in text_of(app, "#totals-text"), "PAUSED")
        await asyncio.to_thread(server.stop)
        await until(pilot, lambda: app.screen.query_one("#banner").display, "the banner")
        restarted = await asyncio.to_thread(
            lambda: Server(server.root, server.env, port=server.port).start())
        try:
            await until(pilot, lambda: not app.screen.query_one("#banner").display,
                        "connected again")
            await until(pilot, lambda: "PAUSED" not in text_of(app, "#totals-text"),
                        "the pause gone with the restart")
            await pilot.press("P")
            await until(pilot, lambda: restarted.get("/api/engine/stats").json()[
                "system_paused"], "the queue paused by P")
            await until(pilot, lambda: "PAUSED" in text_of(app, "#totals-text"),
                        "PAUSED again")
        finally:
            await asyncio.to_thread(restarted.stop)

    drive(app, scenario)
    assert not app.crash_report


def test_quit_while_a_request_is_in_flight_does_not_wait_for_it(
        hostile: HostileService) -> None:
    """``q`` while the service is slow to answer (here: a history page it holds): the TUI
    waited for the answer before it let the terminal go, up to the answer's bound of two
    minutes (the loop's executor joins its threads at close). It closes at once now, and the
    answer that comes later is no one's."""
    answered = threading.Event()

    def page(query: str) -> object:
        answered.set()
        return HISTORY

    # (a read timeout past the hold's two minutes: the request ends with its answer alone)
    app = ApplianceApp(ApiClient(Connection(hostile.url), timeout=600))
    held = Held(page)

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        hostile.answers["/api/history"] = held
        await pilot.press("2")
        await until(pilot, lambda: hostile.asked.count("GET /api/history") == 2,
                    "the history page asked for")
        await pilot.press("q")

    try:
        drive(app, scenario, settle=False)
        assert not answered.is_set()  # closed while the page was still on its way
        assert not app.is_running and not app.crash_report
    finally:
        held.released.set()
    settled()  # the page's answer, read by no one


def test_an_engine_setting_is_edited_in_place(service: Server) -> None:
    """The Settings view's last list, the engine's settings: ``e`` edits one as JSON, what
    the service refuses is said in its words with the editor still open, what it takes is
    in force at once."""
    app = ApplianceApp(ApiClient(Connection(service.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("4")
        table = app.screen.query_one("#settings-table", DataTable)
        await until(pilot, lambda: "Presets" in text_of(app, "#settings-state"), "presets")
        await pilot.press("k", "k", "k")
        await until(pilot, lambda: "Notification targets" in text_of(app, "#settings-state"),
                    "the targets")
        assert text_of(app, "#settings-state").endswith(
            "k next list · n new · e edit · d delete · t test")
        await pilot.press("k")
        await until(pilot, lambda: "Engine settings" in text_of(app, "#settings-state")
                    and table.row_count, "the engine settings")
        assert text_of(app, "#settings-state").endswith("k next list · e edit")
        row = next(str(k.value) for k in table.rows
                   if cell(app, "settings-table", str(k.value), "name") ==
                   "max_downloads_per_site")
        select(app, "settings-table", row)
        await pilot.press("e")
        editor = await until(pilot, lambda: app.screen.query("#record-json")
                             and app.screen.query_one("#record-json", TextArea), "the editor")
        assert json.loads(editor.text) == {"max_downloads_per_site": 2}
        editor.text = '{"max_downloads_per_site": 0}'
        await pilot.press("ctrl+s")
        refused = await until(pilot, lambda: text_of(app, "#record-error"), "the refusal")
        assert "max_downloads_per_site" in refused
        editor.text = '{"max_downloads_per_site": 3}'
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any(n.message == "Saved." for n in app._notifications),
                    "saved")
        assert service.get("/api/settings").json()["max_downloads_per_site"] == 3
        await until(pilot, lambda: "3" in [cell(app, "settings-table", str(k.value), "summary")
                                           for k in table.rows], "the new value listed")

    drive(app, scenario)
    assert not app.crash_report


def test_details_archive_and_unarchive_the_item_shown(hostile: HostileService) -> None:
    """``A`` and ``U`` in an item's details: its id, in its own path segment; each told."""
    item = {"id": "a/b", "kind": "done", "status": "finished", "title": "t", "url": "u",
            "created_at": 1}
    hostile.answers["/api/history/live"] = {"history_count": 1, "queue": {"a/b": item}}
    hostile.answers["/api/history/a%2Fb"] = item
    hostile.answers["/api/history/a%2Fb/archive"] = {"status": True}
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await until(pilot, lambda: app.screen.query_one("#queue-table").row_count, "the row")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.query("#details-fields"), "the details")
        await pilot.press("A")
        await until(pilot, lambda: "POST /api/history/a%2Fb/archive" in hostile.asked,
                    "the archive asked")
        await pilot.press("U")
        await until(pilot, lambda: "DELETE /api/history/a%2Fb/archive" in hostile.asked,
                    "the unarchive asked")
        await until(pilot, lambda: [n.message for n in app._notifications] == ["done"] * 2,
                    "both told")

    drive(app, scenario)
    assert not app.crash_report


def test_ytdlp_status_and_update_through_the_service_say_what_it_said(
        hostile: HostileService, home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its versions, then its message when there is one; an update that ended well is exit
    0, one rolled back exit 1 (the service's message says why)."""
    monkeypatch.setenv("YTP_PORT", hostile.url.rpartition(":")[2])
    hostile.answers["/api/ping"] = {}
    hostile.answers["/api/system/ytdlp"] = {"installed": "2025.1.1", "latest": "2025.2.1",
                                            "update": {"state": "idle"}}
    assert run(capsys, "ytdlp", "status") == (
        0, "yt-dlp 2025.1.1 installed, newest 2025.2.1\n", "")
    hostile.answers["/api/system/ytdlp/update"] = {}
    hostile.answers["/api/system/ytdlp"] = {"installed": "2025.2.1", "latest": "2025.2.1",
                                            "update": {"state": "updated", "message": "done"}}
    assert run(capsys, "ytdlp", "update") == (
        0, "the service is updating yt-dlp ...\nyt-dlp 2025.2.1 installed, newest 2025.2.1: "
           "done\n", "")
    hostile.answers["/api/system/ytdlp"] = {"installed": "2025.1.1", "latest": "2025.2.1",
                                            "update": {"state": "rolled_back",
                                                       "message": "its check failed"}}
    code, out, _ = run(capsys, "ytdlp", "update")
    assert (code, out.splitlines()[-1]) == (
        1, "yt-dlp 2025.1.1 installed, newest 2025.2.1: its check failed")


def test_a_file_ffprobe_does_not_read_is_said_to_be_no_media() -> None:
    assert media_summary({"title": "notes.txt", "ffprobe": {}}).plain == (
        "title      notes.txt\nmedia      not media ffprobe reads\n")


def test_rename_and_move_start_from_the_entry_and_send_what_was_typed(
        hostile: HostileService) -> None:
    """The rename prompt holds the entry's name (Enter on it unchanged sends nothing), the
    move prompt the folder shown; slashes around the folder typed are not part of it."""
    entry = {"type": "file", "name": "a [i].mp4", "path": "shows/a [i].mp4", "size": 1}
    hostile.answers["/api/file/browser/"] = {
        "path": "shows", "contents": [entry],
        "pagination": {"page": 1, "total": 1, "total_pages": 1}}
    hostile.answers["/api/file/actions"] = [{"ok": True}]
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    def question() -> str:
        return str(app.screen.query_one("#prompt Static", Static).render())

    def prompt() -> Input | None:
        return app.screen.query_one(Input) if isinstance(app.screen, PromptScreen) else None

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("6")
        await until(pilot, lambda: app.screen.query_one("#files-table").row_count, "the file")
        await pilot.press("r")
        field = await until(pilot, prompt, "the rename prompt")
        assert field.value == "a [i].mp4"
        assert question() == "Rename shows/a [i].mp4 to:"  # a name is text, never markup
        await pilot.press("enter")  # the same name: nothing to do
        await until(pilot, lambda: not isinstance(app.screen, PromptScreen), "no prompt")
        await pilot.press("m")
        field = await until(pilot, prompt, "the move prompt")
        assert field.value == "shows"
        field.value = "/Xmas/"
        await pilot.press("enter")
        await until(pilot, lambda: "POST /api/file/actions" in hostile.asked, "the move")

    drive(app, scenario, size=(100, 40))
    assert not app.crash_report
    assert [body for asked, body in hostile.sent if asked == "POST /api/file/actions"] == [
        [{"action": "move", "path": "shows/a [i].mp4", "new_path": "Xmas"}]]


def test_the_add_form_names_the_options_the_service_removed(hostile: HostileService) -> None:
    """And a download field of the kind ``bool`` is a checkbox whose value is sent."""
    hostile.answers["POST /api/history"] = [{"status": "queued", "id": "x", "url": "u",
                                             "removed_options": ["--exec", 3]}]
    hostile.answers["/api/system/configuration"] = {
        **hostile.answers["/api/system/configuration"],
        "dl_fields": [{"field": "embed_subs", "name": "Subtitles", "kind": "bool"}]}
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await paste_in_the_add_form(pilot, app, "https://example.com/v\n")
        app.screen.query_one("Checkbox.dl-field", Checkbox).value = True
        await pilot.press("ctrl+s")
        answers = await until(pilot, lambda: "✓" in text_of(app, "#add-answers")
                              and text_of(app, "#add-answers"), "the answer")
        assert answers == ("✓ queued: https://example.com/v (removed options: --exec 3)")

    drive(app, scenario, size=(100, 40))
    assert not app.crash_report
    assert [body for asked, body in hostile.sent if asked == "POST /api/history"] == [
        [{"url": "https://example.com/v", "auto_start": True,
          "dl_fields": {"embed_subs": True}}]]


def test_a_delete_of_an_item_gone_already_says_so_and_drops_its_row(
        hostile: HostileService) -> None:
    """Deleted by another client (whose event this TUI missed) or by ``d`` pressed twice:
    the answer was a toast of "not found", the row stayed. It says so in words now."""
    item = {"id": "gone", "kind": "queue", "status": "pending", "title": "A title",
            "url": "u", "created_at": 1}
    hostile.answers["/api/history/live"] = {"history_count": 0, "queue": {"gone": item}}
    hostile.answers["DELETE /api/history"] = {"gone": "not found"}
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        table = app.screen.query_one("#queue-table", DataTable)
        await until(pilot, lambda: table.row_count, "the row")
        await pilot.press("d")
        await until(pilot, lambda: app.screen.query("#confirm"), "the question")
        await pilot.press("y")
        told = await until(pilot, lambda: list(app._notifications), "the answer")
        assert [n.message for n in told] == [
            "A title was deleted already (by another client, or by a key pressed twice)."]
        await until(pilot, lambda: not table.row_count, "the row gone")

    drive(app, scenario)
    assert not app.crash_report
    assert [body["type"] for asked, body in hostile.sent if asked == "DELETE /api/history"] == [
        "queue", "done"]


def test_a_run_that_ends_repaints_its_own_subscription_only(hostile: HostileService) -> None:
    """500 subscriptions: each run's end (a ``config_update``) wrote every cell of every row
    again, 3,000 cells and some 170 ms of the UI each time, so a round of runs kept the TUI
    busy and its keys slow. Only the cells of the task that changed are written now."""
    tasks = [{"id": i, "name": f"task {i:03d}", "url": f"https://feeds.example/{i}",
              "last_status": "success", "last_queued": 1, "last_run_at": 1.7e9,
              "next_run_at": 1.8e9} for i in range(1, 501)]
    hostile.answers["/api/tasks"] = {"items": tasks, "pagination": {"has_next": False}}
    app = ApplianceApp(ApiClient(Connection(hostile.url)))
    written: list[tuple[str, str]] = []

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("5")
        table = app.screen.query_one("#subscriptions-table", DataTable)
        await until(pilot, lambda: table.row_count == 500, "the 500 subscriptions")
        update_cell = table.update_cell

        def counted(row: object, column: object, value: object, **kwargs: object) -> None:
            written.append((str(getattr(row, "value", row)), str(getattr(column, "value",
                                                                          column))))
            update_cell(row, column, value, **kwargs)  # type: ignore[arg-type]

        table.update_cell = counted  # type: ignore[method-assign]
        view = app.screen.query_one(SubscriptionsView)
        view.changed("update", {**tasks[41], "last_status": "failed", "failures": 2})
        await until(pilot, lambda: cell(app, "subscriptions-table", "42", "outcome") ==
                    "failed x2", "the failure shown")
        view.changed("update", tasks[6])  # told again as it was: nothing to write
        await pilot.pause()

    drive(app, scenario, size=(120, 40))
    assert not app.crash_report
    assert written == [("42", "outcome")]


def test_the_lists_are_laid_out_again_when_the_terminal_turns(
        hostile: HostileService) -> None:
    """A phone turned from portrait to landscape and back: History, Subscriptions, Files and
    Settings kept the columns laid out for the width they started at (the status and size
    columns off a narrower screen, a wider one's room left empty); the Queue alone followed."""
    item = {"id": "h1", "kind": "done", "status": "finished", "title": "An item",
            "url": "u", "finished_at": 1.7e9}
    history = {"items": [item], "pagination": {"page": 1, "total": 1, "total_pages": 1}}
    hostile.answers["/api/history"] = lambda query: history
    hostile.answers["/api/tasks"] = {"items": [{"id": 1, "name": "A feed", "url": "f"}],
                                     "pagination": {"has_next": False}}
    hostile.answers["/api/file/browser/"] = {
        "path": "", "contents": [{"type": "file", "name": "a.mp4", "path": "a.mp4"}],
        "pagination": {"page": 1, "total": 1, "total_pages": 1}}
    hostile.answers["/api/presets"] = {"items": [{"id": 1, "name": "default", "cli": "-f b"}]}
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    def widths(table: str) -> dict[str, int]:
        columns = app.screen.query_one(f"#{table}", DataTable).columns
        return {str(key.value): column.width for key, column in columns.items()}

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        for key, table in (("2", "history-table"), ("5", "subscriptions-table"),
                           ("6", "files-table"), ("4", "settings-table")):
            await pilot.press(key)
            await until(pilot, lambda t=table: app.screen.query_one(f"#{t}",
                                                                    DataTable).row_count,
                        f"the rows of {table}")
        await pilot.resize_terminal(130, 40)
        await pilot.pause()
        for key in "2564":  # (a view laid out anew when it is shown)
            await pilot.press(key)
            await pilot.pause()
        assert widths("history-table")["title"] == 130 - 43
        assert "url" in widths("subscriptions-table")
        assert "type" in widths("files-table")
        assert widths("settings-table")["summary"] == 130 - 30
        await pilot.resize_terminal(60, 30)
        await pilot.pause()
        for key in "2564":
            await pilot.press(key)
            await pilot.pause()
        assert widths("history-table")["title"] == 20
        assert "url" not in widths("subscriptions-table")
        assert "type" not in widths("files-table")
        assert widths("settings-table")["summary"] == 30
        for table in ("history-table", "subscriptions-table", "files-table",
                      "settings-table"):
            assert app.screen.query_one(f"#{table}", DataTable).row_count == 1, table

    drive(app, scenario)
    assert not app.crash_report


def test_quit_while_urls_are_being_queued_queues_them_all(
        hostile: HostileService, monkeypatch: pytest.MonkeyPatch) -> None:
    """The TUI does not wait for its requests when the person quits; a paste of URLs being
    queued a batch at a time would have lost the rest. ``appliance tui`` waits for them
    (after the terminal is given back), however the add screen or the app were closed."""
    monkeypatch.setattr(add, "BATCH", 1)  # a batch each: the paste takes two requests
    held = Held([{"status": "queued", "id": "x", "url": "u"}])
    hostile.answers["POST /api/history"] = held
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await paste_in_the_add_form(pilot, app, "https://example.com/1\nhttps://example.com/2\n")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "POST /api/history" in hostile.asked, "the first add")
        await pilot.press("escape", "q")

    drive(app, scenario, settle=False)
    assert not app.is_running and app.adding  # closed, the URLs still on their way
    held.released.set()
    finish_adds(app)
    assert not app.adding
    assert [body[0]["url"] for asked, body in hostile.sent if asked == "POST /api/history"] == [
        "https://example.com/1", "https://example.com/2"]
    settled()


def test_keys_on_empty_lists_say_nothing_is_selected(hostile: HostileService) -> None:
    """An empty queue and no subscriptions yet (a fresh install): the actions' keys say so."""
    hostile.answers["/api/tasks"] = {"items": [], "pagination": {"has_next": False}}
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("d")
        await until(pilot, lambda: len(app._notifications) == 1, "the queue's answer")
        await pilot.press("5")
        await until(pilot, lambda: app.screen.query_one(SubscriptionsView).loaded, "loaded")
        await pilot.press("r")
        await until(pilot, lambda: len(app._notifications) == 2, "the subscriptions' answer")
        assert [(n.message, n.severity) for n in app._notifications] == [
            ("Nothing selected.", "warning")] * 2

    drive(app, scenario)
    assert not app.crash_report


def test_the_history_is_searched_once_typing_pauses(hostile: HostileService) -> None:
    """No Enter needed: the service is asked once the typing has paused."""
    hostile.answers["/api/history"] = HISTORY
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("2")
        await until(pilot, lambda: hostile.asked.count("GET /api/history") == 2, "page 1")
        await pilot.press("slash", "c", "a", "t")
        await until(pilot, lambda: any("search=cat" in q for q in hostile.queries),
                    "the search asked for")
        assert isinstance(app.focused, Input)  # still typing: Enter was not pressed

    drive(app, scenario)
    assert not app.crash_report


def test_an_ended_item_shows_its_files_size() -> None:
    """A finished item of the history (in the queue after it ended) names its size as
    ``file_size`` only."""
    assert str(row_of({"status": "finished", "file_size": 3 * 2**20}, False)[3]) == "3.0 MiB"


def test_the_services_warnings_and_errors_are_toasts_of_their_kind(
        hostile: HostileService) -> None:
    hostile.frames = [json.dumps({"event": name, "data": {"message": text}})
                      for name, text in (("log_warning", "disk nearly full"),
                                         ("log_error", "disk full"))]
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: len(app._notifications) == 2, "both toasts")
        assert [(n.message, n.severity) for n in app._notifications] == [
            ("disk nearly full", "warning"), ("disk full", "error")]

    drive(app, scenario)
    assert not app.crash_report


def test_a_download_folder_that_is_there_shows_no_problem(hostile: HostileService) -> None:
    """``download_folder: "ok"`` is no problem to show; any other text is one, in full."""
    app = ApplianceApp(ApiClient(Connection(hostile.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        shown = app.screen.query_one("#folder-problem", Static)
        assert not shown.display
        app.disk_refreshed({"download_folder": "the disk is gone"})
        assert shown.display and str(shown.render()) == "the disk is gone"

    drive(app, scenario)
    assert not app.crash_report
