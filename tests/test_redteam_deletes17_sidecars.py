"""Red team, a delete removes exactly what it says: a bulk delete with files (Flasharr's
``DELETE /api/batches/{id}``) that comes while one of its items is still writing beside its
media, its job done: the NFO file the service writes, after yt-dlp moved the media, its
thumbnail and subtitles home.

Its run no longer stopped (its end was decided), the delete was answered "deleted" and did
nothing: the item then ended 'finished' in the history, its media, thumbnail and NFO in the
download folder, deleted by nobody.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from falcon.testing import Result, TestClient
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine import downloading
from appliance.runtime import Runtime
from appliance.store import Item

PRESET = "media-server-movie"  # a folder per title: the media, its poster and its NFO


def finished(rt: Runtime, url: str) -> Item:
    [item] = rt.engine.add([{"url": url, "preset": PRESET, "batch_id": "b1"}])
    wait_for(lambda: rt.engine.get(item.id).status == "finished", timeout=90,
             message=f"item {item.id} to finish")
    return rt.engine.get(item.id)


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and not p.name.startswith("."))


def test_a_bulk_delete_as_a_download_writes_its_nfo_takes_all_of_it_and_nothing_else(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    rt, client = app_with(YTP_REMOVE_FILES="true")
    folder = rt.settings.download_path
    kept = rt.engine.add([{"url": origin.watch_url("clip2", title="Kept"), "preset": PRESET}])
    wait_for(lambda: rt.engine.get(kept[0].id).status == "finished", timeout=90,
             message="the item not in the delete to finish")
    theirs = files(folder)
    assert any(name.endswith(".nfo") for name in theirs), theirs
    done = finished(rt, origin.watch_url("short", title="Short"))

    late: list[str] = []
    answers: list[Result] = []
    said: list[tuple[str, Any]] = []
    rt.bus.subscribe(lambda event: said.append(
        (event.name, event.data.get("id") if isinstance(event.data, dict) else None)))
    write_nfo = downloading.write_nfo

    def delete_first(media: Path, *args: Any, **kwargs: Any) -> Path:
        """The batch's delete, answered, as the late item's NFO is about to be written."""
        if not answers:
            asking = threading.Thread(target=lambda: answers.append(client.simulate_delete(
                "/api/batches/b1", params={"remove_file": "true"})))
            asking.start()
            asking.join(timeout=60)
        return write_nfo(media, *args, **kwargs)

    monkeypatch.setattr(downloading, "write_nfo", delete_first)
    late.append(rt.engine.add([{"url": origin.watch_url("clip", title="Late"),
                                "preset": PRESET, "batch_id": "b1"}])[0].id)
    wait_for(lambda: answers and late[0] not in rt.engine._runs, timeout=90,
             message="the delete to be answered and the late item to end")
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json == {"success": True, "deleted": 2, "affected": 2}
    # the old code: the late item 'finished' in the history, its files all there
    assert rt.engine.get(late[0]) is None
    assert files(folder) == theirs
    assert rt.engine.get(done.id) is None
    assert not (rt.settings.temp_path / late[0]).exists()
    ends = [name for name, item_id in said if item_id == late[0]
            and name in {"item_deleted", "item_moved", "item_completed"}]
    assert ends == ["item_deleted"]
    assert not [event for event in said if event[0] == "log_success"]

