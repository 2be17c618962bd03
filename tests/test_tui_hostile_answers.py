"""``appliance tui`` and the commands against answers the hostile service shapes to break what
reads them after the client's checks (tests/support/hostile.py, in this process): arrays
nested hundreds deep, texts of megabytes, an add answered with nothing, frame rates no number
reads, statuses that are objects; and a log stream the Logs view opened while it was being
left, or lost to a restart."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.commands import isolated_home, run
from support.hostile import Held, HostileService, Stream, hostile_service
from support.tui_pilot import connected, drive, lines_of, text_of, until
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widgets import DataTable, Static, TextArea

from appliance import cli
from appliance.auth.authfile import AuthFile
from appliance.auth.passwords import verify_password
from appliance.client import ApiClient, ApiError, Connection
from appliance.client.http import ERROR_CHARS
from appliance.tui import app as tui_app
from appliance.tui import crash
from appliance.tui.app import ApplianceApp
from appliance.tui.format import (
    CLIP_HEAD,
    CLIP_TAIL,
    MESSAGE_CHARS,
    TOO_DEEP,
    clipped,
    cut,
    json_text,
    named,
)
from appliance.tui.screens.add import AddScreen
from appliance.tui.screens.confirm import DeleteScreen
from appliance.tui.screens.details import table_of
from appliance.tui.screens.problem import ProblemScreen
from appliance.tui.screens.text import LogScreen
from appliance.tui.views.files import media_summary
from appliance.tui.views.logs import LogsView
from appliance.tui.views.subscriptions import inspection

pytestmark = pytest.mark.xdist_group("tui_hostile")

service = pytest.fixture(hostile_service)


def nested(depth: int) -> Any:
    """``[[[…]]]``, ``depth`` deep: Python's JSON reads it (up to its recursion limit)."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


class Told(ApplianceApp):
    """The app, with every toast it shows kept."""

    def __init__(self, client: ApiClient) -> None:
        super().__init__(client)
        self.told: list[tuple[str, str]] = []

    def on_notify(self, event: Notify) -> None:  # the toast as Textual gets it
        self.told.append((event.notification.message, event.notification.severity))


@pytest.fixture(autouse=True)
def _no_crash_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    yield
    assert not (tmp_path / "state" / "appliance" / "tui.log").exists()


def test_an_answer_nested_deep_or_megabytes_long_is_a_short_toast(
        service: HostileService) -> None:
    """The account of an answer recursed into arrays (a few hundred deep ran out of stack in
    the worker and stopped the TUI), and a toast took any length (an error text of megabytes
    froze the TUI for seconds a megabyte while it was laid out)."""
    answers = [nested(600), {"message": "m" * 100_000}, {"a": nested(2), "b": 1},
               (500, {"error": "\x1b]2;e" * 50_000})]
    service.answers["/api/history/live"] = {"history_count": 0, "queue": {"a": {
        "id": "a", "title": "t", "status": "pending", "kind": "queue"}}}
    app = Told(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await until(pilot, lambda: app.screen.query_one("#queue-table", DataTable).row_count,
                    "the item")
        for count, answer in enumerate(answers, start=1):
            service.answers["POST /api/history/start"] = answer
            await pilot.press("s")
            await until(pilot, lambda count=count: len(app.told) == count, f"toast {count}")

    drive(app, scenario, notifications=True)
    assert not app.crash_report
    most = MESSAGE_CHARS
    assert app.told[0] == ("done", "information")
    assert app.told[1] == ("m" * (most - 1) + "…", "information")
    assert app.told[2] == ("[[[]]], 1", "information")
    assert app.told[3] == (("\x1b]2;e" * most)[:most - 1] + "…", "error")


def test_describe_writes_arrays_and_objects_of_an_answer_as_json() -> None:
    describe = tui_app.describe
    assert describe([{"status": "queued", "url": "u"}, "text", 5]) == "queued: u; text; done"
    assert describe([]) == describe({}) == describe(None) == "done"
    assert describe({"a": [1, "é"], "b": None, "c": True}) == '[1, "é"], None, True'
    assert describe({"status": ["x"], "url": {"u": 1}}) == '["x"]: {"u": 1}'
    assert describe({"message": {"m": 1}, "other": 2}) == '{"m": 1}'
    assert describe("as it is") == "as it is"
    assert cut("x" * MESSAGE_CHARS) == "x" * MESSAGE_CHARS


def test_a_reason_of_megabytes_is_cut_where_it_is_shown(service: HostileService) -> None:
    """The connection's problem, the banner of a disconnect and the download folder's
    problem show the service's words by their start and end (a text of megabytes froze the
    TUI while it was laid out; 2,000 characters pushed the rest off the screen)."""
    long = "x" * 100_000
    shown = named("x" * (MESSAGE_CHARS - 1) + "…")  # (the client's cut of an error, named)
    configuration = service.answers["/api/system/configuration"]
    service.answers["/api/system/configuration"] = (500, {"error": long})
    service.answers["/api/health"] = {"download_folder": long}
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: isinstance(app.screen, ProblemScreen)
                    and text_of(app, "#problem-reason"), "the problem")  # (once composed)
        assert text_of(app, "#problem-reason") == f"{service.url}: {shown}"
        service.answers["/api/system/configuration"] = configuration
        await pilot.press("r")
        await connected(pilot)
        assert text_of(app, "#folder-problem") == named(long)
        service.answers["/api/history/live"] = (500, {"error": long})
        service.drop_websockets()
        await until(pilot, lambda: shown in text_of(app, "#banner"), "the banner")
        assert text_of(app, "#banner").startswith(f"Disconnected from {service.url}: {shown}.")

    drive(app, scenario)
    assert not app.crash_report


def test_an_add_answered_with_no_item_says_so(service: HostileService) -> None:
    service.answers["POST /api/history"] = []
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("a")
        screen = await until(pilot, lambda: isinstance(app.screen, AddScreen) and app.screen,
                             "the add screen")
        screen.query_one("#add-urls", TextArea).text = "https://a.example/1"
        await pilot.press("ctrl+s")
        answers = screen.query_one("#add-answers", Static)
        await until(pilot, lambda: "✗" in str(answers.render()), "the answer")
        assert str(answers.render()) == ("✗ https://a.example/1: the service's answer names "
                                         "no item")
        assert screen.query_one("#add-urls", TextArea).text == "https://a.example/1"

    drive(app, scenario)
    assert not app.crash_report


def test_sidecars_listed_as_plain_names_and_an_inspection_of_entries_are_shown() -> None:
    """Another version's shapes: sidecars as names rather than objects (``f.get`` of a name
    stopped the details' worker) and a URL's inspection that calls its list ``entries``."""
    summary = media_summary({"ffprobe": {}, "sidecar": {
        "subtitle": ["shows/a.en.srt", {"file": "shows/a.de.srt"}]}})
    assert summary.plain == ("media      not media ffprobe reads\n"
                             "subtitle   a.en.srt, a.de.srt\n")
    shown = inspection({"handler": "rss", "entries": [{"title": "A", "url": "https://a/1"}]})
    assert shown.plain == "handler   rss\n1 entries\n  A  https://a/1\n"


@pytest.mark.parametrize(("rate", "shown"), [
    ("30000/1001", "h264 · 640x360 · 30 fps"), ("25/1", "h264 · 640x360 · 25 fps"),
    ("0/0", "h264 · 640x360"), ("²/1", "h264 · 640x360"),
    pytest.param("9" * 5000 + "/1", "h264 · 640x360", id="5000 digits"),
    pytest.param("1" + "0" * 400 + "/1", "h264 · 640x360", id="1e400"), ("-25/1", "h264 · 640x360"),
    ("25", "h264 · 640x360"), ("1/3", "h264 · 640x360 · 0.333 fps"),
])
def test_a_frame_rate_is_shown_only_when_it_is_a_number(rate: str, shown: str) -> None:
    """ffprobe's rate, as the service passes it on: ``int()`` of what ``isdigit()`` let
    through raised on "²" and on 5,000 digits, and the division on 400, in the worker of the
    file's details, which stopped the TUI."""
    summary = media_summary({"ffprobe": {"streams": [
        {"codec_type": "video", "codec_name": "h264", "width": 640, "height": 360,
         "avg_frame_rate": rate}]}})
    assert summary.plain == f"video      {shown}\n"


@pytest.mark.parametrize(("duration", "shown"), [
    ("61.5", "duration   1:01\n"), ("inf", ""), ("-1", ""), ("nan", ""), ("1e400", "")])
def test_a_duration_is_shown_only_when_it_is_a_time(duration: str, shown: str) -> None:
    """ffprobe's duration is text: float() reads "inf" (int() of it raised in the details'
    worker) and "nan"."""
    summary = media_summary({"ffprobe": {"format": {"duration": duration}, "streams": []}})
    assert summary.plain == shown


def ending_streams(service: HostileService,
                   scenario: Callable[[Pilot], Awaitable[None]]) -> Callable[[Pilot], Any]:
    """``scenario``, then the service ends its held streams: a client that still reads one
    (the bug these tests look for) would hold the app's exit, and the test, for ever."""
    async def run(pilot: Pilot) -> None:
        try:
            await scenario(pilot)
        finally:
            service.streams_end.set()

    return run


def logs_view(app: ApplianceApp) -> LogsView:
    return app.screen.query_one(LogsView)


def test_a_log_stream_opened_after_the_view_was_left_is_closed(
        service: HostileService) -> None:
    """The Logs view asks for the newest records, then opens the stream; a person who left
    the view before a slow service answered left the stream open for the TUI's life, holding
    one of the service's few stream slots."""
    first = service.answers["/api/logs"] = Held({"logs": []})
    service.answers["/api/logs/stream"] = Stream(b": hello\n\n", held=True)
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("3")
        await until(pilot, lambda: "GET /api/logs" in service.asked, "the records asked for")
        await pilot.press("1")
        first.released.set()
        await until(pilot, lambda: service.streams_left == 1, "the stream closed")
        assert logs_view(app).stream is None
        # Shown: the stream stays open, and is closed when the view is left.
        service.answers["/api/logs"] = {"logs": [{"id": "1", "message": "a record"}]}
        await pilot.press("3")
        await until(pilot, lambda: service.streams_open == 1 and logs_view(app).stream,
                    "the stream open")
        await pilot.press("1")
        await until(pilot, lambda: service.streams_left == 2, "the stream closed again")
        assert service.streams_open == 0

    drive(app, ending_streams(service, scenario))
    assert not app.crash_report


async def one_subscription_shown(app: ApplianceApp, pilot: Pilot) -> DataTable:
    """The Subscriptions view, once it shows the service's one subscription."""
    await connected(pilot)
    await pilot.press("5")
    table = app.screen.query_one("#subscriptions-table", DataTable)
    await until(pilot, lambda: table.row_count == 1, "the subscription")
    return table


def test_a_runs_log_opened_after_its_screen_was_closed_is_closed(
        service: HostileService) -> None:
    """The same for a subscription's run: its log, opened after Esc, was read until the run
    ended (hours for a long playlist), holding a stream slot."""
    service.answers["/api/tasks"] = {"items": [{"id": 1, "name": "a subscription"}],
                                     "pagination": {"has_next": False}}
    service.answers["/api/executions"] = {"items": [{"id": 7}]}
    log = service.answers["/api/executions/7/log"] = Held(Stream(b": x\n\n", held=True))
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        table = await one_subscription_shown(app, pilot)
        assert "url" in table.columns  # 100 columns hold it
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, DeleteScreen), "the question")
        assert str(app.screen.query(Static).first().render()) == (
            "Delete the marks of a subscription (its entries may be queued again)?")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DeleteScreen), "no question")
        await pilot.press("l")
        await until(pilot, lambda: "GET /api/executions/7/log" in service.asked, "the log")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, LogScreen), "the screen closed")
        log.released.set()
        await until(pilot, lambda: service.streams_left == 1, "the stream closed")

    drive(app, ending_streams(service, scenario), size=(100, 30))
    assert not app.crash_report


def test_a_runs_log_refused_in_markup_is_said_as_text(service: HostileService) -> None:
    """Why a run's log could not be followed is the service's text: ``[/b]`` in it stopped
    the TUI (the line's Static read it as markup), and ``[@click=app.quit]`` made a link."""
    service.answers["/api/tasks"] = {"items": [{"id": 1, "name": "a subscription"}],
                                     "pagination": {"has_next": False}}
    error = "[/b] no log: [@click=app.quit]here[/] [link=https://x.example]x[/link]"
    service.answers["/api/executions"] = (500, {"error": error})
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await one_subscription_shown(app, pilot)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen)
                    and text_of(app, "#text-state") == error, "the reason, as it was said")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, LogScreen), "the screen closed")

    drive(app, scenario, size=(100, 30))
    assert not app.crash_report


def test_a_subscription_that_never_ran_says_so_and_an_add_says_it_is_under_way(
        service: HostileService) -> None:
    service.answers["/api/tasks"] = {"items": [{"id": 1, "name": "new"}],
                                     "pagination": {"has_next": False}}
    service.answers["/api/executions"] = {"items": []}
    added = service.answers["POST /api/history"] = Held([{"status": "queued", "id": "x"}])
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))

    async def scenario(pilot: Pilot) -> None:
        await one_subscription_shown(app, pilot)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen)
                    and text_of(app, "#text-state") != "following…", "the answer")
        assert text_of(app, "#text-state") == "This subscription has not run yet."
        await pilot.press("escape", "1", "a")
        area = await until(pilot, lambda: isinstance(app.screen, AddScreen)
                           and app.screen.query_one("#add-urls", TextArea), "the form")
        area.text = "https://a.example/1"
        await pilot.press("ctrl+s")
        assert text_of(app, "#add-answers") == "Queueing …"  # until the service answers
        added.released.set()
        await until(pilot, lambda: "✓" in text_of(app, "#add-answers"), "the answer")

    drive(app, scenario, size=(100, 30))
    assert not app.crash_report


def test_the_log_stream_comes_back_with_the_service(service: HostileService) -> None:
    """A restart ends the log stream; the queue reconnects by itself, and now the Logs view
    (if shown) follows again too, instead of staying silent until it is left and shown."""
    record = json.dumps({"id": "1", "line": "2024-05-01 12:00:00,1 INFO x: first"})
    service.answers["/api/logs"] = {"logs": []}
    service.answers["/api/logs/stream"] = Stream(
        f"event: log_lines\ndata: {record}\n\n".encode())  # then closed, as by a restart
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))

    def lines() -> str:
        return lines_of(app, "#logs-log")

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("3")
        await until(pilot, lambda: "first" in lines() and logs_view(app).stream is None,
                    "the first stream, ended")
        record2 = json.dumps({"id": "2", "line": "2024-05-01 12:00:01,1 INFO x: second"})
        service.answers["/api/logs/stream"] = Stream(
            f"event: log_lines\ndata: {record2}\n\n".encode())
        service.drop_websockets()
        await until(pilot, lambda: "second" in lines(), "the stream again, after the reconnect")
        assert service.asked.count("GET /api/logs/stream") == 2

    drive(app, scenario)
    assert not app.crash_report


# --- the commands ---------------------------------------------------------------------------


home = pytest.fixture(isolated_home)


def test_status_shows_a_status_that_is_no_text(
        service: HostileService, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A status of an object or array was a TypeError (its format with a width) and a
    traceback."""
    service.answers["/api/history/live"] = {"queue": {
        "a": {"title": "t", "status": {"x": "\x1b[2J"}},
        "b": {"title": "u", "status": ["downloading"], "percent": 5}}}
    code, out, _ = run(capsys, "status", "--url", service.url)
    assert code == 0
    assert out.splitlines() == ["{'x': '\\x1b[2J'}    -   t",
                                "['downloading']   5.0% u",
                                "2 in queue, 0 in history"]


def test_an_update_whose_state_is_no_text_is_not_a_crash(
        service: HostileService, home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A state of an array or object was a TypeError (unhashable, in a set) and a
    traceback; it is no failure the service said, and no success either: it is shown."""
    monkeypatch.setenv("YTP_PORT", service.url.rpartition(":")[2])
    service.answers["/api/ping"] = {}
    service.answers["/api/system/ytdlp/update"] = {}
    for state, code in ((["failed"], 0), ({"a": 1}, 0), ("rolled_back", 1), ("failed", 1)):
        service.answers["/api/system/ytdlp"] = {"installed": "1", "latest": "2",
                                                "update": {"state": state, "message": "m"}}
        assert run(capsys, "ytdlp", "update") == (
            code, "the service is updating yt-dlp ...\nyt-dlp 1 installed, newest 2: m\n", "")


def test_what_is_nested_too_deep_to_write_is_said_not_a_crash() -> None:
    """An item's field, an inspection's rest or a setting's value nested close to Python's
    limit is read in a worker thread and was written as JSON in the UI's, deeper: the
    details of such an item stopped the TUI with a RecursionError."""
    deep = nested(sys.getrecursionlimit())
    assert json_text(deep) == json_text(deep, indent=1) == TOO_DEEP
    assert f"x                {TOO_DEEP}\n" in table_of({"id": "a", "x": deep}).plain
    # a size that is no number: as any other value (its text in brackets recursed)
    assert table_of({"id": "a", "total_bytes": deep}).plain == (
        f"id               a\ntotal_bytes      {TOO_DEEP}\n")
    assert table_of({"file_size": "big", "x_bytes": 2048}).plain == (
        "file_size        big\nx_bytes          2.0 KiB (2048)\n")
    assert inspection({"handler": "h", "rest": deep}).plain == (
        f"handler   h\n0 entries\n{TOO_DEEP}")
    assert json_text({"a": ["é", 1]}) == '{"a": ["é", 1]}'
    assert json_text({"a": ["é"]}, indent=1) == '{\n "a": [\n  "é"\n ]\n}'


def test_add_leaves_out_what_an_answer_does_not_name(
        service: HostileService, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    service.answers["/api/history"] = [{"status": "queued", "id": "1"}, {}]
    code, out, _ = run(capsys, "add", "u", "v", "--url", service.url)
    assert (code, out) == (0, "queued 1 \nqueued  \n")


def test_web_passwd_stores_the_password_and_refuses_a_short_one(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "web", "passwd", "correct horse")
    assert (code, out) == (0, "Password updated. Log in as user 'appliance'; existing login "
                              "sessions have been ended.\n")
    stored = AuthFile(home / "config").read().password
    assert stored is not None and verify_password("correct horse", stored)
    assert run(capsys, "web", "passwd", "short") == (
        2, "", "appliance: the password must be at least 8 characters long\n")
    assert AuthFile(home / "config").read().password == stored


def test_failures_are_counted_from_local_midnight(service: HostileService) -> None:
    """The TUI's "failed today" at connect: the errors of the history since local midnight
    (the first minute after it counts, the last one before it does not)."""
    midnight = time.mktime((*time.localtime()[:3], 0, 0, 0, 0, 0, -1))
    service.answers["/api/history"] = {
        "items": [{"id": str(n), "status": "error", "finished_at": at}
                  for n, at in enumerate((midnight + 60, midnight - 60, "noon", None))],
        "pagination": {"page": 1, "total": 4, "total_pages": 1}}
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))
    assert app.failed_today() == 1
    assert service.queries[-1] == "type=done&page=1&per_page=500&status=error&order=DESC"


def test_the_crash_log_goes_to_the_state_folder(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert crash.crash_log_path() == tmp_path / "xdg" / "appliance" / "tui.log"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert crash.crash_log_path() == tmp_path / ".local" / "state" / "appliance" / "tui.log"
    # readable by the person alone, whatever the umask
    old = os.umask(0o022)
    try:
        written = crash.write_crash_log(ValueError("boom"))
    finally:
        os.umask(old)
    assert written.stat().st_mode & 0o777 == 0o600
    assert written.parent.stat().st_mode & 0o777 == 0o700
    assert "ValueError: boom" in written.read_text()
    # a state folder that cannot be made (a file by its name): said in the log, no raise
    monkeypatch.setenv("XDG_STATE_HOME", str(written))
    with caplog.at_level(logging.ERROR, logger="appliance.tui.crash"):
        path = crash.write_crash_log(ValueError("boom"))
    assert [r.getMessage() for r in caplog.records] == [f"cannot write {path}"]


@pytest.mark.parametrize("terminal", ["", "stdin", "stderr"])
def test_the_tui_without_a_terminal_says_so(
        terminal: str, service: HostileService, home: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``ssh HOST appliance tui`` (no -t), a script, ``2>file``: the TUI drew its screen
    into a pipe and waited for keys no one could press. One line, before any password is
    asked; with both a terminal, it runs."""
    ran: list[ApiClient] = []
    monkeypatch.setattr(tui_app, "run", lambda client: ran.append(client) or 0)
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: "asked")
    if terminal:
        monkeypatch.setattr(getattr(sys, terminal), "isatty", lambda: True)
    assert run(capsys, "tui", "--url", service.url, "--user", "u") == (
        1, "", "appliance: the TUI needs a terminal for its keys and its screen (over SSH: "
               "ssh -t HOST appliance tui)\n")
    assert ran == []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert run(capsys, "tui", "--url", service.url, "--user", "u") == (0, "", "")
    assert [c.connection.password for c in ran] == ["asked"]


def test_log_records_of_megabytes_are_shown_by_their_start_and_end(
        service: HostileService) -> None:
    """Each record of the stream was laid out whole in the UI thread (five of 4 MiB: the TUI
    frozen for over a minute) and 2,000 of them kept: a record is its start and its end."""
    text = "2024-05-01 12:00:00,1 ERROR x: " + "s" * CLIP_HEAD + "m" * 2**20 + "e" * CLIP_TAIL
    records = [{"id": str(n), "line": text} for n in range(3)]
    service.answers["/api/logs"] = {"logs": [{"id": "old", "level": "ERROR", "logger": "x",
                                              "message": "o" * 2**20}]}
    service.answers["/api/logs/stream"] = Stream(
        f"event: log_lines\ndata: {json.dumps(records)}\n\n".encode())
    app = ApplianceApp(ApiClient(Connection(service.url, token="t")))
    shown = f"{text[:CLIP_HEAD]} … ({2**20 + 31:,} characters left out) … {'e' * CLIP_TAIL}"

    async def scenario(pilot: Pilot) -> None:
        await connected(pilot)
        await pilot.press("3")
        view = logs_view(app)
        await until(pilot, lambda: len(view.records) == 4, "the records")
        assert [r.level for r in view.records] == ["ERROR"] * 4
        assert [r.text for r in list(view.records)[1:]] == [shown] * 3
        older = view.records[0].text  # (GET /api/logs: " LEVEL logger: message")
        assert older.startswith(" ERROR x: ooo") and older.endswith("o" * CLIP_TAIL)
        assert f"({2**20 + 10 - CLIP_HEAD - CLIP_TAIL:,} characters left out)" in older

    drive(app, ending_streams(service, scenario))
    assert not app.crash_report
    assert clipped("x" * (CLIP_HEAD + CLIP_TAIL)) == "x" * (CLIP_HEAD + CLIP_TAIL)


def test_an_items_error_of_megabytes_is_shown_by_its_start_and_end() -> None:
    """The details of an item whose error was 4 MiB froze the TUI for 44 s (laid out whole
    in the UI thread); a file's details likewise."""
    error = "s" * CLIP_HEAD + "m" * 4 * 2**20 + "e" * CLIP_TAIL
    assert table_of({"error": error}).plain == f"error            {clipped(error)}\n"
    assert clipped(error) == (f"{'s' * CLIP_HEAD} … ({4 * 2**20:,} characters left out) … "
                              f"{'e' * CLIP_TAIL}")
    assert media_summary({"title": error, "ffprobe": {}}).plain.startswith(
        f"title      {clipped(error)}\n")


def test_an_error_text_of_megabytes_is_cut_where_it_is_read(
        service: HostileService, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The service's error text (up to the client's 32 MiB bound) went whole into the add
    screen's answers (the TUI frozen for 12 s by one of 4 MiB) and to stderr: it is cut
    when the client reads it, for every place that shows it."""
    said = "x " * 2**21
    service.answers["POST /api/history"] = (400, {"error": said})
    code, out, err = run(capsys, "add", "u", "--url", service.url)
    assert (code, out) == (1, "")
    assert err == f"appliance: {said[:ERROR_CHARS - 1]}…\n"
    assert str(ApiError(400, "e" * ERROR_CHARS)) == "e" * ERROR_CHARS
