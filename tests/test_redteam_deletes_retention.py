"""Red team: a task's retention, and a person's delete with files, delete only files no other
item records, and never leave a file out of any delete's reach, whatever the owner did to the
download folder in the years between (moved it, unplugged its disk). The real runtime, real
yt-dlp from the local origin, the real task runner."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import falcon.testing
from support.aged_tasks import aged_task
from support.origin import MediaOrigin
from support.server import wait_for
from support.task_runs import execution_log, run_now

from appliance.runtime import Runtime
from appliance.store.records import FINISHED, new_id

Client = falcon.testing.TestClient


def test_a_file_another_item_names_from_another_download_folder_is_kept(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The owner pointed the download folder at the channel's folder and downloaded an
    episode again by hand: yt-dlp found it there, and that item names it ``a.mp4`` where the
    task's names it ``channel/a.mp4``. Matched on the whole name, no other item had the file,
    and retention deleted the download the owner had made their own."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true")
    task, (old, _) = aged_task(runtime, client, origin, "channel")
    video = Path(old.download_folder) / old.filename
    assert old.filename == f"channel/{video.name}"
    later = video.parent
    runtime.store.add_download_folder(later)
    by_hand = dataclasses.replace(old, id=new_id(), batch_id="", batch_name="", extras={},
                                  download_folder=str(later), filename=video.name,
                                  created_at=runtime.store.stamp())
    runtime.store.insert([by_hand])
    lines = execution_log(runtime, run_now(runtime, task))
    assert any(line.endswith(" INFO retention kept the file(s) of 1 item(s): another download "
                             "has the same file") for line in lines), lines
    assert video.is_file()
    assert runtime.store.get(old.id) is None
    assert runtime.store.get(by_hand.id) is not None


def test_a_delete_with_files_waits_while_the_download_folders_disk_is_gone(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Its disk unplugged, a delete with files deleted the item and said "deleted", and the
    file stayed on the disk for good once it was back, no item left to delete it with.
    Refused now, saying why; without its files, or once the disk is back, it goes."""
    runtime, client = app_with(YTP_REMOVE_FILES="true")
    [queued] = client.simulate_post("/api/history", json={"url": origin.short_url}).json
    item = wait_for(lambda: (i := runtime.store.get(queued["id"])) and i.status == FINISHED
                    and i, timeout=120, message="the download")
    video = Path(item.download_folder) / item.filename
    downloads = runtime.settings.download_path
    away = downloads.with_name("unplugged-disk")
    body = {"type": "done", "ids": [item.id], "remove_file": True}
    os.rename(downloads, away)
    try:
        runtime.engine.folder_disk.check()
        refused = client.simulate_delete("/api/history", json=body)
        assert refused.status_code == 409, refused.text
        assert refused.json["error"].endswith(
            " Nothing was deleted: deleted now, the items' files would stay on the disk for "
            "good. Delete them once it is back, or without their files (remove_file false).")
        assert runtime.store.get(item.id) is not None
    finally:
        os.rename(away, downloads)
    runtime.engine.folder_disk.check()
    done = client.simulate_delete("/api/history", json=body)
    assert done.json == {item.id: "deleted"}, done.text
    assert not video.exists()
