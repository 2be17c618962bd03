"""The file browser's actions on a real runtime (index, watchdog, real files): rename, move,
delete and new folders, what each answers and changes, refusals, and links that lead out."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient
from support.browsing import LISTED_DEADLINE, act, assert_error, make, names, new_folder
from support.mounts import tmpfs
from support.server import wait_for

from appliance import events
from appliance.api.app import create_app
from appliance.runtime import Runtime


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "actions",
                                     YTP_BROWSER_CONTROL_ENABLED="true"):
        yield runtime, TestClient(create_app(runtime))


@pytest.fixture
def folder(app: tuple[Runtime, TestClient]) -> Iterator[Path]:
    yield from new_folder(*app)


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
    assert results.json[4]["error"] == (
        "Nothing is at this path any more (it was moved or deleted meanwhile): refresh the "
        "listing.")
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
        (False, False, "It is in that folder already: nothing was moved."),
        (False, False, f"There is no folder '{base}/a/b/x.mp4' to move it into (nothing, or a "
                       "file, is there): make it first (the directory action)."),
        (False, False, f"There is no folder '{base}/nowhere' to move it into (nothing, or a "
                       "file, is there): make it first (the directory action)."),
        (False, False, "path is not a folder (a file, or nothing any more): the new folder is "
                       "made inside the folder path names."),
        (False, False, f"'{base}/y.mp4' is a file, so no folder can be made in it."),
        (False, False, f"The folder '{base}/a/b' is there already: nothing was made."),
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


def test_a_move_to_another_disk_says_so(app: tuple[Runtime, TestClient], folder: Path) -> None:
    """A disk mounted inside the download folder: a rename cannot cross it, and the answer says
    why in words, not the system's "Invalid cross-device link"."""
    _, client = app
    make(folder / "a.mp4")
    with tmpfs(folder / "usb", "size=1m"):
        results = act(client, {"action": "move", "path": f"{folder.name}/a.mp4",
                               "new_path": f"{folder.name}/usb"})
        assert results.status_code == 200, results.text
        assert results.json[0]["ok"] is False
        assert results.json[0]["error"].startswith("The destination is on another disk")
        assert (folder / "a.mp4").is_file() and not (folder / "usb" / "a.mp4").exists()


def test_actions_refuse_existing_and_bad_names(app: tuple[Runtime, TestClient],
                                               folder: Path) -> None:
    _, client = app
    base = folder.name
    make(folder / "a.mp4")
    make(folder / "b.mp4")
    clash = act(client, {"action": "rename", "path": f"{base}/a.mp4", "new_name": "b.mp4"})
    assert clash.json[0]["ok"] is False and clash.json[0]["error"] == (
        f"'{base}/b.mp4' is there already: nothing was renamed. Rename or move that one first, "
        "or choose another name.")
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


def test_a_rename_takes_its_own_sidecars_only(app: tuple[Runtime, TestClient],
                                              folder: Path) -> None:
    """Not another video named like it (``Show.Extended.mp4``), nor that one's subtitles, nor
    an audio file: each is a file of its own, which a rename of ``Show.mp4`` renamed too."""
    _, client = app
    base = folder.name
    for name in ("Show.mp4", "Show.en.srt", "Show.info.json", "Show.Extended.mp4",
                 "Show.Extended.en.srt", "Show.m4a"):
        make(folder / name, 2)
    results = act(client, {"action": "rename", "path": f"{base}/Show.mp4",
                           "new_name": "Pilot.mp4"})
    assert results.status_code == 200, results.text
    assert results.json[0]["ok"] and results.json[0]["sidecar_count"] == 2
    assert sorted(os.listdir(folder)) == ["Pilot.en.srt", "Pilot.info.json", "Pilot.mp4",
                                          "Show.Extended.en.srt", "Show.Extended.mp4",
                                          "Show.m4a"]


def test_a_sidecar_left_behind_is_said(app: tuple[Runtime, TestClient], folder: Path) -> None:
    """Renamed to a name whose subtitles are there already (another video's, kept): the file
    was renamed, its own subtitles stayed under the old name, and the answer said only
    ``ok`` with the sidecars moved: the player then showed the other video's subtitles, and
    nothing told the person why theirs were gone."""
    _, client = app
    base = folder.name
    make(folder / "a.mp4", 2)
    make(folder / "a.en.srt", 3)
    make(folder / "a.info.json", 4)
    make(folder / "b.en.srt", 5)
    results = act(client, {"action": "rename", "path": f"{base}/a.mp4", "new_name": "b.mp4"})
    assert results.status_code == 200, results.text
    assert results.json[0] == {
        "path": f"{base}/a.mp4", "action": "rename", "ok": True, "status": True,
        "new_path": f"{base}/b.mp4", "sidecar_count": 1,
        "sidecars_left": [f"{base}/a.en.srt"],
        "warning": f"'{base}/b.en.srt' is there already: '{base}/a.en.srt' was left as it is."}
    assert sorted(os.listdir(folder)) == ["a.en.srt", "b.en.srt", "b.info.json", "b.mp4"]
    assert (folder / "b.en.srt").read_bytes() == b"x" * 5


@pytest.mark.parametrize(("body", "said"), [
    ([], 'The array of actions is empty: give at least one, such as {"action": "delete", '
         '"path": "folder/file.mp4"}.'),
    ({"action": "delete", "path": "x"}, 'The body must be a JSON array of actions, such as '
     '[{"action": "delete", "path": "folder/file.mp4"}]; it is an object.'),
    (["delete x"], 'Each action must be a JSON object, such as {"action": "delete", "path": '
     '"folder/file.mp4"}; this one is a string.'),
    ([{"action": "delete", "path": "a/../x"}], "The path may not contain '..'."),
])
def test_a_refused_request_says_why(app: tuple[Runtime, TestClient], body: Any,
                                    said: str) -> None:
    _, client = app
    refused = client.simulate_post("/api/file/actions", json=body)
    assert_error(refused, 400)
    assert refused.json["error"] == said
