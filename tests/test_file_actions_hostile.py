"""The file browser's actions where the disk is not what a plain folder of files is: another
disk mounted inside, a tree deeper than a path can name or Python's stack can follow, names
the API cannot write back, sidecars whose new names would be too long, a folder swapped for a
link between the check and the act, a name taken by the time a rename happens."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import runtime_of_module
from falcon.testing import TestClient
from support.browsing import act, assert_error, deep_tree, make, names, new_folder
from support.mounts import tmpfs

from appliance import errors
from appliance.api.app import create_app
from appliance.files import actions, trees
from appliance.path_limits import PATH_MAX
from appliance.runtime import Runtime

# Bytes the API cannot name: UTF-8's overlong "..", which lenient decoders read as ".." (a
# Latin-1 name, b"\xff\xfe", is named by its bytes: tests/test_files_latin1.py).
UNDECODABLE = os.fsdecode(b"\xc0\xae\xc0\xae")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    for runtime in runtime_of_module(tmp_path_factory, "hostile-actions",
                                     YTP_BROWSER_CONTROL_ENABLED="true"):
        yield runtime, TestClient(create_app(runtime))


@pytest.fixture
def folder(app: tuple[Runtime, TestClient]) -> Iterator[Path]:
    yield from new_folder(*app)


def test_a_mounted_disk_is_never_emptied_by_a_delete(app: tuple[Runtime, TestClient],
                                                     folder: Path) -> None:
    """A folder that is a mount point, or holds one: rmtree emptied the disk file by file, and
    the answer said the delete failed ("Device or resource busy", the mount point itself)."""
    _, client = app
    base = folder.name
    make(folder / "holder" / "own.mp4")
    make(folder / "usb2" / "plain.mp4")  # named like the mount point, not one
    with tmpfs(folder / "usb", "size=1m"), tmpfs(folder / "holder" / "nas", "size=1m"):
        make(folder / "usb" / "keep.mp4")
        make(folder / "holder" / "nas" / "keep.mp4")
        results = act(client, {"action": "delete", "path": f"{base}/usb"},
                      {"action": "delete", "path": f"{base}/holder"},
                      {"action": "delete", "path": f"{base}/usb2"})
        assert results.status_code == 200, results.text
        assert [r["ok"] for r in results.json] == [False, False, True]
        assert results.json[0]["error"] == (
            f"A disk is mounted at '{base}/usb': the file browser does not delete a mounted "
            "disk's files (unmount it first).")
        assert f"'{base}/holder/nas'" in results.json[1]["error"]
        assert os.listdir(folder / "usb") == ["keep.mp4"]
        assert sorted(os.listdir(folder / "holder")) == ["nas", "own.mp4"]
        assert os.listdir(folder / "holder" / "nas") == ["keep.mp4"]
        assert not (folder / "usb2").exists()


def test_the_mount_table_names_paths_with_spaces_and_backslashes(tmp_path: Path) -> None:
    """/proc/self/mountinfo writes a space as \\040 and a backslash as \\134."""
    odd = tmp_path / "My Disk\\1"
    undecodable = tmp_path / UNDECODABLE  # read as the bytes they are, never a decode error
    with tmpfs(odd, "size=64k"), tmpfs(undecodable, "size=64k"):
        assert sorted(trees.mounts_within(tmp_path)) == sorted([str(odd), str(undecodable)])
        assert trees.mounts_within(odd) == [str(odd)]
        assert trees.mounts_within(tmp_path / "My") == []


def test_a_tree_deeper_than_the_stack_is_deleted(app: tuple[Runtime, TestClient],
                                                 folder: Path) -> None:
    """1,100 folders deep (over PATH_MAX as a path; shutil.rmtree recursed per level): the
    delete removes all of it, the folder beside it stays."""
    _, client = app
    deep_tree(folder / "deep", 1100)
    make(folder / "deep" / "d" / "d" / "side.mp4")
    make(folder / "beside" / "d" / "x.mp4")
    try:
        results = act(client, {"action": "delete", "path": f"{folder.name}/deep"})
    finally:  # pytest's own clean-up of its folders fails on such a tree (shutil.rmtree)
        if (folder / "deep").exists():
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            trees.remove_tree(fd, "deep")
            os.close(fd)
    assert results.status_code == 200, results.text
    assert results.json[0]["ok"] is True, results.json
    assert os.listdir(folder) == ["beside"]
    assert os.listdir(folder / "beside" / "d") == ["x.mp4"]


def test_a_tree_is_removed_with_few_folders_open(tmp_path: Path) -> None:
    """Deeper than OPEN_FOLDERS, with files and folders at every level: all of it goes, and
    no more folders are open at once than the bound (counted in /proc/self/fd)."""
    deep_tree(tmp_path / "top", 3 * trees.OPEN_FOLDERS)
    level = tmp_path / "top"
    for depth in range(trees.OPEN_FOLDERS + 3):
        make(level / f"f{depth}.mp4")
        (level / f"empty{depth}").mkdir()
        (level / f"link{depth}").symlink_to(tmp_path)  # removed as a link, never followed
        level = level / "d"
    make(tmp_path / "kept.mp4")
    open_before = len(os.listdir("/proc/self/fd"))
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        trees.remove_tree(fd, "top")
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == ["kept.mp4"]
    assert len(os.listdir("/proc/self/fd")) == open_before


def _parts_to(start: str, length: int) -> str:
    """Folder names (of at most 250 bytes, each after a "/") that make ``start``/… exactly
    ``length`` bytes."""
    left, parts = length - len(start.encode()), []
    while left:
        size = min(251, left)
        size -= left - size == 1  # a "/" alone would be left: one byte to the next name
        parts.append("p" * (size - 1))
        left -= size
    return "/".join(parts)


def test_a_new_folder_that_cannot_be_made_whole_makes_nothing(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    """Over the path limit, or deeper than MAX_DEPTH: refused before the first folder is made
    (it failed part way, the folders before it left, and a tree a thousand deep stopped the
    watcher and the next start of the service)."""
    runtime, client = app
    base = folder.name
    for new_dir in ("/".join(["e" * 250] * 20),
                    "/".join(["d"] * actions.MAX_DEPTH)):
        assert_error(act(client, {"action": "directory", "path": base, "new_dir": new_dir}), 400)
    assert os.listdir(folder) == []
    # A path of PATH_MAX bytes is one the kernel refuses (it counts the NUL after it): made
    # folder by folder it was made, and then nothing could reach it by its path.
    for length, made_whole in ((PATH_MAX, False), (PATH_MAX - 1, True)):
        new_dir = _parts_to(os.path.realpath(folder), length)
        answer = act(client, {"action": "directory", "path": base, "new_dir": new_dir})
        if made_whole:
            assert answer.json[0]["ok"] is True, answer.text
            shutil.rmtree(folder / new_dir.split("/")[0])
        else:
            assert_error(answer, 400)
            assert "is longer than 4095 bytes" in answer.json["error"], answer.text
        assert os.listdir(folder) == []
    # as deep as allowed: made
    depth = actions.MAX_DEPTH - 1  # the test's folder is the first level
    made = act(client, {"action": "directory", "path": base, "new_dir": "/".join(["d"] * depth)})
    assert made.json[0]["ok"] is True, made.text
    assert made.json[0]["new_dir"] == "/".join([base, *["d"] * depth])
    assert (runtime.settings.download_path / made.json[0]["new_dir"]).is_dir()


def test_a_rename_whose_sidecars_would_be_named_too_long_renames_nothing(
        app: tuple[Runtime, TestClient], folder: Path) -> None:
    """The file was renamed, then its ``.info.json`` failed (``File name too long``), and the
    answer said the rename had failed."""
    _, client = app
    for name in ("a.mp4", "a.en.srt", "a.info.json"):
        make(folder / name)
    long = "x" * 246 + ".mp4"  # 250 bytes; "x…x.en.srt" is 253, "x…x.info.json" 256
    results = act(client, {"action": "rename", "path": f"{folder.name}/a.mp4",
                           "new_name": long})
    assert results.json[0]["ok"] is False
    assert results.json[0]["error"] == ("The new name is too long for the sidecar "
                                        "'a.info.json': it would be named over 255 bytes.")
    assert sorted(os.listdir(folder)) == ["a.en.srt", "a.info.json", "a.mp4"]
    # one byte shorter: all three renamed
    fits = act(client, {"action": "rename", "path": f"{folder.name}/a.mp4",
                        "new_name": long[1:]})
    assert fits.json[0]["ok"] is True and fits.json[0]["sidecar_count"] == 2, fits.text
    assert sorted(os.listdir(folder)) == sorted(
        [long[1:], "x" * 245 + ".en.srt", "x" * 245 + ".info.json"])


def test_a_link_to_a_name_the_api_cannot_name_is_404(app: tuple[Runtime, TestClient],
                                                     folder: Path) -> None:
    """A name the API cannot name reached through a link with a plain name: every answer
    that named it failed to be written (500), a folder made there first."""
    _, client = app
    base = folder.name
    make(folder / f"{UNDECODABLE}.mp4")
    (folder / f"{UNDECODABLE}dir").mkdir()
    (folder / "file.mp4").symlink_to(f"{UNDECODABLE}.mp4")
    (folder / "dir").symlink_to(f"{UNDECODABLE}dir")
    listed = client.simulate_get(f"/api/file/browser/{base}/dir")
    assert_error(listed, 404)
    assert listed.json["error"] == (
        f"'{base}/dir' leads to a name the API cannot name (with a control character or a "
        "backslash, or bytes of no text): rename it on the disk to reach it.")
    assert_error(client.simulate_post("/api/file/download", json=[f"{base}/file.mp4"]), 404)
    assert_error(client.simulate_get(f"/api/file/info/{base}/file.mp4"), 404)
    assert_error(act(client, {"action": "directory", "path": f"{base}/dir", "new_dir": "a"}),
                 404)
    through = act(client, {"action": "directory", "path": base, "new_dir": "dir/a"})
    assert through.status_code == 200, through.text
    assert through.json[0]["ok"] is False and "cannot name" in through.json[0]["error"]
    assert os.listdir(folder / f"{UNDECODABLE}dir") == []
    # the link itself has a name: it can be renamed and deleted
    done = act(client, {"action": "rename", "path": f"{base}/file.mp4", "new_name": "f.mp4"},
               {"action": "delete", "path": f"{base}/dir"})
    assert [r["ok"] for r in done.json] == [True, True], done.text
    assert set(names(client, base)) == set()
    assert sorted(os.listdir(folder)) == sorted(["f.mp4", f"{UNDECODABLE}.mp4",
                                                 f"{UNDECODABLE}dir"])


def test_a_folder_swapped_for_a_link_is_not_acted_in(folder: Path, tmp_path: Path) -> None:
    """Checked, then replaced by a link (to outside, or to another folder inside): opened, it
    is refused; a folder opened stays the one checked whatever the path becomes."""
    root = folder.parent
    (folder / "a").mkdir()
    make(folder / "b" / "x.mp4")
    checked = folder / "a"
    (folder / "a").rmdir()
    (folder / "a").symlink_to(tmp_path)
    with pytest.raises(errors.AppError) as refused:
        trees.open_folder(checked, root)
    assert refused.value.code == errors.CONFLICT
    assert refused.value.message == "'a' was replaced (by a link, or moved) while the action ran."
    (folder / "a").unlink()
    (folder / "a").symlink_to("b")
    with pytest.raises(errors.AppError):
        trees.open_folder(checked, root)
    with pytest.raises(errors.AppError):  # the folder itself but outside the root given
        trees.open_folder(folder / "b", folder / "a-root")
    (folder / "a").unlink()
    make(folder / "a")  # a file now
    with pytest.raises(errors.AppError):
        trees.open_folder(checked, root)
    # a folder above the one checked swapped for a link to another: opened, it is elsewhere
    make(folder / "x" / "inner" / "f.mp4")
    make(folder / "y" / "inner" / "g.mp4")
    inner = folder / "x" / "inner"
    os.rename(folder / "x", folder / "x-old")
    (folder / "x").symlink_to("y")
    with pytest.raises(errors.AppError):
        trees.open_folder(inner, root)
    fd = trees.open_folder(folder / "b", root)
    try:
        os.rename(folder / "b", folder / "c")
        assert os.listdir(fd) == ["x.mp4"]
    finally:
        os.close(fd)


@pytest.mark.parametrize("noreplace", [True, False])
def test_a_rename_never_replaces_what_is_there(folder: Path, noreplace: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``renameat2(RENAME_NOREPLACE)``, or where a file system has no such flag (the bound
    taken away here), a check just before: a name taken since the action's own check stays."""
    if not noreplace:
        monkeypatch.setattr(trees, "_renameat2", None)
    make(folder / "a.mp4", 1)
    make(folder / "b.mp4", 2)
    (folder / "dangling").symlink_to("nowhere")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for taken in ("b.mp4", "dangling"):
            with pytest.raises(trees.Exists):
                trees.rename(fd, "a.mp4", fd, taken)
        with pytest.raises(FileNotFoundError):
            trees.rename(fd, "gone.mp4", fd, "new.mp4")
        trees.rename(fd, "a.mp4", fd, "c.mp4")
    finally:
        os.close(fd)
    assert (folder / "b.mp4").read_bytes() == b"xx"
    assert (folder / "c.mp4").read_bytes() == b"x"
    assert sorted(os.listdir(folder)) == ["b.mp4", "c.mp4", "dangling"]


def test_a_sidecar_never_replaces_one_already_there(app: tuple[Runtime, TestClient],
                                                    folder: Path) -> None:
    """Moved into a folder that has ``a.en.srt`` of its own: the video moves, its subtitle
    stays where it was, and the one there is untouched; a folder gone meanwhile is said so."""
    _, client = app
    base = folder.name
    make(folder / "a.mp4", 1)
    make(folder / "a.en.srt", 2)
    make(folder / "a.nfo", 3)
    make(folder / "to" / "a.en.srt", 4)
    results = act(client, {"action": "move", "path": f"{base}/a.mp4", "new_path": f"{base}/to"},
                  {"action": "rename", "path": f"{base}/gone/x.mp4", "new_name": "y.mp4"},
                  {"action": "delete", "path": f"{base}/gone/x.mp4"})
    assert results.status_code == 200, results.text
    assert results.json[0] == {"path": f"{base}/a.mp4", "action": "move", "ok": True,
                               "status": True, "new_path": f"{base}/to/a.mp4",
                               "sidecar_count": 1, "sidecars_left": [f"{base}/a.en.srt"],
                               "warning": f"'{base}/to/a.en.srt' is there already: "
                                          f"'{base}/a.en.srt' was left as it is."}
    assert [r.get("error") for r in results.json[1:]] == [
        "Nothing is at this path any more (it was moved or deleted meanwhile): refresh the "
        "listing."] * 2
    assert sorted(os.listdir(folder / "to")) == ["a.en.srt", "a.mp4", "a.nfo"]
    assert (folder / "to" / "a.en.srt").read_bytes() == b"xxxx"
    assert (folder / "a.en.srt").read_bytes() == b"xx"
