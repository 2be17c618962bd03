"""/api/ws: Flasharr's messages over the same bus, and its timers."""

from __future__ import annotations

from collections.abc import Callable

from support.ws_sidecar import TIMEOUT, FakeService, recv_json, recv_until, url, wait_until
from websockets.sync.client import connect

from appliance.events import EventBus
from appliance.ws import WebsocketServer


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
