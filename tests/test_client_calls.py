"""Every call of the wire client (``appliance.client.http.ApiClient``), in this process,
against the scripted service of tests/support/hostile.py: the method, path, query and body it
sends, and what it makes of the answer. The TUI's tests make most of these calls through its
screens; here each is checked on its own, where a wrong path, a lost parameter or a misread
answer shows at once."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs

import pytest
from support.hostile import Held, HostileService, Redirect, Stream, hostile_service
from support.server import wait_for

from appliance.client import ApiClient, ApiError, Connection, Unreachable
from appliance.client.http import BAD_ANSWER, LogStream

service = pytest.fixture(hostile_service)

PAGE = {"page": 1, "total": 1, "total_pages": 1, "has_next": False}


def client_of(service: HostileService) -> ApiClient:
    return ApiClient(Connection(service.url, token="t"))


def query(service: HostileService, index: int = -1) -> dict[str, list[str]]:
    return parse_qs(service.queries[index])


def test_service_calls_ask_their_path_and_read_the_answer(service: HostileService) -> None:
    client = client_of(service)
    service.answers["/api/engine/stats"] = {"running": 2}
    assert client.engine_stats() == {"running": 2}
    service.answers["POST /api/system/pause"] = {"message": "Paused."}
    service.answers["POST /api/system/resume"] = {}
    assert client.pause_all() == "Paused."
    assert client.resume_all() == "done"  # an answer without a message
    assert service.asked == ["GET /api/engine/stats", "POST /api/system/pause",
                             "POST /api/system/resume"]
    assert service.authorizations == {"Token t"}
    service.answers["POST /api/system/pause"] = ["not", "an object"]
    with pytest.raises(ApiError, match="the answer to /api/system/pause should be an object"):
        client.pause_all()


@pytest.mark.parametrize(("call", "method", "path"), [
    ("start", "POST", "/api/history/start"),
    ("pause", "POST", "/api/history/pause"),
    ("cancel", "POST", "/api/history/cancel"),
])
def test_item_commands_send_their_ids(service: HostileService, call: str, method: str,
                                      path: str) -> None:
    service.answers[f"{method} {path}"] = {"a": "ok", "b/c": "ok"}
    assert getattr(client_of(service), call)(["a", "b/c"]) == {"a": "ok", "b/c": "ok"}
    assert service.sent == [(f"{method} {path}", {"ids": ["a", "b/c"]})]


def test_delete_and_retry_send_what_they_say(service: HostileService) -> None:
    client = client_of(service)
    service.answers["DELETE /api/history"] = {"x": "deleted"}
    assert client.delete(["x"], kind="queue", remove_file=True) == {"x": "deleted"}
    assert service.sent[-1] == ("DELETE /api/history",
                                {"type": "queue", "ids": ["x"], "remove_file": True})
    service.sent.clear()
    service.answers["POST /api/history"] = [{"status": "queued", "id": "new"}]
    item = {"id": "old", "url": "https://a.example/v", "preset": "audio", "folder": "",
            "template": None, "cli": "-x", "title": "not sent again"}
    assert client.retry(item) == [{"status": "queued", "id": "new"}]
    assert service.sent == [
        ("POST /api/history", [{"url": "https://a.example/v", "preset": "audio", "cli": "-x"}]),
        ("DELETE /api/history", {"type": "done", "ids": ["old"], "remove_file": False}),
    ]


def test_an_items_archive_and_command(service: HostileService) -> None:
    client = client_of(service)
    service.answers["POST /api/history/a%2F..%2Fb/archive"] = {}
    service.answers["DELETE /api/history/a%2F..%2Fb/archive"] = {}
    client.archive("a/../b")
    client.unarchive("a/../b")
    assert service.asked == ["POST /api/history/a%2F..%2Fb/archive",
                             "DELETE /api/history/a%2F..%2Fb/archive"]
    service.answers["POST /api/yt-dlp/command"] = {"command": "yt-dlp -x https://a.example/v"}
    item = {"url": "https://a.example/v", "preset": "", "cli": "-x", "id": "a"}
    assert client.command(item) == "yt-dlp -x https://a.example/v"
    assert service.sent[-1] == ("POST /api/yt-dlp/command",
                                {"url": "https://a.example/v", "cli": "-x"})
    service.answers["POST /api/yt-dlp/command"] = {}
    assert client.command(item) == ""
    service.answers["POST /api/yt-dlp/command"] = "yt-dlp"
    with pytest.raises(ApiError, match="the command should be an object, not a text"):
        client.command(item)


def test_a_history_page_asks_what_it_was_given(service: HostileService) -> None:
    service.answers["/api/history"] = {"items": [{"id": "a"}],
                                       "pagination": {**PAGE, "page": 3, "total": 101,
                                                      "total_pages": 11}}
    page = client_of(service).history(page=3, per_page=10, status="finished",
                                      newest_first=False, search="cats")
    assert (page.items, page.page, page.total, page.total_pages) == ([{"id": "a"}], 3, 101, 11)
    assert query(service) == {"type": ["done"], "page": ["3"], "per_page": ["10"],
                              "status": ["finished"], "order": ["ASC"], "search": ["cats"]}
    client_of(service).history()
    assert query(service) == {"type": ["done"], "page": ["1"], "per_page": ["50"],
                              "order": ["DESC"]}


def test_records_are_read_page_after_page(service: HostileService) -> None:
    client = client_of(service)
    # A page of its own for each page asked; the second is the last.
    service.answers["/api/presets"] = lambda asked: {
        "items": [{"id": int(parse_qs(asked)["page"][0])}],
        "pagination": {"has_next": parse_qs(asked)["page"] == ["1"]}}
    assert client.records("presets") == [{"id": 1}, {"id": 2}]
    assert [query(service, n) for n in range(2)] == [
        {"page": ["1"], "per_page": ["1000"]}, {"page": ["2"], "per_page": ["1000"]}]
    service.answers["/api/presets"] = [{"id": 5}]  # a bare array: one page
    assert client.records("presets") == [{"id": 5}]


def test_record_changes_go_to_the_records_path(service: HostileService) -> None:
    client = client_of(service)
    service.answers["POST /api/conditions"] = {"id": 7, "name": "n"}
    service.answers["PATCH /api/conditions/7"] = {"id": 7, "name": "m"}
    service.answers["DELETE /api/conditions/7"] = {"deleted": 7}
    assert client.create("conditions", {"name": "n"}) == {"id": 7, "name": "n"}
    assert client.update("conditions", 7, {"name": "m"}) == {"id": 7, "name": "m"}
    assert client.remove("conditions", 7) == {"deleted": 7}
    assert service.sent == [("POST /api/conditions", {"name": "n"}),
                            ("PATCH /api/conditions/7", {"name": "m"})]
    assert service.asked[-1] == "DELETE /api/conditions/7"


def test_notification_tests_and_settings(service: HostileService) -> None:
    client = client_of(service)
    service.answers["POST /api/notifications/test"] = {"results": [{"id": 1, "ok": True}]}
    assert client.test_targets() == [{"id": 1, "ok": True}]
    assert service.sent[-1] == ("POST /api/notifications/test", {})
    service.answers["POST /api/notifications/test"] = {"results": "all good"}
    with pytest.raises(ApiError, match="the targets' test results should be an array"):
        client.test_targets()
    service.answers["GET /api/settings"] = {"stall_timeout": 300, "pinned": {"x": "YTP_X"}}
    assert client.settings() == {"stall_timeout": 300, "pinned": {"x": "YTP_X"}}
    service.answers["GET /api/settings"] = {"stall_timeout": 300, "pinned": ["x"]}
    with pytest.raises(ApiError, match="the settings' pinned should be an object"):
        client.settings()
    service.answers["PUT /api/settings"] = {"success": True}
    client.change_settings({"stall_timeout": 60})
    assert service.sent[-1] == ("PUT /api/settings", {"stall_timeout": 60})


def test_task_calls(service: HostileService) -> None:
    client = client_of(service)
    service.answers["/api/tasks"] = {"items": [{"id": 3, "name": "t"}],
                                     "pagination": {"has_next": False}}
    assert client.tasks() == [{"id": 3, "name": "t"}]
    service.answers["POST /api/tasks/3/execute"] = {"id": 11, "status": "running"}
    assert client.run_task(3) == {"id": 11, "status": "running"}
    service.answers["POST /api/tasks/3/mark"] = {"message": "Marked 4."}
    service.answers["DELETE /api/tasks/3/mark"] = {"message": "Unmarked 4."}
    assert client.mark_task(3) == "Marked 4."
    assert client.unmark_task(3) == "Unmarked 4."
    assert service.asked[-3:] == ["POST /api/tasks/3/execute", "POST /api/tasks/3/mark",
                                  "DELETE /api/tasks/3/mark"]
    service.answers["POST /api/tasks/inspect"] = {"handler": "feed", "entries": []}
    assert client.inspect("https://a.example/c") == {"handler": "feed", "entries": []}
    assert client.inspect("https://a.example/c", "audio")["handler"] == "feed"
    assert service.sent[-2:] == [
        ("POST /api/tasks/inspect", {"url": "https://a.example/c"}),
        ("POST /api/tasks/inspect", {"url": "https://a.example/c", "preset": "audio"})]
    service.answers["/api/executions"] = {"items": [{"id": 11}]}
    assert client.executions(3, per_page=5) == [{"id": 11}]
    assert query(service) == {"task_id": ["3"], "per_page": ["5"]}
    client.executions(3)
    assert query(service) == {"task_id": ["3"], "per_page": ["1"]}


def test_a_runs_log_ended_or_streaming(service: HostileService) -> None:
    client = client_of(service)
    # An ended run: the whole log at once, as JSON; text lines become records.
    service.answers["/api/executions/11/log"] = {"lines": [{"line": "a"}, "b"]}
    assert list(client.execution_log(11)) == [{"line": "a"}, {"line": "b"}]
    service.answers["/api/executions/11/log"] = {"lines": None}
    assert list(client.execution_log(11)) == []
    service.answers["/api/executions/11/log"] = {"lines": "a"}
    with pytest.raises(ApiError, match="the run's log lines should be an array"):
        client.execution_log(11)
    # A running one: its "log" events (lines ended by CRLF too), until "end".
    service.answers["/api/executions/11/log"] = Stream(
        b"event: log\r\ndata: {\"line\": \"one\"}\r\n\r\n"
        b"event: log_lines\ndata: {\"line\": \"not this stream's\"}\n\n"
        b"event: log\ndata: [{\"line\": \"two\"}, 3]\n\n"
        b"event: end\ndata: {}\n\n"
        b"event: log\ndata: {\"line\": \"after the end\"}\n\n")
    stream = client.execution_log(11)
    assert list(stream) == [{"line": "one"}, {"line": "two"}]
    assert service.asked[-1] == "GET /api/executions/11/log"


def test_files_are_asked_by_their_quoted_path(service: HostileService) -> None:
    client = client_of(service)
    service.answers["/api/file/browser/a%20b/c%23d"] = {
        "path": "a b/c#d", "contents": [{"name": "x.mp4"}], "pagination": PAGE}
    path, page = client.browse("/a b/c#d/", page=2, per_page=20, sort_by="size",
                               descending=True, search="x")
    assert path == "a b/c#d" and page.items == [{"name": "x.mp4"}]
    assert query(service) == {"page": ["2"], "per_page": ["20"], "sort_by": ["size"],
                              "sort_order": ["desc"], "search": ["x"]}
    service.answers["/api/file/browser/"] = {"path": "", "contents": [], "pagination": PAGE}
    client.browse()
    assert query(service) == {"page": ["1"], "per_page": ["200"], "sort_by": ["name"],
                              "sort_order": ["asc"]}
    service.answers["POST /api/file/actions"] = [{"ok": True}]
    assert client.file_actions([{"action": "delete", "path": "x"}]) == [{"ok": True}]
    assert service.sent[-1] == ("POST /api/file/actions", [{"action": "delete", "path": "x"}])
    service.answers["/api/file/info/a%20b/x%3F.mp4"] = {"title": "x", "mimetype": "video/mp4"}
    assert client.file_info("a b/x?.mp4")["mimetype"] == "video/mp4"
    service.answers["/api/file/info/a%20b/x%3F.mp4"] = []
    with pytest.raises(ApiError, match="the file's details should be an object"):
        client.file_info("a b/x?.mp4")


def test_log_pages_ask_their_offset_and_limit(service: HostileService) -> None:
    service.answers["/api/logs"] = {"logs": [{"id": "1", "line": "x"}], "offset": 5}
    assert client_of(service).logs(offset=5, limit=2)["logs"] == [{"id": "1", "line": "x"}]
    assert query(service) == {"offset": ["5"], "limit": ["2"]}
    client_of(service).logs()
    assert query(service) == {"offset": ["0"], "limit": ["100"]}


def test_a_log_stream_closed_from_another_thread_ends_quietly(service: HostileService) -> None:
    """The TUI leaves its Logs view while a worker reads the stream: close() ends that read
    at once, without an error, and the service's stream (one of its few slots) is let go."""
    service.answers["/api/logs/stream"] = Stream(
        b"event: log_lines\ndata: {\"line\": \"first\"}\n\n", held=True)
    stream = client_of(service).log_stream()
    got: list[Any] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            got.extend(stream)
        except BaseException as exc:  # what the reading thread would have raised
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    wait_for(lambda: got, timeout=10, message="the first record")
    stream.close()
    reader.join(timeout=10)
    assert not reader.is_alive() and errors == [] and got == [{"line": "first"}]
    wait_for(lambda: service.streams_left == 1, timeout=10, message="the service's stream to end")
    LogStream.finished(service.url, []).close()  # a finished stream has nothing to close


def test_an_answer_that_is_not_an_object_of_objects_says_so(service: HostileService) -> None:
    service.answers["/api/engine/stats"] = [1]
    with pytest.raises(ApiError) as caught:
        client_of(service).engine_stats()
    assert caught.value.code == BAD_ANSWER
    assert caught.value.message == ("the service's answer is not one this client can read: "
                                    "the engine's stats should be an object, not an array")


def test_a_redirect_is_said_not_followed_nor_read_as_an_answer(service: HostileService) -> None:
    """A proxy in front that sends those it does not know to its login page: the client read
    the redirect's empty body as the answer ("should be an object, not null")."""
    service.answers["/api/history/live"] = Redirect("https://auth.example/login?rd=x")
    service.answers["/api/logs/stream"] = Redirect("/login")
    client = client_of(service)
    for call in (client.live, client.log_stream):
        with pytest.raises(ApiError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (302, BAD_ANSWER)
    assert caught.value.message == (f"{service.url} answers with a redirect to '/login', not "
                                    "the API: give the address the API answers at")
    assert service.asked == ["GET /api/history/live", "GET /api/logs/stream"]  # not followed


@pytest.mark.parametrize(("path", "answer", "call", "said"), [
    ("/api/engine/stats", True, "engine_stats",
     "the engine's stats should be an object, not true/false"),
    ("/api/system/configuration", {"websocket": "ws://elsewhere/ws"}, "configuration",
     "the configuration's websocket should be an object, not a text"),
    ("/api/history/live", {"queue": {}, "queue_count": "3"}, "live",
     "the live queue's queue_count should be a whole number, not a text"),
    ("/api/logs", {"logs": [1]}, "logs", "each of the logs' records should be an object, "
                                         "not a number"),
])
def test_each_part_of_an_answer_is_named_when_it_is_wrong(
        service: HostileService, path: str, answer: Any, call: str, said: str) -> None:
    service.answers[path] = answer
    with pytest.raises(ApiError) as caught:
        getattr(client_of(service), call)()
    assert caught.value.message == (
        f"the service's answer is not one this client can read: {said}")


def test_a_service_that_does_not_answer_in_time_is_unreachable(service: HostileService
                                                               ) -> None:
    held = Held({})
    service.answers["/api/health"] = held
    try:
        with pytest.raises(Unreachable) as caught:
            ApiClient(Connection(service.url), timeout=0.2).health()
        assert (caught.value.url, caught.value.reason) == (service.url, "no answer in time")
    finally:
        held.released.set()
