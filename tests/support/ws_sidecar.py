"""The websocket sidecar's tests: a stand-in service that records calls and publishes on
the bus what the real engine publishes (end-to-end tests with the real engine live elsewhere),
and a real ``websockets`` client's helpers."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response
from websockets.sync.client import ClientConnection, connect

from appliance.errors import AppError
from appliance.events import EventBus
from appliance.ws import WebsocketServer

TIMEOUT = 10.0


class FakeService:
    """Records calls; publishes the events a real engine would."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.calls: list[tuple[Any, ...]] = []
        self.items: dict[str, dict[str, Any]] = {}
        self.active: list[dict[str, Any]] = []
        self.polled = threading.Event()
        self.fail_with: Exception | None = None
        # Methods that raise RuntimeError("disk on fire"), as a service with a broken store would
        self.broken: set[str] = set()
        # URLs the service adds nothing for (as yt-dlp's download archive skips them)
        self.archived: set[str] = set()
        # Run while flasharr_tasks takes its snapshot: the engine's threads go on meanwhile
        self.during_snapshot: Callable[[], None] = lambda: None
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
            if url in self.archived:
                continue
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
                results[item_id] = "Item not found."
                continue
            self.bus.publish("item_deleted", {"id": item_id})
            results[item_id] = "ok"
        return results

    def _fail_if_broken(self, name: str) -> None:
        if name in self.broken:
            raise RuntimeError("disk on fire")

    def flasharr_task(self, item: dict[str, Any]) -> dict[str, Any]:
        self._fail_if_broken("flasharr_task")
        return {"id": item["id"], "state": item.get("status"), "progress": item.get("pct", 0)}

    def flasharr_tasks(self) -> list[dict[str, Any]]:
        self._fail_if_broken("flasharr_tasks")
        with self._lock:
            tasks = [self.flasharr_task(i) for i in self.items.values()]
        self.during_snapshot()
        return tasks

    def active_count(self) -> int:
        self.polled.set()
        return len(self.active)

    def active_items(self) -> list[dict[str, Any]]:
        return list(self.active)

    def engine_stats(self) -> dict[str, Any]:
        self.polled.set()
        self._fail_if_broken("engine_stats")
        return {"active_downloads": len(self.active), "queued": 0, "total_speed": 0}


def basic(user: str, password: str) -> dict[str, str]:
    """An ``Authorization: Basic`` header for ``user:password``."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def apikey(user: str, password: str) -> str:
    """The ``?apikey=`` value for ``user:password``."""
    return base64.urlsafe_b64encode(f"{user}:{password}".encode()).decode()


def url(server: WebsocketServer, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def upgrade_request(target: str = "/ws") -> bytes:
    """A websocket handshake's request for ``target``, as bytes for a raw socket."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


def refusal(target: str, **kwargs: Any) -> Response:
    """The HTTP answer of a handshake the server refuses (the test fails if it opens)."""
    with pytest.raises(InvalidStatus) as exc:
        connect(target, open_timeout=TIMEOUT, **kwargs)
    return exc.value.response


def recv_frame(ws: ClientConnection, timeout: float = TIMEOUT) -> Any:
    raw = ws.recv(timeout=timeout)
    # Text frames: a browser hands a binary one to the page as a Blob, which JSON.parse
    # cannot read.
    assert isinstance(raw, str), "a binary frame"
    return json.loads(raw)


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


# --- slow clients ------------------------------------------------------------------------------

PAD = os.urandom(32 * 1024).hex()  # 64 KiB that deflate cannot shrink much


def slow_connect(
    server: WebsocketServer, path: str = "/ws", close_timeout: float = 0.1
) -> ClientConnection:
    """A client that stops reading: tiny receive buffer, no compression, a 1-frame queue.
    Its full queue hides the server's close frame (behind frames it will never read, or
    behind those that keep coming on a socket that never goes quiet: Flasharr's timers), so
    its own close stops waiting for it after ``close_timeout``: the whole 10 s of TIMEOUT
    held each test that let such a client go, after what it checks."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", server.port))
    return connect(url(server, path), sock=sock, compression=None, max_queue=1,
                   close_timeout=close_timeout)


def backed_up(server: WebsocketServer, sid: str) -> bool:
    """The client's own buffer holds state frames: its socket takes no more."""
    return (stats_of(server, sid) or {}).get("pending_state", 0) >= 3


@dataclasses.dataclass(frozen=True)
class Filler:
    """Big state events of one protocol: ``publish(n)`` sends the n-th on the bus, and
    ``number(message)`` is n for a message that is one of them (None for anything else)."""

    publish: Callable[[int], None]
    number: Callable[[Any], int | None]


def fill_until(fast: ClientConnection, filler: Filler, done: Callable[[], bool]) -> int:
    """Publish fillers, each paced by the fast client receiving it, until ``done()``; returns
    how many were published. The fast client must never lag."""
    n = 0
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, "the slow client never backed up"
        filler.publish(n)
        message, _ = recv_until(fast, lambda m: filler.number(m) is not None)
        assert filler.number(message) == n
        n += 1
    return n
