"""The archive files themselves: the id a URL is archived by, read without the network;
writers at once; ids with line breaks or spaces; reads that follow the file on disk and are
kept until it changes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from appliance.engine.archive import Archives, archive_id
from appliance.engine.child import archive_id_for


def test_the_archive_id_of_a_url_is_read_without_the_network() -> None:
    assert archive_id_for("https://www.youtube.com/watch?v=jNQXAC9IVRw") == {
        "url": "https://www.youtube.com/watch?v=jNQXAC9IVRw", "id": "jNQXAC9IVRw",
        "ie_key": "Youtube", "archive_id": "youtube jNQXAC9IVRw", "error": None}
    assert archive_id_for("https://example.com/") == {
        "url": "https://example.com/", "id": "", "ie_key": "Generic", "archive_id": None,
        "error": "the URL does not name a video id"}
    broken = archive_id_for("http://[::1")
    assert broken == {"url": "http://[::1", "id": None, "ie_key": None, "archive_id": None,
                      "error": "ValueError: Invalid IPv6 URL"}


def test_archive_file_is_safe_under_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "archive.txt"
    archives = Archives()
    archives.add(path, ["youtube seed"])
    barrier = threading.Barrier(20)

    def writer(n: int) -> None:
        barrier.wait()
        # every writer adds its own ids and some that others add too
        archives.add(path, [f"youtube w{n}-{i}" for i in range(25)] + ["youtube shared"])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text().splitlines()
    assert len(lines) == len(set(lines)) == 1 + 20 * 25 + 1
    assert archives.remove(path, ["youtube shared", "youtube missing"]) == ["youtube shared"]
    assert "youtube shared" not in path.read_text()


def test_an_id_with_a_line_break_or_spaces_is_found_as_it_was_stored(tmp_path: Path) -> None:
    """The generic extractor's id is a file's name from the URL ('my%20%20video%0A.mp4'):
    the entry was stored with its whitespace joined, then looked up as it was, and never
    found: the same URL added again downloaded again."""
    path = tmp_path / "archive.txt"
    archives = Archives()
    url = "https://example.com/a/my%20%20video%0A.mp4"
    entry = archive_id_for(url)["archive_id"]
    assert entry == archive_id("Generic", "my  video\n", url) == f"generic my video {url}"
    assert archives.add(path, [f"generic my  video\n {url}"]) == [entry]
    assert archives.contains(path, f"generic my  video\n {url}")
    assert entry in archives.members(path)
    assert archive_id("Generic", " ", url) is None
    path.write_text(f"generic my  video {url}\n")  # as another program writes it
    assert archives.contains(path, f"generic my  video {url}") and archives.read(path) == [entry]


@pytest.mark.parametrize(("url", "line"), [
    ("https://a.example/ep/1/media.mp3", "generic media https://a.example/ep/1/media.mp3"),
    ("https://a.example/ep/2/media.mp3?sig=x#t=3",
     "generic media https://a.example/ep/2/media.mp3"),
    ("https://me:pw@a.example:8443/live/index.m3u8?token=t",
     "generic index https://a.example:8443/live/index.m3u8"),
])
def test_a_direct_links_line_holds_its_address_without_user_query_or_fragment(
        url: str, line: str) -> None:
    """The generic extractor's id is a file's name from the URL: every episode of a podcast
    whose files are all media.mp3 (every HLS stream's index.m3u8) had one line, and each
    after the first was skipped as already downloaded. The same file under another signature
    is one; the archive holds no password."""
    assert archive_id_for(url)["archive_id"] == line
    assert archive_id("youtube", "dQw4w9WgXcQ", url) == "youtube dQw4w9WgXcQ"


def test_archive_reads_follow_changes_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "archive.txt"
    archives = Archives()
    archives.add(path, ["youtube a"])
    assert archives.contains(path, "youtube a")
    path.write_text("youtube b\n")  # another program edits the file
    assert not archives.contains(path, "youtube a") and archives.contains(path, "youtube b")


def test_archive_reads_are_kept_until_the_file_changes_on_disk(tmp_path: Path) -> None:
    """An archive shared by many tasks is read once, not at every lookup: what was read is
    kept while the file's size, time and inode stay (here: rewritten in place, its time
    put back)."""
    path = tmp_path / "archive.txt"
    archives = Archives()
    archives.add(path, ["youtube a"])
    stat = path.stat()
    assert archives.read(path) == ["youtube a"]
    with path.open("r+") as file:
        file.write("youtube b\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert archives.read(path) == ["youtube a"] and archives.contains(path, "youtube a")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert archives.read(path) == ["youtube b"]
