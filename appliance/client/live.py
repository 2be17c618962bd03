"""The ``/ws`` websocket: frames parsed into :class:`LiveEvent` and a feed that stays connected.

The feed reconnects with backoff after a drop and, after every connect, takes a snapshot of
the queue (``GET /api/history/live``) before it hands on what the socket said meanwhile, so a
client that was away misses nothing: what happened while it was disconnected is in the
snapshot, what happens from the connect on comes as events.

A dead connection is found by TCP's own keepalive, not by websocket pings: a ping's answer is
read behind the frames before it, so a client busy with a flood of them (a slow box, a burst
of thousands of items) timed its own healthy connection out, reconnected, fetched a snapshot
and fell behind again. The kernel answers keepalive probes whatever the client is doing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from .http import ApiClient, ApiError, Unreachable

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
OPEN_TIMEOUT = 10.0
# A peer gone without a word (a network down, a box switched off) is found within about
# KEEPALIVE_IDLE + KEEPALIVE_COUNT * KEEPALIVE_INTERVAL seconds of silence.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 20, 10, 3


@dataclasses.dataclass(frozen=True, slots=True)
class LiveEvent:
    name: str
    data: Any
    title: str = ""
    message: str = ""
    created_at: Any = None


def parse_frame(text: str | bytes) -> LiveEvent | None:
    """One ``/ws`` frame, or None when it is not an event.

    YTPTube's envelope is ``{"event": name, "data": Event}`` with Event ``{id, created_at,
    event, title, message, data: payload}``; a bare payload in ``data`` is accepted too.
    """
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested too deep to read
        return None
    if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
        return None
    data = frame.get("data")
    if isinstance(data, dict) and "data" in data and "created_at" in data and "event" in data:
        return LiveEvent(frame["event"], data["data"], str(data.get("title") or ""),
                         str(data.get("message") or ""), data.get("created_at"))
    return LiveEvent(frame["event"], data)


# What the feed tells its owner about the connection.
CONNECTED = "connected"
DISCONNECTED = "disconnected"
REFUSED = "refused"  # the service refused the credentials


@dataclasses.dataclass(frozen=True, slots=True)
class FeedState:
    state: str
    reason: str = ""
    retry_in: float = 0.0


class LiveFeed:
    """Runs until cancelled. ``on_snapshot`` gets ``/api/history/live`` (at most
    ``queue_limit`` of the queue's items when given) after each connect,
    ``on_event`` every event after it, ``on_state`` every :class:`FeedState` change."""

    def __init__(
        self,
        client: ApiClient,
        ws_url: str,
        *,
        on_event: Callable[[LiveEvent], Awaitable[None] | None],
        on_snapshot: Callable[[dict[str, Any]], Awaitable[None] | None],
        on_state: Callable[[FeedState], Awaitable[None] | None],
        backoff_first: float = BACKOFF_FIRST,
        backoff_max: float = BACKOFF_MAX,
        queue_limit: int | None = None,
    ) -> None:
        self.client, self.ws_url = client, ws_url
        self.queue_limit = queue_limit
        self.on_event, self.on_snapshot, self.on_state = on_event, on_snapshot, on_state
        self.backoff_first, self.backoff_max = backoff_first, backoff_max
        self._connected = False

    async def run(self) -> None:
        delay = self.backoff_first
        while True:
            self._connected = False
            try:
                await self._session()
                reason = "the service closed the connection"
            except InvalidStatus as exc:
                if exc.response.status_code == 401:
                    await _call(self.on_state, FeedState(REFUSED, "Invalid credentials."))
                    return
                reason = f"websocket refused: HTTP {exc.response.status_code}"
            except ApiError as exc:
                if exc.unauthorized:
                    await _call(self.on_state, FeedState(REFUSED, exc.message))
                    return
                reason = exc.message
            except (OSError, TimeoutError, WebSocketException, Unreachable) as exc:
                reason = str(exc) or type(exc).__name__
            if self._connected:  # a drop after a good connection starts the backoff again
                delay = self.backoff_first
            await _call(self.on_state, FeedState(DISCONNECTED, reason, delay))
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    async def _session(self) -> None:
        auth = self.client.connection.authorization()
        headers = {"Authorization": auth} if auth else None
        async with connect(self.ws_url, additional_headers=headers, open_timeout=OPEN_TIMEOUT,
                           compression=None, max_size=2**24, ping_interval=None) as ws:
            keep_alive(ws.transport.get_extra_info("socket"))
            # Frames that arrive while the snapshot is fetched wait in the socket's buffer and
            # are handed on after it.
            snapshot = await asyncio.to_thread(self.client.live, self.queue_limit)
            await _call(self.on_snapshot, snapshot)
            self._connected = True
            await _call(self.on_state, FeedState(CONNECTED))
            async for frame in ws:
                event = parse_frame(frame)
                if event is not None:
                    await _call(self.on_event, event)


def keep_alive(sock: Any) -> None:
    """TCP keepalive on ``sock``, probing after KEEPALIVE_IDLE seconds of silence."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                        ("TCP_KEEPCNT", KEEPALIVE_COUNT)):
        if hasattr(socket, name):  # Linux's; other systems keep their own timing
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


async def _call(callback: Callable[[Any], Awaitable[None] | None], value: Any) -> None:
    result = callback(value)
    if asyncio.iscoroutine(result):
        await result
