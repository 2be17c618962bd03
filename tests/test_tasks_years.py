"""What a person who has run subscriptions for years meets: a task changed from one URL
queued whole to a feed of its entries, an archive edited by hand, a file moved out of the
task's folder to keep it, another program writing beside the task's files, the marks of a
channel of 20,000 videos, a feed of thousands of refused links at every run. Real feeds and
downloads from the local origin, the real runtime in process."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from pony import orm
from support.aged_tasks import aged_task
from support.browsing import act
from support.feeds import FeedEntry
from support.origin import MediaOrigin
from support.server import wait_for
from support.task_runs import execution_log, run_now

from appliance.engine.plans import DEFAULT_ARCHIVE
from appliance.runtime import Runtime
from appliance.store.records import FINISHED, SKIP, Item
from appliance.tasks.retention import expired

Client = falcon.testing.TestClient


def _finished(runtime: Runtime, task: dict[str, Any], count: int) -> list[Item]:
    def done() -> list[Item]:
        items = runtime.tasks.items(task["id"], 0, 50)[0]
        return items if len(items) == count and all(i.status == FINISHED
                                                    for i in items) else []

    return wait_for(done, timeout=60, message=f"{count} finished download(s)")


def test_an_item_queued_whole_is_known_by_its_ytdlp_id_once_its_entries_are_listed(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """A task whose handler was off queued its URL as one item: that item has neither the
    entry's URL nor an entry id, only the id yt-dlp gave it. With the handler on and a feed
    that links the same video under another address, the task knew the video only through
    the archive's line; once that line went (an archive edited by hand, or another
    preset's), the video was downloaded again."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_KEEP_ARCHIVE="true")
    made = client.simulate_post("/api/tasks", json={
        "name": "whole", "url": origin.clip_url, "handler_enabled": False,
        "auto_start": True})
    assert made.status_code == 200, made.text
    task = made.json
    assert run_now(runtime, task)["queued"] == 1
    (item,) = _finished(runtime, task, 1)
    # Known only by what yt-dlp said of it: no entry id, no archive id of a skip.
    assert (item.url, item.extractor.lower(), item.video_id) == (origin.clip_url, "generic",
                                                                 "clip")
    assert not {"task_entry", "archive_id"} & set(item.extras), item.extras
    archive = runtime.settings.config_path / DEFAULT_ARCHIVE
    assert archive.read_text().splitlines() == [f"generic clip {origin.clip_url}"]
    archive.write_text("")

    origin.feeds.set("whole", [FeedEntry("a", f"{origin.clip_url}?from=feed", "a")])
    changed = client.simulate_patch(f"/api/tasks/{task['id']}", json={
        "url": f"{origin.base_url}/feeds/whole.rss", "handler_enabled": True})
    assert changed.status_code == 200, changed.text
    run = run_now(runtime, changed.json)
    assert (run["status"], run["found"], run["queued"], run["skipped"]) == (
        "success", 1, 0, 1), run
    assert [i.id for i in runtime.tasks.items(task["id"], 0, 50)[0]] == [item.id]


def test_an_item_the_archive_skipped_is_known_by_the_archive_line_it_was_skipped_for(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Skipped before its info was read (its archive line there already), the item kept no
    word of the line it was skipped for: the history's "remove from archive" answered that
    it was in no archive, and once the line went, a listing that links the video under
    another address queued it again for its task."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_KEEP_ARCHIVE="true")
    archive = runtime.settings.config_path / DEFAULT_ARCHIVE
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_text(f"generic clip {origin.clip_url}\n")
    made = client.simulate_post("/api/tasks", json={
        "name": "skipped", "url": origin.clip_url, "handler_enabled": False,
        "auto_start": True})
    assert made.status_code == 200, made.text
    assert run_now(runtime, made.json)["queued"] == 1
    (item,) = wait_for(lambda: [i for i in runtime.tasks.items(made.json["id"], 0, 50)[0]
                                if i.status == SKIP], timeout=60, message="the skip")
    assert (item.video_id, item.extras.get("archive_id")) == (
        "", f"generic clip {origin.clip_url}"), item
    removed = client.simulate_delete(f"/api/history/{item.id}/archive")
    assert removed.status_code == 200, removed.text
    assert archive.read_text() == ""

    origin.feeds.set("skipped", [FeedEntry("a", f"{origin.clip_url}?from=feed", "a")])
    changed = client.simulate_patch(f"/api/tasks/{made.json['id']}", json={
        "url": f"{origin.base_url}/feeds/skipped.rss", "handler_enabled": True})
    assert changed.status_code == 200, changed.text
    run = run_now(runtime, changed.json)
    assert (run["status"], run["queued"], run["skipped"]) == ("success", 0, 1), run


def test_retention_leaves_a_file_moved_out_of_the_tasks_folder_in_the_browser(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """The history follows a file the browser moves; retention followed it too, and deleted
    the episode a person had moved from the channel's folder into one of their own to keep
    it. Retention is the rule of the task's folder: what left it is no longer the task's to
    delete (a file moved back is again)."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true",
                               YTP_BROWSER_CONTROL_ENABLED="true")
    task, (old, recent) = aged_task(runtime, client, origin, "channel")
    root = runtime.settings.download_path
    assert Path(old.filename).parent == Path("channel")
    (root / "Keep").mkdir()
    moved = act(client, {"action": "move", "path": old.filename, "new_path": "Keep"})
    assert moved.status_code == 200 and all(r["ok"] for r in moved.json), moved.text
    kept = root / "Keep" / Path(old.filename).name
    assert runtime.engine.store.get(old.id).filename == f"Keep/{kept.name}"

    run = run_now(runtime, task)
    assert (run["status"], run["error"]) == ("success", ""), run
    assert kept.is_file()
    assert {i.id for i in runtime.tasks.items(task["id"], 0, 10)[0]} == {old.id, recent.id}
    lines = execution_log(runtime, run)
    assert not any("retention removed" in line or "no longer there" in line
                   for line in lines), lines

    back = act(client, {"action": "move", "path": f"Keep/{kept.name}", "new_path": "channel"})
    assert back.status_code == 200 and all(r["ok"] for r in back.json), back.text
    lines = execution_log(runtime, run_now(runtime, task))
    assert any(line.endswith(" INFO retention removed 1 file(s)") for line in lines), lines
    assert not (root / old.filename).exists()
    assert (Path(recent.download_folder) / recent.filename).is_file()


def test_the_marks_of_a_channel_of_20000_videos_are_written_and_forgotten_at_once(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Each mark was a statement of its own, each forgotten one too (unmark, and deleting
    the task): 40,000 of them for a channel of 20,000 videos held the database's write lock,
    which every download's state change waits for, 10 s here (a minute on a Pi)."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    store = runtime.tasks.store
    with orm.db_session:  # this thread's connection, which the test client's calls use too
        connection = store._db.get_connection()
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    try:
        for name in ("kept", "gone"):
            made = client.simulate_post("/api/tasks", json={
                "name": name, "url": f"{origin.base_url}/feeds/{name}.rss",
                "auto_start": False})
            assert made.status_code == 200, made.text
            task = made.json
            keys = [f"youtube v{n:05d}" for n in range(20_000)]
            statements.clear()
            assert store.mark(task["id"], [*keys, keys[0], ""]) == 20_000
            assert len(statements) < 10, statements[:20]
            assert store.mark(task["id"], [*keys[:10], "youtube new"]) == 1
            assert len(store.marked(task["id"])) == 20_001
            statements.clear()
            if name == "kept":
                forgot = client.simulate_delete(f"/api/tasks/{task['id']}/mark")
                assert forgot.status_code == 200, forgot.text
            else:
                deleted = client.simulate_delete(f"/api/tasks/{task['id']}")
                assert deleted.status_code == 200, deleted.text
            assert len(statements) < 20, statements[:30]
            assert store.marked(task["id"]) == set()
        assert store.mark(task["id"] - 1, ["youtube a", "youtube b"]) == 2
        assert store.unmark(task["id"] - 1, ["youtube a", "youtube c"]) == 1
        assert store.marked(task["id"] - 1) == {"youtube b"}
    finally:
        connection.set_trace_callback(None)


def test_a_feed_of_thousands_of_refused_entries_tells_twenty_and_counts_them_all(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Each refused entry was a line of the run's log and of the service's: a feed of 5,000
    "javascript:" links wrote 1.3 MB to the service's log at each run, and at a timer of 5
    minutes the log's 30 MB, everything else the service said, were gone within hours."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    # 5,000 entries in all: what a listing brings back at most (isolated.MAX_ENTRIES)
    bad = [FeedEntry(f"e{n}", f"javascript:alert({n})") for n in range(4999)]
    origin.feeds.set("hostile", [FeedEntry("good", origin.watch_url("clip")), *bad])
    made = client.simulate_post("/api/tasks", json={
        "name": "hostile", "url": f"{origin.base_url}/feeds/hostile.rss", "auto_start": False})
    assert made.status_code == 200, made.text
    run = run_now(runtime, made.json)
    assert (run["status"], run["found"], run["queued"], run["failed"]) == (
        "success", 5000, 1, 4999), run
    assert run["error"].startswith("4999 entries refused, not queued: url 'javascript:")
    lines = execution_log(runtime, run)
    told = [line for line in lines if " WARNING entry refused, not queued: " in line]
    assert [line.rpartition("(entry ")[2] for line in told] == [
        f"'javascript:alert({n})')" for n in range(20)]
    assert any(line.endswith(" WARNING 4979 more entries refused, not queued (not each told)")
               for line in lines), lines
    assert len(lines) < 40, lines


def test_retention_leaves_a_file_of_the_same_name_being_written_beside_it(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """Every file named ``<stem>.*`` that is no media went as a sidecar of the file retention
    deleted: the ``.part`` a person's own yt-dlp was writing into the channel's folder (the
    video again, in another format: the service's downloads write theirs elsewhere) was
    deleted under it, and a person's ``clip.cue``. Only what a download writes beside its
    file goes with it: subtitles, pictures, NFO and JSON, the description."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true")
    task, (old, _) = aged_task(runtime, client, origin, "channel")
    video = Path(old.download_folder) / old.filename
    folder, stem = video.parent, video.stem
    own = [f"{stem}.en.srt", f"{stem}.info.json", f"{stem}.webp", f"{stem}.description"]
    for name in own:
        (folder / name).write_bytes(b"its own")
    (folder / f"{stem}.cue").write_bytes(b"a person's own cue sheet")
    part = folder / f"{stem}.f137.mp4.part"
    with part.open("wb") as writing:
        writing.write(b"the first half")
        writing.flush()
        lines = execution_log(runtime, run_now(runtime, task))
        writing.write(b", the second half")
    assert any(line.endswith(" INFO retention removed 1 file(s)") for line in lines), lines
    assert not video.exists() and not any((folder / name).exists() for name in own)
    assert part.read_bytes() == b"the first half, the second half"
    assert (folder / f"{stem}.cue").is_file()


def test_marking_a_feeds_entries_writes_their_ytdlp_ids_to_the_archive(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """An RSS entry has no archive id of its own: yt-dlp names it. The archive, which every
    download of the preset reads, then holds each marked entry, whatever link leads to it."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_KEEP_ARCHIVE="true")
    origin.feeds.set("later", [FeedEntry("a", origin.clip_url, "a"),
                               FeedEntry("b", origin.clip2_url, "b")])
    made = client.simulate_post("/api/tasks", json={
        "name": "later", "url": f"{origin.base_url}/feeds/later.rss", "auto_start": False})
    assert made.status_code == 200, made.text
    marked = client.simulate_post(f"/api/tasks/{made.json['id']}/mark")
    assert marked.status_code == 200, marked.text
    assert marked.json["message"] == "Marked 2 entries of task 'later' as downloaded."
    archive = runtime.settings.config_path / DEFAULT_ARCHIVE
    assert sorted(archive.read_text().splitlines()) == sorted([
        f"generic clip {origin.clip_url}", f"generic clip2 {origin.clip2_url}"])


def test_a_tasks_date_is_cleared_with_an_empty_one(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin) -> None:
    """``published_after`` given, then taken back (blank): every entry is wanted again."""
    runtime, client = app_with(YTP_TASKS_SPREAD="0")
    origin.feeds.set("dated", [FeedEntry("a", origin.clip_url, "a", "2020-01-02T00:00:00Z")])
    made = client.simulate_post("/api/tasks", json={
        "name": "dated", "url": f"{origin.base_url}/feeds/dated.rss", "auto_start": False,
        "published_after": "2024-01-31"})
    assert made.status_code == 200 and made.json["published_after"] == "2024-01-31", made.text
    assert run_now(runtime, made.json)["queued"] == 0
    cleared = client.simulate_patch(f"/api/tasks/{made.json['id']}",
                                    json={"published_after": "  "})
    assert cleared.status_code == 200 and cleared.json["published_after"] == "", cleared.text
    run = run_now(runtime, cleared.json)
    assert (run["status"], run["queued"]) == ("success", 1), run


def test_retention_by_age_keeps_a_day_when_told_one() -> None:
    """``keep_days: 1``, the shortest rule there is, is a rule: what finished more than a
    day ago goes, the rest stays; with ``keep_newest`` beside it, either takes."""
    now = 1_800_000_000.0
    made = [Item(id=str(n), url=f"https://site.invalid/{n}", finished_at=now - hours * 3600)
            for n, hours in enumerate((1, 23, 25, 49))]
    assert sorted(i.id for i in expired(made, 0, 1, now)) == ["2", "3"]
    assert sorted(i.id for i in expired(made, 1, 1, now)) == ["1", "2", "3"]
    assert expired(made, 0, 0, now) == []


def test_published_after_begins_at_midnight_utc_whatever_the_boxs_zone(
        app_with: Callable[..., tuple[Runtime, Client]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The day's start is UTC's, as the entries' dates are read, not the box's own zone's
    (nine hours apart in Tokyo)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        runtime, client = app_with(YTP_TASKS_SPREAD="0")
        origin.feeds.set("tokyo", [
            FeedEntry("a", origin.clip_url, "a", "2024-01-30T20:00:00+00:00"),
            FeedEntry("b", origin.clip2_url, "b", "2024-01-31T00:00:00+00:00")])
        made = client.simulate_post("/api/tasks", json={
            "name": "tokyo", "url": f"{origin.base_url}/feeds/tokyo.rss",
            "auto_start": False, "published_after": "2024-01-31"})
        assert made.status_code == 200, made.text
        run = run_now(runtime, made.json)
        assert (run["found"], run["queued"], run["skipped"]) == (2, 1, 1), run
        assert [i.url for i in runtime.tasks.items(made.json["id"], 0, 10)[0]] == [
            origin.clip2_url]
    finally:
        monkeypatch.undo()
        time.tzset()
