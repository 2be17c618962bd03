"""The websocket sidecar against a real ``websockets`` client on 127.0.0.1, port 0.

The service is a small in-test stand-in that records calls and publishes on the bus what the
real engine publishes; end-to-end tests with the real engine live elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from appliance.auth import Authenticator
from appliance.config import Settings, load_settings
from appliance.errors import AppError, not_found
from appliance.events import EventBus
from appliance.ws import WebsocketServer
from appliance.ws.clients import BufferClosed, ClientBuffer

TIMEOUT = 10.0


# --- fixtures and helpers --------------------------------------------------------------


class FakeService:
    """Records calls; publishes the events a real engine would."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.calls: list[tuple[Any, ...]] = []
        self.items: dict[str, dict[str, Any]] = {}
        self.active: list[dict[str, Any]] = []
        self.polled = threading.Event()
        self.fail_with: Exception | None = None
        self._lock = threading.Lock()

    def seed(self, url: str) -> dict[str, Any]:
        item = {"id": uuid.uuid4().hex, "url": url, "title": url.rsplit("/", 1)[-1],
                "status": "pending"}
        with self._lock:
            self.items[item["id"]] = item
        return item

    def add(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls.append(("add", requests))
        if self.fail_with is not None:
            raise self.fail_with
        out = []
        for request in requests:
            url = request.get("url")
            if not isinstance(url, str) or not url:
                raise AppError("url param is required.")
            item = self.seed(url)
            self.bus.publish("item_added", item)
            out.append(item)
        return out

    def _each(self, name: str, ids: list[str], event: str, status: str) -> dict[str, str]:
        results = {}
        for item_id in ids:
            with self._lock:
                item = self.items.get(item_id)
            if item is None:
                results[item_id] = "Item not found."
                continue
            item["status"] = status
            self.bus.publish(event, dict(item))
            results[item_id] = "ok"
        return results

    def start(self, ids: list[str]) -> dict[str, str]:
        self.calls.append(("start", ids))
        return self._each("start", ids, "item_updated", "pending")

    def pause(self, ids: list[str]) -> dict[str, str]:
        self.calls.append(("pause", ids))
        return self._each("pause", ids, "item_updated", "paused")

    def cancel(self, ids: list[str]) -> dict[str, str]:
        self.calls.append(("cancel", ids))
        return self._each("cancel", ids, "item_cancelled", "cancelled")

    def delete(self, ids: list[str], remove_file: bool = False) -> dict[str, str]:
        self.calls.append(("delete", ids, remove_file))
        results = {}
        for item_id in ids:
            with self._lock:
                item = self.items.pop(item_id, None)
            if item is None:
                raise not_found()
            self.bus.publish("item_deleted", {"id": item_id})
            results[item_id] = "ok"
        return results

    def flasharr_task(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"id": item["id"], "state": item.get("status"), "progress": item.get("pct", 0)}

    def flasharr_tasks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self.flasharr_task(i) for i in self.items.values()]

    def active_count(self) -> int:
        self.polled.set()
        return len(self.active)

    def active_items(self) -> list[dict[str, Any]]:
        return list(self.active)

    def engine_stats(self) -> dict[str, Any]:
        self.polled.set()
        return {"active_downloads": len(self.active), "queued": 0, "total_speed": 0}


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return load_settings(environ={"YTP_CONFIG_PATH": str(tmp_path), "YTP_HOST": "127.0.0.1"})


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def service(bus: EventBus) -> FakeService:
    return FakeService(bus)


@pytest.fixture
def make_server(
    settings: Settings, bus: EventBus, service: FakeService
) -> Iterator[Callable[..., WebsocketServer]]:
    servers: list[WebsocketServer] = []

    def make(custom: Settings | None = None, **kwargs: Any) -> WebsocketServer:
        server = WebsocketServer(custom or settings, bus, service, port=0, **kwargs)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def url(server: WebsocketServer, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def recv_frame(ws: ClientConnection, timeout: float = TIMEOUT) -> Any:
    return json.loads(ws.recv(timeout=timeout))


def recv_json(ws: ClientConnection, timeout: float = TIMEOUT) -> Any:
    """The next message; a ``/ws`` frame ``{"event", "data": Event}`` as ``{"event", "data":
    payload}`` (test_bus_events_arrive_as_envelopes_in_order checks the Event itself)."""
    frame = recv_frame(ws, timeout)
    if "event" in frame:
        return {"event": frame["event"], "data": frame["data"]["data"]}
    return frame


def recv_until(
    ws: ClientConnection, predicate: Callable[[Any], bool], timeout: float = TIMEOUT
) -> tuple[Any, list[Any]]:
    """The first message matching ``predicate`` and the ones skipped before it."""
    deadline = time.monotonic() + timeout
    skipped = []
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no matching message before the deadline; got {skipped!r}"
        message = recv_json(ws, remaining)
        if predicate(message):
            return message, skipped
        skipped.append(message)


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


def event(name: str) -> Callable[[Any], bool]:
    return lambda m: m.get("event") == name


def send(ws: ClientConnection, name: str, data: Any) -> None:
    ws.send(json.dumps({"event": name, "data": data}))


def stats_of(server: WebsocketServer, sid: str) -> dict[str, Any] | None:
    return next((s for s in server.client_stats() if s["sid"] == sid), None)


# --- /ws: connect, events, commands --------------------------------------------------------


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


def test_base_path_also_serves_the_websocket(
    make_server: Callable[..., WebsocketServer], settings: Settings
) -> None:
    server = make_server(settings.replace(base_path="/ytp/"))
    with connect(url(server, "/ytp/ws")) as a, connect(url(server, "/ws")) as b:
        assert recv_json(a)["event"] == "connected"
        assert recv_json(b)["event"] == "connected"


def test_unknown_path_is_404(make_server: Callable[..., WebsocketServer]) -> None:
    server = make_server()
    with pytest.raises(InvalidStatus) as exc:
        connect(url(server, "/nope"))
    assert exc.value.response.status_code == 404


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
    assert status["data"]["status"] == "queued"
    assert status["data"]["message"] == "Item added to queue"
    assert status["data"]["id"] == added[0]["data"]["id"]
    assert status["data"]["url"] == "https://example.com/v/clip"


def test_item_commands_reach_the_service(
    make_server: Callable[..., WebsocketServer], service: FakeService
) -> None:
    a, b, c = (service.seed(f"https://example.com/{n}") for n in "abc")
    server = make_server()
    with connect(url(server)) as ws:
        recv_json(ws)
        send(ws, "item_start", [a["id"], b["id"]])
        first, _ = recv_until(ws, event("item_updated"))
        second, _ = recv_until(ws, event("item_updated"))
        send(ws, "item_pause", c["id"])
        paused, _ = recv_until(ws, event("item_updated"))
        send(ws, "item_cancel", a["id"])
        cancelled, _ = recv_until(ws, event("item_cancelled"))
        send(ws, "item_delete", {"id": b["id"], "remove_file": True})
        deleted, _ = recv_until(ws, event("item_deleted"))
    assert {first["data"]["id"], second["data"]["id"]} == {a["id"], b["id"]}
    assert paused["data"] == {**c, "status": "paused"}
    assert cancelled["data"]["status"] == "cancelled"
    assert deleted["data"] == {"id": b["id"]}
    assert service.calls == [
        ("start", [a["id"], b["id"]]),
        ("pause", [c["id"]]),
        ("cancel", [a["id"]]),
        ("delete", [b["id"]], True),
    ]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("this is not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"event": "reboot", "data": null}', "Unknown event 'reboot'"),
        ('{"data": "x"}', "Unknown event None"),
        ('{"event": "item_cancel", "data": 5}', "data must be an item id"),
        ('{"event": "item_start", "data": []}', "list of item ids"),
        ('{"event": "item_pause", "data": ["a", 3]}', "list of item ids"),
        ('{"event": "item_delete", "data": "abc"}', "data must be an object"),
        ('{"event": "item_delete", "data": {"id": "a", "remove_file": "yes"}}',
         "remove_file must be true or false"),
        ('{"event": "add_url", "data": "https://example.com"}', "data must be an object"),
        ('{"event": "add_url", "data": {"preset": "x"}}', "url param is required."),
        ('{"event": "item_cancel", "data": "missing"}', "missing: Item not found."),
        ('{"event": "item_delete", "data": {"id": "missing"}}', "Item not found."),
    ],
)
def test_bad_client_message_gets_log_error_and_connection_stays(
    make_server: Callable[..., WebsocketServer], raw: str, reason: str
) -> None:
    server = make_server()
    with connect(url(server)) as ws:
        recv_json(ws)
        ws.send(raw)
        error = recv_json(ws)
        assert error["event"] == "log_error"
        assert reason in error["data"]["message"]
        assert error["data"]["title"]
        assert isinstance(error["data"]["timestamp"], float)
        send(ws, "add_url", {"url": "https://example.com/after"})
        status, _ = recv_until(ws, event("item_status"))
    assert status["data"]["url"] == "https://example.com/after"


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


# --- authentication --------------------------------------------------------------------------


@pytest.fixture
def auth_server(
    make_server: Callable[..., WebsocketServer], settings: Settings
) -> WebsocketServer:
    return make_server(settings.replace(auth_username="alice", auth_password="s3cr:et"))


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def apikey(user: str, password: str) -> str:
    return base64.urlsafe_b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/ws", None),
        ("/ws", basic("alice", "wrong")),
        ("/ws", basic("mallory", "s3cr:et")),
        ("/ws", {"Authorization": "Basic !!!not-base64"}),
        ("/ws", {"Authorization": "Bearer s3cr:et"}),
        (f"/ws?apikey={apikey('alice', 'nope')}", None),
        ("/ws?apikey=%%%", None),
        ("/api/ws", None),
    ],
)
def test_handshake_without_good_credentials_is_401(
    auth_server: WebsocketServer, path: str, headers: dict[str, str] | None
) -> None:
    with pytest.raises(InvalidStatus) as exc:
        connect(url(auth_server, path), additional_headers=headers)
    assert exc.value.response.status_code == 401
    assert exc.value.response.headers["WWW-Authenticate"].startswith("Basic")


def test_basic_header_is_accepted(auth_server: WebsocketServer) -> None:
    with connect(url(auth_server), additional_headers=basic("alice", "s3cr:et")) as ws:
        assert recv_json(ws)["event"] == "connected"


@pytest.mark.parametrize("strip_padding", [False, True])
def test_apikey_is_accepted(auth_server: WebsocketServer, strip_padding: bool) -> None:
    key = apikey("alice", "s3cr:et")
    key = key.rstrip("=") if strip_padding else key
    with connect(url(auth_server, f"/ws?apikey={key}")) as ws:
        assert recv_json(ws)["event"] == "connected"
    with connect(url(auth_server, f"/api/ws?apikey={key}")) as ws:
        assert recv_json(ws)["type"] == "SYNC_ALL"


def test_authenticator_is_open_when_auth_is_off(settings: Settings) -> None:
    def ok(auth: Authenticator, **request: Any) -> bool:
        try:
            auth.authenticate(address="127.0.0.1", **request)
        except AppError as exc:
            assert exc.status == 401
            return False
        return True

    assert ok(Authenticator(settings))
    guarded = Authenticator(settings.replace(auth_username="u", auth_password="p"))
    assert not ok(guarded)
    assert ok(guarded, query={"apikey": apikey("u", "p")})
    assert ok(guarded, query={"apikey": ["junk", apikey("u", "p")]})
    assert not ok(guarded, authorization="Basic dTpx")  # u:q


# --- per-client buffer ------------------------------------------------------------------------


def test_buffer_coalesces_progress_behind_earlier_state_and_caps_state() -> None:
    async def scenario() -> tuple[list[bytes], bool, int]:
        buf = ClientBuffer(max_state=3, max_progress=2)
        buf.push_progress("x", b"x1")
        buf.push_state(b"A")
        buf.push_progress("x", b"x2")  # replaces x1 and moves behind A
        buf.push_progress("y", b"y1")
        buf.push_progress("z", b"z1")  # a third progress key: over max_progress, dropped
        buf.push_state(b"B")
        buf.push_front(b"HELLO")  # ahead of everything, cap or not
        full = buf.push_state(b"C")  # 3 state frames wait already: refused
        order = [await buf.get() for _ in range(buf.pending)]
        coalesced_dropped = buf.coalesced * 10 + buf.dropped
        buf.push_state(b"D")
        buf.close()
        with pytest.raises(BufferClosed):  # D was discarded with the buffer
            await buf.get()
        return order, full, coalesced_dropped

    order, full, counts = asyncio.run(scenario())
    assert order == [b"HELLO", b"A", b"x2", b"y1", b"B"]
    assert full is False
    assert counts == 11


# --- slow clients ------------------------------------------------------------------------------


PAD = os.urandom(32 * 1024).hex()  # 64 KiB that deflate cannot shrink much


def slow_connect(server: WebsocketServer) -> ClientConnection:
    """A client that stops reading: tiny receive buffer, no compression, a 1-frame queue."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", server.port))
    return connect(url(server), sock=sock, compression=None, max_queue=1)


def fill_until(
    bus: EventBus, fast: ClientConnection, start: int, done: Callable[[], bool]
) -> int:
    """Publish 64 KiB state events, each paced by the fast client receiving it, until
    ``done()``; returns the next filler number. The fast client must never lag."""
    n = start
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, "the slow client never backed up"
        bus.publish("filler", {"n": n, "pad": PAD})
        message = recv_json(fast)
        assert message["event"] == "filler"
        assert message["data"]["n"] == n
        n += 1
    return n


def test_slow_client_never_blocks_others_and_its_progress_is_coalesced(
    make_server: Callable[..., WebsocketServer], bus: EventBus
) -> None:
    server = make_server(max_state_backlog=1000)
    with slow_connect(server) as slow, connect(url(server), max_queue=None) as fast:
        sid = recv_json(slow)["data"]["sid"]
        recv_json(fast)
        # Back the slow client up until its own buffer holds state events.
        fillers = fill_until(
            bus, fast, 0, lambda: (stats_of(server, sid) or {}).get("pending_state", 0) >= 3
        )
        for pct in range(300):
            bus.publish("item_updated", {"id": "p1", "pct": pct}, progress=True)
        bus.publish("marker", {"after": "progress"})
        # The fast client gets everything up to the marker while the slow one sits still.
        marker, fast_got = recv_until(fast, event("marker"))
        slow_stats = stats_of(server, sid)
        # Now let the slow client read everything it was sent.
        slow_got: list[Any] = []
        while not slow_got or slow_got[-1]["event"] != "marker":
            slow_got.append(recv_json(slow))
    # The fast client kept up: progress in order, ending with the newest, then the marker.
    fast_progress = [m["data"]["pct"] for m in fast_got if m["event"] == "item_updated"]
    assert fast_progress == sorted(fast_progress)
    assert fast_progress[-1] == 299
    assert marker["data"] == {"after": "progress"}
    # Meanwhile the slow client's backlog held (no frame of it was written) and coalesced.
    assert slow_stats is not None
    assert slow_stats["pending_state"] >= 3
    assert slow_stats["coalesced"] > 0
    # The slow client: every state event, in order; progress coalesced to the newest.
    assert [m["data"]["n"] for m in slow_got if m["event"] == "filler"] == list(range(fillers))
    progress = [m["data"]["pct"] for m in slow_got if m["event"] == "item_updated"]
    assert 1 <= len(progress) < 300
    assert progress[-1] == 299
    assert progress == sorted(progress)


def test_slow_client_past_the_state_cap_is_closed_with_1013(
    make_server: Callable[..., WebsocketServer], bus: EventBus
) -> None:
    server = make_server(max_state_backlog=20, close_timeout=10)
    with slow_connect(server) as slow, connect(url(server), max_queue=None) as fast:
        sid = recv_json(slow)["data"]["sid"]
        recv_json(fast)

        def slow_is_closing() -> bool:
            stats = stats_of(server, sid)
            return stats is None or stats["closing"]

        fillers = fill_until(bus, fast, 0, slow_is_closing)
        # The fast client is unaffected.
        bus.publish("marker", {"after": "overflow"})
        assert recv_json(fast) == {"event": "marker", "data": {"after": "overflow"}}
        received: list[int] = []
        with pytest.raises(ConnectionClosed) as exc:
            while True:
                message = recv_json(slow)
                received.append(message["data"]["n"])
    assert exc.value.rcvd is not None
    assert exc.value.rcvd.code == 1013
    # What did reach it is an unbroken prefix (state events are dropped only with the client).
    assert received == list(range(len(received)))
    assert len(received) < fillers
    wait_until(lambda: stats_of(server, sid) is None)


def test_dead_peer_is_dropped_by_the_heartbeat(
    make_server: Callable[..., WebsocketServer], bus: EventBus
) -> None:
    server = make_server(ping_interval=0.2, ping_timeout=0.3, close_timeout=0.5)
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as dead, \
            connect(url(server)) as live:
        live_sid = recv_json(live)["data"]["sid"]
        dead.sendall(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += dead.recv(4096)
        assert response.startswith(b"HTTP/1.1 101")
        wait_until(lambda: len(server.client_stats()) == 2)
        # The dead peer never answers a ping; the live one does.
        wait_until(lambda: [s["sid"] for s in server.client_stats()] == [live_sid])
        bus.publish("marker", {"still": "alive"})
        assert recv_json(live) == {"event": "marker", "data": {"still": "alive"}}


# --- /api/ws: Flasharr -------------------------------------------------------------------------


def test_flasharr_sync_all_on_connect(
    make_server: Callable[..., WebsocketServer], service: FakeService
) -> None:
    items = [service.seed("https://example.com/a"), service.seed("https://example.com/b")]
    server = make_server(batch_interval=60, stats_interval=60)
    with connect(url(server, "/api/ws")) as ws:
        first = recv_json(ws)
    assert first["type"] == "SYNC_ALL"
    assert first["tasks"] == [service.flasharr_task(i) for i in items]


def test_flasharr_task_messages_follow_the_bus(
    make_server: Callable[..., WebsocketServer], service: FakeService, bus: EventBus
) -> None:
    server = make_server(batch_interval=60, stats_interval=60)
    item = {"id": "t1", "url": "https://example.com/t1", "status": "pending"}
    with connect(url(server, "/api/ws")) as ws:
        assert recv_json(ws) == {"type": "SYNC_ALL", "tasks": []}
        bus.publish("item_added", item)
        bus.publish("item_updated", {**item, "status": "downloading", "pct": 40}, progress=True)
        bus.publish("item_completed", {**item, "status": "finished", "pct": 100})
        # a move repeats the item_updated before it: Flasharr has no frame for it (mapped as
        # an update, the row went back to "queued" between two "completed" frames)
        bus.publish("item_moved", {"to": "history", "item": {**item, "status": "finished"}})
        bus.publish("log_info", {"title": "ignored", "message": "not a task"})
        bus.publish("item_deleted", {"id": "t1"})
        got = [recv_json(ws) for _ in range(4)]
    assert got == [
        {"type": "TASK_ADDED", "task": {"id": "t1", "state": "pending", "progress": 0}},
        {"type": "TASK_UPDATED", "task": {"id": "t1", "state": "downloading", "progress": 40}},
        {"type": "TASK_UPDATED", "task": {"id": "t1", "state": "finished", "progress": 100}},
        {"type": "TASK_REMOVED", "task_id": "t1"},
    ]


def test_flasharr_batch_updates_only_while_active_and_engine_stats(
    make_server: Callable[..., WebsocketServer], service: FakeService
) -> None:
    server = make_server(batch_interval=0.05, stats_interval=0.15)
    with connect(url(server, "/api/ws")) as ws:
        assert recv_json(ws)["type"] == "SYNC_ALL"
        # Idle engine: ENGINE_STATS every interval, no TASK_BATCH_UPDATE in between.
        seen = []
        while sum(m["type"] == "ENGINE_STATS" for m in seen) < 3:
            seen.append(recv_json(ws))
        assert {m["type"] for m in seen} == {"ENGINE_STATS"}
        assert seen[0]["stats"] == {"active_downloads": 0, "queued": 0, "total_speed": 0}
        service.active = [{"id": "a1", "status": "downloading", "pct": 12}]
        batch, _ = recv_until(ws, lambda m: m["type"] == "TASK_BATCH_UPDATE")
        stats, _ = recv_until(
            ws, lambda m: m["type"] == "ENGINE_STATS" and m["stats"]["active_downloads"] == 1
        )
    assert batch["tasks"] == [{"id": "a1", "state": "downloading", "progress": 12}]
    assert stats["stats"]["active_downloads"] == 1


def test_flasharr_timers_run_only_while_a_flasharr_client_is_connected(
    make_server: Callable[..., WebsocketServer], service: FakeService
) -> None:
    server = make_server(batch_interval=0.02, stats_interval=0.02)
    with connect(url(server)) as ytp:
        recv_json(ytp)
        assert not service.polled.wait(0.3), "polled with no Flasharr client"
        assert not server.polling
        with connect(url(server, "/api/ws")) as ws:
            recv_json(ws)
            assert service.polled.wait(TIMEOUT)
            assert server.polling
        wait_until(lambda: not server.polling)
        service.polled.clear()
        assert not service.polled.wait(0.3), "still polling after the Flasharr client left"


# --- lifecycle --------------------------------------------------------------------------------


def test_stop_closes_clients_and_ends_the_thread(
    settings: Settings, bus: EventBus, service: FakeService
) -> None:
    server = WebsocketServer(settings, bus, service, port=0)
    server.start()
    assert server.port > 0
    threads = [t for t in threading.enumerate() if t.name == "ws-sidecar"]
    assert threads
    with connect(url(server)) as ws:
        recv_json(ws)
        server.stop()
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=TIMEOUT)
    assert exc.value.rcvd is not None
    assert exc.value.rcvd.code == 1001
    assert not any(t.is_alive() for t in threads)
    assert not [t for t in threading.enumerate() if t.name == "ws-sidecar"]
    server.stop()  # idempotent
    bus.publish("after_stop", {})  # no subscriber left to fail
    assert server.client_stats() == []


def test_start_raises_oserror_when_the_port_is_taken(
    settings: Settings, bus: EventBus, service: FakeService
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = WebsocketServer(settings, bus, service, port=taken.getsockname()[1])
        with pytest.raises(OSError):
            server.start()
        server.stop()
    assert not [t for t in threading.enumerate() if t.name == "ws-sidecar"]
