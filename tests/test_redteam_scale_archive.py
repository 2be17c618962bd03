"""A download archive of years: what a finished download's line costs does not grow with it.

Each finished download adds its line to the archive. The file was written whole for each
(3 MB at 80,000 lines, flushed to the disk), and the next lookup (every extraction, every
task run) read it all again: a back catalogue of thousands finishing paid that for each.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.mounts import fill, tmpfs
from support.python_calls import calls

from appliance.engine.archive import RECENT, Archives


def _archive(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "archive.txt"
    path.write_text("".join(f"youtube v{n:07d}\n" for n in range(count)))
    return path


def test_an_add_appends_its_line_and_leaves_the_rest_of_the_file_as_it_was(
        tmp_path: Path) -> None:
    path = _archive(tmp_path, 1_000)
    # a line as another program wrote it (two spaces): a rewrite made it the read form
    with path.open("a") as file:
        file.write("generic my  video https://a.example/my%20%20video.mp4\n")
    before, inode = path.read_bytes(), path.stat().st_ino
    archives = Archives()
    assert archives.add(path, ["youtube new1", "youtube v0000005", "youtube new1"]) == [
        "youtube new1"]
    assert path.stat().st_ino == inode  # the same file, not a new one put in its place
    assert path.read_bytes() == before + b"youtube new1\n"
    assert archives.contains(path, "youtube new1") and archives.contains(path, "youtube v0000999")


def test_an_add_keeps_what_was_read_instead_of_reading_the_file_again(tmp_path: Path) -> None:
    """The kept lines are those of the file as the add left it: the file, changed behind
    the cache without its size, time or inode changing, is not read again (as
    ``test_archive_reads_are_kept_until_the_file_changes_on_disk``)."""
    path = _archive(tmp_path, 1_000)
    archives = Archives()
    assert archives.contains(path, "youtube v0000001")
    archives.add(path, ["youtube new1"])
    stat = path.stat()
    with path.open("r+") as file:  # the first line's letters, overwritten in place
        file.write("youtube x")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    lines = archives.read(path)
    assert lines[0] == "youtube v0000000" and lines[-1] == "youtube new1"
    assert len(lines) == 1_001 and archives.contains(path, "youtube new1")


def test_a_last_line_cut_short_is_not_glued_to_the_next(tmp_path: Path) -> None:
    """A power cut during an append (or another program's file without a last line break)
    leaves a line open at the end: the new line is written on a line of its own."""
    path = tmp_path / "archive.txt"
    path.write_text("youtube a\nyoutube b")
    archives = Archives()
    assert archives.add(path, ["youtube c"]) == ["youtube c"]
    assert path.read_text() == "youtube a\nyoutube b\nyoutube c\n"
    fresh = Archives()  # read from the disk
    assert fresh.read(path) == ["youtube a", "youtube b", "youtube c"]


def test_an_add_to_a_missing_archive_makes_it(tmp_path: Path) -> None:
    path = tmp_path / "archives" / "mine.txt"
    archives = Archives()
    assert archives.add(path, ["youtube a", "youtube b"]) == ["youtube a", "youtube b"]
    assert path.read_text() == "youtube a\nyoutube b\n"
    assert archives.add(path, ["youtube a"]) == []
    assert Archives().read(path) == ["youtube a", "youtube b"]


def test_a_look_up_by_id_reads_no_line_but_those_it_finds(tmp_path: Path) -> None:
    """``GET /api/archiver?ids=`` read every line's id at each call (0.1 s at 80,000 lines):
    the places by id are kept with the lines, and a look-up reads those alone. (Counted in
    Python calls, not timed.)"""
    path = _archive(tmp_path, 20_000)
    with path.open("a") as file:
        file.write("generic media https://a.example/ep/1/media.mp3\n"
                   "generic media https://a.example/ep/2/media.mp3\nvimeo v0000007\n")
    archives = Archives()
    wanted = {"v0000007", "media", "youtube v0000042", "youtube nothing", "nothing"}
    assert archives.find(path, wanted) == [
        "youtube v0000007", "youtube v0000042", "generic media https://a.example/ep/1/media.mp3",
        "generic media https://a.example/ep/2/media.mp3", "vimeo v0000007"]
    assert calls(lambda: archives.find(path, wanted))[0] < 100
    # an add puts its lines' places in (not made again from every line)
    assert calls(lambda: archives.add(path, ["youtube v9999999", "vimeo v0000042"]))[0] < 200
    counted, found = calls(lambda: archives.find(path, {"v9999999"}))
    assert counted < 100 and found == ["youtube v9999999"]
    assert archives.find(path, {"v0000042", "youtube v0000007"}) == [
        "youtube v0000007", "youtube v0000042", "vimeo v0000042"]


def test_a_disk_that_takes_part_of_an_append_leaves_the_archive_as_it_was(
        tmp_path: Path) -> None:
    """A full disk that took the first bytes of a line (the room left in the file's last
    page) and refused the rest: the line cut short would be an entry no one added."""
    folder = tmp_path / "archives"
    with tmpfs(folder, "size=64k"):
        path = folder / "archive.txt"
        path.write_text("youtube a\n" + "x" * (4096 - 10 - 5 - 1) + "\n")  # 5 bytes free
        before = path.read_bytes()
        fill(folder)
        archives = Archives()
        with pytest.raises(OSError, match="No space left"):
            archives.add(path, ["youtube a-line-longer-than-five-bytes"])
        assert path.read_bytes() == before
        assert not archives.contains(path, "youtube a-line-longer-than-five-bytes")


def test_an_add_does_not_copy_the_archives_set(tmp_path: Path) -> None:
    """The set of the archive's lines (20,000 here, 80,000 in a year's archive) was made
    again for each add: a copy of it at each finished download (5-25 ms). The lines added
    are kept beside it, and go into it when a task run asks for the whole set, or past
    RECENT of them."""
    path = _archive(tmp_path, 20_000)
    archives = Archives()
    before = archives.members(path)
    assert archives.add(path, ["youtube new1"]) == ["youtube new1"]
    assert archives._cache[path].members is before  # (the set held: not copied)
    assert archives.contains(path, "youtube new1") and archives.add(path, ["youtube new1"]) == []
    whole = archives.members(path)
    assert "youtube new1" in whole and len(whole) == 20_001
    assert archives.members(path) is whole  # made once
    many = [f"vimeo {n}" for n in range(RECENT + 1)]
    assert archives.add(path, many) == many
    assert archives._cache[path].recent == frozenset() and len(archives.members(path)) == (
        20_001 + RECENT + 1)
    assert Archives().members(path) == archives.members(path)  # as the file holds them
