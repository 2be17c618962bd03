"""A Flasharr batch whose items are both waiting and downloading is summed whole (round
mutation18: the engine adds the running items' live figures to the sums it keeps of the
waiting ones, and no test had a batch of both; planted bugs in that sum passed the suite).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.runtime import Runtime


def test_a_batch_waiting_and_downloading_at_once_sums_both(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin) -> None:
    rt, client = app_with()
    # the waiting one first: its batch's time; its request names no batch name
    [waiting] = rt.engine.add([{"url": origin.clip_url, "auto_start": False,
                                "batch_id": "b1"}])
    [running] = rt.engine.add([{"url": origin.stall_url(), "batch_id": "b1",
                                "batch_name": "Show"}])
    # the download holds still once the origin stops sending: its figures stay as they are
    wait_for(lambda: (r := rt.engine._runs.get(running.id)) and r.worker
             and (r.item.downloaded_bytes or 0) >= 200_000 and (r.item.speed or 0) > 0,
             timeout=60, message="the download to stall")
    kept = wait_for(lambda: (i := rt.engine.get(waiting.id)) and i.extractor and i,
                    timeout=60, message="the waiting item's info")
    live = rt.engine.get(running.id)
    [batch] = [b for b in client.simulate_get("/api/batches").json["batches"]
               if b["batch_id"] == "b1"]
    assert batch == {
        "batch_id": "b1", "batch_name": "Show", "total_items": 2, "completed_items": 0,
        "failed_items": 0, "downloading_items": 1, "paused_items": 1, "queued_items": 0,
        "progress": round((live.percent or 0.0) / 2, 1),
        "total_size": (kept.total_bytes or 0) + (live.total_bytes or 0),
        "downloaded_size": (kept.downloaded_bytes or 0) + live.downloaded_bytes,
        "speed": live.speed, "state": "downloading",
        "created_at": datetime.fromtimestamp(kept.created_at, UTC).isoformat().replace(
            "+00:00", "Z")}
