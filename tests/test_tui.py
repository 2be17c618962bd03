"""``appliance tui`` driven by Textual's pilot against the real service (gunicorn, yt-dlp, the
local media origin): the queue moving, add, cancel, retry, pause all, details, history,
logs, settings; unreachable service, refused credentials, a restart under the TUI."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.origin import MediaOrigin
from support.server import Server, wait_for
from support.tui_pilot import (
    cell,
    connected,
    drive,
    lines_of,
    select,
    show_token,
    start_service,
    text_of,
    until,
)
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Sparkline, TextArea
from textual.widgets._toast import Toast

from appliance.client import ApiClient, Connection, LiveEvent
from appliance.client.shown import shown_lines
from appliance.tui import app as tui_app
from appliance.tui import model as tui_model
from appliance.tui.app import ApplianceApp
from appliance.tui.views import history
from appliance.tui.views.queue import LEFT_OUT, QueueTable, QueueView

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("tui")]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_service(tmp_path_factory.mktemp("tui"), YTP_REMOVE_FILES="true",
                           YTP_CONSOLE_ENABLED="true")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token(service: Server) -> str:
    return show_token(service)


def by_url(app: ApplianceApp, url: str) -> list[dict[str, Any]]:
    return [i for i in app.model.items.values() if i.get("url") == url]


def test_add_three_urls_watch_them_cancel_and_retry(service: Server, token: str,
                                                    origin: MediaOrigin) -> None:
    app = ApplianceApp(ApiClient(Connection(service.url, token=token)))
    clip, slow, fail = origin.clip_url, origin.slow_url_at(32 * 1024), origin.fail_url

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("a")
        urls = app.screen.query_one("#add-urls", TextArea)
        app.post_message(events.Paste(f"{clip}\n{slow}\n\n{fail}\n"))
        await until(pilot, lambda: fail in urls.text, "the paste")
        await pilot.press("ctrl+s")
        answers = await until(
            pilot, lambda: (t := text_of(app, "#add-answers")).count("✓") == 3 and t,
            "three answers")
        for url in (clip, slow, fail):
            assert f"queued: {url}" in answers
        await pilot.press("escape")

        # The queue moves: the clip reaches finished in the table, the failure shows.
        item = await until(pilot, lambda: by_url(app, clip), "the clip in the queue")
        clip_id = item[0]["id"]
        await until(pilot, lambda: cell(app, "queue-table", clip_id, "status") == "finished",
                    "the clip finished in the table")
        assert "100%" in cell(app, "queue-table", clip_id, "progress")
        fail_id = by_url(app, fail)[0]["id"]
        await until(pilot, lambda: cell(app, "queue-table", fail_id, "status") == "error",
                    "the failure in the table")
        assert f"{app.model.failed} failed today" in text_of(app, "#totals-text")
        assert app.model.failed >= 1

        # Cancel the slow one with its key.
        slow_id = by_url(app, slow)[0]["id"]
        select(app, "queue-table", slow_id)
        await pilot.press("c")
        await until(pilot, lambda: cell(app, "queue-table", slow_id, "status") == "cancelled",
                    "the slow download cancelled")
        assert service.item(slow_id)["status"] == "cancelled"

        # Retry the failure: queued again as a new item, the old record gone.
        select(app, "queue-table", fail_id)
        await pilot.press("r")
        await until(pilot, lambda: fail_id not in app.model.items and by_url(app, fail),
                    "the failure queued again")
        assert service.get(f"/api/history/{fail_id}").status_code == 404

        # Details of the clip, with its file and the yt-dlp command (the console is on).
        select(app, "queue-table", clip_id)
        await pilot.press("enter")
        await until(pilot, lambda: "clip.mp4" in text_of(app, "#details-fields"),
                    "the details with the file")
        await pilot.press("y")
        await until(pilot, lambda: "yt-dlp" in text_of(app, "#details-command"),
                    "the command")
        await pilot.press("escape")

        # The selection follows its item when a row above it goes (deleted elsewhere).
        other = service.post("/api/history", {"url": origin.short_url}).json()[0]["id"]
        again = by_url(app, fail)[0]["id"]
        await until(pilot, lambda: other in app.screen.query_one("#queue-table",
                                                                 DataTable).rows, "its row")
        select(app, "queue-table", again)
        service.request("DELETE", "/api/history", json={"type": "done", "ids": [clip_id],
                                                         "remove_file": False})
        await until(pilot, lambda: clip_id not in app.screen.query_one(
            "#queue-table", DataTable).rows, "the clip's row gone")
        assert app.screen.query_one("#queue-table", QueueTable).selected()["id"] == again

        # Delete the cancelled one, files too (YTP_REMOVE_FILES=true): confirm first.
        select(app, "queue-table", slow_id)
        await pilot.press("d")
        await until(pilot, lambda: "Delete" in text_of(app, "#confirm Static"), "the question")
        await pilot.press("f")
        await until(pilot, lambda: slow_id not in app.model.items, "the row deleted")
        assert service.get(f"/api/history/{slow_id}").status_code == 404

    drive(app, scenario)


def test_pause_all_and_resume(service: Server, token: str) -> None:
    app = ApplianceApp(ApiClient(Connection(service.url, token=token)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        table = app.screen.query_one("#queue-table", DataTable)
        assert "site" not in [str(c.value) for c in table.columns]
        assert table.virtual_size.width <= table.size.width  # 80 columns: all of it fits
        # ? shows the keys; the command palette reaches every view.
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen.query("HelpPanel"), "the help panel")
        await pilot.press("question_mark")
        await until(pilot, lambda: not app.screen.query("HelpPanel"), "help closed")
        await pilot.press("ctrl+p")
        await pilot.press(*"History", "enter")
        await until(pilot, lambda: app.screen.query_one("#views").current == "history",
                    "the history view from the palette")
        await pilot.press("1", "P")
        await until(pilot, lambda: "PAUSED" in text_of(app, "#totals-text"), "PAUSED shown")
        assert service.get("/api/engine/stats").json()["system_paused"] is True
        await pilot.press("P")
        await until(pilot, lambda: "PAUSED" not in text_of(app, "#totals-text"),
                    "PAUSED gone")
        assert service.get("/api/engine/stats").json()["system_paused"] is False

    drive(app, scenario)


class CountingClient(ApiClient):
    """The real client, counting the HTTP requests it sends."""

    sent: list[str]

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        self.sent.append(f"{method} {path}")
        return super()._send(method, path, **kwargs)


def test_live_updates_come_from_the_websocket_only(service: Server, token: str,
                                                   origin: MediaOrigin) -> None:
    client = CountingClient(Connection(service.url, token=token))
    client.sent = []
    app = ApplianceApp(client)

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        before = len(client.sent)
        item_id = service.post("/api/history", {"url": origin.clip_url + "?ws=1"}).json()[0][
            "id"]
        await until(pilot, lambda: cell(app, "queue-table", item_id, "status") == "finished",
                    "the item finished on screen")
        # Added, progressing and finished without one request from the TUI, except the
        # disk-free figure it refreshes when a download completes.
        assert client.sent[before:] in ([], ["GET /api/health"])

    drive(app, scenario)


def test_wider_terminals_get_more_columns(service: Server, token: str) -> None:
    app = ApplianceApp(ApiClient(Connection(service.url, token=token)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        table = app.screen.query_one("#queue-table", DataTable)
        assert "site" in [str(c.value) for c in table.columns]
        # Every column fits: no horizontal scrolling at 120 columns.
        assert table.virtual_size.width <= table.size.width
        # The app's clock samples the speed and repaints the queue while the app closes, its
        # sparkline and table gone already.
        await app.screen.query_one(Sparkline).remove()
        app.queue_view.sample_speed()
        await table.remove()
        app.queue_view.repaint()

    drive(app, scenario, size=(120, 40))


def test_history_pages_filter_search_and_requeue(service: Server, token: str,
                                                  origin: MediaOrigin,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The needle first: four newer items put it on page 5 at one item a page.
    ids = [service.post("/api/history", {"url": url}).json()[0]["id"]
           for url in (origin.fail_url + "?needle=1", origin.clip2_url, origin.fail_url + "?h=1",
                       origin.short_url, origin.fail_url + "?h=2")]
    for item_id in ids:
        service.wait_status(item_id, {"finished", "error"})
    total = service.get("/api/history?type=done&per_page=1").json()["pagination"]["total"]
    page5 = service.get("/api/history?type=done&per_page=1&page=5").json()["items"]
    assert [i["id"] for i in page5] == [ids[0]]
    monkeypatch.setattr(history, "PER_PAGE", 2)
    app = ApplianceApp(ApiClient(Connection(service.url, token=token)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("2")
        state = await until(pilot, lambda: "page 1/" in (t := text_of(app, "#history-state"))
                            and t, "the first page")
        assert f"{total} items" in state and f"1/{(total + 1) // 2}" in state
        table = app.screen.query_one("#history-table", DataTable)
        first_page = set(table.rows)
        assert len(first_page) == 2
        await pilot.press("n")
        await until(pilot, lambda: "page 2/" in text_of(app, "#history-state"), "page 2")
        assert not set(table.rows) & first_page

        # Oldest first, status filter: only errors.
        await pilot.press("o")
        await until(pilot, lambda: "oldest first" in text_of(app, "#history-state"), "order")
        await pilot.press("f", "f")
        await until(pilot, lambda: "status error" in text_of(app, "#history-state"),
                    "the error filter")
        await until(pilot, lambda: table.row_count > 0, "errors listed")
        assert {cell(app, "history-table", str(k.value), "status") for k in table.rows} == {
            "error"}

        # The service searches the whole history: the needle of page 5 comes first.
        await pilot.press("f", "f", "f", "f", "o")  # all statuses, newest first
        await until(pilot, lambda: "status all · newest" in text_of(app, "#history-state"),
                    "all, newest first")
        monkeypatch.setattr(history, "PER_PAGE", 1)
        await pilot.press("slash", *"NEEDLE", "enter")
        await until(pilot, lambda: list(table.rows) == [ids[0]]
                    and "search 'NEEDLE'" in text_of(app, "#history-state"), "the needle")
        assert "page 1/1 · 1 items" in text_of(app, "#history-state")
        assert app.focused is table

        # Another search; re-queue the match.
        await pilot.press("slash", *["backspace"] * 6, *"h=1", "enter")
        await until(pilot, lambda: list(table.rows) == [ids[2]], "one match")
        await pilot.press("r")
        await until(pilot, lambda: service.get(f"/api/history/{ids[2]}").status_code == 404,
                    "the old record replaced")

    drive(app, scenario)


def test_logs_follow_filter_and_pause(service: Server, token: str,
                                      origin: MediaOrigin) -> None:
    app = ApplianceApp(ApiClient(Connection(service.url, token=token)))

    def shown() -> str:
        return lines_of(app, "#logs-log")

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("3")
        await until(pilot, lambda: "INFO" in shown(), "the newest records")
        item_id = service.post("/api/history", {"url": origin.short_url}).json()[0]["id"]
        await until(pilot, lambda: f"item={item_id}" in shown(),
                    "the live line")
        await pilot.press("l")  # WARNING and above
        await until(pilot, lambda: "WARNING and above" in text_of(app, "#logs-state"),
                    "the level")
        assert " INFO " not in shown()
        await pilot.press("l", "l", "l")  # back to INFO via ERROR and DEBUG
        await pilot.press("slash", *item_id[:8])
        await until(pilot, lambda: f"item={item_id}" in shown() and "connection open"
                    not in shown(), "only the matching records")
        await pilot.press("enter", "space")
        assert "PAUSED" in text_of(app, "#logs-state")
        app.screen.query_one("#logs-search", Input).value = ""
        await pilot.press("space")
        assert "following" in text_of(app, "#logs-state")

    drive(app, scenario)


def test_settings_lists_edits_and_tests_targets(service: Server, token: str) -> None:
    app = ApplianceApp(ApiClient(Connection(service.url, token=token)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("4")
        table = app.screen.query_one("#settings-table", DataTable)
        await until(pilot, lambda: table.row_count > 0, "the presets")
        assert "Presets" in text_of(app, "#settings-state")
        await pilot.press("k", "k", "k")
        await until(pilot, lambda: "Notification targets" in text_of(app, "#settings-state"),
                    "the targets")
        await pilot.press("n")
        editor = app.screen.query_one("#record-json", TextArea)
        editor.text = ('{"name": "hook", "request": {"url": "not a url"}}')
        await pilot.press("ctrl+s")
        error = await until(pilot, lambda: text_of(app, "#record-error"), "the refusal")
        assert "request.url" in error  # the service's own words, the editor still open
        editor.text = f'{{"name": "hook", "request": {{"url": "{service.url}/api/ping"}}}}'
        await pilot.press("ctrl+s")
        await until(pilot, lambda: table.row_count == 1, "the new target listed")
        await pilot.press("t")
        await until(pilot, lambda: service.get("/api/notifications").json()["items"][0][
            "last_status"] is not None, "the test sent")
        await pilot.press("d")
        await until(pilot, lambda: "Delete hook?" in text_of(app, "#confirm Static"), "ask")
        await pilot.press("y")
        await until(pilot, lambda: table.row_count == 0, "the target deleted")
        assert service.get("/api/notifications").json()["items"] == []
        await pilot.press("k")
        await until(pilot, lambda: "Engine settings" in text_of(app, "#settings-state"),
                    "the engine settings")
        names = [cell(app, "settings-table", str(k.value), "name") for k in table.rows]
        assert "max_concurrent_downloads" in names

    drive(app, scenario)


def test_unreachable_service_gets_one_clear_screen() -> None:
    app = ApplianceApp(ApiClient(Connection("http://127.0.0.1:9")))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: getattr(app.screen, "kind", "") == "unreachable"
                    and app.screen.query("#problem-advice"), "the screen")
        text = text_of(app, "#problem-advice")
        assert "systemctl status appliance" in text
        assert "connection refused" in text_of(app, "#problem-reason")
        await pilot.press("1", "a", "P")  # nothing behind it to act on: no crash
        first = app.screen
        await pilot.press("r")  # try again: a new answer, the same screen
        await until(pilot, lambda: app.screen is not first
                    and getattr(app.screen, "kind", "") == "unreachable"
                    and app.screen.query("#problem-advice"), "the screen again")
        await pilot.press("q")

    drive(app, scenario)
    assert app.return_code == 0


def test_refused_credentials_get_one_clear_screen(service: Server) -> None:
    app = ApplianceApp(ApiClient(Connection(service.url, token="wrong")))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: getattr(app.screen, "kind", "") == "refused"
                    and app.screen.query("#problem-advice"), "the screen")
        assert "appliance web showtoken" in text_of(app, "#problem-advice")
        assert "Invalid credentials." in text_of(app, "#problem-reason")

    drive(app, scenario)


def test_reconnects_after_a_restart_and_misses_nothing(make_server: Callable[..., Server],
                                                       origin: MediaOrigin,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server("restart")
    app = ApplianceApp(ApiClient(Connection(server.url)))
    # At the origin's rate, which follows the test: slow until the stop, so that it runs
    # then; fast once the service is back, so that its resumption is not waited out.
    monkeypatch.setattr(origin, "slow_rate", 512 * 1024)
    running = origin.slow_url

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        first = server.post("/api/history", {"url": running}).json()[0]["id"]
        await until(pilot, lambda: app.model.items.get(first, {}).get("status") ==
                    "downloading", "the download running")
        await asyncio.to_thread(server.stop)
        await until(pilot, lambda: app.screen.query_one("#banner").display, "the banner")
        assert "Disconnected" in text_of(app, "#banner")
        origin.slow_rate = 16 * 1024 * 1024
        restarted = await asyncio.to_thread(
            lambda: Server(server.root, server.env, port=server.port).start())
        try:
            # Added while the TUI is still away: it must come with the catch-up.
            second = restarted.post("/api/history", {"url": origin.clip2_url}).json()[0]["id"]
            await until(pilot, lambda: not app.screen.query_one("#banner").display,
                        "the banner gone", seconds=60)
            await until(pilot, lambda: second in app.model.items, "the item added meanwhile")
            await until(pilot, lambda: app.model.items[first]["status"] == "finished",
                        "the interrupted download finished", seconds=90)
            await until(pilot, lambda: app.model.items[second]["status"] == "finished",
                        "the other one finished")
        finally:
            await asyncio.to_thread(restarted.stop)

    drive(app, scenario)


def test_a_crash_prints_one_line_and_writes_the_details(
        service: Server, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    app = ApplianceApp(ApiClient(Connection(service.url, token=token)))

    def broken() -> None:
        raise RuntimeError("a bug in a view")

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        app.get_screen_main().query_one(QueueView).repaint = broken
        await until(pilot, lambda: app.return_code == 1, "the app to stop")

    with pytest.raises(RuntimeError, match="a bug in a view"):
        drive(app, scenario)
    log = tmp_path / "appliance" / "tui.log"
    assert app.crash_report == ("appliance tui stopped on an error: RuntimeError: a bug in a "
                                f"view\nThe details are in {log}\n")
    assert "Traceback" in log.read_text() and "a bug in a view" in log.read_text()


def test_a_gone_download_folder_is_shown_until_it_is_back(
        make_server: Callable[..., Server]) -> None:
    """Why downloads wait stays on the queue's screen while they do (a toast would be long
    gone): known at connect from the health check, then kept by the websocket's events."""
    server = make_server("folder")
    downloads = server.download_path
    away = downloads.with_name("downloads-away")
    app = ApplianceApp(ApiClient(Connection(server.url)))

    def said() -> str:
        problem = app.screen.query("#folder-problem")
        return text_of(app, "#folder-problem") if problem and problem.first().display else ""

    downloads.rename(away)
    server_saw = wait_for(lambda: (h := server.get("/api/health").json())["download_folder"]
                          != "ok" and h["download_folder"], timeout=30,
                          message="the service to notice")

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        assert said() == server_saw
        assert "is missing" in server_saw
        await asyncio.to_thread(away.rename, downloads)
        await until(pilot, lambda: not said(), "the problem gone once the folder is back")
        await asyncio.to_thread(downloads.rename, away)
        await until(pilot, lambda: said() == server_saw, "the problem shown again")
        await asyncio.to_thread(away.rename, downloads)

    drive(app, scenario)


def test_a_message_from_the_service_is_text_never_markup(service: Server, token: str) -> None:
    """A failed download's error names the site's title; ``[/b]`` in it stopped the TUI (the
    toast could not be drawn) and ``[@click=app.quit]`` made a link to one of its actions."""
    app = ApplianceApp(ApiClient(Connection(service.url, token=token)))
    message = "Download failed: [/b] a [@click=app.quit]title[/]"

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        app.on_live_event(LiveEvent("log_error", {}, title="[b]Error[/x]", message=message))
        toast = await until(pilot, lambda: app.screen.query(Toast).first(Toast)
                            if app.screen.query(Toast) else None, "the toast")
        await pilot.pause()
        assert str(toast.render()) == f"[b]Error[/x]\n{message}"
        await pilot.click(toast, offset=(20, 2))  # on the would-be link
        await pilot.pause()
        assert app.is_running

    drive(app, scenario, notifications=True)


def test_a_crash_report_shows_control_characters() -> None:
    assert shown_lines("stopped: \x1b]2;PWNED\x07\nsee \x9b2J") == (
        "stopped: ␛]2;PWNED␇\nsee �2J\n")


def test_a_queue_larger_than_the_tui_holds_comes_as_its_running_and_newest_items(
        make_server: Callable[..., Server], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot is asked for as many items as the TUI holds (a queue of tens of
    thousands would pass the client's answer bound) and the note says the rest is left out."""
    monkeypatch.setattr(tui_app, "MAX_ITEMS", 2)
    monkeypatch.setattr(tui_model, "MAX_ITEMS", 2)
    server = make_server("big-queue")
    server.post("/api/system/pause", {})
    added = server.post("/api/history", [{"url": u} for u in origin.playlist_entry_urls]).json()
    ids = [item["id"] for item in added]
    asked: dict[str, Any] = {}

    class Client(ApiClient):
        def _send(self, method: str, path: str, **kwargs: Any) -> Any:
            asked[path] = kwargs.get("params")
            return super()._send(method, path, **kwargs)

    app = ApplianceApp(Client(Connection(server.url)))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        table = app.screen.query_one("#queue-table", DataTable)
        await until(pilot, lambda: table.row_count == 2, "two rows")
        # what was sent: none of the queue with the configuration, two items of it live
        assert asked["/api/system/configuration"] == {"queue_limit": 0}
        assert asked["/api/history/live"] == {"queue_limit": 2}
        assert list(app.model.items) == ids[1:]
        assert app.screen.query_one("#left-out").display
        assert text_of(app, "#left-out") == LEFT_OUT

    drive(app, scenario)
