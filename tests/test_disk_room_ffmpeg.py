"""ffmpeg's work on a disk that fills: a download yt-dlp hands to it (HLS here, a live stream
or DASH in life), and a conversion after a download (a remux here; a merge of video and audio
in life). ffmpeg 5.1 exits 0 when it could not write its output whole, and both finished with
a cut file (the merge deleting its sources). Now each waits for room and is done again once
there is room (``ffmpeg_words``)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from support.mounts import fill, tmpfs
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.runtime import Runtime
from appliance.store import Item

WAITING_FOR_ROOM = "Waiting for room on the disk; will resume"


def _waits_then_finishes(rt: Runtime, item: Item, filler: Path) -> Item:
    """``item`` waits for room (no error), then finishes once ``filler`` is gone."""
    waiting = wait_for(lambda: (i := rt.engine.get(item.id)) and (
        i.msg == WAITING_FOR_ROOM or i.kind == "done") and i, timeout=60,
        message="the download to fill the disk")
    assert (waiting.status, waiting.msg, waiting.error) == ("pending", WAITING_FOR_ROOM, ""), \
        waiting
    filler.unlink()
    done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.kind == "done" and i,
                    timeout=60, message="the download once there is room")
    assert (done.status, done.error) == ("finished", "")
    return done


def _duration(path: Path) -> float:
    """The media's duration as ffprobe reads it (a cut file has none, or a short one)."""
    said = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                           "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                          check=False)
    return float(said.stdout.strip() or 0)


def _leave_free(filler: Path, room: int) -> None:
    """The full disk of ``filler`` with ``room`` bytes free: above its floor (a 20th of
    400 KiB), below what ffmpeg must write."""
    os.truncate(filler, filler.stat().st_size - room)


def test_an_ffmpeg_download_on_a_disk_that_fills_waits_for_room(
        tmp_path: Path, start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    with tmpfs(tmp_path / "tmp", "size=400k") as temp:
        rt = start_runtime(YTP_MAX_WORKERS="1")
        filler = fill(temp)
        _leave_free(filler, 60 * 1024)  # the stream makes ~120 kB
        [item] = rt.engine.add([{"url": origin.hls_url, "cli": "--hls-prefer-ffmpeg"}])
        done = _waits_then_finishes(rt, item, filler)
        assert _duration(rt.settings.download_path / done.filename) > 3.5  # 4 s, whole


def test_a_remux_on_a_disk_that_fills_waits_for_room(
        tmp_path: Path, start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    clip = origin.path_for(origin.clip_url).stat().st_size
    with tmpfs(tmp_path / "tmp", "size=400k") as temp:
        rt = start_runtime(YTP_MAX_WORKERS="1")
        filler = fill(temp)
        _leave_free(filler, clip + 30 * 1024)  # the download fits; its remuxed copy does not
        [item] = rt.engine.add([{"url": origin.clip_url, "cli": "--remux-video mkv"}])
        done = _waits_then_finishes(rt, item, filler)
        assert done.filename.endswith(".mkv")
        assert _duration(rt.settings.download_path / done.filename) > \
            _duration(origin.path_for(origin.clip_url)) - 0.5
