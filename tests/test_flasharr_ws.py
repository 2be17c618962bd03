"""Flasharr's websocket (``/api/ws``) on the real service: real gunicorn, the real engine, real
downloads from the local origin. Every expected value is written out here, as Flasharr would
read it (the stand-in service of tests/support/ws_sidecar.py computes them with the code
under test)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.origin import MediaOrigin
from support.server import Server, wait_for
from test_e2e import Feed

pytestmark = pytest.mark.e2e


def task_message(kind: str, item_id: str, state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: (m["type"] == kind and m["task"]["id"] == item_id
                      and m["task"]["state"] == state)


def test_sync_states_batches_stats_and_deletes_over_the_real_engine(
        make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    server = make_server()
    [waiting] = server.post("/api/history", {"url": origin.clip_url, "auto_start": False}).json()
    [slow] = server.post("/api/history", {"url": origin.slow_url}).json()
    wait_for(lambda: server.item(waiting["id"])["title"] == "clip", message="the clip's info")
    wait_for(lambda: (server.item(slow["id"]).get("downloaded_bytes") or 0) > 0,
             timeout=60, message="the slow download to run")
    feed = Feed(f"ws://127.0.0.1:{server.port + 1}/api/ws")
    try:
        sync = feed.until(lambda m: True)
        assert sync["type"] == "SYNC_ALL"
        tasks = {t["id"]: t for t in sync["tasks"]}
        assert set(tasks) == {waiting["id"], slow["id"]}
        paused = tasks[waiting["id"]]
        assert {k: paused[k] for k in ("state", "filename", "url", "progress", "speed", "eta",
                                       "downloaded_bytes", "error", "started_at")} == {
            "state": "paused", "filename": "clip", "url": origin.clip_url, "progress": 0,
            "speed": 0, "eta": None, "downloaded_bytes": None, "error": "",
            "started_at": None}
        assert paused["created_at"].endswith("Z")
        assert tasks[slow["id"]]["state"] == "downloading"
        assert tasks[slow["id"]]["url"] == origin.slow_url
        assert tasks[slow["id"]]["started_at"].endswith("Z")

        # the running download, twice a second, with its live figures
        batch = feed.until(lambda m: m["type"] == "TASK_BATCH_UPDATE" and any(
            (t["downloaded_bytes"] or 0) > 0 and t["speed"] for t in m["tasks"]))
        [running] = batch["tasks"]
        assert running["id"] == slow["id"] and running["state"] == "downloading"
        assert 0 < running["progress"] < 100 and running["filename"] == "slow.mp4"
        assert running["total_bytes"] == origin.path_for(origin.slow_url).stat().st_size
        stats = feed.until(lambda m: m["type"] == "ENGINE_STATS")["stats"]
        assert (stats["active_downloads"], stats["paused"], stats["queued"],
                stats["system_paused"]) == (1, 1, 0, False)

        # start, finish: queued, downloading, completed
        server.post("/api/history/start", {"ids": [waiting["id"]]})
        feed.until(task_message("TASK_UPDATED", waiting["id"], "queued"))
        done = feed.until(task_message("TASK_UPDATED", waiting["id"], "completed"))["task"]
        assert (done["filename"], done["progress"], done["error"]) == ("clip.mp4", 100, "")
        assert done["total_bytes"] == origin.path_for(origin.clip_url).stat().st_size
        assert any(task_message("TASK_UPDATED", waiting["id"], "downloading")(m)
                   for m in feed.events)

        # cancelled and failed downloads are both "failed"
        server.post("/api/history/cancel", {"ids": [slow["id"]]})
        feed.until(task_message("TASK_UPDATED", slow["id"], "failed"))
        [broken] = server.post("/api/history", {"url": origin.fail_url}).json()
        added = feed.until(lambda m: m["type"] == "TASK_ADDED"
                           and m["task"]["id"] == broken["id"])["task"]
        assert (added["state"], added["filename"]) == ("queued", origin.fail_url)
        failed = feed.until(task_message("TASK_UPDATED", broken["id"], "failed"))["task"]
        assert "404" in failed["error"]

        # deleted from history: removed
        server.request("DELETE", "/api/history", json={"type": "done", "ids": [waiting["id"]]})
        feed.until(lambda m: m == {"type": "TASK_REMOVED", "task_id": waiting["id"]})
        stats = feed.until(lambda m: m["type"] == "ENGINE_STATS"
                           and m["stats"]["active_downloads"] == 0, timeout=30)["stats"]
        assert stats["db_counts"]["failed"] == 2 and stats["completed"] == 0
        assert stats["cancelled"] == stats["db_counts"]["cancelled"] == 1

        # a row never goes blank: every task names a file, a title or the URL
        frames = [m for m in feed.events if m["type"] != "ENGINE_STATS"]
        rows = [t for m in frames for t in (m.get("tasks") or [m.get("task") or {}]) if t]
        assert rows and all(isinstance(t["filename"], str) and t["filename"] for t in rows)
        # once completed, a download stays completed until it is removed (the move to the
        # history was a "queued" frame between two "completed" ones)
        states = [m["task"]["state"] for m in frames
                  if m["type"] == "TASK_UPDATED" and m["task"]["id"] == waiting["id"]]
        after = states[states.index("completed"):]
        assert set(after) == {"completed"}, states
    finally:
        feed.close()
