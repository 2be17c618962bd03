"""A delete of many finished items with their files, from one folder (a channel's folder, or
the download folder itself after years of downloads): the folder is listed once for the whole
delete, not once per item (each listing searched whole: an hour's work on a Pi for 10,000
items, in the request's thread), and what goes with each file is what went before.

The items are records as years of downloads leave them, put in the real store; their files
are real files; the delete goes through the real API."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from falcon.testing import TestClient

from appliance.engine import file_removal
from appliance.runtime import Runtime
from appliance.store import Item
from appliance.store.records import DONE, FINISHED, new_id

ITEMS = 300


def finished(rt: Runtime, folder: Path, name: str) -> Item:
    return Item(id=new_id(), url=f"http://example.invalid/{name}", title=name, kind=DONE,
                status=FINISHED, filename=name, download_folder=str(folder),
                file_size=(folder / name).stat().st_size, created_at=rt.store.stamp())


def test_a_delete_of_many_items_from_one_folder_lists_it_once(
        app_with: Callable[..., tuple[Runtime, TestClient]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    rt, client = app_with(YTP_REMOVE_FILES="true")
    folder = rt.settings.download_path
    names = [f"Video {n:03d} [id{n}]" for n in range(ITEMS)]
    for name in names:
        for suffix in (".mp4", ".en.srt", ".info.json", ".webp"):
            (folder / f"{name}{suffix}").write_bytes(b"x")
    # Two items of one name, both deleted: the second finds the first gone, and its sidecars
    # go with it. A third's sidecars stay beside the video of its name that is no item.
    for name in ("Show.mp4", "Show.mkv", "Show.en.srt", "Kept.webm", "Kept.mp4", "Kept.nfo"):
        (folder / name).write_bytes(b"x")
    items = [finished(rt, folder, f"{name}.mp4") for name in names]
    items += [finished(rt, folder, name) for name in ("Show.mp4", "Show.mkv", "Kept.webm")]
    rt.store.insert(items)

    listed: list[str] = []
    real = os.listdir

    def listdir(path: str | Path | int = ".") -> list[str]:
        if sys._getframe(1).f_globals.get("__name__") == file_removal.__name__:
            # (the folder is listed as it was opened, by its descriptor)
            listed.append(os.readlink(f"/proc/self/fd/{path}") if isinstance(path, int)
                          else str(path))
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    answer = client.simulate_delete("/api/history",
                                    json={"type": "done", "status": "finished"})
    assert answer.status_code == 200, answer.text
    assert answer.json["deleted"] == len(items)
    assert listed == [str(folder)]
    assert sorted(n for n in os.listdir(folder) if not n.startswith(".")) == [
        "Kept.mp4", "Kept.nfo"]
