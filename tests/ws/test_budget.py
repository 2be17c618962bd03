"""One budget for what all websocket clients have waiting (YTP_WS_BACKLOG_BUDGET)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from support.ws_sidecar import (
    PAD,
    FakeService,
    Filler,
    backed_up,
    event,
    fill_until,
    recv_json,
    recv_until,
    slow_connect,
    stats_of,
    url,
    wait_until,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from appliance.config import Settings, SettingsError, load_settings
from appliance.events import EventBus
from appliance.ws import WebsocketServer
from appliance.ws.budget import (
    FRAME_COST,
    OVER_BUDGET,
    PROGRESS_ENTRY,
    STATE_ENTRY,
    Budget,
)
from appliance.ws.clients import ClientBuffer

# --- what is counted -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["state", "progress"])
def test_an_entry_costs_no_more_than_the_budget_counts(kind: str) -> None:
    # The budget stands for the memory really held: an entry must not cost more than it
    # counts beside its frame (the same frame in every entry: its bytes are counted once).
    async def scenario() -> tuple[float, int]:
        budget = Budget()
        buf = ClientBuffer(max_state=10**6, max_progress=10**6, max_state_bytes=2**40,
                           budget=budget)
        frame = b"x" * 300
        keys = [("item_updated", f"id-{n}") for n in range(entries)]
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for key in keys:
                if kind == "state":
                    buf.push_state(frame)
                else:
                    buf.push_progress(key, frame)
            per_entry = (tracemalloc.get_traced_memory()[0] - before) / entries
        finally:
            tracemalloc.stop()
        return per_entry, budget.held

    entries = 50_000
    per_entry, held = asyncio.run(scenario())
    counted = STATE_ENTRY if kind == "state" else PROGRESS_ENTRY
    assert per_entry <= counted
    # and what it counted: the frame once, every entry
    assert held == 300 + FRAME_COST + entries * counted
    # not a figure made up to be safe: within a tenth of what is measured
    assert 1.1 * per_entry > counted


def test_a_frame_shared_by_buffers_is_counted_once_and_all_is_given_back() -> None:
    async def scenario() -> list[int]:
        budget = Budget()
        one = ClientBuffer(max_state=10, max_progress=10, budget=budget)
        two = ClientBuffer(max_state=10, max_progress=10, budget=budget)
        shared, own, newer = b"s" * 1000, b"o" * 500, b"n" * 700
        held = []
        one.push_state(shared)
        two.push_state(shared)
        held.append(budget.held)
        one.push_progress("p", own)
        one.push_progress("p", newer)  # replaces own: its bytes go
        held.append(budget.held)
        two.push_front(own)
        held.append(budget.held)
        # a buffer's own count: its frames in full, shared or not
        held += [one.held, two.held]
        assert await one.get() == shared  # still held by two
        held.append(budget.held)
        two.close()  # shared and own go with it
        held.append(budget.held)
        assert await one.get() == newer
        held.append(budget.held)
        return held

    state, progress = FRAME_COST + STATE_ENTRY, FRAME_COST + PROGRESS_ENTRY
    assert asyncio.run(scenario()) == [
        1000 + state + STATE_ENTRY,
        1000 + state + STATE_ENTRY + 700 + progress,
        1000 + state + STATE_ENTRY + 700 + progress + 500 + state,
        1000 + state + 700 + progress,
        1000 + state + 500 + state,
        1000 + state + 700 + progress + 500 + state,
        700 + progress,
        0,
    ]


@dataclasses.dataclass(eq=False)
class Holder:
    """A client as the budget sees it: what it holds, whether it is closing."""

    sid: str
    holds: int
    budget: Budget
    protocol: str = "ytptube"
    closing: bool = False
    told: tuple[int, str] | None = None

    @property
    def holding(self) -> int:
        return self.holds

    def close(self, code: int, reason: str) -> None:
        self.closing, self.told = True, (code, reason)
        self.budget.adjust(-self.holds)
        self.budget.leave(self)


def test_over_the_budget_the_clients_holding_the_most_are_closed_until_it_is_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = Budget(1000)
    holders = {}
    for sid, holds in (("small", 100), ("big", 500), ("keeps-up", 0), ("middle", 300)):
        holders[sid] = Holder(sid, holds, budget)
        budget.join(holders[sid])
        budget.adjust(holds)
    budget.relieve()  # 900: within
    assert [h.sid for h in holders.values() if h.closing] == []
    budget.adjust(101)  # 1001: over; the biggest goes, and that is enough
    with caplog.at_level(logging.WARNING, logger="appliance.ws"):
        budget.relieve()
    assert [h.sid for h in holders.values() if h.closing] == ["big"]
    assert holders["big"].told == (1013, OVER_BUDGET)
    assert (budget.held, budget.closed) == (501, 1)
    [said] = [r.getMessage() for r in caplog.records]
    assert said == ("websocket clients hold 1001 bytes waiting, over the budget of 1000 "
                    "(YTP_WS_BACKLOG_BUDGET); closing client big (ytptube), which holds 500, "
                    "so that it reconnects and resyncs")
    budget.adjust(1000)  # 1501: "middle" and "small" both go, never the one that keeps up
    budget.relieve()
    assert [h.sid for h in holders.values() if not h.closing] == ["keeps-up"]
    assert (budget.held, budget.closed) == (1101, 3)
    budget.relieve()  # no one left to close: it stops (the rest goes as buffers drain)
    assert budget.closed == 3
    alone = Budget(1)
    alone.adjust(10)
    alone.relieve()  # over, with no client at all: nothing to close, no error
    assert (alone.over, alone.closed) == (True, 0)
    # the reason a client can show: a websocket close reason is at most 123 bytes
    assert len(OVER_BUDGET.encode()) <= 123


def test_a_budget_below_one_byte_is_refused_and_none_is_no_limit() -> None:
    with pytest.raises(ValueError, match=r"^the websocket backlog budget must be at least 1 "):
        Budget(0)
    unlimited = Budget()
    unlimited.adjust(2**60)
    assert not unlimited.over
    assert Budget(1).limit == 1


def test_the_setting_has_a_small_boxs_default_and_bounds(tmp_path: Any) -> None:
    def budget(value: str | None) -> int:
        environ = {"YTP_CONFIG_PATH": str(tmp_path)}
        if value is not None:
            environ["YTP_WS_BACKLOG_BUDGET"] = value
        return load_settings(environ=environ).ws_backlog_budget

    assert budget(None) == 64 * 2**20  # a small box's share
    assert budget("1048576") == 2**20
    for bad in ("1048575", "abc", str(2**40 + 1)):
        with pytest.raises(SettingsError, match="YTP_WS_BACKLOG_BUDGET"):
            budget(bad)


# --- stalled sockets on a real server --------------------------------------------------------


def ytp_filler(bus: EventBus, base: int = 0) -> Filler:
    """64 KiB events on /ws: ``filler`` with its number, counted from ``base``."""
    return Filler(lambda n: bus.publish("filler", {"n": base + n, "pad": PAD}),
                  lambda m: m["data"]["n"] - base if m["event"] == "filler" else None)


def closing(server: WebsocketServer, sid: str) -> bool:
    stats = stats_of(server, sid)
    return stats is None or bool(stats["closing"])


def read_to_the_close(ws: ClientConnection) -> tuple[list[int], ConnectionClosed]:
    """The fillers a closed client still gets, and how it was closed."""
    got = []
    with pytest.raises(ConnectionClosed) as exc:
        while True:
            message = recv_json(ws)
            if message["event"] == "filler":
                got.append(message["data"]["n"])
    return got, exc.value


def test_stalled_sockets_past_the_budget_are_closed_biggest_first_and_readers_keep_up(
    make_server: Callable[..., WebsocketServer], bus: EventBus, settings: Settings,
) -> None:
    budget = 4 * 2**20
    server = make_server(settings.replace(ws_backlog_budget=budget), close_timeout=10)
    assert server.budget.limit == budget  # from the setting
    assert server.budget.holders == 0
    with slow_connect(server) as first, slow_connect(server) as second, \
            connect(url(server), max_queue=None) as fast:
        first_sid = recv_json(first)["data"]["sid"]
        recv_json(fast)
        # The first stalls; the second reads along until the first holds half the budget,
        # then stalls too: the first holds more, and goes first.
        second_sid = recv_json(second)["data"]["sid"]
        sent = 0

        def first_holds_half() -> bool:
            nonlocal sent
            while True:  # the second keeps up meanwhile
                try:
                    message = recv_json(second, timeout=0.001)
                except TimeoutError:
                    break
                sent = max(sent, message["data"]["n"] + 1)
            return int((stats_of(server, first_sid) or {}).get("holding", 0)) > budget // 2

        fillers = fill_until(fast, ytp_filler(bus), first_holds_half)
        fillers += fill_until(fast, ytp_filler(bus, fillers), lambda: closing(server, first_sid))
        second_then = stats_of(server, second_sid)
        assert second_then is not None
        assert not second_then["closing"]
        # the total is kept: whatever is held, within the budget (a frame's worth over at most
        # between a push and its relief, which runs before the loop turns)
        assert server.budget.held <= budget
        assert server.budget.closed == 1
        # the reader that keeps up is never slowed: it gets the next event at once
        bus.publish("marker", {"after": "budget"})
        recv_until(fast, event("marker"))
        # Going on, the second is closed as well once it holds the budget alone.
        fill_until(fast, ytp_filler(bus, fillers), lambda: closing(server, second_sid))
        assert server.budget.held <= budget
        # Each is told why once it reads, after an unbroken run of what it was sent.
        got, closed = read_to_the_close(first)
        assert got == list(range(len(got)))
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (1013, OVER_BUDGET)
        got, closed = read_to_the_close(second)
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (1013, OVER_BUDGET)
        wait_until(lambda: len(server.client_stats()) == 1)
        # the fast one is still there, holding next to nothing
        bus.publish("marker", {"after": "both"})
        recv_until(fast, event("marker"))
        [left] = server.client_stats()
        assert left["closing"] is False
    assert sent >= 1
    # all gone: nothing is counted any more (what was in their sockets' buffers included)
    wait_until(lambda: server.client_stats() == [])
    assert server.budget.held == 0
    # and holds none of them (a service that runs for years sees thousands come and go)
    assert server.budget.holders == 0


def test_a_socket_that_stopped_reading_holds_little_outside_the_budget(
    make_server: Callable[..., WebsocketServer], bus: EventBus,
) -> None:
    """A client whose TCP stack still acknowledges while it reads nothing: the kernel's own
    tuning grew the socket's send buffer to take some 2.8 MB of frames, which the budget
    never sees (1,024 such sockets: the box's TCP memory). With the buffer fixed, frames
    soon wait in the process, counted."""
    server = make_server(ping_interval=None, ping_timeout=None)
    with slow_connect(server) as slow, connect(url(server), max_queue=None) as fast:
        sid = recv_json(slow)["data"]["sid"]
        recv_json(fast)
        fillers = fill_until(fast, ytp_filler(bus), lambda: backed_up(server, sid))
        held = int((stats_of(server, sid) or {}).get("holding", 0))
    # Sent to it, less what waits counted: what the sockets and the client's reader took.
    outside = fillers * len(PAD) - held
    assert held >= 3 * len(PAD)
    assert outside <= 1024 * 1024, f"{outside} bytes outside the budget ({fillers} frames)"


def test_a_closed_client_that_reads_nothing_is_cut_after_the_close_timeout(
    make_server: Callable[..., WebsocketServer], bus: EventBus,
) -> None:
    # websockets waits for the socket's write buffer to drain before its close timeout
    # begins: a peer that reads nothing held its socket (and the bytes waiting in it) until
    # the heartbeat's next ping, and for good with no heartbeat.
    server = make_server(max_state_backlog=20, close_timeout=0.5, ping_interval=None,
                         ping_timeout=None)
    with slow_connect(server) as slow, connect(url(server), max_queue=None) as fast:
        sid = recv_json(slow)["data"]["sid"]
        recv_json(fast)
        fill_until(fast, ytp_filler(bus), lambda: closing(server, sid))
        # gone from the server, without reading a byte
        wait_until(lambda: stats_of(server, sid) is None)
        assert len(server.client_stats()) == 1
        assert server.budget.held < 2 * 2**20


def test_a_snapshot_counts_against_the_budget_too(
    make_server: Callable[..., WebsocketServer], service: FakeService,
) -> None:
    # Flasharr's SYNC_ALL is each socket's own (up to 1,000 tasks): a thousand sockets
    # opened at once each held one until its sender wrote it.
    for n in range(200):
        service.seed(f"https://example.com/{n}")
    server = make_server(backlog_budget=8 * 1024, batch_interval=60, stats_interval=60)
    with connect(url(server, "/api/ws")) as ws, pytest.raises(ConnectionClosed) as exc:
        recv_json(ws)
    assert exc.value.rcvd is not None
    assert (exc.value.rcvd.code, exc.value.rcvd.reason) == (1013, OVER_BUDGET)
    assert server.budget.closed == 1
    wait_until(lambda: server.client_stats() == [])
    assert server.budget.held == 0
    # and holds none of them (a service that runs for years sees thousands come and go)
    assert server.budget.holders == 0
    # one that fits is sent
    for item_id in list(service.items)[20:]:
        del service.items[item_id]
    with connect(url(server, "/api/ws")) as ws:
        assert len(recv_json(ws)["tasks"]) == 20
