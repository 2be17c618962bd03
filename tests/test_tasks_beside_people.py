"""What a task's retention and metadata do beside what a person does in the same folder: a
file being played or sent stays until a later run; a file a person moved out of the task's
place is theirs, even when the task's folder is the download folder itself; a channel's
artwork and show NFO are never a video's own, whatever its title. Real downloads from the
local origin, the real runtime in process."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from support.aged_tasks import aged_task
from support.browsing import act
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.server import wait_for
from support.task_runs import execution_log, run_now

from appliance import in_use, kinds
from appliance.engine.nfo import write_nfo
from appliance.engine.plans import ARCHIVE_FOLDER, DEFAULT_ARCHIVE
from appliance.files.reading import open_regular
from appliance.runtime import Runtime
from appliance.store import database
from appliance.store.records import DONE, FINISHED, Item, new_id
from appliance.tasks import metadata
from appliance.tasks.metadata import write_metadata

Client = falcon.testing.TestClient


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The record of files in use, ``seconds`` on (no test waits half an hour)."""
    monkeypatch.setattr(in_use.FILES, "_clock", lambda: time.monotonic() + seconds)


def test_retention_keeps_a_file_being_played_or_sent_until_a_later_run(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Retention deleted the episode a person was watching (the player's next segment a
    404) and the file a zip was sending. Kept now, said in the run's log, and removed by the
    first run that finds it unused."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true")
    task, (old, recent) = aged_task(runtime, client, origin, "watched")
    played = Path(old.download_folder) / old.filename
    playlist = client.simulate_get(f"/api/player/playlist/{old.filename}.m3u8")
    assert playlist.status_code == 200, playlist.text

    run = run_now(runtime, task)
    assert (run["status"], run["error"]) == ("success", ""), run
    assert played.is_file()
    lines = execution_log(runtime, run)
    assert any(line.endswith(" INFO retention kept 1 file(s) being played or sent for now: "
                             "a later run removes them") for line in lines), lines
    assert any(line.endswith(" INFO retention removed 0 file(s)") for line in lines), lines
    assert {i.id for i in runtime.tasks.items(task["id"], 0, 10)[0]} == {old.id, recent.id}

    # Held open (a zip's turn, a file being sent): in use however long ago it was opened.
    _later(monkeypatch, in_use.RECENT + 60)
    with open_regular(played, runtime.settings.download_path):
        lines = execution_log(runtime, run_now(runtime, task))
        assert any(" retention kept 1 file(s) being played" in line for line in lines), lines
        assert played.is_file()

    # Closed, and no one has read it since: the next run removes it.
    _later(monkeypatch, 2 * in_use.RECENT + 120)
    lines = execution_log(runtime, run_now(runtime, task))
    assert any(line.endswith(" INFO retention removed 1 file(s)") for line in lines), lines
    assert not any("being played" in line for line in lines), lines
    assert not played.exists()
    assert [i.id for i in runtime.tasks.items(task["id"], 0, 10)[0]] == [recent.id]


def test_a_file_read_a_moment_ago_is_in_use_and_one_read_long_ago_is_not(
        tmp_path: Path) -> None:
    now = [1000.0]
    files = in_use.FilesInUse(clock=lambda: now[0])
    path = tmp_path / "a.mp4"
    path.write_bytes(b"x")
    assert not files.in_use(path)
    assert not files.in_use(tmp_path / "gone.mp4")
    key = in_use.key_of(path.stat())
    files.opened(key)
    files.opened(key)
    files.closed(key)
    now[0] += in_use.RECENT + 1
    assert files.in_use(path)  # one reader still holds it
    files.closed(key)
    assert files.in_use(path)
    now[0] += in_use.RECENT - 1
    assert files.in_use(path)
    now[0] += 1
    assert not files.in_use(path)
    # by its file, not its name: another name of the same file (a link, another case)
    other = tmp_path / "A.MP4"
    other.hardlink_to(path)
    files.opened(key)
    assert files.in_use(other)
    # a new file on an inode a deleted one had is not the file that was read
    files.closed(key)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1))
    assert not files.in_use(path)


def test_the_record_of_files_in_use_is_bounded(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(in_use, "MAX_KNOWN", 3)
    files = in_use.FilesInUse(clock=lambda: 1.0)
    paths = []
    for n in range(5):
        path = tmp_path / f"{n}.mp4"
        path.write_bytes(b"x")
        paths.append(path)
        key = in_use.key_of(path.stat())
        files.opened(key)
        files.closed(key)
    assert [files.in_use(p) for p in paths] == [False, False, True, True, True]


def test_a_moved_file_is_the_persons_when_the_tasks_folder_is_the_download_folder(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """With no folder of its own, every file below the download folder was the task's: an
    episode a person moved into a folder of their own to keep it was deleted all the same.
    A file the browser moved is the task's only while it is where its download put it."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true",
                               YTP_BROWSER_CONTROL_ENABLED="true")
    task, (old, recent) = aged_task(runtime, client, origin, "flat", folder="")
    root = runtime.settings.download_path
    assert "/" not in old.filename
    (root / "Keep").mkdir()
    moved = act(client, {"action": "move", "path": old.filename, "new_path": "Keep"})
    assert moved.status_code == 200 and all(r["ok"] for r in moved.json), moved.text
    kept = root / "Keep" / old.filename
    assert runtime.engine.store.get(old.id).filename == f"Keep/{old.filename}"

    run = run_now(runtime, task)
    assert (run["status"], run["error"]) == ("success", ""), run
    assert kept.is_file()
    lines = execution_log(runtime, run)
    assert any(" retention left 1 file(s) moved out of the task's folder alone" in line
               for line in lines), lines
    assert {i.id for i in runtime.tasks.items(task["id"], 0, 10)[0]} == {old.id, recent.id}

    # Moved back where its download put it: the task's again.
    back = act(client, {"action": "move", "path": f"Keep/{old.filename}", "new_path": "/"})
    assert back.status_code == 200 and all(r["ok"] for r in back.json), back.text
    assert runtime.engine.store.get(old.id).filename == old.filename
    lines = execution_log(runtime, run_now(runtime, task))
    assert any(line.endswith(" INFO retention removed 1 file(s)") for line in lines), lines
    assert not (root / old.filename).exists()
    assert (Path(recent.download_folder) / recent.filename).is_file()


def test_a_video_titled_like_the_channels_artwork_never_takes_it_along(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """A channel's episode titled "poster" (a template of the title alone): retention
    deleted its file and, as its own sidecars, the channel's poster.jpg; a rename or a move
    in the browser took it along. Its own subtitles go with it; the folder's files stay."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true",
                               YTP_BROWSER_CONTROL_ENABLED="true")
    task, (old, _) = aged_task(runtime, client, origin, "shows")
    root = runtime.settings.download_path
    folder = root / "shows"
    answer = write_metadata(root, folder, {
        "id": "UC1", "title": "Shows", "thumbnails": [
            {"id": "avatar", "url": "https://pictures.invalid/avatar.jpg"},
            {"id": "banner", "url": "https://pictures.invalid/banner.jpg"}]},
        lambda url: b"JPEG " + url.encode())
    assert set(answer["thumbnails"]) == set(metadata.IMAGE_KINDS)
    artwork = sorted(p.name for p in folder.iterdir() if kinds.folders_own(p.name))
    assert artwork == sorted([*(f"{k}.jpg" for k in metadata.IMAGE_KINDS), "tvshow.nfo"])

    renamed = act(client, {"action": "rename", "path": old.filename, "new_name": "poster.mp4"})
    assert renamed.status_code == 200 and all(r["ok"] for r in renamed.json), renamed.text
    assert (folder / "poster.jpg").read_bytes() == b"JPEG https://pictures.invalid/avatar.jpg"
    assert runtime.engine.store.get(old.id).filename == "shows/poster.mp4"
    (folder / "poster.en.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nhi\n")

    lines = execution_log(runtime, run_now(runtime, task))
    assert any(line.endswith(" INFO retention removed 1 file(s)") for line in lines), lines
    assert not (folder / "poster.mp4").exists()
    assert not (folder / "poster.en.srt").exists()
    assert sorted(p.name for p in folder.iterdir() if kinds.folders_own(p.name)) == artwork
    assert (folder / "poster.jpg").read_bytes() == b"JPEG https://pictures.invalid/avatar.jpg"


def test_an_episode_titled_tvshow_neither_writes_nor_owns_the_shows_nfo(
        tmp_path: Path) -> None:
    """Its NFO was written over the channel's tvshow.nfo (the media server then read the
    channel's folder as one episode), and deleting it took the show's NFO along."""
    show = tmp_path / "tvshow.nfo"
    show.write_text("<tvshow><title>Channel</title></tvshow>")
    with pytest.raises(ValueError, match=r"tvshow\.nfo is the show's NFO of the folder"):
        write_nfo(tmp_path / "tvshow.mp4", "tv", {"title": "tvshow", "upload_date": "20240102"},
                  overwrite=True)
    assert show.read_text() == "<tvshow><title>Channel</title></tvshow>"
    names = ["tvshow.nfo", "TVSHOW.NFO", "tvshow.en.srt", "tvshow.jpg", "fanart.jpg"]
    assert kinds.own_sidecars("tvshow.mp4", names) == ["tvshow.en.srt", "tvshow.jpg"]
    assert kinds.own_sidecars("Fanart.webm", ["Fanart.png", "Fanart.info.json"]) == [
        "Fanart.info.json"]
    # an episode of another name still has its NFO
    assert write_nfo(tmp_path / "tvshow 2.mp4", "tv",
                     {"title": "x", "upload_date": "20240102"}).name == "tvshow 2.nfo"


def test_retention_leaves_a_file_another_item_names_in_another_case(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """On an exFAT or SMB download folder "clip.mp4" and "CLIP.mp4" are one file: a
    download by hand whose title's case differed found the task's file there and recorded it
    in its own spelling. Retention compared the names as they were written, and deleted the
    file the person's own item still lists. (Two names of one file, as such a folder gives
    them, are a hard link here.)"""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true")
    task, (old, recent) = aged_task(runtime, client, origin, "exfat")
    path = Path(old.download_folder) / old.filename
    spelled = path.with_name(path.name.upper())
    spelled.hardlink_to(path)
    info = path.stat()
    mine = Item(id=new_id(), url=f"{origin.clip_url}?by=hand", kind=DONE, status=FINISHED,
                folder="exfat", filename=f"exfat/{spelled.name}", file_size=info.st_size,
                file_mtime_ns=info.st_mtime_ns, download_folder=old.download_folder,
                finished_at=time.time())
    runtime.engine.store.save(mine)

    lines = execution_log(runtime, run_now(runtime, task))
    assert any(" INFO retention kept the file(s) of 1 item(s): another download has the same "
               "file" in line for line in lines), lines
    assert path.is_file() and spelled.is_file()
    assert runtime.engine.store.get(mine.id) is not None
    assert [i.id for i in runtime.tasks.items(task["id"], 0, 10)[0]] == [recent.id]


def test_the_channels_own_thumbnail_is_its_poster_over_its_other_pictures(
        tmp_path: Path) -> None:
    """A channel's ``thumbnail`` is the picture it shows itself by: the poster when no
    avatar is named, over the last of its other pictures; over plain http too."""
    answer = write_metadata(tmp_path, tmp_path / "show", {
        "id": "c1", "title": "Show", "thumbnail": "http://pictures.invalid/own.jpg",
        "thumbnails": [{"id": "0", "url": "https://pictures.invalid/small.jpg"},
                       {"id": "1", "url": "https://pictures.invalid/large.jpg"}]},
        lambda url: url.encode())
    assert set(answer["thumbnails"]) == {"poster", "thumb", "fanart", "landscape"}
    for kind in answer["thumbnails"]:
        assert (tmp_path / "show" / f"{kind}.jpg").read_bytes() == (
            b"http://pictures.invalid/own.jpg")


def test_a_retention_the_database_refuses_is_the_runs_error_and_the_next_run_does_it(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An admin's sqlite3 shell holds the database's write lock as retention marks its
    entries: the run records that failure as its error (its log says it), deletes nothing,
    and the next run, the lock gone, removes the file."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)  # the lock's wait, not its words
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true")
    task, (old, recent) = aged_task(runtime, client, origin, "locked")
    gate = origin.feeds.hold("locked")
    ended: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: ended.append(run_now(runtime, task)))
    thread.start()
    shell = sqlite3.connect(runtime.settings.database_file, isolation_level=None)
    try:
        wait_for(lambda: origin.feeds.waiting.get("locked"), timeout=120,
                 message="the feed to be read")
        [running], _ = runtime.tasks.store.executions(1, 10, task["id"], "running")
        live = runtime.tasks.runner.live_log(running["id"])
        assert live is not None
        shell.execute("BEGIN IMMEDIATE")  # after the run's start was written
        gate.set()
        wait_for(lambda: any(" ERROR " in line and "another program holds a lock" in line
                             for line in live.lines),
                 timeout=120, message="retention's write to be refused")
    finally:
        with contextlib.suppress(sqlite3.Error):
            shell.execute("ROLLBACK")
        shell.close()
        gate.set()
        thread.join(60)
    assert ended, "the run did not end"
    run = ended[0]
    assert run["status"] == "failed" and "another program holds a lock" in run["error"], run
    assert run["finished_at"] >= run["started_at"], run
    assert (Path(old.download_folder) / old.filename).is_file()
    lines = execution_log(runtime, run_now(runtime, task))
    assert any(line.endswith(" INFO retention removed 1 file(s)") for line in lines), lines
    assert [i.id for i in runtime.tasks.items(task["id"], 0, 10)[0]] == [recent.id]


def test_a_tasks_marks_go_to_its_presets_own_archive(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """A task whose preset keeps its own archive (``--download-archive NAME``) marks its
    entries there, where that preset's downloads look, not in the default archive."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_KEEP_ARCHIVE="true",
                               YTP_YOUTUBE_BASE_URL=origin.base_url)
    preset = client.simulate_post("/api/presets", json={
        "name": "own-archive", "cli": "--download-archive own.txt"})
    assert preset.status_code == 200, preset.text
    channel = "UC" + "o" * 22
    origin.feeds.set(channel, [FeedEntry("ownarchv001", origin.watch_url("clip"), "a")])
    made = client.simulate_post("/api/tasks", json={
        "name": "own", "url": f"https://www.youtube.com/channel/{channel}",
        "preset": "own-archive", "mark": True, "auto_start": False})
    assert made.status_code == 200, made.text
    config = runtime.settings.config_path
    assert (config / ARCHIVE_FOLDER / "own.txt").read_text().split("\n")[0] == (
        "youtube ownarchv001")
    default = config / DEFAULT_ARCHIVE
    assert not default.exists() or "ownarchv001" not in default.read_text()
