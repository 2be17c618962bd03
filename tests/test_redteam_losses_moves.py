"""Red team, a download is never lost: a file that lands under a download's name between the
look before yt-dlp's move (``FolderMarkCheck``) and the move itself.

Two downloads of one name finishing at once (the same link queued twice, two videos titled
alike) both looked before either moved. yt-dlp's move then removed the file the other had
just moved there and moved its own over it: the other's look at its file fell in between
and its item ended 'skip', "wrote no file"; and another video's file was replaced unsaid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yt_dlp
from support.origin import MediaOrigin
from yt_dlp.postprocessor.common import PostProcessor

from appliance.engine.move_check import FolderMarkCheck

LANDED = b"another download's whole file"


class Lands(PostProcessor):
    """Another download's file landing under this one's name right after the look."""

    def run(self, information: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        Path(information["__finaldir"], Path(information["filepath"]).name).write_bytes(LANDED)
        return [], information


def download(origin: MediaOrigin, home: Path, temp: Path) -> tuple[FolderMarkCheck, str]:
    params = {"paths": {"home": str(home), "temp": str(temp)}, "quiet": True,
              "outtmpl": {"default": "Trailer.%(ext)s"}}
    with yt_dlp.YoutubeDL(params) as ydl:
        check = FolderMarkCheck(str(home), None)
        ydl.add_post_processor(check, when="post_process")
        ydl.add_post_processor(Lands(), when="post_process")
        info = ydl.sanitize_info(ydl.extract_info(origin.clip_url, download=True))
    return check, info["requested_downloads"][-1]["filepath"]


def test_a_file_landed_after_the_look_is_kept_and_said_found(
        origin: MediaOrigin, tmp_path: Path) -> None:
    home, temp = tmp_path / "downloads", tmp_path / "tmp"
    home.mkdir()
    check, filepath = download(origin, home, temp)
    landed = home / "Trailer.mp4"
    assert filepath == str(landed)
    # the old code: removed, then the job's own moved over it, said as its own download
    assert landed.read_bytes() == LANDED
    assert check.found()  # the engine judges whose it is
    assert (temp / "Trailer.mp4").read_bytes() == \
        origin.path_for(origin.clip_url).read_bytes()  # its own, left where it was
