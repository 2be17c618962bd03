"""/ws: the connected message, bus events as envelopes, client commands and their errors."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import pytest
from support.ws_sidecar import (
    TIMEOUT,
    FakeService,
    event,
    recv_frame,
    recv_json,
    recv_until,
    send,
    upgrade_request,
    url,
)
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from appliance.config import Settings
from appliance.events import EventBus
from appliance.ws import WebsocketServer
from appliance.ws.ytptube import PARSED_ON_LOOP, YtptubeProtocol


def test_connected_message_carries_a_sid(make_server: Callable[..., WebsocketServer]) -> None:
    server = make_server()
    with connect(url(server)) as a, connect(url(server)) as b:
        first_a, first_b = recv_json(a), recv_json(b)
    assert first_a["event"] == "connected"
    assert uuid.UUID(first_a["data"]["sid"])
    assert abs(first_a["data"]["timestamp"] - time.time()) < 60
    assert first_a["data"]["sid"] != first_b["data"]["sid"]


def test_frames_are_not_compressed_even_when_the_client_offers(
        make_server: Callable[..., WebsocketServer]) -> None:
    """Compression would be one zlib stream per client per frame: CPU a small box spends
    for every watcher, to save bytes on a LAN."""
    server = make_server()
    with connect(url(server), compression="deflate") as ws:
        assert recv_json(ws)["event"] == "connected"
        assert "Sec-WebSocket-Extensions" not in ws.response.headers


def test_bus_events_arrive_as_envelopes_in_order(
    make_server: Callable[..., WebsocketServer], bus: EventBus
) -> None:
    server = make_server()
    with connect(url(server)) as ws:
        assert recv_json(ws)["event"] == "connected"
        for i in range(200):
            bus.publish("item_updated", {"id": f"item-{i}", "n": i}, progress=i % 2 == 0)
        bus.message("info", "Hello", "world")
        frames = [recv_frame(ws) for _ in range(201)]
    # YTPTube's frame: {"event", "data": Event}, the payload in the Event's data
    for frame in frames:
        assert set(frame) == {"event", "data"}
        assert set(frame["data"]) == {"id", "created_at", "event", "title", "message", "data"}
        assert frame["data"]["event"] == frame["event"]
        assert datetime.fromisoformat(frame["data"]["created_at"]).utcoffset() is not None
    assert len({f["data"]["id"] for f in frames}) == 201
    assert [f["data"]["data"]["n"] for f in frames[:200]] == list(range(200))
    assert all(f["event"] == "item_updated" for f in frames[:200])
    assert all(f["data"]["title"] is None for f in frames[:200])
    # a message's title and text are the Event's own, and stay in its data too
    assert frames[200]["event"] == "log_info"
    assert (frames[200]["data"]["title"], frames[200]["data"]["message"]) == ("Hello", "world")
    assert frames[200]["data"]["data"]["title"] == "Hello"


def test_hostile_text_in_an_event_reaches_both_protocols_intact(
    make_server: Callable[..., WebsocketServer], bus: EventBus
) -> None:
    # A site's title with control characters, a terminal's escape, JavaScript's line
    # separators and a megabyte of description: escaped in the JSON, the same text when read.
    title = "a\x00b\x1b[31mred\u2028\u2029\r\n\"quoted\" \\ </script> \U0001f600"
    item = {"id": "x", "title": title, "description": "d" * 2**20, "status": "pending"}
    server = make_server()
    with connect(url(server), max_size=None) as ytp, \
            connect(url(server, "/api/ws"), max_size=None) as flasharr:
        recv_json(ytp), recv_json(flasharr)
        bus.publish("item_added", item)
        got = recv_json(ytp)
        assert got == {"event": "item_added", "data": item}
        assert recv_json(flasharr) == {"type": "TASK_ADDED", "task": {
            "id": "x", "state": "pending", "progress": 0}}


def test_base_path_also_serves_the_websocket(
    make_server: Callable[..., WebsocketServer], settings: Settings
) -> None:
    server = make_server(settings.replace(base_path="/ytp/"))
    with connect(url(server, "/ytp/ws")) as a, connect(url(server, "/ws")) as b:
        assert recv_json(a)["event"] == "connected"
        assert recv_json(b)["event"] == "connected"
    for path in ("/ytp/api/ws", "/api/ws"):
        with connect(url(server, path)) as flasharr:
            assert recv_json(flasharr)["type"] == "SYNC_ALL"


def test_an_event_that_cannot_be_encoded_is_logged_and_skipped(
    make_server: Callable[..., WebsocketServer], bus: EventBus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = make_server()
    with caplog.at_level(logging.ERROR, logger="appliance.ws"), connect(url(server)) as ws:
        recv_json(ws)
        # past 64-bit JSON, with a site's megabyte of text
        bus.publish("item_updated", {"id": "x", "total_bytes": 2**70, "title": "t" * 2**20})
        # keys that are not text are written as text, as the HTTP API's JSON writes them,
        # and so are values JSON has no type for (a path)
        bus.publish("marker", {"counts": {1: "one"}, "file": PurePosixPath("/dl/a.mp4")})
        assert recv_json(ws) == {"event": "marker",
                                 "data": {"counts": {"1": "one"}, "file": "/dl/a.mp4"}}
    [record] = caplog.records
    # said once, in a line of the log, not the megabyte and a traceback
    assert record.getMessage().startswith(
        "cannot encode websocket frame (Integer exceeds 64-bit range): {'event': 'item_updated'")
    assert record.getMessage().endswith(" characters)")
    assert len(record.getMessage()) < 500
    assert record.exc_info is None


def test_unknown_path_is_404(make_server: Callable[..., WebsocketServer]) -> None:
    server = make_server()
    with pytest.raises(InvalidStatus) as exc:
        connect(url(server, "/nope"))
    assert exc.value.response.status_code == 404
    assert exc.value.response.body == b"Not Found\n"


@pytest.mark.parametrize("target", ["//[/ws", "//[::1/ws?apikey=x", "//127.0.0.1/ws"])
def test_a_target_that_reads_as_a_host_is_404_not_a_server_error(
    make_server: Callable[..., WebsocketServer], caplog: pytest.LogCaptureFixture, target: str
) -> None:
    # urlsplit read "//…" as a host: "[" raised (500, a traceback), "//127.0.0.1/ws" was /ws
    server = make_server()
    with caplog.at_level(logging.ERROR), \
            socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(upgrade_request(target))
        assert sock.recv(4096).startswith(b"HTTP/1.1 404 ")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    with connect(url(server, "/ws?x=//[")) as ws:  # the query is no host
        assert recv_json(ws)["event"] == "connected"


def test_add_url_dispatches_and_replies_item_status(
    make_server: Callable[..., WebsocketServer], service: FakeService, bus: EventBus
) -> None:
    server = make_server()
    with connect(url(server)) as ws, connect(url(server)) as other:
        recv_json(ws), recv_json(other)
        send(ws, "add_url", {"url": "https://example.com/v/clip", "preset": "default"})
        status, skipped = recv_until(ws, event("item_status"))
        added = [m for m in skipped if m["event"] == "item_added"]
        if not added:
            added = [recv_until(ws, event("item_added"))[0]]
        # Everyone sees item_added; only the sender gets the item_status reply.
        bus.publish("marker", {})
        assert [m["event"] for m in (recv_json(other), recv_json(other))] == [
            "item_added", "marker"
        ]
    assert service.calls == [("add", [{"url": "https://example.com/v/clip",
                                       "preset": "default"}])]
    # the item as added, with its status and a message (nothing else)
    assert status["data"] == {**added[0]["data"], "status": "queued",
                              "message": "Item added to queue"}
    assert status["data"]["url"] == "https://example.com/v/clip"


def test_item_commands_reach_the_service(
    make_server: Callable[..., WebsocketServer], service: FakeService, bus: EventBus
) -> None:
    a, b, c = (service.seed(f"https://example.com/{n}") for n in "abc")
    server = make_server()
    seen = []

    def until(name: str) -> dict[str, Any]:
        found, skipped = recv_until(ws, event(name))
        seen.extend([*skipped, found])
        return found

    with connect(url(server)) as ws:
        recv_json(ws)
        send(ws, "item_start", [a["id"], b["id"]])
        first, second = until("item_updated"), until("item_updated")
        send(ws, "item_pause", c["id"])
        paused = until("item_updated")
        send(ws, "item_cancel", a["id"])
        cancelled = until("item_cancelled")
        send(ws, "item_delete", {"id": b["id"], "remove_file": True})
        deleted = until("item_deleted")
        send(ws, "item_delete", {"id": c["id"]})
        until("item_deleted")
        bus.publish("marker", {})
        until("marker")
    assert {first["data"]["id"], second["data"]["id"]} == {a["id"], b["id"]}
    assert paused["data"] == {**c, "status": "paused"}
    assert cancelled["data"]["status"] == "cancelled"
    assert deleted["data"] == {"id": b["id"]}
    # what the service did is not reported as a failure
    assert [m for m in seen if m["event"].startswith("log_")] == []
    assert service.calls == [
        ("start", [a["id"], b["id"]]),
        ("pause", [c["id"]]),
        ("cancel", [a["id"]]),
        ("delete", [b["id"]], True),
        ("delete", [c["id"]], False),  # the file stays unless asked for
    ]


UNKNOWN = "expected one of add_url, item_cancel, item_delete, item_start, item_pause."


@pytest.mark.parametrize(
    ("raw", "title", "reason"),
    [
        ("this is not json", "Invalid message", "Message is not valid JSON."),
        ("[1, 2]", "Invalid message",
         'Message must be a JSON object: {"event": ..., "data": ...}.'),
        ('{"event": "reboot", "data": null}', "Invalid message",
         f"Unknown event 'reboot'; {UNKNOWN}"),
        ('{"data": "x"}', "Invalid message", f"Unknown event None; {UNKNOWN}"),
        ('{"event": "item_cancel", "data": 5}', "Cancel failed",
         "item_cancel: data must be an item id."),
        ('{"event": "item_start", "data": []}', "Start failed",
         "item_start: data must be an item id or a non-empty list of item ids."),
        ('{"event": "item_pause", "data": ["a", 3]}', "Pause failed",
         "item_pause: data must be an item id or a non-empty list of item ids."),
        ('{"event": "item_pause", "data": " "}', "Pause failed",
         "item_pause: data must be an item id or a non-empty list of item ids."),
        ('{"event": "item_delete", "data": "abc"}', "Delete failed",
         'item_delete: data must be an object like {"id": "...", "remove_file": false}.'),
        ('{"event": "item_delete", "data": {"id": ""}}', "Delete failed",
         'item_delete: data must be an object like {"id": "...", "remove_file": false}.'),
        ('{"event": "item_delete", "data": {"id": "a", "remove_file": "yes"}}',
         "Delete failed", "item_delete: remove_file must be true or false."),
        ('{"event": "add_url", "data": "https://example.com"}', "Add URL failed",
         'add_url: data must be an object like {"url": "..."}.'),
        ('{"event": "add_url", "data": {"preset": "x"}}', "Add URL failed",
         "url param is required."),
        # the service's answer for each id it could not act on
        ('{"event": "item_cancel", "data": "missing"}', "Cancel failed",
         "missing: Item not found."),
        ('{"event": "item_start", "data": ["missing"]}', "Start failed",
         "missing: Item not found."),
        ('{"event": "item_pause", "data": "missing"}', "Pause failed",
         "missing: Item not found."),
        ('{"event": "item_delete", "data": {"id": "missing"}}', "Delete failed",
         "missing: Item not found."),
        ('{"event": "add_url", "data": {"url": "https://example.com", "extras": '
         + "[" * 300 + "]" * 300 + "}}", "Invalid message",
         "The JSON nests arrays and objects more than 64 levels deep."),
    ],
)
def test_bad_client_message_gets_log_error_and_connection_stays(
    make_server: Callable[..., WebsocketServer], raw: str, title: str, reason: str
) -> None:
    server = make_server()
    with connect(url(server)) as ws:
        recv_json(ws)
        ws.send(raw)
        error = recv_json(ws)
        assert error["event"] == "log_error"
        assert error["data"]["message"] == reason
        assert (error["data"]["title"], error["data"]["code"]) == (title, "INVALID_REQUEST")
        assert isinstance(error["data"]["timestamp"], float)
        send(ws, "add_url", {"url": "https://example.com/after"})
        status, _ = recv_until(ws, event("item_status"))
    assert status["data"]["url"] == "https://example.com/after"


def test_a_long_list_of_failed_ids_is_reported_in_a_few_frames(
    make_server: Callable[..., WebsocketServer], service: FakeService, bus: EventBus
) -> None:
    # one log_error per id filled the buffer at once: the client was closed as too slow
    server = make_server(max_state_backlog=30)
    item = service.seed("https://example.com/a")
    missing = [f"missing-{n}" for n in range(45)]
    with connect(url(server)) as ws:
        recv_json(ws)
        send(ws, "item_pause", [*missing[:5], item["id"], *missing[5:]])
        paused = recv_json(ws)
        errors = [recv_json(ws) for _ in range(11)]
        bus.publish("marker", {})
        assert recv_json(ws) == {"event": "marker", "data": {}}
    assert paused["data"] == {**item, "status": "paused"}
    assert [e["data"]["message"] for e in errors] == [
        *(f"{i}: Item not found." for i in missing[:10]), "35 more items failed too."]
    assert {(e["event"], e["data"]["title"]) for e in errors} == {("log_error", "Pause failed")}


def test_add_url_that_adds_nothing_gets_a_warning(
    make_server: Callable[..., WebsocketServer], service: FakeService
) -> None:
    service.archived.add("https://example.com/seen")
    server = make_server()
    with connect(url(server)) as ws:
        recv_json(ws)
        send(ws, "add_url", {"url": "https://example.com/seen"})
        warning = recv_json(ws)
    assert warning["event"] == "log_warning"
    assert (warning["data"]["title"], warning["data"]["message"]) == (
        "Add URL", "Nothing was added to the queue.")
    assert abs(warning["data"]["timestamp"] - time.time()) < 60


def test_unexpected_service_failure_is_logged_and_reported(
    make_server: Callable[..., WebsocketServer],
    service: FakeService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = make_server()
    service.fail_with = RuntimeError("disk on fire")
    with caplog.at_level(logging.ERROR, logger="appliance.ws"), connect(url(server)) as ws:
        recv_json(ws)
        send(ws, "add_url", {"url": "https://example.com/x"})
        error = recv_json(ws)
        service.fail_with = None
        send(ws, "add_url", {"url": "https://example.com/y"})
        status, _ = recv_until(ws, event("item_status"))
    assert error["event"] == "log_error"
    assert (error["data"]["title"], error["data"]["code"]) == ("Add URL failed", "INTERNAL_ERROR")
    assert "disk on fire" not in error["data"]["message"]
    assert "see the server log" in error["data"]["message"]
    assert any(r.exc_info and "disk on fire" in str(r.exc_info[1]) for r in caplog.records)
    assert status["data"]["url"] == "https://example.com/y"


def test_error_reply_goes_to_the_sender_only(
    make_server: Callable[..., WebsocketServer], bus: EventBus
) -> None:
    server = make_server()
    with connect(url(server)) as a, connect(url(server)) as b:
        recv_json(a), recv_json(b)
        a.send("garbage")
        assert recv_json(a)["event"] == "log_error"
        bus.publish("marker", {"n": 1})
        assert recv_json(b) == {"event": "marker", "data": {"n": 1}}
        assert recv_json(a) == {"event": "marker", "data": {"n": 1}}


def test_message_over_one_mebibyte_is_refused(
    make_server: Callable[..., WebsocketServer],
) -> None:
    server = make_server()
    with connect(url(server)) as ws:
        recv_json(ws)
        ws.send(json.dumps({"event": "add_url", "data": {"url": "x" * (2**20)}}))
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=TIMEOUT)
    assert exc.value.rcvd is not None
    assert exc.value.rcvd.code == 1009


def test_a_long_message_is_read_off_the_loop(
    make_server: Callable[..., WebsocketServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reading a message of 1 MiB took the loop 150 ms, during which no client got a frame:
    # a client that reads its answers could send them back to back.
    readers: list[tuple[int, str]] = []
    parse = YtptubeProtocol._parse

    def recorded(raw: str | bytes) -> Any:
        readers.append((len(raw), threading.current_thread().name))
        return parse(raw)

    monkeypatch.setattr(YtptubeProtocol, "_parse", staticmethod(recorded))
    server = make_server()
    long_ids = [f"{n:040d}" for n in range(PARSED_ON_LOOP // 40)]
    with connect(url(server)) as ws:
        recv_json(ws)
        send(ws, "item_start", "short")
        assert recv_json(ws)["data"]["message"] == "short: Item not found."
        send(ws, "item_start", long_ids)
        answers = [recv_json(ws)["data"]["message"] for _ in range(11)]
    assert answers[0] == f"{long_ids[0]}: Item not found."
    assert answers[-1] == f"{len(long_ids) - 10} more items failed too."
    [(short, on_loop), (long, off_loop)] = readers
    assert short < PARSED_ON_LOOP < long
    assert on_loop == "ws-sidecar"
    assert off_loop.startswith("ws-service")
