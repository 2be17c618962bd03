"""Red team: a task's retention deletes only files the task's downloads wrote and no other
item records, whatever the owner did to the download folder in the years between. The real
runtime, real yt-dlp from the local origin, the real task runner."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import falcon.testing
from support.aged_tasks import aged_task
from support.origin import MediaOrigin
from support.task_runs import execution_log, run_now

from appliance.runtime import Runtime
from appliance.store.records import new_id

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
