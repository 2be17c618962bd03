"""Delivery to each client: its buffer, slow clients, dead peers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from support.ws_sidecar import (
    PAD,
    TIMEOUT,
    FakeService,
    Filler,
    backed_up,
    event,
    fill_until,
    recv_json,
    recv_until,
    send,
    slow_connect,
    stats_of,
    upgrade_request,
    url,
    wait_until,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from appliance.events import EventBus
from appliance.ws import WebsocketServer
from appliance.ws.clients import BufferClosed, ClientBuffer
from appliance.ws.frames import encode
from appliance.ws.server import DRAIN_BATCH
from appliance.ws.ytptube import COMMAND_WINDOW

# --- per-client buffer ------------------------------------------------------------------------


def test_buffer_coalesces_progress_behind_earlier_state_and_caps_state() -> None:
    async def scenario() -> tuple[list[bytes], bool, int]:
        buf = ClientBuffer(max_state=3, max_progress=2)
        buf.push_progress("x", b"x1")
        buf.push_state(b"A")
        buf.push_progress("x", b"x2")  # replaces x1 and moves behind A
        buf.push_progress("y", b"y1")
        buf.push_progress("z", b"z1")  # a third progress key: over max_progress, dropped
        buf.push_progress("w", b"w1")  # and a fourth
        buf.push_state(b"B")
        buf.push_front(b"HELLO")  # ahead of everything, cap or not
        full = buf.push_state(b"C")  # 3 state frames wait already: refused
        order = [await buf.get() for _ in range(buf.pending)]
        coalesced_dropped = buf.coalesced * 10 + buf.dropped
        # drained, the whole cap is free again (the hello took no slot for good)
        assert (buf.pending, buf.pending_state) == (0, 0)
        assert all(buf.push_state(f"S{n}".encode()) for n in range(3))
        buf.push_state(b"D")
        buf.close()
        assert (buf.pending, buf.pending_state, buf.pending_state_bytes) == (0, 0, 0)
        with pytest.raises(BufferClosed):  # D was discarded with the buffer
            await buf.get()
        return order, full, coalesced_dropped

    order, full, counts = asyncio.run(scenario())
    assert order == [b"HELLO", b"A", b"x2", b"y1", b"B"]
    assert full is False
    assert counts == 12


def test_waiting_for_the_buffer_to_go_below_a_count_of_state_frames() -> None:
    async def scenario() -> list[str]:
        buf = ClientBuffer(max_state=10, max_progress=10)
        seen = []
        for frame in (b"A", b"B", b"C"):
            buf.push_state(frame)
        buf.push_progress("p", b"P")  # progress is not counted
        waiter = asyncio.ensure_future(buf.below(2))
        await asyncio.sleep(0)
        seen.append(f"{waiter.done()} at {buf.pending_state}")
        await buf.get()  # 2 left: not below 2
        await asyncio.sleep(0)
        seen.append(f"{waiter.done()} at {buf.pending_state}")
        await buf.get()
        await asyncio.wait_for(waiter, TIMEOUT)
        seen.append(f"done at {buf.pending_state}")
        await buf.below(2)  # below already: at once
        buf.push_state(b"D")
        closed = asyncio.ensure_future(buf.below(1))
        buf.close()  # a closed buffer is waited for no longer
        await asyncio.wait_for(closed, TIMEOUT)
        return seen

    assert asyncio.run(scenario()) == ["False at 3", "False at 2", "done at 1"]


def test_buffer_caps_the_bytes_of_state_waiting() -> None:
    async def scenario() -> list[bool]:
        buf = ClientBuffer(max_state=100, max_progress=1, max_state_bytes=10)
        taken = [buf.push_state(b"x" * 15)]  # over the cap, into an empty backlog: taken
        taken.append(buf.push_state(b"y"))  # 15 bytes wait: refused
        buf.push_progress("p", b"p" * 50)  # progress is not state: counted apart
        assert (await buf.get(), buf.pending_state_bytes) == (b"x" * 15, 0)
        taken += [buf.push_state(b"z" * 9), buf.push_state(b"w"), buf.push_state(b"v")]
        buf.push_front(b"hello")
        assert buf.pending_state_bytes == 15
        return taken

    assert asyncio.run(scenario()) == [True, False, True, True, False]


@pytest.mark.parametrize(("max_state", "max_progress", "max_bytes"),
                         [(0, 1, 1), (1, 0, 1), (1, 1, 0), (0, 0, 0)])
def test_buffer_caps_below_one_are_refused(max_state: int, max_progress: int,
                                           max_bytes: int) -> None:
    # a cap of 0 would close every client at its first event, or drop all progress
    with pytest.raises(ValueError, match=r"^buffer caps must be at least 1$"):
        ClientBuffer(max_state=max_state, max_progress=max_progress, max_state_bytes=max_bytes)
    # one of each is enough
    assert ClientBuffer(max_state=1, max_progress=1, max_state_bytes=1).pending == 0


# --- slow clients ------------------------------------------------------------------------------


def ytp_filler(bus: EventBus) -> Filler:
    """64 KiB events on /ws: ``filler`` with its number."""
    return Filler(lambda n: bus.publish("filler", {"n": n, "pad": PAD}),
                  lambda m: m["data"]["n"] if m["event"] == "filler" else None)


@contextlib.contextmanager
def slow_and_fast(server: WebsocketServer
                  ) -> Iterator[tuple[ClientConnection, ClientConnection, str]]:
    """A client that stops reading (and its sid) beside one that keeps up, each past its
    first frame."""
    with slow_connect(server) as slow, connect(url(server), max_queue=None) as fast:
        sid = recv_json(slow)["data"]["sid"]
        recv_json(fast)
        yield slow, fast, sid


def test_slow_client_never_blocks_others_and_its_progress_is_coalesced(
    make_server: Callable[..., WebsocketServer], bus: EventBus
) -> None:
    server = make_server(max_state_backlog=1000)
    with slow_and_fast(server) as (slow, fast, sid):
        # Back the slow client up until its own buffer holds state events.
        fillers = fill_until(fast, ytp_filler(bus), lambda: backed_up(server, sid))
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
    # Meanwhile the slow client's backlog held and coalesced. Not all three frames it held
    # when it backed up: its kernel may take one more as the slow side's TCP window opens
    # (CI, a busy box: 2 left).
    assert slow_stats is not None
    assert slow_stats["pending_state"] >= 1
    assert slow_stats["coalesced"] > 0
    # The slow client: every state event, in order; progress coalesced to the newest.
    assert [m["data"]["n"] for m in slow_got if m["event"] == "filler"] == list(range(fillers))
    progress = [m["data"]["pct"] for m in slow_got if m["event"] == "item_updated"]
    assert 1 <= len(progress) < 300
    assert progress[-1] == 299
    assert progress == sorted(progress)


def test_slow_client_past_the_state_cap_is_closed_with_1013(
    make_server: Callable[..., WebsocketServer], bus: EventBus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = make_server(max_state_backlog=20, close_timeout=10)
    with slow_and_fast(server) as (slow, fast, sid):

        def slow_is_closing() -> bool:
            stats = stats_of(server, sid)
            return stats is None or stats["closing"]

        with caplog.at_level(logging.WARNING, logger="appliance.ws"):
            fillers = fill_until(fast, ytp_filler(bus), slow_is_closing)
        # The fast client is unaffected.
        bus.publish("marker", {"after": "overflow"})
        assert recv_json(fast) == {"event": "marker", "data": {"after": "overflow"}}
        received: list[int] = []
        with pytest.raises(ConnectionClosed) as exc:
            while True:
                message = recv_json(slow)
                received.append(message["data"]["n"])
    assert exc.value.rcvd is not None
    # what the client is told: why, and what to do
    assert (exc.value.rcvd.code, exc.value.rcvd.reason) == (
        1013, "client too slow; reconnect to resync")
    # What did reach it is an unbroken prefix (state events are dropped only with the client).
    assert received == list(range(len(received)))
    assert len(received) < fillers
    # and the log, which client and why
    [said] = [r.getMessage() for r in caplog.records if r.name == "appliance.ws"]
    assert said.startswith(f"websocket client {sid} (ytptube) fell 20 state events (")
    assert said.endswith(" bytes) behind; closing it so it reconnects and resyncs")
    wait_until(lambda: stats_of(server, sid) is None)


def test_dead_peer_is_dropped_by_the_heartbeat(
    make_server: Callable[..., WebsocketServer], bus: EventBus
) -> None:
    server = make_server(ping_interval=0.2, ping_timeout=0.3, close_timeout=0.5)
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as dead, \
            connect(url(server)) as live:
        live_sid = recv_json(live)["data"]["sid"]
        dead.sendall(upgrade_request())
        response = b""
        while b"\r\n\r\n" not in response:
            response += dead.recv(4096)
        assert response.startswith(b"HTTP/1.1 101")
        wait_until(lambda: len(server.client_stats()) == 2)
        # The dead peer never answers a ping; the live one does.
        wait_until(lambda: [s["sid"] for s in server.client_stats()] == [live_sid])
        bus.publish("marker", {"still": "alive"})
        assert recv_json(live) == {"event": "marker", "data": {"still": "alive"}}
        # what the server counts as written to it: the hello and the marker
        wait_until(lambda: (stats_of(server, live_sid) or {}).get("sent") == 2)
        assert (stats_of(server, live_sid) or {})["protocol"] == "ytptube"


@pytest.mark.parametrize("size", [300, 3_000, 300_000])
def test_a_waiting_frame_holds_the_memory_its_bytes_are_counted_for(size: int) -> None:
    # A client's backlog is capped by the bytes of its frames (16 MiB): they must be what it
    # holds. orjson's answer kept the buffer it wrote into, some 13 times the frame (4 KiB
    # for a 300-byte reply): twenty clients that stopped reading held 800 MB here.
    message = {"event": "log_error", "data": {"message": "x" * size}}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        frames = [encode(message) for _ in range(20)]
        held = (tracemalloc.get_traced_memory()[0] - before) / len(frames)
    finally:
        tracemalloc.stop()
    frame = frames[0]
    assert frame is not None
    assert orjson.loads(frame) == message
    # its bytes, a bytes object's header and the list's slot; under a tracer (mutmut's
    # stats) some of the tracer's own too: at most twice the frame, not thirteen times
    assert held < 2 * len(frame) + 256


def test_a_client_that_does_not_read_its_answers_gets_no_more_commands_run(
    make_server: Callable[..., WebsocketServer], bus: EventBus, service: FakeService
) -> None:
    # Each command of eleven unknown ids is answered in eleven frames of this client's own
    # (shared with no one): sent and never read, 300 of them were 3,300 frames held for it,
    # and as many for each of its sockets, until its backlog's cap closed it as too slow.
    # Its next command waits while its answers do; read, they all come, in order.
    server = make_server(max_state_backlog=1000)
    commands = 300
    with slow_and_fast(server) as (slow, fast, sid):
        fillers = fill_until(fast, ytp_filler(bus), lambda: backed_up(server, sid))
        for n in range(commands):
            send(slow, "item_start", [f"{n}-{i}" for i in range(11)])

        def waiting() -> int:
            return int((stats_of(server, sid) or {}).get("pending_state", 0))

        wait_until(lambda: waiting() >= COMMAND_WINDOW)
        assert len(service.calls) <= COMMAND_WINDOW // 11 + 1
        assert waiting() <= COMMAND_WINDOW + 11
        answered = []
        while len(answered) < commands * 11:
            message = recv_json(slow)
            if message["event"] == "log_error":
                answered.append(message["data"]["message"])
    assert answered[:2] == ["0-0: Item not found.", "0-1: Item not found."]
    assert answered[10] == answered[-1] == "1 more items failed too."
    assert answered[-11] == f"{commands - 1}-0: Item not found."
    assert len(service.calls) == commands
    assert fillers >= 1


def test_a_slow_clients_progress_past_its_cap_of_items_is_dropped_and_counted(
    make_server: Callable[..., WebsocketServer], bus: EventBus
) -> None:
    server = make_server(max_progress_backlog=2)
    with slow_and_fast(server) as (slow, fast, sid):
        fill_until(fast, ytp_filler(bus), lambda: backed_up(server, sid))
        for n in range(5):
            bus.publish("item_updated", {"id": f"p{n}", "pct": 1}, progress=True)
        bus.publish("marker", {})
        recv_until(fast, event("marker"))  # dispatched to both by now
        stats = stats_of(server, sid)
        assert stats is not None
        assert (stats["dropped"], stats["coalesced"]) == (3, 0)
        _, got = recv_until(slow, event("marker"))
    assert [m["data"]["id"] for m in got if m["event"] == "item_updated"] == ["p0", "p1"]


def test_a_burst_faster_than_the_loop_turns_does_not_close_a_client_that_reads_it(
    make_server: Callable[..., WebsocketServer], bus: EventBus
) -> None:
    # Events published while the loop is busy wait for its next turn. All of them were
    # dispatched in that one turn, before any sender wrote a frame: a burst past a client's
    # cap (a playlist of thousands added at once, with a thousand clients to serve) closed
    # every client as too slow, those that read everything included. Published here from the
    # loop's own thread, the whole burst waits for one turn.
    server = make_server(max_state_backlog=2 * DRAIN_BATCH)
    burst = 10 * DRAIN_BATCH
    with connect(url(server), max_queue=None) as ws:
        recv_json(ws)
        loop = server._loop
        assert loop is not None
        loop.call_soon_threadsafe(
            lambda: [bus.publish("burst", {"n": n}) for n in range(burst)])
        got = [recv_json(ws)["data"]["n"] for _ in range(burst)]
        bus.publish("marker", {})
        assert recv_json(ws)["event"] == "marker"
    assert got == list(range(burst))
