"""/api/ws: Flasharr's messages over the same bus, and its timers."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from support.ws_sidecar import (
    PAD,
    TIMEOUT,
    FakeService,
    Filler,
    backed_up,
    fill_until,
    recv_json,
    recv_until,
    slow_connect,
    stats_of,
    url,
    wait_until,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from appliance.events import EventBus
from appliance.ws import WebsocketServer
from appliance.ws.flasharr import _advance


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


def test_an_event_during_the_snapshot_follows_it(
    make_server: Callable[..., WebsocketServer], service: FakeService, bus: EventBus
) -> None:
    # the engine changes an item after the snapshot was read and before it is sent: the
    # change reaches the client, after the snapshot it would otherwise overwrite
    item = service.seed("https://example.com/a")
    service.during_snapshot = lambda: bus.publish("item_updated", {**item, "status": "done"})
    server = make_server(batch_interval=60, stats_interval=60)
    with connect(url(server, "/api/ws")) as ws:
        sync, update = recv_json(ws), recv_json(ws)
    assert sync == {"type": "SYNC_ALL", "tasks": [
        {"id": item["id"], "state": "pending", "progress": 0}]}
    assert update == {"type": "TASK_UPDATED", "task": {
        "id": item["id"], "state": "done", "progress": 0}}


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


# --- failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("broken", "reason", "logged"), [
    ("flasharr_tasks", "cannot list tasks", r"flasharr_tasks failed; closing client [-0-9a-f]{36}"),
    ("unencodable", "cannot encode tasks", r"cannot encode websocket frame .*"),
])
def test_a_sync_that_cannot_be_made_closes_the_socket_1011(
    make_server: Callable[..., WebsocketServer], service: FakeService,
    caplog: pytest.LogCaptureFixture, broken: str, reason: str, logged: str,
) -> None:
    if broken == "unencodable":
        service.seed("https://example.com/huge")["pct"] = 2**70  # past JSON's 64-bit integers
    service.broken.add(broken)
    server = make_server(batch_interval=0.02, stats_interval=0.02)
    with caplog.at_level(logging.ERROR, logger="appliance.ws"), \
            connect(url(server, "/api/ws")) as ws, pytest.raises(ConnectionClosed) as exc:
        ws.recv(timeout=TIMEOUT)
    assert exc.value.rcvd is not None
    assert (exc.value.rcvd.code, exc.value.rcvd.reason) == (1011, reason)
    # gone from the server, and with it the timers it started
    wait_until(lambda: server.client_stats() == [] and not server.polling)
    # that failure only: the client's end (no sender was started) raised nothing more
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert re.fullmatch(logged, record.getMessage(), re.DOTALL)


def test_an_event_flasharr_cannot_map_is_logged_and_skipped(
    make_server: Callable[..., WebsocketServer], service: FakeService, bus: EventBus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = make_server(batch_interval=60, stats_interval=60)
    with caplog.at_level(logging.ERROR, logger="appliance.ws"), \
            connect(url(server, "/api/ws")) as ws:
        assert recv_json(ws)["type"] == "SYNC_ALL"
        service.broken.add("flasharr_task")
        bus.publish("item_added", {"id": "x"})
        wait_until(lambda: any(r.exc_info for r in caplog.records))  # mapped on the loop
        service.broken.clear()
        bus.publish("item_deleted", {})  # no id: nothing to remove
        bus.publish("item_updated", "not an item")
        bus.publish("item_deleted", {"id": "x"})
        assert recv_json(ws) == {"type": "TASK_REMOVED", "task_id": "x"}
    [record] = [r for r in caplog.records if r.exc_info]
    assert record.getMessage() == "flasharr_task failed for item_added event"


def test_a_timer_snapshot_that_fails_is_logged_once_per_outage_and_recovers(
    make_server: Callable[..., WebsocketServer], service: FakeService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def failing_ticks(count: int) -> None:
        for _ in range(count):
            service.polled.clear()
            assert service.polled.wait(TIMEOUT)

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.exc_info]

    server = make_server(batch_interval=60, stats_interval=0.02)
    service.broken.add("engine_stats")
    with caplog.at_level(logging.ERROR, logger="appliance.ws"), \
            connect(url(server, "/api/ws")) as ws:
        assert recv_json(ws)["type"] == "SYNC_ALL"
        failing_ticks(3)
        assert logged() == ["websocket ENGINE_STATS snapshot failed"]
        service.broken.clear()
        assert recv_until(ws, lambda m: m["type"] == "ENGINE_STATS")[0]["stats"]["queued"] == 0
        service.broken.add("engine_stats")
        failing_ticks(3)
        assert logged() == ["websocket ENGINE_STATS snapshot failed"] * 2


# --- a slow Flasharr client ---------------------------------------------------------------------


def task_filler(bus: EventBus) -> Filler:
    """64 KiB TASK_ADDED frames on /api/ws: the task id starts with the filler's number."""
    return Filler(lambda n: bus.publish("item_added", {"id": f"{n}:{PAD}", "status": "queued"}),
                  lambda m: int(m["task"]["id"].split(":")[0])
                  if m["type"] == "TASK_ADDED" else None)


def test_slow_flasharr_client_keeps_each_tasks_newest_progress_and_one_of_each_timer(
    make_server: Callable[..., WebsocketServer], service: FakeService, bus: EventBus
) -> None:
    server = make_server(batch_interval=0.02, stats_interval=0.02, max_state_backlog=1000)
    service.active = [{"id": "a1", "status": "downloading", "pct": 5}]
    with slow_connect(server, "/api/ws") as slow:
        assert recv_json(slow)["type"] == "SYNC_ALL"
        [sid] = [s["sid"] for s in server.client_stats()]
        with connect(url(server, "/api/ws"), max_queue=None) as fast:
            fillers = fill_until(fast, task_filler(bus), lambda: backed_up(server, sid))
            before = stats_of(server, sid)
            for pct in range(300):
                for task in ("p1", "p2"):
                    bus.publish("item_updated", {"id": task, "status": "downloading",
                                                 "pct": pct}, progress=True)
            bus.publish("item_deleted", {"id": "end"})
            recv_until(fast, lambda m: m == {"type": "TASK_REMOVED", "task_id": "end"})
            # the timers went on meanwhile: each replaced its own waiting frame
            wait_until(lambda: (stats_of(server, sid) or {}).get("coalesced", 0) >= 2 * 299 + 20)
            after = stats_of(server, sid)
        got: list[dict[str, Any]] = []
        while not got or got[-1].get("task_id") != "end":
            got.append(recv_json(slow))
    assert before is not None and after is not None
    # progress and timer frames waited beside the state frames, never among them: one each
    assert after["pending_state"] - before["pending_state"] <= 1
    assert after["pending"] - after["pending_state"] <= 4  # p1, p2, a batch, the stats
    # every task added, in order; each task's progress coalesced to its newest
    assert [task_filler(bus).number(m) for m in got if m["type"] == "TASK_ADDED"] == list(
        range(fillers))
    for task in ("p1", "p2"):
        progress = [m["task"]["progress"] for m in got
                    if m["type"] == "TASK_UPDATED" and m["task"]["id"] == task]
        assert 1 <= len(progress) < 300
        assert progress == sorted(progress)
        assert progress[-1] == 299


@pytest.mark.parametrize(("deadline", "now", "after"), [
    (10.0, 10.2, 10.5),  # on time: the next one half a second after the last
    (10.0, 10.6, 11.1),  # late past the next one: half a second from now, not at once
    (10.0, 9.9, 10.5),
])
def test_a_late_timer_is_not_run_twice_in_a_row(deadline: float, now: float,
                                                after: float) -> None:
    assert _advance(deadline, 0.5, now) == pytest.approx(after)
