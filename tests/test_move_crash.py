"""A power cut while a finished download is copied from the temporary folder's disk into the
download folder's (a Pi's SD card and its USB disk). yt-dlp's move copied under the file's own
name: the cut copy was there after the restart, the item's next try took it for the download
("already downloaded") and finished with it, and the whole file went with the temporary
folder. The copy is now made under a hidden name and renamed once whole (``file_moves``)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.mounts import fill, removable, tmpfs
from support.origin import MediaOrigin
from support.server import Server, wait_for

from appliance.engine import file_moves
from appliance.engine.file_moves import MOVING_PREFIX, move_whole, moving_name
from appliance.files import index as index_module
from appliance.files.index import FileIndex

SIZE = 512 * 2**20  # the copy must last long enough to be caught part way


def _cut_copy(folder: Path, size: int, deadline: float) -> Path | None:
    """The first file in ``folder`` seen with part of its bytes, looked for without a pause
    (the copy lasts well under a second)."""
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if entry.is_file() and 0 < entry.stat().st_size < size \
                        and entry.name != ".appliance-folder":  # (the folder's mark)
                    return Path(entry.path)
    return None


def _power_cut(server: Server) -> None:
    """Every process of the service stopped where it is, then killed: nothing runs on."""
    pids = server.pids()
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    server.kill_hard()


def test_a_power_cut_during_the_move_leaves_no_cut_file_to_finish_with(
        make_server: Callable[..., Server], origin: MediaOrigin, tmp_path: Path) -> None:
    url = origin.big_file(SIZE)
    with tmpfs(tmp_path / "server" / "downloads", "size=640m") as downloads:
        server = make_server()
        [item] = server.post("/api/history", {"url": url}).json()
        cut = _cut_copy(downloads, SIZE, time.monotonic() + 120)
        assert cut is not None, "the move was not seen part way"
        _power_cut(server)
        # what the cut left under the file's own name: nothing
        assert not (downloads / "big-536870912.mp4").exists()
        server.start()
        done = server.wait_status(item["id"], {"finished", "error"}, timeout=120)
        assert (done["status"], done["error"]) == ("finished", "")
        final = downloads / done["filename"]
        assert final.stat().st_size == SIZE
        with final.open("rb") as got, origin.path_for(url).open("rb") as sent:
            assert got.read(2**20) == sent.read(2**20)
        assert sorted(p.name for p in downloads.iterdir()) == [".appliance-folder",
                                                               done["filename"]]
        server.stop()


def test_a_copy_cut_short_by_a_full_disk_leaves_nothing_under_either_name(
        tmp_path: Path) -> None:
    """The whole move on its own, between two disks: the copy that runs out of room is
    removed, nothing takes the target's name, and the file stays whole where it was."""
    source = tmp_path / "clip.mp4"
    source.write_bytes(data := os.urandom(2 << 20))
    with tmpfs(tmp_path / "downloads", "size=4m") as downloads:
        filler = fill(downloads)
        os.truncate(filler, filler.stat().st_size - (1 << 20))  # half of it fits
        target = downloads / "clip.mp4"
        with pytest.raises(OSError) as raised:
            move_whole(str(source), str(target))
        assert raised.value.errno == errno.ENOSPC
        assert sorted(p.name for p in downloads.iterdir()) == ["filler"]
        assert source.read_bytes() == data
        filler.unlink()
        assert move_whole(str(source), str(target)) == str(target)
        assert target.read_bytes() == data and not source.exists()
        assert sorted(p.name for p in downloads.iterdir()) == ["clip.mp4"]


def test_a_file_is_on_the_disk_before_it_takes_its_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The item is stored as finished once its file has moved: a file renamed before its
    bytes reached the disk could be empty under its name after a power cut (ext4's delayed
    allocation). Each move writes the file to the disk first, and the folder after: within
    one disk, and between two."""
    said: list[tuple[str, str]] = []
    sync, rename, replace, link = os.fsync, os.rename, os.replace, os.link
    monkeypatch.setattr(os, "fsync", lambda fd: (
        said.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))), sync(fd))[1])
    monkeypatch.setattr(os, "link", lambda a, b, **kw: (said.append(("rename", str(b))),
                                                        link(a, b, **kw))[1])
    monkeypatch.setattr(os, "rename", lambda a, b: (said.append(("rename", str(b))),
                                                    rename(a, b))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (said.append(("rename", str(b))),
                                                     replace(a, b))[1])
    source, folder = tmp_path / "clip.mp4", tmp_path / "downloads"
    folder.mkdir()
    source.write_bytes(b"clip")
    move_whole(str(source), str(folder / "clip.mp4"))
    assert said == [("fsync", str(source)), ("rename", str(folder / "clip.mp4")),
                    ("fsync", str(folder))]
    (folder / "clip.mp4").rename(source)
    said.clear()
    with tmpfs(tmp_path / "usb", "size=1m") as usb:
        move_whole(str(source), str(usb / "clip.mp4"))
        moving = moving_name(str(usb / "clip.mp4"))
        assert said == [("fsync", moving), ("rename", str(usb / "clip.mp4")),
                        ("fsync", str(usb))]
        assert (usb / "clip.mp4").read_bytes() == b"clip" and not source.exists()


def test_a_move_within_one_disk_mounted_twice_is_a_copy(tmp_path: Path) -> None:
    """The temporary folder and the download folder on one disk, the second through another
    mount of it (a bind mount): one device, and a rename between them fails (EXDEV). The file
    is copied whole as between two disks."""
    with removable(tmp_path / "downloads", "size=4m"):
        temp = tmp_path / ".downloads-disk" / "temp"  # (the disk itself, mounted beside)
        temp.mkdir()
        (source := temp / "clip.mp4").write_bytes(data := os.urandom(1 << 20))
        target = tmp_path / "downloads" / "clip.mp4"
        assert source.stat().st_dev == target.parent.stat().st_dev

        assert move_whole(str(source), str(target)) == str(target)
        assert target.read_bytes() == data and not source.exists()
        assert sorted(p.name for p in target.parent.iterdir()) == ["clip.mp4", "temp"]


def test_a_copy_a_crash_left_is_removed_by_the_file_index_once_old(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A crash's copy that no try writes over (its item deleted, its next try named another
    way) would hold its gigabytes for good: the index's walk removes it once its inode has not
    changed for ``LEFT_OVER_AFTER``. Nothing else of that look goes: a copy still being made,
    a folder or a link under such a name, another hidden name."""
    monkeypatch.setattr(file_moves, "LEFT_OVER_AFTER", 0.2)
    root = tmp_path / "downloads"
    (root / "show").mkdir(parents=True)
    victim = tmp_path / "victim.mp4"
    victim.write_bytes(b"v")
    old = Path(moving_name(str(root / "show" / "episode.mp4")))
    old.write_bytes(b"\0" * 4096)
    (root / (MOVING_PREFIX + "1" * 16)).mkdir()
    (root / (MOVING_PREFIX + "2" * 16)).symlink_to(victim)
    (root / (MOVING_PREFIX + "unlike-ours")).write_bytes(b"h")
    wait_for(lambda: time.time() - old.stat().st_ctime > 0.2, timeout=10,
             message="the crash's copy to age")
    fresh = Path(moving_name(str(root / "show" / "episode 2.mp4")))
    fresh.write_bytes(b"\0" * 10)  # (a copy being made now)
    caplog.set_level(logging.WARNING, logger="appliance.files")

    FileIndex(root).rescan()

    assert not old.exists()
    assert fresh.exists() and victim.exists()
    assert sorted(p.name for p in root.iterdir()) == sorted([
        "show", MOVING_PREFIX + "1" * 16, MOVING_PREFIX + "2" * 16, MOVING_PREFIX + "unlike-ours"])
    assert [r.getMessage() for r in caplog.records] == [
        f"removed {old} (4096 bytes): the copy of a download into the folder that a crash or a "
        "power cut stopped part way; that download was retried or deleted since"]


def test_a_folder_swapped_for_a_link_during_the_sweep_takes_nothing_where_it_leads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The crash's copy is judged, then its folder is swapped for a link to another folder
    holding a file of the same name (a person's, outside the download folder): that file
    stays; the copy, in the folder as it was opened, goes."""
    monkeypatch.setattr(file_moves, "LEFT_OVER_AFTER", 0.2)
    root = tmp_path / "downloads"
    (root / "show").mkdir(parents=True)
    copy = Path(moving_name(str(root / "show" / "episode.mp4")))
    copy.write_bytes(b"\0" * 4096)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    theirs = elsewhere / copy.name
    theirs.write_bytes(b"not the service's")
    wait_for(lambda: time.time() - min(copy.stat().st_ctime, theirs.stat().st_ctime) > 0.2,
             timeout=10, message="both to age")
    judged = index_module.left_over

    def swapped_when_judged(name: str, status: os.stat_result, now: float) -> bool:
        if (root / "show").is_dir() and not (root / "show").is_symlink():
            (root / "show").rename(root / "show.away")
            (root / "show").symlink_to(elsewhere)
        return judged(name, status, now)

    monkeypatch.setattr(index_module, "left_over", swapped_when_judged)
    FileIndex(root).rescan()

    assert theirs.read_bytes() == b"not the service's"
    assert not (root / "show.away" / copy.name).exists()


@pytest.mark.parametrize("disks", ["one disk", "two disks"])
def test_a_file_that_lands_under_the_name_during_the_move_stays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, disks: str) -> None:
    """Another download of the same name lands its file while this one's moves (a copy
    between two disks takes minutes): the move replaced it. It stays now, and this one's
    file stays in the temporary folder (the job says it found a file there: move_check)."""
    temp = tmp_path / "temp"
    temp.mkdir()
    (source := temp / "Trailer.mp4").write_bytes(ours := os.urandom(4096))
    synced = file_moves._sync_file

    def another_lands(path: str) -> None:
        synced(path)
        if not target.exists():
            target.write_bytes(b"the other video")

    monkeypatch.setattr(file_moves, "_sync_file", another_lands)
    with contextlib.ExitStack() as stack:
        folder = tmp_path / "downloads"
        if disks == "two disks":
            stack.enter_context(tmpfs(folder, "size=1m"))
        else:
            folder.mkdir()
        target = folder / "Trailer.mp4"
        assert move_whole(str(source), str(target)) == str(target)
        assert target.read_bytes() == b"the other video"
        assert source.read_bytes() == ours
        assert sorted(p.name for p in folder.iterdir()) == ["Trailer.mp4"]


@pytest.mark.parametrize("refusal", [errno.EPERM, errno.EOPNOTSUPP])
def test_a_disk_without_hard_links_still_moves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               refusal: int) -> None:
    """A FAT or exFAT download folder refuses link() (EPERM), a share may say otherwise
    (this machine's kernel has no FAT to mount, so the refusal is played): the file is
    renamed there, as before."""
    def no_links(*_: object, **__: object) -> None:
        raise OSError(refusal, os.strerror(refusal))

    monkeypatch.setattr(os, "link", no_links)
    (source := tmp_path / "clip.mp4").write_bytes(data := os.urandom(4096))
    with tmpfs(tmp_path / "usb", "size=1m") as usb:
        assert move_whole(str(source), str(usb / "clip.mp4")) == str(usb / "clip.mp4")
        assert (usb / "clip.mp4").read_bytes() == data and not source.exists()
        assert sorted(p.name for p in usb.iterdir()) == ["clip.mp4"]
