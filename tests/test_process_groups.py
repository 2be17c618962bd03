"""A cancelled download and a console command the client left are killed with everything they
started: while ffmpeg works for them, stopping them leaves no process of their group.

``--download-sections`` makes yt-dlp download through ffmpeg, which reads the origin's
trickled clip for over a minute; each test stops the download as soon as /proc shows that
ffmpeg writing its output. A kill of the yt-dlp process alone would leave it downloading,
orphaned (its output file is open: deleting the temp folder does not stop it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
from falcon.testing import TestClient
from support.origin import MediaOrigin
from support.procs import ffmpeg_group, living_in_group
from support.server import Server, wait_for

from appliance.runtime import Runtime

THROUGH_FFMPEG = "--download-sections *0-9"
# Enough for SIGKILL to reach a group and init to adopt what it left; far less than ffmpeg
# takes to read the trickled clip.
GROUP_GONE_WITHIN = 5.0


def assert_group_ends(pgid: int) -> None:
    wait_for(lambda: not living_in_group(pgid), timeout=GROUP_GONE_WITHIN,
             message=f"process group {pgid} to end (left: {living_in_group(pgid)})")


def test_cancel_while_ffmpeg_runs_kills_the_whole_group(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin) -> None:
    runtime, client = app_with()
    [queued] = client.simulate_post("/api/history", body=json.dumps(
        {"url": origin.slow_url, "cli": THROUGH_FFMPEG}),
        headers={"Content-Type": "application/json"}).json
    item_id = queued["id"]
    pgid = wait_for(lambda: ffmpeg_group(os.getpid(), "/slow.mp4"), timeout=120,
                    message="ffmpeg to download")
    cancelled = client.simulate_post("/api/history/cancel", body=json.dumps({"ids": [item_id]}),
                                     headers={"Content-Type": "application/json"})
    assert cancelled.json == {item_id: "ok"}
    wait_for(lambda: client.simulate_get(f"/api/history/{item_id}").json["status"]
             == "cancelled", timeout=30, message="the item to be cancelled")
    assert_group_ends(pgid)
    assert not list(runtime.settings.download_path.rglob("*.mp4"))


@pytest.mark.e2e
def test_console_client_leaving_while_ffmpeg_runs_kills_the_whole_group(
        make_server: Callable[..., Server], origin: MediaOrigin) -> None:
    server = make_server(YTP_CONSOLE_ENABLED="true")
    response = server.post("/api/system/terminal", {
        "command": f"{THROUGH_FFMPEG} -o console.%(ext)s {origin.slow_url}"}, stream=True)
    assert response.status_code == 200
    assert server.proc is not None
    pgid = wait_for(lambda: ffmpeg_group(server.proc.pid, "/slow.mp4"), timeout=120,  # type: ignore[union-attr]
                    message="ffmpeg to download for the console")
    response.close()  # the client leaves
    assert_group_ends(pgid)
