"""The queue's counts as the real server answers them (engine stats, a status filter's totals,
Flasharr's lists and batch summaries), on a queue of every kind of item: waiting held and
waiting to start, running, finished, failed and cancelled, in two batches and in none. Each
figure is the one read off the items one at a time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from support.origin import MediaOrigin
from support.server import Server, wait_for


def _add(server: Server, url: str, **fields: Any) -> str:
    answer = server.post("/api/history", {"url": url, **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()[0]["id"]


def _iso(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat().replace("+00:00", "Z")


def _total(server: Server, path: str, **params: str) -> int:
    answer = server.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return int(answer.headers["Total-Count"])


def _stalled(server: Server, item_id: str) -> dict[str, Any]:
    """The running item once its figures hold still (its origin sends nothing more)."""
    def still() -> dict[str, Any] | None:
        first = server.item(item_id)
        if first["status"] != "downloading" or not first.get("downloaded_bytes"):
            return None
        return first if server.item(item_id) == first else None
    return wait_for(still, timeout=60, message="the running download to hold still")


def _read_still(server: Server, item_id: str, read: Callable[[], Any]) -> tuple[dict, Any]:
    """``read()`` and the running item, unchanged from before the read to after it: held still
    by two equal looks, its download may still move a little (a late progress report)."""
    def once() -> tuple[dict, Any] | None:
        before = server.item(item_id)
        answer = read()
        return (before, answer) if server.item(item_id) == before else None
    return wait_for(once, timeout=60, message="the running item to stay put through a read")


def test_the_queue_s_counts_are_those_of_its_items(
        make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    server = make_server(YTP_MAX_WORKERS="1", YTP_STALL_TIMEOUT="600")
    one = {"batch_id": "b1", "batch_name": "One"}
    two = {"batch_id": "b2", "batch_name": "Two"}
    finished = _add(server, origin.clip_url, **one)
    server.wait_status(finished, {"finished"})
    failed = _add(server, origin.fail_url, **one)
    server.wait_status(failed, {"error"})
    running = _add(server, origin.stall_url(), **one)
    server.wait_status(running, {"downloading"})
    assert server.post("/api/system/pause").status_code == 200
    clip = origin.clip_url
    held = [_add(server, f"{clip}?n=1", auto_start=False, **one),
            _add(server, f"{clip}?n=2", auto_start=False, **one),
            _add(server, f"{clip}?n=3", auto_start=False, **two),
            _add(server, f"{clip}?n=4", auto_start=False),
            _add(server, f"{clip}?n=5", auto_start=False)]
    ready = [_add(server, f"{clip}?n=6", **two), _add(server, f"{clip}?n=7"),
             _add(server, f"{clip}?n=8")]
    cancelled = held.pop()
    assert server.post("/api/history/cancel", {"ids": [cancelled]}).json() == {
        cancelled: "ok"}
    server.wait_status(cancelled, {"cancelled"})
    for item_id in held + ready:
        wait_for(lambda i=item_id: server.item(i)["extractor"], timeout=60,
                 message="the waiting item's info")
    _stalled(server, running)

    live, (stats, listed) = _read_still(server, running, lambda: (
        server.get("/api/engine/stats").json(),
        server.get("/api/downloads", params={"limit": "2"}).json()))
    assert stats == {
        "active_downloads": 1, "queued": 3, "paused": 4, "completed": 1, "failed": 2,
        "cancelled": 1, "total_speed": live["speed"] or 0, "system_paused": True,
        "download_folder_problem": None,
        "db_counts": {"downloading": 1, "queued": 3, "paused": 4, "completed": 1,
                      "failed": 2, "cancelled": 1, "all": 11}}
    assert listed["stats"] == stats and listed["status_counts"] == stats["db_counts"]
    assert listed["total"] == 11

    queue = {"type": "queue", "per_page": "2"}
    for status, total in (("pending", 7), ("!pending", 1), ("downloading", 1),
                          ("!downloading", 7), ("finished", 0), ("preparing", 0)):
        assert _total(server, "/api/history", **queue, status=status) == total, status
    assert _total(server, "/api/history", **queue, status="pending", page="4") == 7
    for state, total in (("queued", 3), ("paused", 4), ("downloading", 1)):
        answer = server.get("/api/downloads", params={"status": state, "limit": "1"}).json()
        assert answer["total"] == total, state
    # the rows: a batch is one, then the loose downloads of that state
    for state, total in (("queued", 1 + 2), ("paused", 2 + 1), ("downloading", 1 + 0)):
        answer = server.get("/api/downloads/batches",
                            params={"status": state, "limit": "10"}).json()
        assert answer["total"] == total, state

    live, (items, batches) = _read_still(server, running, lambda: (
        {i: server.item(i) for i in [finished, failed, running, *held, *ready]},
        server.get("/api/batches").json()["batches"]))

    def summed(batch: str, field: str) -> int:
        return sum(i.get(field) or 0 for i in items.values() if i["batch_id"] == batch)

    progress = round((100.0 + live["percent"]) / 5, 1)
    assert batches == [
        {"batch_id": "b2", "batch_name": "Two", "total_items": 2, "completed_items": 0,
         "failed_items": 0, "downloading_items": 0, "paused_items": 1, "queued_items": 1,
         "progress": 0.0, "total_size": 0, "downloaded_size": 0, "speed": 0.0,
         "state": "queued", "created_at": _iso(items[held[2]]["created_at"])},
        {"batch_id": "b1", "batch_name": "One", "total_items": 5, "completed_items": 1,
         "failed_items": 1, "downloading_items": 1, "paused_items": 2, "queued_items": 0,
         "progress": progress, "total_size": summed("b1", "total_bytes"),
         "downloaded_size": summed("b1", "downloaded_bytes"), "speed": live["speed"] or 0,
         "state": "downloading", "created_at": _iso(items[finished]["created_at"])},
    ]
    assert summed("b1", "total_bytes") > live["total_bytes"] > 0
