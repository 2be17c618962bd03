"""Deleting an item with its file (``YTP_REMOVE_FILES=true``): only the item's own file, in
the download folder it was written in, never through a symlink or a tampered name. Through the
real API on a real engine (real yt-dlp from the local origin, real SQLite)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from falcon.testing import TestClient
from support.browsing import act
from support.origin import MediaOrigin
from support.server import wait_for

from appliance import runtime as runtime_module
from appliance.runtime import Runtime
from appliance.store import Item, ItemStore
from appliance.store.records import DONE, FINISHED, new_id

AppWith = Callable[..., tuple[Runtime, TestClient]]
App = Callable[..., tuple[Runtime, TestClient]]


@pytest.fixture
def app(app_with: AppWith, tmp_path: Path) -> App:
    """A runtime whose download folder is set in config.yml, not pinned by the environment,
    so that ``PUT /api/settings`` can move it."""

    def start(remove_files: str = "true") -> tuple[Runtime, TestClient]:
        config = tmp_path / "config"
        config.mkdir(exist_ok=True)
        (config / "config.yml").write_text(f"download_path: {tmp_path / 'downloads'}\n")
        return app_with({
            "YTP_CONFIG_PATH": str(config), "YTP_TEMP_PATH": str(tmp_path / "tmp"),
            "YTP_REMOVE_FILES": remove_files, "YTP_KEEP_ARCHIVE": "false",
            "YTP_WORKER_IDLE_TIMEOUT": "30", "YTP_BROWSER_CONTROL_ENABLED": "true",
        })

    return start


def send(client: TestClient, method: str, path: str, body: Any) -> Any:
    response = client.simulate_request(method, path, body=json.dumps(body),
                                       headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json


def download(client: TestClient, url: str, **fields: Any) -> dict[str, Any]:
    [queued] = send(client, "POST", "/api/history", {"url": url, **fields})
    return wait_finished(client, queued["id"])


def wait_finished(client: TestClient, item_id: str) -> dict[str, Any]:
    item = wait_for(lambda: (i := client.simulate_get(f"/api/history/{item_id}").json)
                    ["kind"] == "done" and i, timeout=120, message=f"{item_id} to end")
    assert item["status"] == "finished", item
    return item


def delete(client: TestClient, item_id: str, remove_file: bool = True) -> None:
    answer = send(client, "DELETE", "/api/history",
                  {"type": "done", "ids": [item_id], "remove_file": remove_file})
    assert answer == {item_id: "deleted"}


def move_download_folder(client: TestClient, folder: Path) -> None:
    assert send(client, "PUT", "/api/settings", {"download_directory": str(folder)}) == {
        "success": True}


def tamper(runtime: Runtime, item_id: str, **columns: str) -> None:
    """Change the item's row behind the service's back, as a hand edit of the database."""
    with sqlite3.connect(runtime.settings.database_file) as db:
        for column, value in columns.items():
            db.execute(f"UPDATE items SET {column} = ? WHERE id = ?", (value, item_id))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside every download folder, named like the downloads."""
    folder = tmp_path / "outside"
    folder.mkdir()
    secret = folder / "show.mp4"
    secret.write_bytes(b"not a download")
    return secret


def test_delete_after_the_folder_changed_removes_the_items_own_file_only(
        app: App, origin: MediaOrigin, tmp_path: Path) -> None:
    runtime, client = app()
    first = runtime.settings.download_path
    item = download(client, origin.short_url, template="show.%(ext)s")
    assert item["filename"] == "show.mp4" and (first / "show.mp4").is_file()
    second = tmp_path / "second"
    move_download_folder(client, second)
    unrelated = second / "show.mp4"
    unrelated.write_bytes(b"another show, not this item's")
    delete(client, item["id"])
    assert unrelated.read_bytes() == b"another show, not this item's"
    assert not (first / "show.mp4").exists()


def test_download_running_while_the_folder_changes_lands_and_is_recorded_in_its_folder(
        app: App, origin: MediaOrigin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime, client = app()
    first = runtime.settings.download_path
    # At the origin's rate, which follows the test: slow while the folder changes, fast after.
    monkeypatch.setattr(origin, "slow_rate", 1_000_000)
    [queued] = send(client, "POST", "/api/history", {"url": origin.slow_url, "folder": "shows"})
    wait_for(lambda: (client.simulate_get(f"/api/history/{queued['id']}").json
                      .get("downloaded_bytes") or 0) > 0, timeout=60, message="some bytes")
    second = tmp_path / "second"
    move_download_folder(client, second)
    origin.slow_rate = 16 * 1024 * 1024
    item = wait_finished(client, queued["id"])
    # the name is relative to the folder the download ran in, and the file is there
    assert item["filename"] == "shows/slow.mp4"
    assert (first / "shows" / "slow.mp4").read_bytes() == \
        origin.path_for(origin.slow_url).read_bytes()
    assert not (second / "shows").exists()
    (second / "shows").mkdir()
    (second / "shows" / "slow.mp4").write_bytes(b"unrelated")
    delete(client, item["id"])
    assert not (first / "shows" / "slow.mp4").exists()
    assert (second / "shows" / "slow.mp4").read_bytes() == b"unrelated"


def test_only_a_finished_items_file_is_removed_and_the_log_names_it(
        app: App, origin: MediaOrigin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="appliance.engine")
    runtime, client = app()
    folder = runtime.settings.download_path
    failed = download(client, origin.short_url, template="failed.%(ext)s")
    done = download(client, origin.short_url, template="done.%(ext)s")
    # An item that ended in error keeps the name of a file it did not finish: not its to delete.
    tamper(runtime, failed["id"], status="error")
    delete(client, failed["id"])
    delete(client, done["id"])
    assert (folder / "failed.mp4").is_file() and not (folder / "done.mp4").exists()
    assert any(f"removed file {folder.resolve() / 'done.mp4'} of item {done['id']}"
               == r.getMessage() for r in caplog.records)


def test_its_own_sidecars_go_with_it_and_nothing_else(
        app: App, origin: MediaOrigin, outside: Path) -> None:
    """Subtitles, NFO, info.json and thumbnail named after the file went nowhere: a task's
    retention left them behind for ever. Another video named like it, that one's subtitles,
    the folder's artwork and a link named like a sidecar stay (and what it points to)."""
    runtime, client = app()
    folder = runtime.settings.download_path
    item = download(client, origin.short_url, template="Show.%(ext)s")
    own = ["Show.en.srt", "Show.nfo", "Show.info.json", "Show.webp"]
    others = ["Show.Extended.mp4", "Show.Extended.en.srt", "poster.jpg", "Other.en.srt"]
    for name in own + others:
        (folder / name).write_bytes(b"x")
    (folder / "Show.jpg").symlink_to(outside)
    delete(client, item["id"])
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(
        [*others, "Show.jpg"])
    assert outside.read_bytes() == b"not a download"


def test_sidecars_stay_while_another_media_file_of_the_name_does(
        app: App, origin: MediaOrigin) -> None:
    runtime, client = app()
    folder = runtime.settings.download_path
    item = download(client, origin.short_url, template="Show.%(ext)s")
    (folder / "Show.mkv").write_bytes(b"the same show, another container")
    (folder / "Show.en.srt").write_bytes(b"x")
    delete(client, item["id"])
    assert not (folder / "Show.mp4").exists()
    assert (folder / "Show.en.srt").is_file() and (folder / "Show.mkv").is_file()


def test_without_remove_file_the_file_stays(app: App, origin: MediaOrigin) -> None:
    runtime, client = app()
    item = download(client, origin.short_url, template="kept.%(ext)s")
    delete(client, item["id"], remove_file=False)
    assert (runtime.settings.download_path / "kept.mp4").is_file()


def test_files_stay_unless_the_setting_allows_removing_them(
        app: App, origin: MediaOrigin) -> None:
    runtime, client = app("false")
    item = download(client, origin.short_url, template="kept.%(ext)s")
    delete(client, item["id"])
    assert (runtime.settings.download_path / "kept.mp4").is_file()


def test_a_symlinked_file_is_not_followed_out(
        app: App, origin: MediaOrigin, outside: Path) -> None:
    runtime, client = app()
    item = download(client, origin.short_url, template="show.%(ext)s")
    link = runtime.settings.download_path / "show.mp4"
    link.unlink()
    link.symlink_to(outside)
    delete(client, item["id"])
    assert outside.read_bytes() == b"not a download"


def test_a_symlinked_folder_is_not_followed_out(
        app: App, origin: MediaOrigin, outside: Path) -> None:
    runtime, client = app()
    item = download(client, origin.short_url, template="show.%(ext)s", folder="sub")
    assert item["filename"] == "sub/show.mp4"
    sub = runtime.settings.download_path / "sub"
    (sub / "show.mp4").unlink()
    sub.rmdir()
    sub.symlink_to(outside.parent, target_is_directory=True)
    delete(client, item["id"])
    assert outside.read_bytes() == b"not a download"


@pytest.mark.parametrize("name", ["../show.mp4", "sub/../../show.mp4"])
def test_a_tampered_filename_cannot_reach_out(
        app: App, origin: MediaOrigin, name: str) -> None:
    runtime, client = app()
    item = download(client, origin.short_url, template="show.%(ext)s")
    beside = runtime.settings.download_path.parent / "show.mp4"
    beside.write_bytes(b"next to the download folder")
    tamper(runtime, item["id"], filename=name)
    delete(client, item["id"])
    assert beside.read_bytes() == b"next to the download folder"
    assert (runtime.settings.download_path / "show.mp4").is_file()


def test_a_tampered_folder_is_not_a_download_folder(
        app: App, origin: MediaOrigin, outside: Path) -> None:
    runtime, client = app()
    item = download(client, origin.short_url, template="show.%(ext)s")
    tamper(runtime, item["id"], download_folder=str(outside.parent))
    delete(client, item["id"])
    assert outside.read_bytes() == b"not a download"


def test_an_old_database_gets_the_folder_configured_when_it_is_migrated(
        app: App, tmp_path: Path) -> None:
    """A database from before items recorded their folder: its rows are taken to be in the
    download folder configured at the migration, and their files can be deleted there."""
    database = tmp_path / "config" / "appliance.db"
    store = ItemStore(database)
    old = Item(id=new_id(), url="http://x.invalid/old", kind=DONE, status=FINISHED,
               filename="old.mp4", created_at=store.stamp())
    waiting = Item(id=new_id(), url="http://x.invalid/waiting", auto_start=False,
                   created_at=store.stamp())
    store.insert([old, waiting])
    store.close()
    with sqlite3.connect(database) as db:
        db.execute("ALTER TABLE items DROP COLUMN download_folder")
        db.execute("DROP TABLE download_folders")
    runtime, client = app()
    folder = runtime.settings.download_path
    migrated = runtime.store.get(old.id)
    assert migrated is not None and migrated.download_folder == str(folder)
    assert runtime.store.get(waiting.id).download_folder == ""  # type: ignore[union-attr]
    assert "download_folder" not in client.simulate_get(f"/api/history/{old.id}").json
    (folder / "old.mp4").write_bytes(b"old download")
    delete(client, old.id)
    assert not (folder / "old.mp4").exists()


def test_a_file_renamed_over_its_name_behind_the_services_back_is_not_removed(
        app: App, origin: MediaOrigin, caplog: pytest.LogCaptureFixture) -> None:
    """Two downloads; over SSH the first is renamed away and the second renamed to the
    first's name. Deleting the first item with its file deleted the second download."""
    caplog.set_level(logging.WARNING, logger="appliance.engine")
    runtime, client = app()
    folder = runtime.settings.download_path
    first = download(client, origin.short_url, template="show.%(ext)s")
    second = download(client, origin.clip_url, template="other.%(ext)s")
    kept = (folder / "other.mp4").read_bytes()
    (folder / "show.mp4").rename(folder / "aside.mp4")
    (folder / "other.mp4").rename(folder / "show.mp4")
    delete(client, first["id"])
    assert (folder / "show.mp4").read_bytes() == kept
    assert (folder / "aside.mp4").is_file()
    [said] = [r.getMessage() for r in caplog.records if "not removing" in r.getMessage()]
    assert said.startswith(f"not removing {folder.resolve() / 'show.mp4'} of item "
                           f"{first['id']}: it is not the file this download wrote (")
    assert f"not the {first['file_size']} it recorded" in said, said
    assert second["file_size"] != first["file_size"]


def updates(runtime: Runtime) -> list[dict[str, Any]]:
    """The items announced as updated from now on (in the order published)."""
    seen: list[dict[str, Any]] = []
    runtime.bus.subscribe(lambda e: seen.append(e.data) if e.name == "item_updated" else None)
    return seen


def test_items_follow_their_files_renamed_and_moved_in_the_browser(
        app: App, origin: MediaOrigin, caplog: pytest.LogCaptureFixture) -> None:
    """The history names a file where the file browser put it, a folder's too (and the log
    says how many items followed); a delete then removes the item's own file there, and a
    file renamed to its old name is not touched."""
    caplog.set_level(logging.INFO, logger="appliance.runtime")
    runtime, client = app()
    folder = runtime.settings.download_path
    first = download(client, origin.short_url, template="show.%(ext)s")
    second = download(client, origin.clip_url, template="other.%(ext)s")
    elsewhere = download(client, origin.clip2_url, template="show.%(ext)s", folder="x")
    (folder / "Season 1").mkdir()
    announced = updates(runtime)
    done = act(client, {"action": "move", "path": "show.mp4", "new_path": "Season 1"},
               {"action": "rename", "path": "other.mp4", "new_name": "show.mp4"},
               {"action": "rename", "path": "Season 1", "new_name": "S1"})
    assert done.status_code == 200 and all(r["ok"] for r in done.json), done.text
    # clients are told, the whole item each time, as of any change
    # (the last download's own final event may come after it showed done: left out, of the
    # whole item's check too, where it came first once at a load of 7)
    told = [i for i in announced if i["id"] != elsewhere["id"]]
    assert [(i["id"], i["filename"]) for i in told] == [
        (first["id"], "Season 1/show.mp4"), (second["id"], "show.mp4"),
        (first["id"], "S1/show.mp4")]
    assert told[0]["title"] == first["title"]
    followed = [m for m in caplog.messages if " item(s) follow " in m]
    assert followed[0] == "1 item(s) follow show.mp4 to Season 1/show.mp4", followed

    def filename(item: dict[str, Any]) -> str:
        return client.simulate_get(f"/api/history/{item['id']}").json["filename"]

    assert (filename(first), filename(second)) == ("S1/show.mp4", "show.mp4")
    assert filename(elsewhere) == "x/show.mp4"  # not under the folder renamed
    kept = (folder / "show.mp4").read_bytes()
    delete(client, first["id"])
    assert not (folder / "S1" / "show.mp4").exists()
    assert (folder / "show.mp4").read_bytes() == kept


def test_items_of_files_deleted_in_the_browser_name_no_file(
        app: App, origin: MediaOrigin) -> None:
    """A file (or folder) deleted in the browser is no item's file any more: the history
    keeps the item, naming no file, and a later file of that name is not the item's (deleting
    the item leaves it)."""
    runtime, client = app()
    folder = runtime.settings.download_path
    alone = download(client, origin.short_url, template="show.%(ext)s")
    inside = download(client, origin.clip_url, template="%(id)s.%(ext)s", folder="old")
    kept = download(client, origin.clip2_url, template="kept.%(ext)s")
    announced = updates(runtime)
    done = act(client, {"action": "delete", "path": "show.mp4"},
               {"action": "delete", "path": "old"})
    assert done.status_code == 200 and all(r["ok"] for r in done.json), done.text
    assert [(i["id"], i["filename"], i["file_size"]) for i in announced
            if i["id"] != kept["id"]] == [
        (alone["id"], "", None), (inside["id"], "", None)]

    def files(item: dict[str, Any]) -> tuple[str | None, int | None]:
        now = client.simulate_get(f"/api/history/{item['id']}").json
        return now.get("filename"), now.get("file_size")

    assert files(alone) == files(inside) == ("", None)
    assert files(kept) == ("kept.mp4", kept["file_size"])
    # and they say why, years later
    said = {i["id"]: i["msg"] for i in announced}
    assert said[alone["id"]] == "Its file was deleted in the file browser ('show.mp4')."
    assert said[inside["id"]] == "Its file was deleted in the file browser ('old')."
    assert client.simulate_get(f"/api/history/{inside['id']}").json["msg"] == said[inside["id"]]
    (folder / "show.mp4").write_bytes(b"a later file of that name")
    delete(client, alone["id"])
    assert (folder / "show.mp4").read_bytes() == b"a later file of that name"


def name_of(seen: list[Any], data: Any) -> str:
    return next(name for name, d in seen if d is data)


def test_a_folder_of_many_items_is_announced_as_one_message(
        app: App, origin: MediaOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ANNOUNCED_FILE_ITEMS, one message says what changed instead of an item_updated
    each (thousands of whole items at once would put clients too far behind)."""
    monkeypatch.setattr(runtime_module, "ANNOUNCED_FILE_ITEMS", 1)
    runtime, client = app()
    items = [download(client, url, folder="many") for url in (origin.clip_url, origin.short_url)]
    seen: list[Any] = []
    runtime.bus.subscribe(lambda e: seen.append((e.name, e.data)))
    done = act(client, {"action": "rename", "path": "many", "new_name": "renamed"})
    assert done.status_code == 200 and done.json[0]["ok"], done.text
    assert [d for name, d in seen if name == "item_updated"
            and d["filename"].startswith("renamed")] == []
    [said] = [data for name, data in seen if name.startswith("log_")
              and data["title"] == "History changed"]
    assert (said["message"], name_of(seen, said)) == (
        "2 items follow many to renamed; reload the history to see them.", "log_info")
    assert {client.simulate_get(f"/api/history/{i['id']}").json["filename"].split("/")[0]
            for i in items} == {"renamed"}


def test_a_copy_of_the_same_size_put_under_its_name_is_not_removed(
        app: App, origin: MediaOrigin, caplog: pytest.LogCaptureFixture) -> None:
    """The same size is no proof: the file's modification time, as recorded, is asked too.
    The file as it was (renamed back, its time kept) is removed."""
    caplog.set_level(logging.WARNING, logger="appliance.engine")
    runtime, client = app()
    folder = runtime.settings.download_path
    item = download(client, origin.short_url, template="show.%(ext)s")
    original = folder / "show.mp4"
    original.rename(folder / "aside.mp4")
    shutil.copyfile(folder / "aside.mp4", original)  # the same bytes, written now
    os.utime(original, ns=(0, (folder / "aside.mp4").stat().st_mtime_ns + 1))
    delete(client, item["id"])
    assert original.is_file() and (folder / "aside.mp4").is_file()
    assert any("modified at another time than it recorded" in r.getMessage()
               for r in caplog.records)
    again = download(client, origin.short_url, template="again.%(ext)s")
    (folder / "again.mp4").rename(folder / "back.mp4")
    (folder / "back.mp4").rename(folder / "again.mp4")  # renamed back: the same file
    delete(client, again["id"])
    assert not (folder / "again.mp4").exists()


def test_the_time_is_never_sent_and_an_old_database_gets_its_column(
        app: App, origin: MediaOrigin, tmp_path: Path) -> None:
    """Rows from before the modification time was recorded are checked on their size."""
    database = tmp_path / "config" / "appliance.db"
    store = ItemStore(database)
    old = Item(id=new_id(), url="http://x.invalid/old", kind=DONE, status=FINISHED,
               filename="old.mp4", file_size=12, created_at=store.stamp(),
               download_folder=str(tmp_path / "downloads"))
    store.insert([old])
    store.close()
    with sqlite3.connect(database) as db:
        db.execute("ALTER TABLE items DROP COLUMN file_mtime_ns")
    runtime, client = app()
    folder = runtime.settings.download_path
    assert runtime.store.get(old.id).file_mtime_ns is None  # type: ignore[union-attr]
    (folder / "old.mp4").write_bytes(b"old download")  # 12 bytes
    delete(client, old.id)
    assert not (folder / "old.mp4").exists()
    item = download(client, origin.short_url, template="new.%(ext)s")
    assert "file_mtime_ns" not in item
    recorded = runtime.store.get(item["id"]).file_mtime_ns  # type: ignore[union-attr]
    assert recorded == (folder / "new.mp4").stat().st_mtime_ns


def test_the_store_follows_a_folder_and_nothing_beside_it(tmp_path: Path) -> None:
    """In the store alone: every item under the folder follows (more than one read of
    records' 500), a sibling whose name only begins like the folder's does not ('f0.mp4'
    sorts between 'f/' and the range's end), and no path names every file-less item."""
    store = ItemStore(tmp_path / "appliance.db")
    folder = str(tmp_path / "downloads")

    def item(filename: str) -> Item:
        return Item(id=new_id(), url="http://x.invalid/", kind=DONE, status=FINISHED,
                    filename=filename, created_at=store.stamp(), download_folder=folder)

    under = [item(f"f/{n}.mp4") for n in range(501)]
    beside, none = item("f0.mp4"), item("")
    store.insert([*under, beside, none])
    moved = store.follow_rename([folder], "f", "g")
    assert sorted(moved) == sorted(i.id for i in under)
    records = store.records(moved)
    assert sorted((r.id, r.filename) for r in records) == sorted(
        (i.id, "g" + i.filename[1:]) for i in under)
    assert store.get(beside.id).filename == "f0.mp4"  # type: ignore[union-attr]
    assert store.forget_files([folder], "") == store.follow_rename([folder], "", "x") == []
    assert store.get(none.id).filename == ""  # type: ignore[union-attr]
    assert store.forget_files([folder], "g/7.mp4") == [under[7].id]
    store.close()


def test_a_file_moved_into_a_folder_named_in_latin1_is_removed_with_its_item(
        app: App, origin: MediaOrigin, caplog: pytest.LogCaptureFixture) -> None:
    """The history names such a file as the API does (``%C9t%E9/show.mp4``): the delete
    looked for a folder named so, found nothing and left the file for good, and the history
    listed no sidecars for it. Its own file and sidecar go now, nothing named like them; and
    where the name could be either of two folders, neither file is taken for the item's."""
    runtime, client = app()
    folder = runtime.settings.download_path
    raw = os.fsencode(folder)
    item = download(client, origin.short_url, template="show.%(ext)s")
    (folder / "show.en.srt").write_text("1\n00:00:00,500 --> 00:00:01,000\nhi\n")
    os.mkdir(raw + b"/\xc9t\xe9")
    (folder / "Été").mkdir()  # the name as people read it: another folder
    (folder / "Été" / "show.mp4").write_bytes(b"not the item's")
    moved = act(client, {"action": "move", "path": "show.mp4", "new_path": "%C9t%E9"})
    assert moved.json[0]["ok"] and moved.json[0]["sidecar_count"] == 1, moved.text
    assert sorted(os.listdir(raw + b"/\xc9t\xe9")) == [b"show.en.srt", b"show.mp4"]
    wait_for(lambda: history_sidecars(client, item["id"]) == {"subtitle": [
        {"file": "%C9t%E9/show.en.srt", "lang": "en", "name": "SRT (0) - en"}]}, 10,
        message="the history to list the moved file's sidecar")
    delete(client, item["id"])
    assert os.listdir(raw + b"/\xc9t\xe9") == []
    assert (folder / "Été" / "show.mp4").read_bytes() == b"not the item's"

    other = download(client, origin.clip_url, template="other.%(ext)s")
    moved = act(client, {"action": "move", "path": "other.mp4", "new_path": "%C9t%E9"})
    assert moved.json[0]["ok"], moved.text
    (folder / "%C9t%E9").mkdir()  # named so in UTF-8: the same name as the API writes
    (folder / "%C9t%E9" / "other.mp4").write_bytes(b"named so")
    with caplog.at_level(logging.WARNING, logger="appliance.engine.file_removal"):
        delete(client, other["id"])
    assert os.listdir(raw + b"/\xc9t\xe9") == [b"other.mp4"]
    assert (folder / "%C9t%E9" / "other.mp4").read_bytes() == b"named so"
    assert "'%C9t%E9' names two entries" in caplog.text


def history_sidecars(client: TestClient, item_id: str) -> dict[str, Any]:
    page = client.simulate_get("/api/history", params={"type": "done"}).json
    return next(i["sidecar"] for i in page["items"] if i["id"] == item_id)
