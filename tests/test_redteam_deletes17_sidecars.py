"""Red team, a delete removes exactly what it says: a bulk delete with files (Flasharr's
``DELETE /api/batches/{id}``) that comes while one of its items is still writing beside its
media, its job done: the NFO file the service writes, after yt-dlp moved the media, its
thumbnail and subtitles home.

Its run no longer stopped (its end was decided), the delete was answered "deleted" and did
nothing: the item then ended 'finished' in the history, its media, thumbnail and NFO in the
download folder, deleted by nobody.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from falcon.testing import Result, TestClient
from support.download_moves import Seen, files, nothing_left
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine import child, downloading
from appliance.engine.engine import DownloadEngine
from appliance.engine.runs import Run, StopReason
from appliance.engine.workers import Worker
from appliance.runtime import Runtime
from appliance.store import Item

PRESET = "media-server-movie"  # a folder per title: the media, its poster and its NFO


def finished(rt: Runtime, url: str) -> Item:
    [item] = rt.engine.add([{"url": url, "preset": PRESET, "batch_id": "b1"}])
    wait_for(lambda: rt.engine.get(item.id).status == "finished", timeout=90,
             message=f"item {item.id} to finish")
    return rt.engine.get(item.id)


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
    # (the item finished before may say its success after the subscription: not the late one)
    assert ("log_success", late[0]) not in said


def test_a_delete_as_yt_dlp_moves_the_files_home_lets_the_move_end_and_takes_them(
        app_with: Callable[..., tuple[Runtime, TestClient]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """yt-dlp moves a download's sidecars home first, its media last: killed by the delete
    part way, the sidecars it had moved stayed in the download folder, no item's."""
    rt, client = app_with(YTP_REMOVE_FILES="true")
    answers: list[Result] = []
    on_message = DownloadEngine._on_message

    def delete_as_it_moves(engine: DownloadEngine, run: Run, message: dict[str, Any]) -> None:
        on_message(engine, run, message)
        if message.get("type") == "moving" and not answers:
            asking = threading.Thread(target=lambda: answers.append(client.simulate_delete(
                "/api/history", json={"type": "queue", "ids": [run.item.id],
                                      "remove_file": True})))
            asking.start()
            asking.join(timeout=60)

    monkeypatch.setattr(DownloadEngine, "_on_message", delete_as_it_moves)
    [item] = rt.engine.add([{"url": origin.watch_url("clip", title="Moved"),
                             "cli": "--write-info-json --write-description"}])
    nothing_left(rt, item.id, answers)


def test_nothing_of_a_download_is_home_before_its_move_which_it_says(
        origin: MediaOrigin, tmp_path: Path) -> None:
    """What a stop leaves nowhere but in the temporary folder (removed with the item): the
    .info.json and .description yt-dlp writes as the job starts were written home at once,
    and a delete (or a cancel, or a failure) left them there for good, no item's."""
    home = tmp_path / "home"
    channel = Seen(home)
    job = {"op": "download", "job": "j1", "url": origin.watch_url("clip", title="Moved"),
           "args": ["--write-info-json", "--write-description"], "home": str(home),
           "temp": str(tmp_path / "temp"), "template": "Moved.%(ext)s",
           "default_template": "%(title)s.%(ext)s"}
    result = child.run_download(job, channel)  # type: ignore[arg-type]
    assert result["filepath"] == str(home / "Moved.mp4")
    # the old code: Moved.description and Moved.info.json home as the download began
    before = [seen for kind, status, seen in channel.said
              if kind == "moving" or status == "downloading"]
    assert before and all(seen == [] for seen in before), channel.said
    assert [kind for kind, _, _ in channel.said].count("moving") == 1  # (the no-kill's)
    assert files(home) == ["Moved.description", "Moved.info.json", "Moved.mp4"]


def test_a_move_a_delete_leaves_to_end_is_still_stopped_once_it_stalls() -> None:
    """A move left to end that hangs (a download folder on a share gone dead) would hold its
    slot for good, the item deleted."""
    proc = subprocess.Popen(["sleep", "60"], stdout=subprocess.PIPE, start_new_session=True)
    try:
        run = Run(Item(id="i", url="http://x.invalid/"), worker=Worker(proc), moving=True)
        assert run.request_stop(StopReason.DELETE)
        assert proc.poll() is None  # the move goes on
        assert not run.request_stop(StopReason.CANCEL)
        assert proc.poll() is None
        assert not run.request_stop(StopReason.STALL)  # still the delete's end
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
