"""``appliance tui``, ``status``, ``add`` and ``ytdlp`` against a hostile or broken service
(tests/support/hostile.py, in this process): junk, wrong types, missing fields, huge or
trickled answers, markup and terminal controls in what it names, a websocket that sends
garbage. They never crash, hang or draw controls raw, and say plainly what went wrong."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from support.commands import isolated_home, run
from support.hostile import HEALTH, Held, HostileService, Stream, Trickle, hostile_service
from support.tui_pilot import connected, drive, text_of, until
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widgets import DataTable, Select

from appliance import cli
from appliance.client import (
    ApiClient,
    ApiError,
    Connection,
    Unreachable,
    parse_frame,
    resolve,
)
from appliance.client import http as client_http
from appliance.tui import app as tui_app
from appliance.tui.app import ApplianceApp
from appliance.tui.screens.add import AddScreen
from appliance.tui.screens.problem import ProblemScreen

pytestmark = pytest.mark.xdist_group("tui_hostile")

service = pytest.fixture(hostile_service)


def client_of(service: HostileService) -> ApiClient:
    return ApiClient(Connection(service.url, token="t"))


@pytest.mark.parametrize(("path", "answer", "call", "said"), [
    ("/api/history/live", [], "live", "the live queue should be an object, not an array"),
    ("/api/history/live", {"queue": {"a": "x"}}, "live", "each item of the live queue"),
    ("/api/history/live", {"queue": {}, "history_count": "9"}, "live", "history_count"),
    ("/api/history", {"items": [], "pagination": None}, "history", "pagination"),
    ("/api/history", {**{"items": [1]}, "pagination": {"page": 1, "total": 1,
                                                       "total_pages": 1}}, "history",
     "each of the history's items should be an object, not a number"),
    ("/api/system/configuration", {"app": []}, "configuration", "the configuration's app"),
    ("/api/health", "ok", "health", "the health should be an object, not a text"),
    ("/api/presets", {"items": [{"name": "no id"}]}, "records", "has no id"),
    ("/api/file/browser/", {"path": 7, "contents": [], "pagination": {
        "page": 1, "total": 0, "total_pages": 1}}, "browse", "the folder's path"),
    ("/api/logs", {"logs": {"a": 1}}, "logs", "the logs' records"),
    ("/api/history/live", b"<html>a proxy's page</html>", "live", "the answer is not JSON"),
    ("/api/history/live", b'{"queue": {}, "history_count": NaN}', "live",
     "the answer is not JSON"),
])
def test_an_answer_of_the_wrong_shape_is_an_error_that_says_so(
        service: HostileService, path: str, answer: Any, call: str, said: str) -> None:
    service.answers[path] = answer
    client = client_of(service)
    with pytest.raises(ApiError) as caught:
        if call == "records":
            client.records("presets")
        else:
            getattr(client, call)()
    assert said in caught.value.message


def test_a_huge_or_trickled_answer_ends_the_call(service: HostileService,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_http, "MAX_ANSWER", 4096)
    monkeypatch.setattr(client_http, "READ_SIZE", 1024)
    service.answers["/api/health"] = b"[" + b"0," * 4000 + b"0]"
    with pytest.raises(ApiError) as caught:
        client_of(service).health()
    assert caught.value.message == "the answer is larger than 0 MiB"
    service.answers["/api/health"] = (500, b"x" * 5000)  # an error's body too
    with pytest.raises(ApiError) as caught:
        client_of(service).health()
    assert caught.value.message == "the answer is larger than 0 MiB"
    # A byte every 20 ms never meets the per-read timeout; the whole answer has a deadline.
    monkeypatch.setattr(client_http, "ANSWER_SECONDS", 0.2)
    service.answers["/api/health"] = Trickle(size=1000, every=0.02)
    with pytest.raises(Unreachable) as late:
        client_of(service).health()
    assert late.value.reason == "the answer took longer than 0.2 s"


def test_a_log_stream_line_or_event_that_never_ends_ends_the_stream(
        service: HostileService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_http, "MAX_ANSWER", 4096)
    record = json.dumps({"id": "1", "line": "a record"}).encode()
    sound = b"event: log_lines\r\ndata: " + record + b"\r\n\r\nevent: log_lines\ndata: [1, "
    for tail, said in ((b"x" * 10_000, "a line"), ((b"\ndata: " + b"x" * 10) * 1000, "an event")):
        service.answers["/api/logs/stream"] = Stream(sound + tail)
        stream = client_of(service).log_stream()
        got: list[Any] = []
        with pytest.raises(Unreachable) as caught:
            got.extend(stream)
        assert got == [{"id": "1", "line": "a record"}]
        assert caught.value.reason == f"{said} of the stream is longer than 0 MiB"


def test_a_compressing_proxy_in_front_changes_nothing(service: HostileService) -> None:
    """nginx's ``gzip on`` and Caddy's ``encode`` compress JSON for a client that accepts it:
    requests asks for gzip by default, and the client read the compressed bytes as the
    answer ("the answer is not JSON", every call), error texts lost with them. It asks for
    none: what it bounds is then what it reads."""
    service.compress = True
    client = client_of(service)
    assert client.health() == HEALTH
    service.answers["/api/health"] = (401, {"error": "Invalid credentials.", "code": "x"})
    with pytest.raises(ApiError) as caught:
        client.health()
    assert (caught.value.status, caught.value.message) == (401, "Invalid credentials.")


def test_records_that_never_end_are_an_error_not_a_hang(
        service: HostileService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_http, "MAX_PAGES", 3)
    service.answers["/api/tasks"] = {"items": [{"id": 1}], "pagination": {"has_next": True}}
    with pytest.raises(ApiError, match="the tasks go on past 3 pages"):
        client_of(service).tasks()
    assert service.asked == ["GET /api/tasks"] * 3
    service.answers["/api/tasks"] = {"items": [{"id": 1}], "pagination": {"has_next": False}}
    assert client_of(service).tasks() == [{"id": 1}]


def test_json_nested_too_deep_to_read_is_junk_not_a_crash(service: HostileService) -> None:
    """Python's JSON reader raises RecursionError, not ValueError, on "[[[[…": an answer, an
    error's body, a log record or a websocket frame that nested stopped the TUI and the
    commands with a traceback."""
    deep = b"[" * 100_000
    service.answers["/api/history/live"] = deep
    service.answers["/api/health"] = (502, deep)
    service.answers["/api/logs/stream"] = Stream(b"event: log_lines\ndata: " + deep + b"\n\n")
    client = client_of(service)
    with pytest.raises(ApiError, match=r"^the answer is not JSON$"):
        client.live()
    with pytest.raises(ApiError, match=r"^HTTP 502 Bad Gateway$"):
        client.health()
    with pytest.raises(Unreachable, match="maximum recursion depth exceeded"):
        list(client.log_stream())
    assert parse_frame(deep) is None


@pytest.mark.parametrize("websocket", [
    {"port": "80@elsewhere.example"}, {"port": True}, {"port": 70000}, {"port": None},
    {"port": 8082, "path": "@elsewhere.example/ws"}, {"port": 8082, "path": ["/ws"]},
])
def test_the_websocket_goes_to_the_services_host_only(websocket: dict[str, Any]) -> None:
    """The credentials go with the websocket's handshake: a port or path the service names
    never makes it another host's URL."""
    client = ApiClient(Connection("http://127.0.0.1:8081", token="t"))
    with pytest.raises(ApiError, match="websocket"):
        client.websocket_url({"websocket": websocket})
    url = client.websocket_url({"websocket": {"port": 8082, "path": "/ws?x=@e#f"}})
    assert url == "ws://127.0.0.1:8082/ws%3Fx%3D%40e%23f"


def test_an_item_id_stays_one_path_segment(service: HostileService) -> None:
    service.answers["/api/history/..%2Fsystem%2Fpause"] = {"id": "x"}
    assert client_of(service).item("../system/pause") == {"id": "x"}
    assert service.asked[-1] == "GET /api/history/..%2Fsystem%2Fpause"


# --- the TUI --------------------------------------------------------------------------------

HOSTILE_QUEUE = {
    "a": {"title": "[/] no id, \x1b]2;retitled\x07", "status": "downloading", "kind": "queue",
          "created_at": "yesterday", "percent": "half", "speed": "fast", "eta": 1e308,
          "total_bytes": 10**400},
    "b": {"id": ["not", "a", "key"], "title": "[@click=app.quit]click me[/]",
          "status": "pending", "created_at": 5, "downloaded_bytes": 1, "total_bytes": 0},
}
FRAMES = [
    "not json", b"\x00\xff", "[]", "[" * 100_000, json.dumps({"event": 5}),
    json.dumps({"event": "item_error", "data": {"id": ["x"], "status": "error"}}),
    json.dumps({"event": "item_updated", "data": {"id": {"a": 1}, "kind": "queue"}}),
    json.dumps({"event": "item_updated", "data": {"id": "a", "percent": 42.0}}),
    json.dumps({"event": "download_folder", "data": {"problem": "[/b] gone: /media/[/]"}}),
    json.dumps({"event": "log_error", "data": {"message": "[/i] x", "title": "[/]"}}),
    json.dumps({"event": "files_changed", "data": {"folders": {"not": "a list"}}}),
    json.dumps({"event": "config_update", "data": {"feature": "tasks", "data": [1]}}),
]


def set_up(service: HostileService, *, folder: str, entry: dict[str, Any],
           finished: dict[str, Any], presets: list[Any], folders: list[Any],
           dl_fields: list[Any]) -> None:
    """A folder of two (the same) entries, a history of two (the same) items, the add
    screen's lists."""
    configuration = service.answers["/api/system/configuration"]
    configuration.update(presets=presets, folders=folders, dl_fields=dl_fields)
    page = {"page": 1, "total": 2, "total_pages": 1}
    service.answers[f"/api/file/browser/{quote(folder)}"] = {
        "path": folder, "contents": [entry, entry], "pagination": page}
    service.answers["/api/history"] = {"items": [finished, finished], "pagination": page}


async def visit(pilot: Pilot, folder: str) -> list[str]:
    """The files view on ``folder``, the history, the add screen: its form's labels."""
    app = pilot.app
    await pilot.press("6")
    app.screen.query_one("FilesView").go(folder)
    await until(pilot, lambda: text_of(app, "#files-state").startswith(f"/{folder} "),
                "the folder's name as it is")
    assert app.screen.query_one("#files-table", DataTable).row_count == 1  # a key once
    await pilot.press("2")
    await until(pilot, lambda: "page 1/1" in text_of(app, "#history-state"), "history")
    assert app.screen.query_one("#history-table", DataTable).row_count == 1
    await pilot.press("1", "a")
    await until(pilot, lambda: isinstance(app.screen, AddScreen), "the add screen")
    return [str(label.render()) for label in app.screen.query(".add-row Label")]


def test_names_in_brackets_are_text_never_markup(service: HostileService) -> None:
    """yt-dlp names files ``Title [id].ext``; folders are named ``Artist [Live]``: Textual
    read such a name as markup (dropped it, or stopped the TUI on a ``[/]``)."""
    service.answers["/api/health"] = {"download_folder": "the disk of /media/[/] is gone"}
    folder = "Music/Artist [Live]"
    set_up(service, folder=folder,
           entry={"type": "file", "name": "x [/].mp4", "path": f"{folder}/x [/].mp4"},
           finished={"id": "h", "title": "[/b]", "status": "finished"},
           presets=[{"name": "[/]"}], folders=[{"path": "[b]"}],
           dl_fields=[{"name": "[/i]", "field": "f"}])
    app = ApplianceApp(client_of(service))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        assert text_of(app, "#folder-problem") == "the disk of /media/[/] is gone"
        labels = await visit(pilot, folder)
        assert labels == ["Preset", "Folder", "Template", "Options", "[/i]"]
        options = app.screen.query_one("#add-preset", Select)._options
        assert [str(prompt) for prompt, _ in options[1:]] == ["[/]"]

    drive(app, scenario, size=(120, 40))
    assert not app.crash_report


def test_a_workers_answer_as_the_tui_closes_is_no_crash(service: HostileService) -> None:
    """A disk check (or a folder read) answered as the TUI closed reached the queue view with
    its widgets gone: the TUI ended on ``NoMatches`` (CI saw it). Such an answer is dropped,
    whether the closing began while it was on its way, before it came, or the TUI has ended;
    while the TUI runs, a widget not found is the bug it is."""
    app = ApplianceApp(client_of(service))
    answers: list[Any] = []

    def answer(callback: Callable[[], Any]) -> None:
        def call() -> None:
            try:
                answers.append(app.call_from_thread(callback))
            except NoMatches as exc:
                answers.append(exc)

        thread = threading.Thread(target=call)
        thread.start()
        thread.join(30)

    def missing() -> Any:
        return app.query_one("#no-such-widget")

    def closing_meanwhile() -> Any:  # the closing begins; the view's widgets are gone
        app._running = False  # (what Textual's shutdown sets first)
        return missing()

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        await asyncio.to_thread(answer, missing)
        await asyncio.to_thread(answer, closing_meanwhile)
        await asyncio.to_thread(answer, missing)  # still closing
        app._running = True  # (for the rest of the scenario)

    drive(app, scenario, size=(120, 40))
    answer(missing)  # the TUI has ended
    assert isinstance(answers[0], NoMatches) and answers[1:] == [None, None, None]
    assert not app.crash_report


def test_junk_from_the_service_and_its_websocket_is_never_a_crash(
        service: HostileService) -> None:
    # (the websocket's download_folder event says the same: the snapshot asks for the health
    # again, whose answer may come before or after the event)
    service.answers["/api/health"] = {"download_folder": "[/b] gone: /media/[/]",
                                      "download_path_free_bytes": "lots"}
    service.answers["/api/history/live"] = {"history_count": 2, "queue": HOSTILE_QUEUE}
    set_up(service, folder="f", entry={"type": 1, "name": None, "path": "f/x", "size": "big",
                                       "mtime": 7},
           finished={"id": 3, "title": ["t"], "status": None, "finished_at": "noon",
                     "file_size": 10**400},  # Python's JSON reads a whole number that long
           presets=[{"id": 1}, 3], folders=["old style"], dl_fields=[{"name": "no field"}, 4])
    service.frames = FRAMES
    app = ApplianceApp(client_of(service))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.connection_state == "connected", "connected")
        table = app.screen.query_one("#queue-table", DataTable)
        await until(pilot, lambda: table.row_count >= 2, "the two items")
        await until(pilot, lambda: text_of(app, "#folder-problem") == "[/b] gone: /media/[/]",
                    "the folder problem, as it was written")
        await until(pilot, lambda: app.model.items["a"].get("percent") == 42.0,
                    "the sound frame after the junk")
        assert app.model.items["a"]["id"] == "a"
        assert app.model.failed == 1  # the item_error, its list of an id made text
        assert await visit(pilot, "f") == ["Preset", "Folder", "Template", "Options"]
        assert len(app.screen.query_one("#add-preset", Select)._options) == 1  # the prompt

    drive(app, scenario, size=(120, 40), notifications=True)
    assert not app.crash_report


def test_a_live_queue_of_junk_is_a_disconnect_that_says_why(service: HostileService) -> None:
    service.answers["/api/history/live"] = {"queue": ["a", "b"]}
    app = ApplianceApp(client_of(service))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: "not one this client can read" in text_of(app, "#banner"),
                    "the banner naming the junk")
        assert "the live queue's queue should be an object, not an array" in text_of(
            app, "#banner")

    drive(app, scenario)
    assert not app.crash_report


def test_a_websocket_port_that_leads_elsewhere_is_one_clear_screen(
        service: HostileService) -> None:
    configuration = service.answers["/api/system/configuration"]
    configuration["websocket"] = {"port": f"{service.ws_port}@elsewhere.example"}
    app = ApplianceApp(client_of(service))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: isinstance(app.screen, ProblemScreen), "the problem")
        said = (f"{service.url}: the service names no usable websocket port: "
                f"'{service.ws_port}@elsewhere.example'")
        await until(pilot, lambda: text_of(app, "#problem-reason") == said, "the problem's text")

    drive(app, scenario)
    assert not app.crash_report


class Told(ApplianceApp):
    """The app, with every toast it shows kept."""

    def __init__(self, client: ApiClient) -> None:
        super().__init__(client)
        self.told: list[str] = []

    def notify(self, message: str, **kwargs: Any) -> None:
        self.told.append(message)
        super().notify(message, **kwargs)


def test_a_flood_of_errors_is_three_toasts_and_a_count(
        service: HostileService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tui_app, "TOAST_WINDOW", 0.5)
    service.frames = [json.dumps({"event": "log_error", "data": {"message": f"e{n}"}})
                      for n in range(500)] + [json.dumps({"event": "paused", "data": {}})]
    app = Told(client_of(service))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: app.model.paused, "the frame after the flood")
        # (the count may already be there: the window can end while the flood is read)
        assert app.told[:3] == ["e0", "e1", "e2"] and len(app.told) <= 4
        await until(pilot, lambda: len(app.told) == 4, "the count of the rest")
        assert app.told[3] == ("497 more errors and warnings from the service: the Logs "
                               "view (3) has them all.")

    drive(app, scenario)


# --- the commands ---------------------------------------------------------------------------


home = pytest.fixture(isolated_home)


def test_status_shows_what_it_can_of_a_broken_queue(
        service: HostileService, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    service.answers["/api/history/live"] = {"queue": {
        "a": {"title": "\x1b[2Jcleared", "percent": "50"},
        "b": {"url": "https://e.example/\x9b", "status": "downloading", "percent": 12.5},
        "c": {"title": "t", "status": "x", "percent": 10**400}}}
    code, out, _ = run(capsys, "status", "--url", service.url)
    assert code == 0
    assert out.splitlines() == ["?                  -   ␛[2Jcleared",
                                "downloading      12.5% https://e.example/�",
                                "x                  -   t",
                                "3 in queue, 0 in history"]
    # A queue larger than what is listed: what is shown is said, the count is the service's
    service.answers["/api/history/live"] = {
        "queue": {"a": {"title": "t", "status": "downloading"}}, "queue_count": 30_000,
        "history_count": 7}
    code, out, _ = run(capsys, "status", "--url", service.url)
    assert (code, out.splitlines()[1:]) == (0, [
        "(the 1 shown are the running ones and the newest waiting)",
        "30000 in queue, 7 in history"])
    assert service.queries[-1] == f"queue_limit={cli.STATUS_ITEMS}"
    service.answers["/api/history/live"] = {"queue": ["a"], "history_count": 0}
    code, out, err = run(capsys, "status", "--url", service.url)
    assert (code, out) == (1, "")
    assert err == ("appliance: the service's answer is not one this client can read: the "
                   "live queue's queue should be an object, not an array\n")


def test_add_shows_each_answer_and_refuses_junk(
        service: HostileService, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    service.answers["/api/history"] = [{"status": "exists", "id": "\x1b]2;x\x07",
                                        "url": "u", "removed_options": [1, "--exec"]}]
    code, out, _ = run(capsys, "add", "u", "--url", service.url)
    assert (code, out) == (0, "exists ␛]2;x␇ u (removed options: 1 --exec)\n")
    service.answers["/api/history"] = [{"status": "queued", "id": "1", "url": "u",
                                        "removed_options": 5}]  # (no list: a traceback)
    assert run(capsys, "add", "u", "--url", service.url)[:2] == (
        0, "queued 1 u (removed options: 5)\n")
    service.answers["/api/history"] = {"status": "queued"}
    code, _, err = run(capsys, "add", "u", "--url", service.url)
    assert code == 1 and "the answers to an add should be an array, not an object" in err


def test_an_unreachable_address_is_shown_not_obeyed(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "--url", "127.0.0.1:9/\x1b]2;x\x07")
    assert code == 1
    assert err.startswith("appliance: the service is not reachable at "
                          "http://127.0.0.1:9/␛]2;x␇: connection refused")
    code, _, err = run(capsys, "status", "--url", "http://a..b")  # urllib3's own error
    assert code == 1
    assert err.startswith("appliance: the service is not reachable at http://a..b: Failed to "
                          "parse: 'a..b', label empty or too long")
    for url in ("http://me:s3cret@127.0.0.1:9/", "http://me:s3cret@a..b"):
        code, _, err = run(capsys, "status", "--url", url)
        assert code == 1 and "s3cret" not in err and "me:" not in err, err


def test_an_address_with_credentials_shows_neither_and_sends_both(
        service: HostileService) -> None:
    refused = service.answers["/api/health"] = Held((401, {"error": "Invalid credentials."}))
    host = service.url.removeprefix("http://")
    app = ApplianceApp(ApiClient(resolve(url=f"http://me:s3%2Fcret@{host}/",
                                         env={"HOME": "/nonexistent"}, local=None)))

    async def scenario(pilot: Pilot) -> None:
        await until(pilot, lambda: text_of(app, "#connecting") ==
                    f"Connecting to {service.url} …", "the address shown")
        refused.released.set()
        await until(pilot, lambda: isinstance(app.screen, ProblemScreen), "the refusal")
        # The screen is there before its text (on a busy box, a turn later): waited for.
        await until(pilot, lambda: text_of(app, "#problem-reason") ==
                    f"{service.url}: Invalid credentials.", "the refusal's text, address only")
        service.answers["/api/health"] = HEALTH
        await pilot.press("r")
        await connected(pilot)

    drive(app, scenario)
    assert service.authorizations == {"Basic bWU6czMvY3JldA=="}  # me:s3/cret, the ws's too


def test_ytdlp_status_and_an_update_that_never_ends(
        service: HostileService, home: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTP_PORT", service.url.rpartition(":")[2])
    service.answers["/api/ping"] = {}
    service.answers["/api/system/ytdlp"] = {
        "installed": "\x1b]2;x\x07", "latest": None, "update": {"state": "running",
                                                               "message": "\x9bpip"}}
    code, out, _ = run(capsys, "ytdlp", "status")
    assert (code, out) == (0, "yt-dlp ␛]2;x␇ installed, newest None: �pip\n")
    monkeypatch.setattr(cli, "UPDATE_SECONDS", 0.0)
    service.answers["/api/system/ytdlp/update"] = {}
    code, _, err = run(capsys, "ytdlp", "update")
    assert code == 1 and "the update still runs after 0 minutes" in err
    service.answers["/api/system/ytdlp"] = {"installed": "1", "update": "done"}
    code, _, err = run(capsys, "ytdlp", "status")
    assert code == 1 and "yt-dlp's status' update should be an object, not a text" in err


@pytest.fixture(autouse=True)
def _no_crash_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    yield
    assert not (tmp_path / "state" / "appliance" / "tui.log").exists()


def test_the_local_commands_run_in_process(home: Path, capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    """``web showtoken|gentoken`` and ``service install --dry-run --root``, as a person types
    them (the subprocess tests of them judge no mutant)."""
    code, first, _ = run(capsys, "web", "showtoken")
    assert code == 0 and len(first.strip()) >= 32
    code, second, _ = run(capsys, "web", "gentoken")
    assert code == 0 and second != first
    assert run(capsys, "web", "showtoken")[1] == second
    code, out, err = run(capsys, "service", "install", "--dry-run", "--root", str(tmp_path),
                         "--download-path", "media")
    assert (code, out) == (1, "")
    assert err == "appliance: service install: the download path media is not absolute\n"
