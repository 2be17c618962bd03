"""The wire client's connections. The live feed finds a dead peer by TCP keepalive, which the
kernel answers whatever the client is doing. Websocket pings were answered behind the frames
before them: a client busy with a flood (tests/test_tui_bounds.py's, on a starved CPU) timed
its own healthy connection out, and reconnected without end. And ids from the service's
answers are one segment of a request's path."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
from support.hostile import HostileService, hostile_service
from support.server import wait_for

from appliance.client import ApiClient, ApiError, Connection, live

service = pytest.fixture(hostile_service)


def test_the_feed_keeps_its_connection_alive_by_tcp(service: HostileService,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    kept: list[Any] = []
    real = live.keep_alive
    monkeypatch.setattr(live, "keep_alive", lambda sock: (real(sock), kept.append(sock)))
    client = ApiClient(Connection(service.url))

    async def connected() -> list[tuple[int, ...]]:
        up = asyncio.Event()

        def on_state(state: live.FeedState) -> None:
            if state.state == live.CONNECTED:
                up.set()

        feed = live.LiveFeed(client, f"ws://127.0.0.1:{service.ws_port}/ws",
                             on_event=lambda _: None, on_snapshot=lambda _: None,
                             on_state=on_state)
        task = asyncio.create_task(feed.run())
        try:
            await asyncio.wait_for(up.wait(), 30)
            [sock] = kept  # the connection's own socket, open
            return [(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),),
                    tuple(sock.getsockopt(socket.IPPROTO_TCP, option) for option in (
                        socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT))]
        finally:
            task.cancel()

    assert asyncio.run(connected()) == [(1,), (live.KEEPALIVE_IDLE, live.KEEPALIVE_INTERVAL,
                                              live.KEEPALIVE_COUNT)]
    assert (live.KEEPALIVE_IDLE, live.KEEPALIVE_INTERVAL, live.KEEPALIVE_COUNT) == (20, 10, 3)


def test_keepalive_is_set_on_any_tcp_socket() -> None:
    with socket.socket() as sock:
        live.keep_alive(sock)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 20




def feed_states(service: HostileService, until: Callable[[list[live.FeedState]], bool],
                **changes: Any) -> list[live.FeedState]:
    """The states a feed says until ``until`` holds of them (or the feed ends by itself);
    ``changes``: what the service changes after each state, by the state's name."""
    states: list[live.FeedState] = []
    client = ApiClient(Connection(service.url, token="t"))

    async def run() -> None:
        done = asyncio.Event()

        def on_state(state: live.FeedState) -> None:
            states.append(state)
            change = changes.get(state.state)
            if change is not None:
                change(len(states))
            if until(states):
                done.set()

        feed = live.LiveFeed(client, f"ws://127.0.0.1:{service.ws_port}/ws",
                             on_event=lambda _: None, on_snapshot=lambda _: None,
                             on_state=on_state, backoff_first=0.01, backoff_max=0.04)
        task = asyncio.create_task(feed.run())
        waiting = asyncio.create_task(done.wait())
        await asyncio.wait({task, waiting}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        for each in (task, waiting):
            each.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    return states


def test_a_refused_websocket_is_said_and_tried_again_unless_credentials_are_wrong(
        service: HostileService) -> None:
    service.ws_refusal = 401
    assert feed_states(service, lambda states: False) == [
        live.FeedState(live.REFUSED, "Invalid credentials.")]  # the feed ended by itself
    # Any other refusal: tried again, each wait twice the last, up to the most.
    service.ws_refusal = 503
    states = feed_states(service, lambda states: len(states) >= 4)
    assert [(s.state, s.reason, s.retry_in) for s in states[:4]] == [
        (live.DISCONNECTED, "websocket refused: HTTP 503", wait)
        for wait in (0.01, 0.02, 0.04, 0.04)]
    # Without compression: the frames are the service's own JSON, read as they come.
    assert all("Sec-WebSocket-Extensions" not in headers
               for headers in service.ws_handshakes)


def test_a_drop_after_a_good_connection_starts_the_waits_again(service: HostileService
                                                                ) -> None:
    service.ws_refusal = 503

    def accept(count: int) -> None:
        if count == 3:  # two refusals: the next wait would be 0.04
            service.ws_refusal = None

    states = feed_states(service, lambda states: len(states) >= 5, disconnected=accept,
                         connected=lambda count: service.drop_websockets())
    assert [(s.state, s.retry_in) for s in states[:5]] == [
        (live.DISCONNECTED, 0.01), (live.DISCONNECTED, 0.02), (live.DISCONNECTED, 0.04),
        (live.CONNECTED, 0.0), (live.DISCONNECTED, 0.01)]
    assert states[4].reason == "the service closed the connection"


def test_a_snapshot_refused_for_its_credentials_ends_the_feed(service: HostileService) -> None:
    service.answers["/api/history/live"] = (401, {"error": "Token expired.", "code": "x"})
    assert feed_states(service, lambda states: False) == [
        live.FeedState(live.REFUSED, "Token expired.")]


def test_ids_from_the_service_are_one_segment_of_the_path(service: HostileService) -> None:
    """Ids come from the service's answers: one holding "/" or ".." named another endpoint
    (``/api/tasks/1/../../system/pause/execute``)."""
    service.answers["POST /api/tasks/1%2F..%2F..%2Fsystem%2Fpause/execute"] = {"id": 1}
    client = ApiClient(Connection(service.url))
    hostile = "1/../../system/pause"
    client.run_task(hostile)  # type: ignore[arg-type]
    for call in (client.mark_task, client.unmark_task):
        with contextlib.suppress(ApiError):  # not answered here: a 404 is fine
            call(hostile)  # type: ignore[arg-type]
    with contextlib.suppress(ApiError):
        client.update("presets", "a/b", {})  # type: ignore[arg-type]
    assert service.asked == [
        "POST /api/tasks/1%2F..%2F..%2Fsystem%2Fpause/execute",
        "POST /api/tasks/1%2F..%2F..%2Fsystem%2Fpause/mark",
        "DELETE /api/tasks/1%2F..%2F..%2Fsystem%2Fpause/mark",
        "PATCH /api/presets/a%2Fb"]


def test_a_log_stream_without_chunks_gives_each_record_as_it_comes() -> None:
    """Through an HTTP/1.0 proxy the stream has no chunks: a read of 64 KiB waited for that
    much of the log (minutes of a quiet one) before the TUI showed any line."""
    listener = socket.create_server(("127.0.0.1", 0))
    release = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)  # the request
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                         b'event: log_lines\ndata: {"id": "1", "line": "first"}\n\n')
            release.wait(60)  # open, quiet: as a log between two records

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    stream = ApiClient(Connection(f"http://127.0.0.1:{listener.getsockname()[1]}")).log_stream()
    got: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: got.extend(itertools.islice(stream, 1)),
                              daemon=True)
    reader.start()
    try:
        wait_for(lambda: got, timeout=20, message="the first record")
        assert got == [{"id": "1", "line": "first"}]
    finally:
        release.set()
        stream.close()
        reader.join(10)
        server.join(10)
        listener.close()
