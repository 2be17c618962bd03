"""A full disk under the downloads, end to end (a real tmpfs filled to its last byte, real
downloads from the local origin): downloads wait and go on by themselves once there is room,
an item that can never fit fails with the reason, and a download folder whose disk turns
read-only as a download ends keeps its files back."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.aged_tasks import aged_task
from support.mounts import ext4, fill, tmpfs
from support.origin import MediaOrigin
from support.server import wait_for
from support.task_runs import execution_log, run_now

from appliance.engine import disk_room, disk_waits, folder_disk
from appliance.runtime import Runtime
from appliance.store import Item
from appliance.systemd import status_line

WAITING_FOR_ROOM = "Waiting for room on the disk; will resume"


def waiting_for_room(rt: Runtime, item: Item) -> Item:
    return wait_for(lambda: (i := rt.engine.get(item.id)) and i.msg == WAITING_FOR_ROOM
                    and i.status == "pending" and i, timeout=60,
                    message="the download back in the queue, waiting for room")


def running(rt: Runtime, item: Item, beyond: int = 0) -> int:
    """Once ``item`` has downloaded more than ``beyond`` bytes: how many."""
    return wait_for(lambda: (i := rt.engine.get(item.id)) and i.status == "downloading"
                    and (i.downloaded_bytes or 0) > beyond and i.downloaded_bytes,
                    timeout=60, message="the download to run")


def test_a_full_disk_makes_downloads_wait_and_go_on_once_there_is_room(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each download failed in turn on a full disk ("The disk is full"), the whole queue, and
    none went on once room was made. The one that found it full goes back to the queue, its
    partial file kept; none starts; it is said once each way; they go on by themselves."""
    with tmpfs(tmp_path / "tmp", "size=16m") as temp:
        rt, client = app_with(YTP_MAX_WORKERS="1")
        said: list[Any] = []
        rt.bus.subscribe(lambda e: e.name == "download_folder" and said.append(e.data))
        # what websocket clients and notification targets are told
        told: list[tuple[str, str]] = []
        rt.bus.subscribe(lambda e: e.name in ("log_error", "log_warning")
                         and told.append((e.name, e.data["message"])))
        monkeypatch.setattr(origin, "slow_rate", 256 * 1024)
        [first] = rt.engine.add([{"url": origin.slow_url}])
        running(rt, first)
        [second] = rt.engine.add([{"url": origin.clip_url}])  # behind it (one at a time)
        wait_for(lambda: rt.engine.get(second.id).extractor, timeout=60,
                 message="the second item's info")
        filler = fill(temp)
        waiting = waiting_for_room(rt, first)
        assert waiting.auto_start and not waiting.error
        problem = rt.engine.stats()["download_folder_problem"]
        assert re.fullmatch(
            rf"The disk of the temporary folder {re.escape(str(temp))} is full \((\d+ B|"
            r"nothing) free\): downloads wait, and go on by themselves once it has 838\.9 KB "
            r"free\. Free some space on it\.", problem), problem
        assert client.simulate_get("/api/health").json["download_folder"] == problem
        assert status_line(rt.engine.stats()).endswith(", waiting for room on a full disk")
        assert list((temp / first.id).rglob("*.part"))
        assert rt.engine.alive(10)  # the dispatcher ran a round with the second item ready
        assert rt.engine.get(second.id).status == "pending"
        # the one behind it says why it waits too ("" on the old code)
        assert wait_for(lambda: rt.engine.get(second.id).msg, timeout=30,
                        message="the item behind to say why it waits") == \
            f"{disk_waits.ROOM_WAIT} {problem}"
        origin.clear_requests()
        origin.slow_rate = 200_000_000  # the rest, once resumed
        filler.unlink()
        for item in (first, second):
            done = wait_for(lambda i=item: (got := rt.engine.get(i.id)) and got.kind == "done"
                            and got, timeout=60, message="the downloads once there is room")
            assert (done.status, done.error, done.msg) == ("finished", "", "")
        resumed = rt.engine.get(first.id)
        assert (rt.settings.download_path / resumed.filename).read_bytes() == \
            origin.path_for(origin.slow_url).read_bytes()
        ranges = [r.range for r in origin.requests_for("/slow.mp4") if r.range]
        assert any(r and not r.startswith("bytes=0-") for r in ranges), ranges
        assert rt.engine.stats()["download_folder_problem"] is None
    assert said == [{"problem": problem}, {"problem": None}]  # the websocket's event
    assert [text for level, text in told if level == "log_error"] == [problem]
    assert told.count(("log_warning", "The disks have room again: waiting downloads go on.")) \
        == 1


def test_a_download_larger_than_the_whole_disk_fails_with_the_reason(
        tmp_path: Path, start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    """It would fill the disk again each time room was made, and never end."""
    with tmpfs(tmp_path / "tmp", "size=2m") as temp:
        rt = start_runtime()
        [item] = rt.engine.add([{"url": origin.big_file(4 << 20)}])
        failed = wait_for(lambda: (i := rt.engine.get(item.id)) and i.kind == "done" and i,
                          timeout=60, message="the download to end")
        assert failed.status == "error"
        assert failed.error.startswith(
            f"The download (4.2 MB) is larger than the whole disk of the temporary folder "
            f"{temp} (2.1 MB): it cannot be downloaded there. ("), failed.error
        assert "No space left on device" in failed.error
        assert rt.engine.stats()["download_folder_problem"] is None
        assert not (temp / item.id).exists()  # its partial file gone with it


def test_a_download_that_fills_the_disk_again_and_again_fails_at_last(
        tmp_path: Path, start_runtime: Callable[..., Runtime], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Room made each time, each time filled again by the same download (its size unknown
    ahead, or someone else's files): it does not wait for good, it fails, saying why."""
    monkeypatch.setattr(origin, "slow_rate", 256 * 1024)
    with tmpfs(tmp_path / "tmp", "size=16m") as temp:
        rt = start_runtime()
        [item] = rt.engine.add([{"url": origin.slow_url}])
        got = 0
        for _turn in range(3):  # (the README's "a fourth time")
            got = running(rt, item, beyond=got)
            filler = fill(temp)
            waiting_for_room(rt, item)
            filler.unlink()
        running(rt, item, beyond=got)
        fill(temp)
        failed = wait_for(lambda: (i := rt.engine.get(item.id)) and i.kind == "done" and i,
                          timeout=60, message="the download to fail")
        assert failed.status == "error"
        assert failed.error.startswith(
            "The disk filled up 4 times while this download ran: "
            "it needs more room than the disk has free. Free some space, then start it "
            "again. ("), failed.error


def test_a_disk_turned_read_only_as_a_download_ends_keeps_its_files_back(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]], origin: MediaOrigin,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Between two checks of the disk (5 s), a download that ended on a disk just turned
    read-only failed ("The disk is read-only"). It waits, its files in the temporary folder,
    and finishes once the disk is writable again."""
    monkeypatch.setattr(folder_disk, "CHECK_SECONDS", 3600)  # only the check at start
    downloads = tmp_path / "downloads"
    with tmpfs(downloads, "size=16m"):
        rt, _ = app_with()
        subprocess.run(["mount", "-o", "remount,ro", str(downloads)], check=True)
        [item] = rt.engine.add([{"url": origin.clip_url}])
        waiting = wait_for(lambda: (i := rt.engine.get(item.id)) and i.msg.endswith("itself.")
                           and i, timeout=60, message="the download to end")
        problem = rt.engine.stats()["download_folder_problem"]
        assert problem == (
            f"The download folder {downloads} is on a disk that is read-only (mounted so, or "
            "made so by the system after write errors: check the disk): downloads wait until "
            "it can be written.")
        assert (waiting.status, waiting.msg, waiting.error) == \
            ("pending", disk_waits.disk_wait(problem), "")
        assert [p.name for p in downloads.iterdir()] == [folder_disk.MARKER]
        assert list((rt.settings.temp_path / item.id).rglob("*.mp4"))
        subprocess.run(["mount", "-o", "remount,rw", str(downloads)], check=True)
        rt.engine.folder_disk.check()  # as the next periodic check
        done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.status == "finished" and i,
                        timeout=60, message="the download once the disk is writable")
        assert (downloads / done.filename).read_bytes() == \
            origin.path_for(origin.clip_url).read_bytes()


def test_a_disk_that_can_hold_no_more_files_makes_downloads_wait(
        tmp_path: Path, start_runtime: Callable[..., Runtime], origin: MediaOrigin) -> None:
    """Every inode used (a disk of many small files) is a full disk too, with bytes free: the
    download failed on it each time it was tried again, as if it needed more room."""
    with tmpfs(tmp_path / "tmp", "size=16m,nr_inodes=64") as temp:
        rt = start_runtime()
        [item] = rt.engine.add([{"url": origin.clip_url, "auto_start": False}])
        wait_for(lambda: rt.engine.get(item.id).extractor, timeout=60,
                 message="the item's info")
        many = temp / "many"
        many.mkdir()
        made = 0
        with contextlib.suppress(OSError):
            while True:
                (many / str(made)).touch()
                made += 1
        rt.engine.start_items([item.id])
        waiting_for_room(rt, item)
        problem = rt.engine.stats()["download_folder_problem"]
        assert re.fullmatch(
            rf"The disk of the temporary folder {re.escape(str(temp))} can hold no more files "
            r"\(every inode is used; \d+\.\d MB free\): downloads wait, and go on by themselves "
            r"once files are removed from it\.", problem), problem
        for name in range(made):
            (many / str(name)).unlink()
        done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.kind == "done" and i,
                        timeout=60, message="the download once files were removed")
        assert (done.status, done.error) == ("finished", "")


def test_a_full_download_folder_keeps_the_files_back_until_there_is_room(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]],
        origin: MediaOrigin) -> None:
    """The temporary folder on one disk, the download folder on another, full: the move of
    the finished file failed on it, or (waited out) left a cut copy under the file's own
    name, which the next try took for the whole file, already downloaded."""
    downloads = tmp_path / "downloads"
    with tmpfs(downloads, "size=16m"):
        rt, _ = app_with()
        filler = fill(downloads)
        [item] = rt.engine.add([{"url": origin.clip_url}])
        waiting_for_room(rt, item)
        problem = rt.engine.stats()["download_folder_problem"]
        assert problem.startswith(f"The disk of the download folder {downloads} is full ("), \
            problem
        assert sorted(p.name for p in downloads.iterdir()) == [folder_disk.MARKER, "filler"]
        assert list((rt.settings.temp_path / item.id).rglob("*.mp4"))
        filler.unlink()
        done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.kind == "done" and i,
                        timeout=60, message="the download once there is room")
        assert (done.status, done.error) == ("finished", "")
        assert (downloads / done.filename).read_bytes() == \
            origin.path_for(origin.clip_url).read_bytes()


@pytest.mark.parametrize(("message", "full"), [
    ("unable to write data: [Errno 28] No space left on device", True),
    ("Unable to download video: [Errno 122] Disk quota exceeded", True),
    ("Postprocessing: Error writing trailer of x.temp.mp4: No space left on device", True),
    ("unable to open for writing: [Errno 128] Key has expired", False),
    ("HTTP Error 507: Insufficient Storage", False),  # the site's disk, not ours
    ("Error writing trailer of x.mp4: Disk quota exceeded", True),  # ffmpeg's words
])
def test_a_full_disk_is_told_from_other_failures(message: str, full: bool) -> None:
    assert disk_room.disk_full(message) is full


def test_retention_runs_while_downloads_wait_for_room(
        tmp_path: Path, app_with: Callable[..., tuple[Runtime, Any]],
        origin: MediaOrigin) -> None:
    """What a task's retention removes is what makes room: it waited for the download folder
    with the downloads while the disk was full, which kept the disk full for good."""
    downloads = tmp_path / "downloads"
    with tmpfs(downloads, "size=16m"):
        runtime, client = app_with(YTP_TASKS_SPREAD="0", YTP_REMOVE_FILES="true")
        task, (old, recent) = aged_task(runtime, client, origin, "kept")
        fill(downloads)
        [item] = runtime.engine.add([{"url": origin.short_url}])
        waiting_for_room(runtime, item)
        done = run_now(runtime, task)
        lines = execution_log(runtime, done)
        assert any(line.endswith(" INFO retention removed 1 file(s)") for line in lines), lines
        assert not (Path(old.download_folder) / old.filename).exists()
        assert (Path(recent.download_folder) / recent.filename).is_file()


def test_a_disk_has_room_again_at_its_floor(tmp_path: Path) -> None:
    """A disk of 1.3 MB waits for its 20th, 65.5 KB free: not one byte more."""
    with tmpfs(tmp_path / "tmp", "size=1280k") as temp:
        filler = fill(temp)
        # (a disk that cannot be asked is passed over: its folder's check says why)
        folders = {"download folder": tmp_path / "unplugged", "temporary folder": temp}
        assert disk_room.short(folders) == (
            f"The disk of the temporary folder {temp} is full (nothing free): downloads wait, "
            "and go on by themselves once it has 65.5 KB free. Free some space on it.")
        os.truncate(filler, filler.stat().st_size - (64 << 10))
        assert disk_room.short(folders) is None
        (temp / "one more").write_bytes(b"x")  # a page of the disk
        assert disk_room.short(folders) == (
            f"The disk of the temporary folder {temp} is full (61.4 KB free): downloads wait, "
            "and go on by themselves once it has 65.5 KB free. Free some space on it.")


def test_a_disk_that_counts_no_files_is_never_out_of_them(tmp_path: Path) -> None:
    """A file system that keeps no count of its files (btrfs; a tmpfs of nr_inodes=0) says
    it has none free: it has room for as many as its bytes hold."""
    with tmpfs(tmp_path / "tmp", "size=1280k,nr_inodes=0") as temp:
        assert disk_room.short({"temporary folder": temp}) is None


def test_a_disk_out_of_files_and_bytes_says_both(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "tmp", "size=64k,nr_inodes=8") as temp:
        fill(temp)
        with contextlib.suppress(OSError):
            for name in range(8):
                (temp / str(name)).touch()
        assert disk_room.short({"temporary folder": temp}) == (
            f"The disk of the temporary folder {temp} can hold no more files (every inode is "
            "used; nothing free): downloads wait, and go on by themselves once files are "
            "removed from it.")


def test_a_large_disk_waits_for_64_mib_free(tmp_path: Path) -> None:
    """A disk over 1.3 GB would wait for its 20th (gigabytes of a large one never used): it
    waits for 64 MiB free (67.1 MB), not one byte more. (The filler's pages are the
    machine's memory for the moment the test runs.)"""
    with tmpfs(tmp_path / "tmp", "size=1400m") as temp:
        folders = {"temporary folder": temp}
        with (temp / "filler").open("wb") as filler:
            os.posix_fallocate(filler.fileno(), 0, shutil.disk_usage(temp).free - (64 << 20))
        assert disk_room.short(folders) is None
        (temp / "one more").write_bytes(b"x")  # a page of the disk
        assert disk_room.short(folders) == (
            f"The disk of the temporary folder {temp} is full (67.1 MB free): downloads wait, "
            "and go on by themselves once it has 67.1 MB free. Free some space on it.")


def test_the_blocks_a_disk_keeps_for_root_are_never_counted_as_room_to_free(
        tmp_path: Path) -> None:
    """The most a disk could have free while the partial files wait (what its floor is held
    to) is what it has free and what its files take: the blocks ext4 keeps for root (a fifth
    here; 5 % on a Pi's disk by default) are never free to the service's user."""
    with ext4(tmp_path / "disk", "8M", reserved=20) as disk:
        usage = os.statvfs(disk)
        kept_for_root = (usage.f_bfree - usage.f_bavail) * usage.f_frsize
        assert kept_for_root > usage.f_blocks * usage.f_frsize // 10  # (the disk as made)
        could_be_free = (usage.f_bavail + usage.f_blocks - usage.f_bfree) * usage.f_frsize
        # (less what ext4 keeps for itself: its root folder and lost+found, 13 KiB here)
        assert could_be_free - (64 << 10) < disk_room._reachable(disk, None) <= could_be_free


@pytest.mark.parametrize("reserved", [0, 5])
def test_a_partial_file_alone_on_its_disk_never_waits_for_room_the_disk_keeps(
        tmp_path: Path, reserved: int) -> None:
    """A partial file that, alone on its ext4 disk, leaves less than the floor free: the disk
    could have no more free, whatever is removed, and nothing waits. What the file system
    itself holds (its folders, lost+found) was counted as room to free, and such a download
    waited for good: the tests, on a tmpfs, which holds none of it, did not see it."""
    with ext4(tmp_path / "disk", "8M", reserved=reserved) as disk:
        usage = os.statvfs(disk)
        (disk / "item").mkdir()
        with open(disk / "item" / "clip.mp4.part", "wb") as partial:
            os.posix_fallocate(partial.fileno(), 0, (usage.f_bavail - 25) * usage.f_frsize)
        usage = os.statvfs(disk)
        assert 0 < usage.f_bavail * usage.f_frsize < disk_room.floor(
            usage.f_blocks * usage.f_frsize)  # (less than the floor free: it would wait)
        assert disk_room.short({disk_room.TEMPORARY: disk}) is None


# What another program keeps beside it: once that goes, the disk has a floor's room (a 20th)
# free, or less (the download's own partial file taking the rest, which waited for good).
SHARED = {"over the floor": 256 << 10, "under the floor": 64 << 10}


@pytest.mark.parametrize("other", SHARED.values(), ids=SHARED.keys())
def test_a_download_the_size_of_the_whole_disk_goes_on_once_there_is_room(
        tmp_path: Path, start_runtime: Callable[..., Runtime], origin: MediaOrigin,
        other: int) -> None:
    """Exactly as large as the temporary folder's disk, which another file shares: it fills
    the disk and waits (it is not larger than the disk, and fits alone), and once that file
    goes it ends, whole, however little that file left free."""
    with tmpfs(tmp_path / "tmp", "size=2m") as temp:
        (kept := temp / "another program's").write_bytes(bytes(other))
        rt = start_runtime()
        [item] = rt.engine.add([{"url": origin.big_file(2 << 20)}])
        filled = wait_for(lambda: (i := rt.engine.get(item.id)) and (
            i.msg == WAITING_FOR_ROOM or i.kind == "done") and i, timeout=60,
                          message="the download to fill the disk")
        assert (filled.status, filled.msg) == ("pending", WAITING_FOR_ROOM), filled.error
        kept.unlink()
        done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.kind == "done" and i,
                        timeout=60, message="the download to end")
        assert done.status == "finished", done.error
        assert (Path(done.download_folder) / done.filename).stat().st_size == 2 << 20
