"""The file browser on a real runtime (index, watchdog, real files): listing, sort, search,
pagination, changes made from a shell, hostile paths and zips (its actions:
test_file_actions.py)."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient
from support.browsing import (
    LISTED_DEADLINE,
    act,
    assert_error,
    listed,
    listing,
    make,
    names,
    new_folder,
)
from support.server import wait_for

from appliance.api.app import create_app
from appliance.files import zips
from appliance.files.index import FileIndex
from appliance.runtime import Runtime


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "browser",
                                     YTP_BROWSER_CONTROL_ENABLED="true"):
        yield runtime, TestClient(create_app(runtime))


@pytest.fixture
def folder(app: tuple[Runtime, TestClient]) -> Iterator[Path]:
    yield from new_folder(*app)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_text("secret")
    return secret


# --- listing ---------------------------------------------------------------------------------

def test_listing_sorts_folders_first_with_stable_ties(app: tuple[Runtime, TestClient],
                                                      folder: Path) -> None:
    _, client = app
    make(folder / "b.mp4", 300, 1_000)
    make(folder / "A.mkv", 100, 3_000)
    make(folder / "c.en.srt", 100, 2_000)
    make(folder / "d.jpg", 100, 2_000)
    (folder / "zdir").mkdir()
    (folder / "adir").mkdir()
    make(folder / ".hidden", 5)
    listed(client, folder.name, {"A.mkv", "b.mp4", "c.en.srt", "d.jpg", "adir", "zdir"})
    by = {}
    for sort_by in ("name", "size", "date", "type"):
        for order in ("asc", "desc"):
            by[sort_by, order] = names(client, folder.name, sort_by=sort_by, sort_order=order)
    assert by["name", "asc"] == ["adir", "zdir", "A.mkv", "b.mp4", "c.en.srt", "d.jpg"]
    assert by["name", "desc"] == ["zdir", "adir", "d.jpg", "c.en.srt", "b.mp4", "A.mkv"]
    # size ties (100 bytes) broken by name, in both orders
    assert by["size", "asc"] == ["adir", "zdir", "A.mkv", "c.en.srt", "d.jpg", "b.mp4"]
    assert by["size", "desc"] == ["adir", "zdir", "b.mp4", "A.mkv", "c.en.srt", "d.jpg"]
    assert by["date", "desc"][2:] == ["A.mkv", "c.en.srt", "d.jpg", "b.mp4"]
    assert by["type", "asc"][2:] == ["d.jpg", "c.en.srt", "A.mkv", "b.mp4"]
    body = listing(client, folder.name).json
    entry = next(e for e in body["contents"] if e["name"] == "b.mp4")
    assert entry == {**entry, "type": "file", "content_type": "video", "size": 300,
                     "path": f"{folder.name}/b.mp4", "mime": "video/mp4", "is_dir": False,
                     "is_file": True, "is_symlink": False,
                     "mtime": "1970-01-01T00:16:40Z"}
    assert body["path"] == folder.name
    # a folder is a folder whatever its name looks like
    (folder / "adir.mp4").mkdir()
    listed(client, folder.name, {"A.mkv", "b.mp4", "c.en.srt", "d.jpg", "adir", "zdir",
                                 "adir.mp4"})
    entry = next(e for e in listing(client, folder.name).json["contents"]
                 if e["name"] == "adir.mp4")
    assert entry == {**entry, "type": "dir", "content_type": "dir", "mime": "directory",
                     "size": 0, "is_dir": True, "is_file": False, "is_symlink": False,
                     "path": f"{folder.name}/adir.mp4"}


def test_entries_say_what_a_file_is_by_its_last_extension(app: tuple[Runtime, TestClient],
                                                          folder: Path) -> None:
    _, client = app
    for name in ("srt", "show.nfo", "Show.MKV", "x.info.json", "a.en.SRT"):
        make(folder / name)
    listed(client, folder.name, {"srt", "show.nfo", "Show.MKV", "x.info.json", "a.en.SRT"})
    entries = listing(client, folder.name).json["contents"]
    assert {tuple(sorted(e)) for e in entries} == {(
        "content_type", "ctime", "is_dir", "is_file", "is_symlink", "mime", "mtime", "name",
        "path", "size", "type")}
    kinds = {e["name"]: (e["content_type"], e["mime"]) for e in entries}
    assert kinds == {
        "srt": ("download", "application/octet-stream"),  # a name, not an extension
        "show.nfo": ("metadata", "text/xml"),
        "Show.MKV": ("video", "video/x-matroska"),
        "x.info.json": ("metadata", "application/json"),
        "a.en.SRT": ("subtitle", "application/x-subrip"),
    }


def test_type_sort_goes_by_the_last_extension(app: tuple[Runtime, TestClient],
                                              folder: Path) -> None:
    _, client = app
    make(folder / "x.b.mp4")  # an .mp4 whose name holds a dot
    make(folder / "y.mkv")
    listed(client, folder.name, {"x.b.mp4", "y.mkv"})
    assert names(client, folder.name, sort_by="type") == ["y.mkv", "x.b.mp4"]


def test_a_listing_before_the_first_index_is_read_from_the_disk(tmp_path: Path) -> None:
    """A big folder takes a while to index at start: a listing asked meanwhile is read from
    the disk, in the order asked, searched the same way."""
    root = tmp_path / "downloads"
    make(root / "b.mp4", 3)
    make(root / "a.mp4", 1)
    make(root / "Clip.mkv", 2)
    (root / "sub").mkdir()
    make(root / ".hidden.mp4")  # left out as the index leaves them out
    make(root / "c.mp4.part")
    index = FileIndex(root)
    assert not index.ready.is_set()

    def page_names(**asked: Any) -> list[str]:
        return [e["name"] for e in index.page("", offset=0, limit=10, **asked).entries]

    assert page_names() == ["sub", "a.mp4", "b.mp4", "Clip.mkv"]
    assert page_names(sort_by="size", descending=True) == ["sub", "b.mp4", "Clip.mkv",
                                                           "a.mp4"]
    assert page_names(search="CLIP") == ["Clip.mkv"]
    assert index.page("", offset=1, limit=2).total == 4


def test_pagination_and_search(app: tuple[Runtime, TestClient], folder: Path) -> None:
    _, client = app
    for n in range(25):
        make(folder / f"Clip {n:02d}.mp4")
    make(folder / "other.txt")
    listed(client, folder.name, {f"Clip {n:02d}.mp4" for n in range(25)} | {"other.txt"})
    pages = [listing(client, folder.name, per_page=10, page=p) for p in (1, 2, 3)]
    assert [len(p.json["contents"]) for p in pages] == [10, 10, 6]
    assert pages[2].json["pagination"] == {"page": 3, "per_page": 10, "total": 26,
                                           "total_pages": 3, "has_next": False,
                                           "has_prev": True}
    assert pages[0].headers["Total-Count"] == "26"
    seen = [e["name"] for p in pages for e in p.json["contents"]]
    assert len(set(seen)) == 26
    assert names(client, folder.name, search="CLIP 1") == [f"Clip 1{n}.mp4" for n in range(10)]
    assert names(client, folder.name, search="nothing") == []
    assert_error(listing(client, folder.name, per_page=1001), 400)
    assert_error(listing(client, folder.name, sort_by="colour"), 400)


def test_missing_folder_and_file_path(app: tuple[Runtime, TestClient], folder: Path) -> None:
    _, client = app
    make(folder / "f.mp4")
    assert_error(listing(client, f"{folder.name}/nope"), 404)
    assert_error(listing(client, f"{folder.name}/f.mp4"), 400)
    assert listing(client, "").json["path"] == "/"
    files = client.simulate_get("/api/system/configuration").json["files"]
    assert files == {"mode": "watching", "reason": "", "indexed": True,
                     "rescan_interval": 600.0}


# --- changes made outside the service ---------------------------------------------------------

def test_shell_changes_are_listed(app: tuple[Runtime, TestClient], folder: Path) -> None:
    _, client = app
    subprocess.run(["sh", "-c", "echo hi > new.mp4"], cwd=folder, check=True)
    listed(client, folder.name, {"new.mp4"})
    subprocess.run(["mv", "new.mp4", "renamed.mp4"], cwd=folder, check=True)
    listed(client, folder.name, {"renamed.mp4"})
    subprocess.run(["mkdir", "-p", "deep/er"], cwd=folder, check=True)
    subprocess.run(["cp", "renamed.mp4", "deep/er/copy.mp4"], cwd=folder, check=True)
    listed(client, f"{folder.name}/deep/er", {"copy.mp4"})
    subprocess.run(["rm", "-r", "renamed.mp4", "deep"], cwd=folder, check=True)
    listed(client, folder.name, set())
    assert_error(listing(client, f"{folder.name}/deep/er"), 404)


def test_burst_of_files_is_listed(app: tuple[Runtime, TestClient], folder: Path) -> None:
    _, client = app
    for n in range(500):
        (folder / f"{n}.mp4").write_bytes(b"x")
    wait_for(lambda: listing(client, folder.name).json["pagination"]["total"] == 500,
             LISTED_DEADLINE, message="500 new files to be listed")
    shutil.rmtree(folder)
    wait_for(lambda: listing(client, folder.name).status_code == 404, LISTED_DEADLINE,
             message="the removed folder to go")


# --- actions ----------------------------------------------------------------------------------


# --- hostile paths -----------------------------------------------------------------------------

HOSTILE = ["..", "../..", "a/../../x", "..%2F..%2Fetc", "%2e%2e/%2e%2e", "a%00b",
           "x/%2E%2E/%2E%2E", "x%5C..%5C..", "sub%2F..%2F..%2Fx",
           "a" * 256, "/".join(["a" * 200] * 21)]  # a name, a path, too long for the system


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_browser_paths_refused(app: tuple[Runtime, TestClient], path: str) -> None:
    _, client = app
    result = client.simulate_get(f"/api/file/browser/{path}")
    assert_error(result, 400)


def test_a_path_encoded_whole_lists_the_same_folder(app: tuple[Runtime, TestClient],
                                                    folder: Path) -> None:
    # Clients that encodeURIComponent the whole path (slashes too) and send "." for the
    # folder itself, as some YTPTube clients do.
    _, client = app
    make(folder / "show" / "e1.mp4")
    listed(client, f"{folder.name}/show", {"e1.mp4"})
    assert names(client, f"{folder.name}%2Fshow") == ["e1.mp4"]
    assert names(client, f"{folder.name}%5Cshow") == ["e1.mp4"]
    assert folder.name in names(client, ".")


def test_absolute_path_is_inside_the_folder(app: tuple[Runtime, TestClient]) -> None:
    _, client = app
    # "/etc" is the download folder's etc, never the machine's
    assert_error(client.simulate_get("/api/file/browser//etc"), 404)


def test_symlinks_out_are_neither_listed_nor_followed(app: tuple[Runtime, TestClient],
                                                      folder: Path, outside: Path) -> None:
    _, client = app
    base = folder.name
    make(folder / "real.mp4", 4)
    (folder / "out").symlink_to(outside)
    (folder / "out.txt").symlink_to(outside / "secret.txt")
    (folder / "in.mp4").symlink_to(folder / "real.mp4")
    listed(client, base, {"real.mp4", "in.mp4"})
    entry = next(e for e in listing(client, base).json["contents"] if e["name"] == "in.mp4")
    assert entry["is_symlink"] is True and entry["size"] == 4
    assert_error(listing(client, f"{base}/out"), 403)
    for action in ({"action": "delete", "path": f"{base}/out"},
                   {"action": "delete", "path": f"{base}/out/secret.txt"},
                   {"action": "rename", "path": f"{base}/out.txt", "new_name": "x.txt"},
                   {"action": "move", "path": f"{base}/real.mp4", "new_path": f"{base}/out"},
                   {"action": "directory", "path": f"{base}/out", "new_dir": "x"}):
        assert_error(act(client, action), 403)
    made = act(client, {"action": "directory", "path": base, "new_dir": "out/x"})
    assert made.json[0]["ok"] is False
    assert made.json[0]["error"] == (
        f"'{base}/out' is a link that leads outside the download folder: the file browser "
        "makes folders inside it only.")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    # deleting a link inside removes the link, not what it points to
    assert act(client, {"action": "delete", "path": f"{base}/in.mp4"}).json[0]["ok"]
    assert (folder / "real.mp4").read_bytes() == b"xxxx"


def test_zip_refuses_hostile_paths(app: tuple[Runtime, TestClient], folder: Path,
                                   outside: Path) -> None:
    _, client = app
    (folder / "out.txt").symlink_to(outside / "secret.txt")
    assert_error(client.simulate_post("/api/file/download", json=["../x"]), 400)
    assert_error(client.simulate_post("/api/file/download",
                                      json=[f"{folder.name}/out.txt"]), 403)
    assert_error(client.simulate_post("/api/file/download", json=["nope.mp4"]), 400)
    assert_error(client.simulate_get("/api/file/download/not-a-token"), 400)
    make(folder / "v.mp4")
    # an object is no list of paths, though its keys would be
    assert_error(client.simulate_post("/api/file/download", json={f"{folder.name}/v.mp4": 1}),
                 400)
    refused = client.simulate_post("/api/file/download", json={f"{folder.name}/v.mp4": 1})
    assert refused.json["error"] == ("The body must be a JSON array of the files' paths (as "
                                     "the file browser names them), at least one.")


# --- settings ---------------------------------------------------------------------------------

def test_browser_and_actions_off(app_with: Any) -> None:
    _, client = app_with(YTP_BROWSER_ENABLED="false")
    assert_error(listing(client, ""), 403)
    assert_error(act(client, {"action": "delete", "path": "x"}), 403)


def test_unwatched_folder_is_rescanned(app_with: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="appliance.files.watcher"):
        runtime, client = app_with(YTP_FILE_WATCH="false", YTP_FILE_RESCAN_INTERVAL="1")
    files = client.simulate_get("/api/system/configuration").json["files"]
    assert files["mode"] == "polling" and files["reason"] == "YTP_FILE_WATCH is off"
    warnings = [r.getMessage() for r in caplog.records if "is not watched" in r.getMessage()]
    assert len(warnings) == 1 and "(YTP_FILE_WATCH is off)" in warnings[0], warnings
    make(runtime.settings.download_path / "later.mp4")
    listed(client, "", {"later.mp4"})


def test_a_zip_takes_up_to_its_limit_of_paths(app: tuple[Runtime, TestClient],
                                             folder: Path) -> None:
    _, client = app
    make(folder / "v.mp4")
    asked = [f"{folder.name}/v.mp4"] + [f"{folder.name}/gone.mp4"] * (zips.MAX_FILES - 1)
    prepared = client.simulate_post("/api/file/download", json=asked)
    assert prepared.status_code == 200, prepared.text
    assert prepared.json["files"] == [f"{folder.name}/v.mp4"]
    over = client.simulate_post("/api/file/download", json=[*asked, f"{folder.name}/v.mp4"])
    assert_error(over, 400)


def test_zip_holds_the_files_and_sidecars_byte_for_byte(app: tuple[Runtime, TestClient],
                                                        folder: Path) -> None:
    _, client = app
    video = make(folder / "v.mp4")
    video.write_bytes(os.urandom(300_000))
    make(folder / "v.en.srt", 20)
    make(folder / "other.mp4", 7)
    listed(client, folder.name, {"v.mp4", "v.en.srt", "other.mp4"})  # sidecars: the index's
    prepared = client.simulate_post("/api/file/download", json=[f"{folder.name}/v.mp4"])
    assert prepared.status_code == 200, prepared.text
    assert prepared.json["files"] == [f"{folder.name}/v.mp4", f"{folder.name}/v.en.srt"]
    result = client.simulate_get(f"/api/file/download/{prepared.json['token']}")
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/zip"
    assert int(result.headers["content-length"]) == len(result.content)
    with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
        assert sorted(archive.namelist()) == sorted(prepared.json["files"])
        assert archive.read(f"{folder.name}/v.mp4") == video.read_bytes()
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}


def test_a_new_download_folder_is_indexed(app_with: Any, tmp_path: Path) -> None:
    runtime, client = app_with()
    other = tmp_path / "elsewhere"
    other.mkdir()
    make(other / "there.mp4")
    # as PUT /api/settings changes it (the environment pins it in tests)
    runtime.settings_holder.change(lambda s: s.replace(download_path=other.resolve()))
    listed(client, "", {"there.mp4"})
    make(other / "later.mp4")
    listed(client, "", {"there.mp4", "later.mp4"})  # and watched
    assert runtime.files.root == other.resolve()


def test_a_stopped_file_service_does_not_watch_a_new_folder(app_with: Any,
                                                           tmp_path: Path) -> None:
    """The download folder changed after the service stopped (its shutdown): the new folder
    is not watched, no thread left running past the stop."""
    runtime, _ = app_with()
    assert runtime.files.status()["mode"] == "watching"
    # its thread is named for the log and for thread dumps
    assert any(t.name == "file-index" for t in threading.enumerate())
    runtime.files.stop()
    other = tmp_path / "elsewhere"
    other.mkdir()
    runtime.settings_holder.change(lambda s: s.replace(download_path=other.resolve()))
    assert runtime.files.root == other.resolve()
    assert runtime.files.status()["mode"] == "polling"
    assert not runtime.files.index.ready.is_set()


def test_a_zipped_file_is_read_in_pieces_of_a_bounded_size(tmp_path: Path) -> None:
    """A 20 GB video read whole at its turn would take 20 GB of memory."""
    (tmp_path / "big.mkv").write_bytes(os.urandom(2 * zips.READ_PIECE + 5))
    checked = (tmp_path / "big.mkv").stat()
    pieces = list(zips._contents(tmp_path / "big.mkv", tmp_path, checked))
    assert [len(p) for p in pieces] == [zips.READ_PIECE, zips.READ_PIECE, 5]
    assert b"".join(pieces) == (tmp_path / "big.mkv").read_bytes()


def test_the_root_listings_entries_name_their_paths_and_times(
        app: tuple[Runtime, TestClient]) -> None:
    runtime, client = app
    made = make(runtime.settings.download_path / f"top{os.urandom(3).hex()}.mp4")
    wait_for(lambda: made.name in {e["name"] for e in listing(
        client, "", per_page=1000).json["contents"]}, LISTED_DEADLINE, message="the new file")
    # a time of its own, not the listing's: the clock past the file's change by 2 s
    wait_for(lambda: time.time() >= made.stat().st_ctime + 2, 10, message="2 s to pass")
    listed_now = {e["name"]: e for e in listing(client, "", per_page=1000).json["contents"]}
    entry = listed_now[made.name]
    info = made.stat()
    assert entry["path"] == made.name  # no leading slash at the folder's root
    assert entry["ctime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.st_ctime))
    assert entry["mtime"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info.st_mtime))
    made.unlink()
