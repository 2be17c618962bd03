"""What a finished download looks at before its files move into the download folder, and
what it takes back when the move fails part way: yt-dlp's own move, on a real tmpfs."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yt_dlp
from support.mounts import fill, tmpfs
from yt_dlp.postprocessor import movefilesafterdownload
from yt_dlp.postprocessor.movefilesafterdownload import MoveFilesAfterDownloadPP

from appliance.engine import file_moves
from appliance.engine.folder_disk import MARKER
from appliance.engine.move_check import FolderGone, FolderMarkCheck, NoRoom

SIZE = 1 << 20


@pytest.fixture(autouse=True)
def _yt_dlps_own_move(monkeypatch: pytest.MonkeyPatch) -> None:
    """yt-dlp's own move, which cuts a copy short under the file's own name, as it runs where
    the download process's whole move (``file_moves``) cannot be installed: a test of this
    process may have installed it (``ytdlp_tuning.warm_up``)."""
    monkeypatch.setattr(movefilesafterdownload, "shutil", shutil)


def finished(tmp_path: Path) -> tuple[Path, bytes]:
    temp = tmp_path / "temp"
    temp.mkdir()
    media = temp / "clip.mp4"
    media.write_bytes(data := os.urandom(SIZE))
    (temp / "clip.info.json").write_text("{}")
    return media, data


def info_of(media: Path, downloads: Path) -> dict[str, object]:
    return {"filepath": str(media), "__finaldir": str(downloads),
            "__files_to_move": {str(media.with_suffix(".info.json")): None}}


def test_a_move_that_runs_out_of_room_leaves_no_cut_copy(tmp_path: Path) -> None:
    """The room was there when looked at, and another download's files took it during the
    move: the copy cut short stayed under the file's own name, and the next try took it for
    the whole file, already downloaded. It goes; the file stays whole for the next try."""
    media, data = finished(tmp_path)
    with tmpfs(tmp_path / "downloads", "size=4m") as downloads:
        (downloads / "older.mp4").write_bytes(b"a file of its own")
        info = info_of(media, downloads)
        check = FolderMarkCheck(str(downloads), None)
        check.run(info)
        filler = fill(downloads)
        os.truncate(filler, filler.stat().st_size - SIZE // 2)  # half of it fits
        with yt_dlp.YoutubeDL({"quiet": True}) as ydl, pytest.raises(OSError) as raised:
            MoveFilesAfterDownloadPP(ydl).run(info)
        assert "No space left on device" in str(raised.value)
        cut = downloads / media.name
        assert 0 < cut.stat().st_size < SIZE  # what the next try took for the whole file
        check.take_back()
        assert not cut.exists()
        assert media.read_bytes() == data
        assert (downloads / "older.mp4").read_bytes() == b"a file of its own"


def test_a_file_beside_the_media_cut_short_by_the_move_goes_too(tmp_path: Path) -> None:
    """A large file beside the media (subtitles, a description) that yt-dlp moves to the
    download folder under its own name (no target given): cut short, it goes as the media's
    cut copy does, and stays whole in the temporary folder."""
    media, _ = finished(tmp_path)
    subtitles = media.with_suffix(".en.vtt")
    subtitles.write_bytes(text := os.urandom(SIZE))
    with tmpfs(tmp_path / "downloads", "size=4m") as downloads:
        info = {"filepath": str(media), "__finaldir": str(downloads),
                "__files_to_move": {str(subtitles): None}}
        check = FolderMarkCheck(str(downloads), None)
        check.run(info)
        filler = fill(downloads)
        os.truncate(filler, filler.stat().st_size - SIZE // 2)  # half of the first fits
        with yt_dlp.YoutubeDL({"quiet": True}) as ydl, pytest.raises(OSError):
            MoveFilesAfterDownloadPP(ydl).run(info)
        cut = downloads / subtitles.name
        assert 0 < cut.stat().st_size < SIZE  # the sidecar moves first, and was cut
        check.take_back()
        assert not cut.exists()
        assert subtitles.read_bytes() == text


@pytest.mark.parametrize("size", [SIZE, 2 * SIZE])
def test_a_whole_file_another_download_moved_there_meanwhile_stays(
        tmp_path: Path, size: int) -> None:
    """Two downloads of one name (a playlist's two "Trailer" entries, a template without the
    id) checked at once, neither target there yet: the other's file lands, then this one's
    move fails (the disk filled). Its take-back removed whatever was under the name: the
    other download's finished file. Only a copy shorter than its source is a cut one."""
    media, data = finished(tmp_path)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    check = FolderMarkCheck(str(downloads), None)
    check.run(info_of(media, downloads))
    (other := downloads / media.name).write_bytes(theirs := os.urandom(size))
    check.take_back()
    assert other.read_bytes() == theirs
    assert media.read_bytes() == data


def test_with_the_whole_move_a_shorter_file_another_download_moved_there_stays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same race, the other download's file shorter than this one's: a cut copy by its
    size, but the download process's whole move never leaves one under the name (it copies
    under a hidden one and removes it when the disk fills), so nothing under it is taken.
    The disk-full move itself leaves nothing cut there either."""
    monkeypatch.setattr(movefilesafterdownload, "shutil", file_moves._Shutil())
    media, data = finished(tmp_path)
    with tmpfs(tmp_path / "downloads", "size=4m") as downloads:
        check = FolderMarkCheck(str(downloads), None)
        info = info_of(media, downloads)
        check.run(info)
        filler = fill(downloads)
        os.truncate(filler, filler.stat().st_size - SIZE // 2)  # half of it fits
        with yt_dlp.YoutubeDL({"quiet": True}) as ydl, pytest.raises(OSError):
            MoveFilesAfterDownloadPP(ydl).run(info)
        other = downloads / media.name
        assert not other.exists()
        other.write_bytes(theirs := os.urandom(SIZE // 4))  # landed meanwhile
        check.take_back()
        assert other.read_bytes() == theirs
        assert media.read_bytes() == data
        assert not [p for p in downloads.iterdir() if p.name.startswith(".")]


def test_files_that_would_not_fit_stay_in_the_temporary_folder(tmp_path: Path) -> None:
    media, data = finished(tmp_path)
    with tmpfs(tmp_path / "downloads", "size=4m") as downloads:
        filler = fill(downloads)
        os.truncate(filler, filler.stat().st_size - SIZE // 2)
        with pytest.raises(NoRoom, match=rf"^The download folder {downloads}'s disk has "
                                         r"\d+\.\d KB free, and the download's files need "
                                         r"1\.0 MB: they wait in the temporary folder\.$"):
            FolderMarkCheck(str(downloads), None).run(info_of(media, downloads))
        filler.unlink()
        FolderMarkCheck(str(downloads), None).run(info_of(media, downloads))  # room now
    assert media.read_bytes() == data


def test_files_that_fit_to_the_last_byte_move(tmp_path: Path) -> None:
    """The disk has exactly the bytes the file takes: it fits, and moves whole."""
    media, data = finished(tmp_path)
    with tmpfs(tmp_path / "downloads", "size=4m") as downloads:
        filler = fill(downloads)
        os.truncate(filler, filler.stat().st_size - SIZE)
        info = {"filepath": str(media), "__finaldir": str(downloads), "__files_to_move": {}}
        FolderMarkCheck(str(downloads), None).run(info)
        with yt_dlp.YoutubeDL({"quiet": True}) as ydl:
            MoveFilesAfterDownloadPP(ydl).run(info)
        assert (downloads / media.name).read_bytes() == data


def test_the_files_beside_the_media_need_room_too(tmp_path: Path) -> None:
    media, _ = finished(tmp_path)
    media.with_suffix(".info.json").write_bytes(bytes(SIZE))  # a playlist's long info
    with tmpfs(tmp_path / "downloads", "size=4m") as downloads:
        filler = fill(downloads)
        os.truncate(filler, filler.stat().st_size - SIZE - SIZE // 2)
        with pytest.raises(NoRoom, match=r"files need 2\.1 MB: "):
            FolderMarkCheck(str(downloads), None).run(info_of(media, downloads))


def test_a_disk_with_nothing_free_says_so(tmp_path: Path) -> None:
    media, _ = finished(tmp_path)
    with tmpfs(tmp_path / "downloads", "size=4m") as downloads:
        fill(downloads)
        with pytest.raises(NoRoom, match=rf"^The download folder {downloads}'s disk has nothing "
                                         r"free, and the download's files need 1\.0 MB: "):
            FolderMarkCheck(str(downloads), None).run(info_of(media, downloads))


def test_a_disk_turned_read_only_keeps_the_files_back_saying_so(tmp_path: Path) -> None:
    media, data = finished(tmp_path)
    downloads = tmp_path / "downloads"
    with tmpfs(downloads, "size=4m,ro"), pytest.raises(
            FolderGone, match=rf"^The download folder {downloads}'s disk turned read-only as "
                              r"the download ended; its files wait in the temporary folder\.$"):
        FolderMarkCheck(str(downloads), None).run(info_of(media, downloads))
    assert media.read_bytes() == data


def test_a_folder_with_a_mark_moves_when_none_is_asked_for(tmp_path: Path) -> None:
    """A job whose folder was given no mark to check (None) does not look at the mark."""
    media, _ = finished(tmp_path)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / MARKER).write_text("another\n")
    FolderMarkCheck(str(downloads), None).run(info_of(media, downloads))


def test_files_moved_whole_stay_when_the_job_fails_after(tmp_path: Path) -> None:
    """The move went through; a later step failed the job: the moved files are the job's
    whole ones, not cut copies."""
    media, data = finished(tmp_path)
    with tmpfs(tmp_path / "downloads", "size=4m") as downloads:
        info = info_of(media, downloads)
        check = FolderMarkCheck(str(downloads), None)
        check.run(info)
        with yt_dlp.YoutubeDL({"quiet": True}) as ydl:
            MoveFilesAfterDownloadPP(ydl).run(info)
        check.take_back()
        assert (downloads / media.name).read_bytes() == data
        assert (downloads / "clip.info.json").read_text() == "{}"


def test_a_cut_copy_that_cannot_be_removed_is_said(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    media, _ = finished(tmp_path)
    with tmpfs(tmp_path / "downloads", "size=4m") as downloads:
        check = FolderMarkCheck(str(downloads), None)
        check.run(info_of(media, downloads))
        cut = downloads / media.name
        cut.write_bytes(b"cut short")
        subprocess.run(["mount", "-o", "remount,ro", str(downloads)], check=True)
        with caplog.at_level(logging.WARNING, logger="appliance.child"):
            check.take_back()
        assert cut.read_bytes() == b"cut short"
    assert [r.getMessage() for r in caplog.records if r.name == "appliance.child"] == [
        f"could not remove the cut copy {cut} ([Errno 30] Read-only file system: '{cut}')"]


def test_files_on_the_download_folder_s_own_disk_move_though_it_is_full(
        tmp_path: Path) -> None:
    """A temporary folder on the download folder's disk: its files are renamed into the
    download folder, which takes no room, so a full disk keeps none of them back."""
    with tmpfs(tmp_path / "disk", "size=4m") as disk:
        media, data = finished(disk)
        downloads = disk / "downloads"
        downloads.mkdir()
        fill(disk)
        info = info_of(media, downloads)
        FolderMarkCheck(str(downloads), None).run(info)
        with yt_dlp.YoutubeDL({"quiet": True}) as ydl:
            MoveFilesAfterDownloadPP(ydl).run(info)
        assert (downloads / media.name).read_bytes() == data
        assert (downloads / "clip.info.json").read_text() == "{}"


def test_a_file_named_to_move_that_is_not_there_needs_no_room(tmp_path: Path) -> None:
    """yt-dlp names a file it did not write (a thumbnail the site refused): its move passes
    it over, and the check counts it for nothing."""
    media, data = finished(tmp_path)
    with tmpfs(tmp_path / "downloads", "size=4m") as downloads:
        info = info_of(media, downloads)
        info["__files_to_move"][str(media.with_suffix(".jpg"))] = None  # type: ignore[index]
        FolderMarkCheck(str(downloads), None).run(info)
        with yt_dlp.YoutubeDL({"quiet": True}) as ydl:
            MoveFilesAfterDownloadPP(ydl).run(info)
        assert (downloads / media.name).read_bytes() == data


def test_a_download_folder_removed_since_is_left_to_the_move_to_make(tmp_path: Path) -> None:
    """A download folder with no mark to check, removed since the service looked: its disk
    cannot be asked, so the check keeps nothing back, and yt-dlp's move makes the folder."""
    media, data = finished(tmp_path)
    downloads = tmp_path / "downloads"
    info = info_of(media, downloads)
    FolderMarkCheck(str(downloads), None).run(info)
    with yt_dlp.YoutubeDL({"quiet": True}) as ydl:
        MoveFilesAfterDownloadPP(ydl).run(info)
    assert (downloads / media.name).read_bytes() == data


def test_a_job_that_failed_before_its_check_takes_nothing_back(tmp_path: Path) -> None:
    """The download itself failed (the site's error): nothing was looked at, and a file of
    the same name already in the download folder (an older download's) stays."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "clip.mp4").write_bytes(b"an older download")
    FolderMarkCheck(str(downloads), None).take_back()
    assert (downloads / "clip.mp4").read_bytes() == b"an older download"
