"""A download that waits for the download folder's disk says what it waits for and what the
person can do, and says nothing of it once the disk is back.

A download that had not started said nothing while the disk was gone (its ``msg`` empty: a
queue standing still for no reason it gave); one the unplug sent back only "Waiting for the
download folder's disk; will resume".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.disk_waits import queued_while_the_disk_is_missing
from support.mounts import removable, unplug
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.runtime import Runtime

WORDS = ("Plug the disk in and mount it again (a read-only one: check it, then mount it "
         "writable); the download then goes on by itself.")


def says(problem: str) -> str:
    return f"Waiting for the download folder's disk: {problem} {WORDS}"


def test_downloads_that_wait_for_an_unplugged_disk_say_why_until_it_is_back(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    downloads = tmp_path / "downloads"
    with removable(downloads, "size=16m") as plug_back:
        rt, _client = app_with(YTP_MAX_WORKERS="1")
        monkeypatch.setattr(origin, "slow_rate", 64 * 1024)
        [running] = rt.engine.add([{"url": origin.slow_url}])
        wait_for(lambda: (rt.engine.get(running.id).downloaded_bytes or 0) > 0, timeout=60,
                 message="a download to be running")
        [queued] = rt.engine.add([{"url": origin.clip_url}])
        wait_for(lambda: (i := rt.engine.get(queued.id)) and i.extractor, timeout=60,
                 message="the queued item's info")
        assert rt.engine.get(queued.id).msg == ""  # (it waits for the one slot)
        unplug(downloads)
        problem = wait_for(lambda: rt.engine.stats()["download_folder_problem"], timeout=30,
                           message="the periodic check to notice")
        assert problem.startswith(f"The download folder {downloads} is on the disk mounted "
                                  f"at {downloads}, which is not mounted any more")
        for item in (running, queued):
            # the old code: "...; will resume" for the running one, "" for the queued one
            waiting = wait_for(lambda i=item: (w := rt.engine.get(i.id)).status == "pending"
                               and w.msg.startswith("Waiting") and w, timeout=30,
                               message=f"{item.url} to say it waits")
            assert waiting.msg == says(problem), item.url
        plug_back()
        wait_for(lambda: rt.engine.stats()["download_folder_problem"] is None, timeout=30,
                 message="the disk back")
        # the queued one waits for the slot again, the slow one resumed in it: said no more
        wait_for(lambda: rt.engine.get(queued.id).msg == "", timeout=30,
                 message="the disk's wait no longer said")
        assert rt.engine.get(queued.id).status == "pending"
        origin.slow_rate = 200_000_000
        for item in (running, queued):
            done = wait_for(lambda i=item: (d := rt.engine.get(i.id)).kind == "done" and d,
                            timeout=90, message=f"{item.url} to end")
            assert (done.status, done.msg) == ("finished", ""), done.error


def test_a_download_added_while_the_disk_is_missing_at_start_says_why_it_waits(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]],
        origin: MediaOrigin) -> None:
    downloads = tmp_path / "downloads"
    with removable(downloads, "size=8m") as plug_back:
        before, _ = app_with()
        before.stop()
        unplug(downloads)
        downloads.mkdir(exist_ok=True)  # the bare mount point
        rt, _client = app_with()
        problem = rt.engine.stats()["download_folder_problem"]
        assert problem is not None
        item = queued_while_the_disk_is_missing(rt, origin, downloads)
        assert rt.engine.get(item.id).msg == says(problem)  # "" on the old code
        plug_back()
        done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.kind == "done" and i,
                        timeout=90, message="the download once the disk is plugged")
        assert (done.status, done.msg) == ("finished", "")
