"""The very first start without the download folder's disk: no mark says which folder is the
one yet, so the system's table of disks (fstab) tells. A disk it lists at or above the folder
that is not mounted: downloads wait, the bare mount point is not marked, and the queue goes
on once the disk is mounted. Real tmpfs mounts (as root, here and in CI); the table is a file
of the test's own, pointed at as the service's ``FSTAB``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.disk_waits import queued_while_the_disk_is_missing
from support.mounts import tmpfs
from support.origin import MediaOrigin
from support.server import wait_for

from appliance.engine import folder_disk
from appliance.engine.folder_disk import FolderDisk, listed_mount_points, not_mounted, read_only
from appliance.runtime import Runtime


@pytest.fixture
def table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Write the disks' table the service reads (its lines as given)."""
    path = tmp_path / "fstab"
    monkeypatch.setattr(folder_disk, "FSTAB", path)

    def write(text: str) -> Path:
        path.write_text(text)
        return path

    return write


def problem_of(folder: Path, config: Path) -> tuple[FolderDisk, list[str | None]]:
    changes: list[str | None] = []
    disk = FolderDisk(lambda: folder, lambda: changes.append(disk.problem), config)
    disk.note()
    disk.check()
    return disk, changes


def test_the_table_says_the_disk_is_not_mounted_and_nothing_is_marked_until_it_is(
        tmp_path: Path, table: Callable[[str], Path]) -> None:
    disk_at, config = tmp_path / "usb", tmp_path / "config"
    folder = disk_at / "media" / "videos"
    folder.mkdir(parents=True)  # on the system's disk: the bare mount point and folders in it
    config.mkdir()
    table(f"UUID=1234-ABCD  {disk_at}  vfat  defaults,nofail  0  2\n")
    disk, changes = problem_of(folder, config)
    assert changes == [
        f"The download folder {folder} is on the disk {tmp_path / 'fstab'} mounts at "
        f"{disk_at}, which is not mounted: downloads wait until it is (written there, they "
        "would fill the system's disk)."]
    assert disk.mark(folder) is None
    assert list(folder.iterdir()) == [] and not (config / folder_disk.RECORD).exists()
    with tmpfs(disk_at, "size=1m"):
        disk.check()  # the folder is made on the disk, as a start with the disk would
        assert changes[-1] is None
        mark = folder / folder_disk.MARKER
        assert mark.stat().st_dev == os.stat(disk_at).st_dev != os.stat(tmp_path).st_dev
        token = json.loads((config / folder_disk.RECORD).read_text())["token"]
        assert mark.read_text().strip() == token
        assert disk.mark(folder) == {"folder": str(folder), "token": token}
    disk.check()  # unplugged again: the table still tells, before the mark would
    assert changes[-1] is not None and f"mounts at {disk_at}, which is not mounted" in changes[-1]


def test_a_disk_the_table_lists_that_is_mounted_is_no_problem(
        tmp_path: Path, table: Callable[[str], Path]) -> None:
    disk_at, config = tmp_path / "usb", tmp_path / "config"
    config.mkdir()
    table(f"# a comment\nLABEL=media {disk_at} ext4 defaults 0 2\n")
    with tmpfs(disk_at, "size=1m"):
        disk, changes = problem_of(disk_at, config)
        assert changes == [] and disk.problem is None
        assert (disk_at / folder_disk.MARKER).is_file()


@pytest.mark.parametrize("line", [
    "/srv/media {point} none bind 0 0",  # a bind mount is on its source's disk
    "/srv/media {point} ext4 rw,rbind 0 0",
    "/swapfile {point} swap sw 0 0",
    "/srv/media {point} auto defaults,bind 0 0",
    "# UUID=1 {point} ext4 defaults 0 2",
    "#UUID=1 {point} ext4 defaults 0 2",  # a comment's mark on the first field itself
    "UUID=1 {point}",  # too short to be a line
    "UUID=1 relative/{point} ext4 defaults 0 2",
    "UUID=1 {point}2 ext4 defaults 0 2",  # a sibling whose name starts the same
    "UUID=1 {point}/deeper ext4 defaults 0 2",  # below the folder, not above it
    "UUID=1 / ext4 defaults 0 1",
])
def test_lines_that_are_no_disk_above_the_folder_are_not_taken(
        tmp_path: Path, line: str) -> None:
    point = tmp_path / "usb"
    fstab = tmp_path / "fstab"
    fstab.write_text(line.format(point=point) + "\n")
    assert listed_mount_points(point, fstab) == []


def test_the_disks_line_after_lines_that_are_no_disk_is_taken(tmp_path: Path) -> None:
    point = tmp_path / "usb"
    fstab = tmp_path / "fstab"
    fstab.write_text(f"# the media disk\n/srv/x {point} auto bind 0 0\n/swap {point} swap sw\n"
                     f"UUID=1 {point} ext4 defaults,nofail 0 2\n")
    assert listed_mount_points(point / "videos", fstab) == [point]


def test_the_table_is_read_as_mount_writes_it(tmp_path: Path) -> None:
    """Spaces in a mount point are written ``\\040``; points come outermost first; a table
    that is missing, binary or huge is read without failing."""
    outer, inner = tmp_path / "my disk", tmp_path / "my disk" / "share"
    escaped = str(outer).replace(" ", "\\040")
    fstab = tmp_path / "fstab"
    fstab.write_text(f"server:/x {escaped}/share nfs defaults 0 0\n"
                     f"UUID=1\t{escaped}\text4\tdefaults\t0\t2\n")
    assert listed_mount_points(inner / "videos", fstab) == [outer, inner]
    assert not_mounted([outer, inner]) == outer  # missing: not mounted either
    fstab.write_bytes(b"\xff\xfe\x00garbage\n" + os.urandom(4096))
    assert listed_mount_points(inner, fstab) == []
    fstab.write_text("#" * (folder_disk.FSTAB_BYTES + 10) + f"\nUUID=1 {tmp_path} ext4 d 0 2\n")
    assert listed_mount_points(tmp_path, fstab) == []  # past the bound: not read
    assert listed_mount_points(tmp_path, tmp_path / "no-such-table") == []


def test_a_first_start_without_the_disk_downloads_nothing_until_it_is_mounted(
        tmp_path: Path, table: Callable[[str], Path],
        app_with: Callable[..., tuple[Runtime, Any]], origin: MediaOrigin) -> None:
    downloads = tmp_path / "downloads"
    table(f"/dev/sdb1 {downloads} ext4 defaults,nofail 0 2\n")
    rt, client = app_with()
    problem = rt.engine.stats()["download_folder_problem"]
    assert problem is not None and f"mounts at {downloads}, which is not mounted" in problem
    assert client.simulate_get("/api/health").json["download_folder"] == problem
    item = queued_while_the_disk_is_missing(rt, origin, downloads)
    with tmpfs(downloads, "size=8m"):
        done = wait_for(lambda: (i := rt.engine.get(item.id)) and i.status == "finished"
                        and i, timeout=60, message="the download once the disk is mounted")
        assert (downloads / done.filename).stat().st_dev != os.stat(tmp_path).st_dev
        assert (downloads / folder_disk.MARKER).is_file()
        assert rt.engine.stats()["download_folder_problem"] is None


def test_a_record_that_cannot_be_read_is_said_and_made_again(
        tmp_path: Path, table: Callable[[str], Path], caplog: pytest.LogCaptureFixture) -> None:
    folder, config = tmp_path / "downloads", tmp_path / "config"
    folder.mkdir()
    config.mkdir()
    table("")
    record = config / folder_disk.RECORD
    record.write_text("{not json")
    disk, changes = problem_of(folder, config)
    assert changes == [] and disk.problem is None
    assert f"ignoring {record}, which cannot be read (" in caplog.text
    assert json.loads(record.read_text())["token"] == \
        (folder / folder_disk.MARKER).read_text().strip()


def test_a_marked_folder_keeps_its_mark_when_the_config_folder_is_new(
        tmp_path: Path, table: Callable[[str], Path]) -> None:
    """A reinstall (a new config folder) takes the disk's mark as it is: another install
    that kept its record of the same disk still knows it."""
    folder, config = tmp_path / "downloads", tmp_path / "config"
    folder.mkdir()
    config.mkdir()
    table("")
    (folder / folder_disk.MARKER).write_text("0123456789abcdef0123456789abcdef\n")
    disk, changes = problem_of(folder, config)
    assert changes == [] and disk.problem is None
    assert (folder / folder_disk.MARKER).read_text() == "0123456789abcdef0123456789abcdef\n"
    assert json.loads((config / folder_disk.RECORD).read_text()) == {
        "folder": str(folder), "token": "0123456789abcdef0123456789abcdef"}


def test_a_folder_gone_from_the_systems_disk_is_said_and_so_is_its_return(
        tmp_path: Path, table: Callable[[str], Path], caplog: pytest.LogCaptureFixture) -> None:
    folder, config = tmp_path / "downloads", tmp_path / "config"
    folder.mkdir()
    config.mkdir()
    table("")
    disk, changes = problem_of(folder, config)
    assert changes == []
    mark = (folder / folder_disk.MARKER).read_text()
    for name in (folder / folder_disk.MARKER, folder):
        name.unlink() if name.is_file() else name.rmdir()
    disk.check()
    assert changes == [f"The download folder {folder} is missing (is its disk mounted?): "
                       "downloads wait until it is back."]
    folder.mkdir()  # put back as it was
    (folder / folder_disk.MARKER).write_text(mark)
    disk.check()
    assert changes[-1] is None
    assert f"The download folder {folder} is back: waiting downloads go on." in caplog.messages


def test_a_disk_that_comes_read_only_is_said(
        tmp_path: Path, table: Callable[[str], Path], caplog: pytest.LogCaptureFixture) -> None:
    """The disk the table lists is mounted, but read-only (a file system with errors, a
    write-protected card): the folder cannot be made on it, which the log says with the
    system's reason, and downloads wait for the folder."""
    disk_at, config = tmp_path / "usb", tmp_path / "config"
    folder = disk_at / "media" / "videos"
    folder.mkdir(parents=True)
    config.mkdir()
    table(f"UUID=1234-ABCD  {disk_at}  vfat  defaults,nofail  0  2\n")
    disk, changes = problem_of(folder, config)
    with tmpfs(disk_at, "size=1m,ro"):
        disk.check()
    assert changes[-1] == folder_disk.missing(folder)
    [said] = [m for m in caplog.messages if m.startswith("cannot make the download folder")]
    assert said.startswith(f"cannot make the download folder {folder} on its disk ([Errno 30] "
                           "Read-only file system")


def test_a_folder_whose_mark_cannot_be_written_is_said(
        tmp_path: Path, table: Callable[[str], Path], caplog: pytest.LogCaptureFixture) -> None:
    folder, config = tmp_path / "downloads", tmp_path / "config"
    config.mkdir()
    table("")
    with tmpfs(folder, "size=1m,ro"):
        disk, changes = problem_of(folder, config)
        assert disk.mark(folder) is None
        # downloads wait for it to be writable (test_write_failures.py), not for a mark
        assert changes == [f"The download folder {folder} is on a disk that is read-only "
                           "(mounted so, or made so by the system after write errors: check "
                           "the disk): downloads wait until it can be written."]
        assert disk.gone is None  # its files are there to read
        assert read_only(folder)
    assert not read_only(folder)  # the system's disk under it
    assert not read_only(tmp_path / "missing")  # what cannot be asked is not said read-only
    [said] = [m for m in caplog.messages if m.startswith("cannot mark")]
    assert said.startswith(f"cannot mark the download folder {folder} ([Errno 30] Read-only "
                           "file system")
    assert said.endswith("a start without its disk will not be noticed")
