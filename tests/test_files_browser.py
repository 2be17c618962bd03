"""The file browser and its actions on a real runtime (index, watchdog, real files): listing,
sort, search, pagination, actions, changes made from a shell, and hostile paths."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import runtime_of_module
from falcon.testing import Result, TestClient
from support.mounts import tmpfs
from support.server import wait_for

from appliance import events
from appliance.api.app import create_app
from appliance.files import zips
from appliance.files.index import FileIndex
from appliance.runtime import Runtime

# Changes from outside must be listed within 2 s (the goal); the deadline leaves room for a
# busy test machine, bench/files_scale.py measures the real delay.
LISTED_DEADLINE = 5.0


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "browser",
                                     YTP_BROWSER_CONTROL_ENABLED="true"):
        yield runtime, TestClient(create_app(runtime))


@pytest.fixture
def folder(app: tuple[Runtime, TestClient]) -> Iterator[Path]:
    """An empty folder of the download folder for one test, indexed."""
    runtime, client = app
    path = runtime.settings.download_path / f"t{os.urandom(4).hex()}"
    path.mkdir()
    wait_for(lambda: listing(client, path.name).status_code == 200, LISTED_DEADLINE,
             message="the new folder to be listed")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_text("secret")
    return secret


def listing(client: TestClient, path: str, **params: Any) -> Result:
    return client.simulate_get(f"/api/file/browser/{path}", params=params)


def names(client: TestClient, path: str, **params: Any) -> list[str]:
    result = listing(client, path, **params)
    assert result.status_code == 200, result.text
    return [e["name"] for e in result.json["contents"]]


def listed(client: TestClient, path: str, expected: set[str]) -> None:
    wait_for(lambda: set(names(client, path)) == expected, LISTED_DEADLINE,
             message=f"listing of {path} to be {sorted(expected)}")


def make(path: Path, size: int = 1, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def act(client: TestClient, *actions: dict[str, Any]) -> Result:
    return client.simulate_post("/api/file/actions", json=list(actions))


def assert_error(result: Result, status: int) -> None:
    assert result.status_code == status, result.text
    assert result.json["error"] and result.json["code"]


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
    kinds = {e["name"]: (e["content_type"], e["mime"])
             for e in listing(client, folder.name).json["contents"]}
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

def test_actions_rename_move_delete_directory(app: tuple[Runtime, TestClient],
                                              folder: Path) -> None:
    runtime, client = app
    seen: list[Any] = []
    unsubscribe = runtime.bus.subscribe(
        lambda e: seen.append(e.data) if e.name == events.FILE_ACTION else None)
    base = folder.name
    make(folder / "show.mp4", 10)
    make(folder / "show.en.srt", 3)
    make(folder / "show.info.json", 2)
    (folder / "tree" / "sub").mkdir(parents=True)
    make(folder / "tree" / "sub" / "x.mp4")
    try:
        results = act(
            client,
            {"action": "directory", "path": base, "new_dir": "Season 1/Extras"},
            {"action": "rename", "path": f"{base}/show.mp4", "new_name": "Pilot.mp4"},
            {"action": "move", "path": f"{base}/Pilot.mp4", "new_path": f"{base}/Season 1"},
            {"action": "delete", "path": f"{base}/tree"},
            {"action": "rename", "path": f"{base}/gone.mp4", "new_name": "x.mp4"},
        )
    finally:
        unsubscribe()
    assert results.status_code == 200, results.text
    assert [r["ok"] for r in results.json] == [True, True, True, True, False]
    assert results.json[0]["new_dir"] == f"{base}/Season 1/Extras"
    assert results.json[1] == {"path": f"{base}/show.mp4", "action": "rename", "ok": True,
                               "status": True, "new_path": f"{base}/Pilot.mp4",
                               "sidecar_count": 2}
    assert results.json[4]["error"] == "Path does not exist."
    season = folder / "Season 1"
    assert sorted(os.listdir(season)) == ["Extras", "Pilot.en.srt", "Pilot.info.json",
                                          "Pilot.mp4"]
    assert (season / "Pilot.mp4").read_bytes() == b"x" * 10
    assert not (folder / "tree").exists()
    assert seen == results.json
    # the listing shows it at once (no wait for the watcher)
    assert set(names(client, base)) == {"Season 1"}
    assert set(names(client, f"{base}/Season 1")) == {"Extras", "Pilot.en.srt",
                                                      "Pilot.info.json", "Pilot.mp4"}


def test_a_delete_removes_what_it_names_and_says_so(app: tuple[Runtime, TestClient],
                                                    folder: Path) -> None:
    _, client = app
    base = folder.name
    make(folder / "show.mp4", 3)
    make(folder / "other.mp4")
    make(folder / "kept" / "inside.mp4")
    (folder / "alias").symlink_to(folder / "kept", target_is_directory=True)
    results = act(client, {"action": "delete", "path": f"{base}/show.mp4"},
                  {"action": "delete", "path": f"{base}/alias"})
    assert results.status_code == 200, results.text
    assert results.json == [
        {"path": f"{base}/show.mp4", "action": "delete", "ok": True, "status": True,
         "deleted": True},
        {"path": f"{base}/alias", "action": "delete", "ok": True, "status": True,
         "deleted": True},
    ]
    # a link to a folder goes, the folder and what it holds stay
    assert sorted(os.listdir(folder)) == ["kept", "other.mp4"]
    assert (folder / "kept" / "inside.mp4").is_file()
    assert set(names(client, base)) == {"kept", "other.mp4"}


def test_a_folder_renamed_and_moved_leaves_the_files_named_like_it(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    # A file's sidecars go with it; a folder has none: "show.nfo" beside the folder "show"
    # is the show's, not the folder's.
    _, client = app
    base = folder.name
    make(folder / "show" / "e1.mp4", 5)
    make(folder / "show.nfo")
    make(folder / "show.jpg")
    (folder / "archive").mkdir()
    results = act(
        client,
        {"action": "rename", "path": f"{base}/show", "new_name": "Show (2024)"},
        {"action": "move", "path": f"{base}/Show (2024)", "new_path": f"{base}/archive"},
    )
    assert results.status_code == 200, results.text
    assert results.json == [
        {"path": f"{base}/show", "action": "rename", "ok": True, "status": True,
         "new_path": f"{base}/Show (2024)"},
        {"path": f"{base}/Show (2024)", "action": "move", "ok": True, "status": True,
         "new_path": f"{base}/archive/Show (2024)"},
    ]
    assert sorted(os.listdir(folder)) == ["archive", "show.jpg", "show.nfo"]
    assert os.listdir(folder / "archive" / "Show (2024)") == ["e1.mp4"]


def test_moves_and_folders_that_cannot_be_made_change_nothing(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    _, client = app
    base = folder.name
    make(folder / "a" / "b" / "x.mp4")
    make(folder / "y.mp4")
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    results = act(
        client,
        {"action": "move", "path": f"{base}/a", "new_path": f"{base}/a"},
        {"action": "move", "path": f"{base}/a", "new_path": f"{base}/a/b"},
        {"action": "move", "path": f"{base}/y.mp4", "new_path": base},
        {"action": "move", "path": f"{base}/y.mp4", "new_path": f"{base}/a/b/x.mp4"},
        {"action": "move", "path": f"{base}/y.mp4", "new_path": f"{base}/nowhere"},
        {"action": "directory", "path": f"{base}/y.mp4", "new_dir": "x"},
        {"action": "directory", "path": base, "new_dir": "y.mp4/x"},
        {"action": "directory", "path": base, "new_dir": "a/b"},
    )
    assert results.status_code == 200, results.text
    assert [(r["ok"], r["status"], r["error"]) for r in results.json] == [
        (False, False, "Cannot move a folder into itself."),
        (False, False, "Cannot move a folder into itself."),
        (False, False, "Source and destination are the same."),
        (False, False, "Destination path is invalid."),
        (False, False, "Destination path is invalid."),
        (False, False, "Path is not a directory."),
        (False, False, "A part of the new path is a file."),
        (False, False, "Directory already exists."),
    ]
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before
    # a new folder under folders that exist: only its last part is made
    deeper = act(client, {"action": "directory", "path": base, "new_dir": "a/b/c/d"})
    assert deeper.json[0]["new_dir"] == f"{base}/a/b/c/d"
    assert os.listdir(folder / "a" / "b" / "c") == ["d"]
    # made from the download folder itself, which the API names "/"
    top = act(client, {"action": "directory", "path": "/", "new_dir": f"{base}/made"})
    assert top.json[0]["path"] == "/" and top.json[0]["new_dir"] == f"{base}/made"


def test_an_action_the_disk_refuses_fails_with_its_reason(app: tuple[Runtime, TestClient],
                                                          folder: Path) -> None:
    """A disk mounted read-only inside the download folder: the system's refusal is the
    action's result (and the next actions still run), the file stays."""
    _, client = app
    disk = folder / "disk"
    with tmpfs(disk, "size=1m"):
        make(disk / "a.mp4")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        make(folder / "b.mp4")
        results = act(client, {"action": "delete", "path": f"{folder.name}/disk/a.mp4"},
                      {"action": "delete", "path": f"{folder.name}/b.mp4"})
        assert results.status_code == 200, results.text
        assert results.json[0] == {"path": f"{folder.name}/disk/a.mp4", "action": "delete",
                                   "ok": False, "status": False,
                                   "error": "Read-only file system"}
        assert results.json[1]["ok"] is True
        assert (disk / "a.mp4").is_file()


def test_actions_refuse_existing_and_bad_names(app: tuple[Runtime, TestClient],
                                               folder: Path) -> None:
    _, client = app
    base = folder.name
    make(folder / "a.mp4")
    make(folder / "b.mp4")
    clash = act(client, {"action": "rename", "path": f"{base}/a.mp4", "new_name": "b.mp4"})
    assert clash.json[0]["ok"] is False and clash.json[0]["error"] == "Destination already exists."
    for bad in ("x/y.mp4", "..", ".hidden", "a\x00b", "é" * 200, " pad", "", None, 5):
        result = act(client, {"action": "rename", "path": f"{base}/a.mp4", "new_name": bad})
        assert_error(result, 400)
    for bad in ("../x", "a/../../x", "ok/.hidden"):
        assert_error(act(client, {"action": "directory", "path": base, "new_dir": bad}), 400)
    # the error names what was wrong, so a client can tell its user which field to fix
    named = act(client, {"action": "rename", "path": f"{base}/a.mp4", "new_name": ".."})
    assert "new_name" in named.json["error"]
    named = act(client, {"action": "directory", "path": base, "new_dir": "ok/.hidden"})
    assert "new_dir" in named.json["error"]
    unknown = act(client, {"action": "fly", "path": f"{base}/a.mp4"})
    assert_error(unknown, 400)
    assert "'fly'" in unknown.json["error"]
    assert_error(act(client, {"action": "move", "path": f"{base}/a.mp4"}), 400)
    assert_error(act(client), 400)
    assert_error(client.simulate_post("/api/file/actions", json={"action": "delete"}), 400)
    # one refused action refuses the request: nothing was done
    refused = act(client, {"action": "delete", "path": f"{base}/a.mp4"},
                  {"action": "delete", "path": "../etc"})
    assert_error(refused, 400)
    assert sorted(os.listdir(folder)) == ["a.mp4", "b.mp4"]
    cannot = act(client, {"action": "delete", "path": "/"})
    assert_error(cannot, 400)


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
    assert made.json[0]["error"] == "Destination outside root."
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    # deleting a link inside removes the link, not what it points to
    assert act(client, {"action": "delete", "path": f"{base}/in.mp4"}).json[0]["ok"]
    assert (folder / "real.mp4").read_bytes() == b"xxxx"


def test_a_link_an_earlier_action_turns_outward_is_not_followed(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    """A relative symlink means another place once moved: ``a/link`` -> ``../../<outside>``
    leads inside from ``a``, outside from the folder above. Every action of a request was
    checked before the first ran, so the actions after the move went through the link:
    a file outside was deleted, renamed, and a folder made there."""
    runtime, client = app
    base = folder.name
    escape = runtime.settings.download_path.parent / f"outside-{base}"
    escape.mkdir()
    (escape / "secret.txt").write_text("secret")
    (escape / "other.txt").write_text("other")
    make(folder / "a" / "x.mp4")
    (folder / "a" / "link").symlink_to(Path("..") / ".." / escape.name)
    assert (folder / "a" / "link").resolve() == (runtime.settings.download_path / escape.name)
    results = act(
        client,
        {"action": "move", "path": f"{base}/a/link", "new_path": base},
        {"action": "delete", "path": f"{base}/link/secret.txt"},
        {"action": "rename", "path": f"{base}/link/other.txt", "new_name": "moved.txt"},
        {"action": "move", "path": f"{base}/a/x.mp4", "new_path": f"{base}/link"},
        {"action": "directory", "path": f"{base}/link", "new_dir": "made"},
    )
    assert results.status_code == 200, results.text
    assert [(r["ok"], r["status"]) for r in results.json] == [(True, True)] + [
        (False, False)] * 4
    assert {r["error"] for r in results.json[1:]} == {
        "The path leads outside the download folder."}
    assert sorted(os.listdir(escape)) == ["other.txt", "secret.txt"]
    assert (escape / "secret.txt").read_text() == "secret"
    assert (folder / "a" / "x.mp4").is_file()


def test_zip_refuses_hostile_paths(app: tuple[Runtime, TestClient], folder: Path,
                                   outside: Path) -> None:
    _, client = app
    (folder / "out.txt").symlink_to(outside / "secret.txt")
    assert_error(client.simulate_post("/api/file/download", json=["../x"]), 400)
    assert_error(client.simulate_post("/api/file/download",
                                      json=[f"{folder.name}/out.txt"]), 403)
    assert_error(client.simulate_post("/api/file/download", json=["nope.mp4"]), 400)
    assert_error(client.simulate_get("/api/file/download/not-a-token"), 400)


# --- settings ---------------------------------------------------------------------------------

def test_browser_and_actions_off(app_with: Any) -> None:
    _, client = app_with(YTP_BROWSER_ENABLED="false")
    assert_error(listing(client, ""), 403)
    assert_error(act(client, {"action": "delete", "path": "x"}), 403)


def test_an_action_is_listed_at_once_without_the_watcher(app_with: Any,
                                                         tmp_path: Path) -> None:
    """Its own service (not the module's, whose index the watcher also keeps): with no
    watching and no rescan in sight, only the action's own refresh of the index can list
    what it did."""
    make(tmp_path / "downloads" / "a.mp4")  # the download folder of app_with's settings
    runtime, client = app_with(YTP_BROWSER_CONTROL_ENABLED="true", YTP_FILE_WATCH="false",
                               YTP_FILE_RESCAN_INTERVAL="3600")
    wait_for(runtime.files.index.ready.is_set, LISTED_DEADLINE, message="the first index")
    assert names(client, "") == ["a.mp4"]
    seen: list[Any] = []
    unsubscribe = runtime.bus.subscribe(
        lambda e: seen.append(e.data) if e.name == events.FILE_ACTION else None)
    try:
        done = act(client, {"action": "rename", "path": "a.mp4", "new_name": "b.mp4"},
                   {"action": "directory", "path": "/", "new_dir": "new"})
    finally:
        unsubscribe()
    assert [r["ok"] for r in done.json] == [True, True]
    assert seen == done.json
    assert names(client, "") == ["new", "b.mp4"]
    # into folders made from a shell, that nothing has indexed yet: indexed with it
    (runtime.settings.download_path / "shell" / "made").mkdir(parents=True)
    moved = act(client, {"action": "move", "path": "b.mp4", "new_path": "shell/made"})
    assert moved.json[0]["ok"] is True, moved.text
    assert names(client, "shell/made") == ["b.mp4"]
    assert names(client, "") == ["new", "shell"]


def test_unwatched_folder_is_rescanned(app_with: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="appliance.files.watcher"):
        runtime, client = app_with(YTP_FILE_WATCH="false", YTP_FILE_RESCAN_INTERVAL="1")
    files = client.simulate_get("/api/system/configuration").json["files"]
    assert files["mode"] == "polling" and files["reason"] == "YTP_FILE_WATCH is off"
    warnings = [r for r in caplog.records if "is not watched" in r.getMessage()]
    assert len(warnings) == 1
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
