"""A download that stalls is stopped and said plainly; one that works slowly is not.

yt-dlp hands a stream with ``--download-sections`` (as it does HLS and DASH it cannot do
itself, and live streams) to ffmpeg, and reports no progress until ffmpeg ends: the item stays
'preparing' all along. The engine judges it by the work its processes do (work_signs): an
ffmpeg waiting on a dead connection to the origin does none and is stopped once the bound
passes; one reading a slow stream works, and runs to its end however long it takes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from falcon.testing import TestClient
from support.mounts import fill, tmpfs
from support.origin import MediaOrigin
from support.procs import living_in_group
from support.server import wait_for

from appliance.engine import storing, work_signs
from appliance.engine.child import declared_wait
from appliance.runtime import Runtime

THROUGH_FFMPEG = "--download-sections *0-9"
JSON = {"Content-Type": "application/json"}


def _add(client: TestClient, url: str) -> str:
    [queued] = client.simulate_post("/api/history", body=json.dumps(
        {"url": url, "cli": THROUGH_FFMPEG}), headers=JSON).json
    return str(queued["id"])


def _item(client: TestClient, item_id: str) -> dict:
    return client.simulate_get(f"/api/history/{item_id}").json


def _ffmpeg_running(rt: Runtime, item_id: str) -> int | None:
    """The process group of the item's download once ffmpeg runs in it."""
    run = rt.engine._runs.get(item_id)
    worker = run.worker if run is not None else None
    if worker is None:
        return None
    return worker.pid if any(p.comm == "ffmpeg" for p in living_in_group(worker.pid)) else None


def test_an_ffmpeg_hung_on_a_dead_connection_is_stopped_and_can_be_retried(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin) -> None:
    rt, client = app_with(YTP_STALL_TIMEOUT="5")
    item_id = _add(client, origin.stalled_hls_url)
    pgid = wait_for(lambda: _ffmpeg_running(rt, item_id), timeout=120,
                    message="ffmpeg to read the stalled stream")
    # yt-dlp says nothing while ffmpeg works for it: the item is still 'preparing'
    assert _item(client, item_id)["status"] == "preparing"
    failed = wait_for(lambda: (i := _item(client, item_id))["status"] == "error" and i,
                      timeout=60, message="the stall to be noticed")
    assert failed["error"] == (
        "No progress for 5 s: the downloader (ffmpeg) stalled (the site stopped sending, or "
        "the connection hangs); it was stopped. Retry it later.")
    wait_for(lambda: not living_in_group(pgid), timeout=10,
             message="the stalled processes to be gone")
    assert rt.engine.queue_items() == []  # its slot is free
    retried = client.simulate_post(f"/api/downloads/{item_id}/retry")
    assert retried.status_code == 200, retried.text
    again = _item(client, retried.json["id"])
    assert (again["url"], again["cli"]) == (origin.stalled_hls_url, failed["cli"])
    assert "--download-sections" in again["cli"]


def test_a_slow_ffmpeg_download_that_works_is_not_stopped(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin) -> None:
    """The clip trickles at a rate that makes ffmpeg read it for several times the bound,
    all of it without a word of progress from yt-dlp."""
    rt, client = app_with(YTP_STALL_TIMEOUT="5")
    rate = origin.path_for(origin.slow_url).stat().st_size // 20
    item_id = _add(client, origin.slow_url_at(rate))
    wait_for(lambda: _ffmpeg_running(rt, item_id), timeout=120,
             message="ffmpeg to read the slow stream")
    assert _item(client, item_id)["status"] == "preparing"
    done = wait_for(lambda: (i := _item(client, item_id))["status"] in {"finished", "error"}
                    and i, timeout=180, message="the slow download to end")
    assert done["status"] == "finished", done.get("error")
    assert (rt.settings.download_path / done["filename"]).stat().st_size > 100_000


def test_a_wait_yt_dlp_chose_is_not_a_stall(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin) -> None:
    """--sleep-interval (as --wait-for-video for a scheduled stream, or a retry's sleep) makes
    yt-dlp sleep before the download, silent and idle, for longer than the bound."""
    _rt, client = app_with(YTP_STALL_TIMEOUT="5")
    [queued] = client.simulate_post("/api/history", body=json.dumps(
        {"url": origin.clip_url, "cli": "--sleep-interval 8"}), headers=JSON).json
    done = wait_for(lambda: (i := _item(client, queued["id"]))["status"] in {"finished", "error"}
                    and i, timeout=120, message="the download after its sleep")
    assert done["status"] == "finished", done.get("error")


def test_a_download_held_by_a_full_database_disk_is_not_stalled_once_it_is_freed(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, TestClient]],
        origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The download's thread waits for the disk to take its item's state (storing.py) and
    sees nothing of its process meanwhile. Held longer than the bound, it stopped the
    download as stalled the moment the disk took the state: the download that was to go on
    by itself once there was space ended as an error."""
    monkeypatch.setattr(storing, "RETRY_SECONDS", 0.5)
    config = tmp_path / "config"
    with tmpfs(config, "size=8m"):
        rt, client = app_with(YTP_STALL_TIMEOUT="5")
        rate = origin.path_for(origin.slow_url).stat().st_size // 4
        [queued] = client.simulate_post("/api/history", body=json.dumps(
            {"url": origin.slow_url_at(rate), "cli": "--sleep-interval 6"}), headers=JSON).json
        run = wait_for(lambda: (r := rt.engine._runs.get(queued["id"])) and r.worker and r,
                       timeout=60, message="the download to start (it sleeps first)")
        filler = fill(config)  # its first progress is a state to store: it waits
        wait_for(lambda: [r for r in caplog.records if r.levelno == logging.ERROR
                          and "Downloads wait" in r.getMessage()],
                 timeout=60, message="the download's write to be refused")
        wait_for(lambda: time.monotonic() - run.ticked_at > 6, timeout=60,
                 message="the download's thread to be held longer than the bound")
        filler.unlink()
        done = wait_for(lambda: (i := rt.store.get(queued["id"])) and i.kind == "done" and i,
                        timeout=60, message="the download to end once there is space")
    assert done.status == "finished", done.error


def test_the_waits_yt_dlp_declares_are_read_from_its_whole_lines() -> None:
    assert declared_wait("[wait] Waiting for 100:02:03 - Press Ctrl+C to try now") == 360123
    assert declared_wait("[download] Sleeping 8.50 seconds ...") == 8.5
    assert declared_wait("[download] Sleeping 30.00 seconds as required by the site...") == 30
    assert declared_wait("[youtube] Sleeping 4.00 seconds ...") == 4  # a retry's
    assert declared_wait("Sleeping 2.00 seconds ...") == 2
    # a site's text that looks like one is no wait: it would hide a stall for days
    assert declared_wait("[download] Destination: Sleeping 99999 seconds ...") is None
    assert declared_wait("[wait] Remaining time until next attempt: 00:00:03") is None
    assert declared_wait("[download] Sleeping many seconds ...") is None


def _group(code: str) -> subprocess.Popen[bytes]:
    """A Python process leading a process group of its own, running ``code``."""
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                            stdin=subprocess.DEVNULL)


def _settled(pgid: int) -> work_signs.Signs:
    """The group's signs once two looks in a row find no work (its start is over)."""
    looks: list[work_signs.Signs] = []

    def look() -> work_signs.Signs | None:
        looks.append(work_signs.group_signs(pgid, None))
        return looks[-1] if len(looks) > 1 and not work_signs.worked(
            looks[-2], looks[-1], 0.2) else None

    return wait_for(look, interval=0.2, message=f"group {pgid} to wait")


def test_signs_of_a_waiting_group_do_not_move_and_of_a_working_one_do(tmp_path: Path) -> None:
    waiting = _group("import os, time; r, w = os.pipe(); os.read(r, 1)")
    # a child that reads, in the group: its reads are the group's
    reading = _group("import subprocess; subprocess.run(['cat', '/dev/zero'], "
                     "stdout=subprocess.DEVNULL)")
    try:
        wait_for(lambda: "cat" in work_signs.group_signs(reading.pid, None).helpers,
                 message="cat to run in the group")
        first = _settled(waiting.pid)
        assert first.helpers == ()
        before = work_signs.group_signs(reading.pid, None)
        after = wait_for(lambda: (s := work_signs.group_signs(reading.pid, None)).read
                         > before.read and s, message="cat's reads to count")
        assert work_signs.worked(before, after, 1.0)
        assert work_signs.who(after) == "the downloader (cat)"
        assert work_signs.who(first) == "yt-dlp"
    finally:
        for proc in (waiting, reading):
            os.killpg(proc.pid, 9)
            proc.wait()


def test_a_group_that_only_computes_works_and_odd_names_are_read(tmp_path: Path) -> None:
    """CPU time alone is work (a merge or a transcode that reads in big gulps); a helper's
    name that is not UTF-8 (a process may name itself anything) does not break the look."""
    busy = _group("import subprocess; subprocess.Popen(['python3', '-c', "
                  "\"open('/proc/self/comm', 'wb').write(b'\\\\xffodd')\\n"
                  "while True: pass\"]).wait()")
    try:
        before = wait_for(lambda: (s := work_signs.group_signs(busy.pid, None)).helpers
                          == ("\ufffdodd",) and s, message="the helper to name itself")
        # a second of one core, well above the floor; no byte read or stored meanwhile
        after = wait_for(lambda: (s := work_signs.group_signs(busy.pid, None)).cpu
                         >= before.cpu + work_signs.TICKS and s, message="CPU time to count")
        assert work_signs.worked(before, after, 1.0)
        assert work_signs.worked(
            before, dataclasses.replace(after, read=before.read, stored=before.stored), 1.0)
    finally:
        os.killpg(busy.pid, 9)
        busy.wait()


def test_a_folder_whose_files_grow_is_work(tmp_path: Path) -> None:
    idle = work_signs.Signs(cpu=10, read=5, stored=0, files=0, helpers=())
    part = tmp_path / "sub" / "video.mp4.part"
    part.parent.mkdir()
    part.write_bytes(b"x" * 1000)
    (tmp_path / "frag1").write_bytes(b"y" * 24)
    grown = work_signs.Signs(cpu=10, read=5, stored=0,
                             files=work_signs.folder_bytes(tmp_path), helpers=())
    assert grown.files == 1024
    assert work_signs.folder_bytes(tmp_path / "gone") == 0
    assert work_signs.folder_bytes(None) == 0
    assert work_signs.worked(idle, grown, 60.0)
    assert not work_signs.worked(idle, idle, 60.0)
    # a tick now and then (a loop that wakes to find nothing) is no work; a share of a core is
    floor = int(work_signs.CPU_FLOOR * 60.0 * work_signs.TICKS)
    assert not work_signs.worked(idle, work_signs.Signs(10 + floor, 5, 0, 0, ()), 60.0)
    assert work_signs.worked(idle, work_signs.Signs(11 + floor, 5, 0, 0, ()), 60.0)
    assert work_signs.worked(idle, work_signs.Signs(9, 5, 0, 0, ()), 60.0)  # one ended
    assert work_signs.worked(idle, work_signs.Signs(10, 5, 4096, 0, ()), 60.0)
