"""What a finished download looks at before its files move into the download folder, and
what it takes back when the move fails part way: yt-dlp's own move, on a real tmpfs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yt_dlp
from support.mounts import fill, tmpfs
from yt_dlp.postprocessor.movefilesafterdownload import MoveFilesAfterDownloadPP

from appliance.engine.move_check import FolderMarkCheck, NoRoom

SIZE = 1 << 20


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
